"""``collectord simulate``: the built-in Graph API simulator served on its own, for calling
by hand or pointing a collectord at (docs/operations.md, "Command line")."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from collectord.simulator import Simulator
from collectord.simulator.world import World

__all__ = ["serve_standalone", "simulator_config"]


async def serve_standalone(host: str, port: int) -> int:
    """Serve the simulator on ``host:port`` until SIGTERM/SIGINT, printing its fake tokens
    and ids and the config lines that point collectord at it; 1 if it cannot listen."""

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    sim = Simulator()
    try:
        url = await sim.start(host, port)
    except OSError as exc:
        print(f"--listen {host}:{port}: {exc}", file=sys.stderr)
        return 1
    world = sim.world
    # The simulator's own made-up tokens, printed so a person can call it by hand: they
    # open nothing but this simulator and are no secret.
    print(f"Graph API simulator at {url} (fake data, fake tokens)", flush=True)
    for plugin in ("facebook_page", "instagram_user", "facebook_app"):
        print(f"  token for {plugin}: {world.demo_token(plugin)}", flush=True)
    print(f"  ids: {json.dumps(world.demo_ids())}", flush=True)
    print(simulator_config(url, world), flush=True)
    try:
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def simulator_config(url: str, world: World) -> str:
    """Config lines that point collectord at a simulator serving ``world`` on ``url``: its
    app, one source per built-in plugin with the simulator's own tokens and ids, and one
    Instagram-Login source."""
    ids = world.demo_ids()
    sources = [
        ("sim-page", "facebook_page", "page_id"),
        ("sim-posts", "facebook_post", "page_id"),
        ("sim-instagram", "instagram_user", "ig_user_id"),
        ("sim-instagram-media", "instagram_media", "ig_user_id"),
    ]
    lines = [
        "",
        "# collector.toml lines that point collectord at this simulator:",
        "[graph]",
        f'base_url = "{url}"',
        f'app_id = "{world.app_id}"',
        f'app_secret = "{world.app_secret}"',
    ]
    for name, plugin, key in sources:
        lines += [
            "",
            "[[source]]",
            f'name = "{name}"',
            f'plugin = "{plugin}"',
            f'access_token = "{world.demo_token(plugin)}"',
            f'{key} = "{ids[key]}"',
        ]
    lines += [  # the Instagram API with Instagram Login: graph.instagram.com's stand-in
        "",
        "[[source]]",
        'name = "sim-instagram-login"',
        'plugin = "instagram_user"',
        'login = "instagram"',
        f'access_token = "{world.ig_login_token}"',
        f'ig_user_id = "{ids["ig_user_id"]}"',
        "[source.graph]",
        f'base_url = "{url}/graph.instagram.com"',
    ]
    return "\n".join(lines)
