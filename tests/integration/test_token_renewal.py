"""Self-renewing tokens and the Instagram API with Instagram Login (issue 10, points 4, 5).

A real daemon runs two sources with ``renew_token = true`` against the simulator (frozen
clock): an Instagram-Login account whose token is a day old, and an Instagram account read
with a Facebook user token that has 10 of its 60 days left. At start both are renewed
(``ig_refresh_token``, ``fb_exchange_token``), the new tokens land in
``state/renewed-tokens.json`` (0600) and the next polls use them. A restart keeps using
them without renewing again, and no token text appears in any output.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from collectord.simulator import Simulator, World
from collectord.simulator.base import TokenInfo
from collectord.simulator.world import IG_LOGIN_TOKEN, SCOPES

pytestmark = pytest.mark.integration

#: A Facebook user token issued 50 days ago, expiring in 10: due for renewal.
AGEING_TOKEN = "DEMO-AGEING-USER-TOKEN-not-a-real-token"


def sources(sim: Simulator) -> str:
    ig_id = sim.world.instagram.user_ids[0]
    return f"""
[[source]]
name = "ig-login"
plugin = "instagram_user"
login = "instagram"
access_token = "{IG_LOGIN_TOKEN}"
ig_user_id = "{ig_id}"
renew_token = true
[source.graph]
base_url = "{sim.url}/graph.instagram.com"

[[source]]
name = "fb-login"
plugin = "instagram_user"
access_token = "{AGEING_TOKEN}"
ig_user_id = "{ig_id}"
renew_token = true
"""


def add_ageing_token(world: World) -> None:
    """:data:`AGEING_TOKEN`: the world's user, issued 50 days ago, 10 days left."""
    now = int(world.now().timestamp())
    world.add_token(
        TokenInfo(
            AGEING_TOKEN,
            "USER",
            world.app_id,
            world.user_id,
            scopes=SCOPES,
            expires_at=now + int(timedelta(days=10).total_seconds()),
            issued_at=now - int(timedelta(days=50).total_seconds()),
        )
    )


def tap_tokens(sim: Simulator) -> list[tuple[str, bool]]:
    """Record the token of every Graph call the simulator answers, and whether it came to
    the Instagram host."""
    seen: list[tuple[str, bool]] = []
    call = sim.router.call

    def tapped(method: str, path: str, params: dict[str, str], **kw: Any) -> Any:
        seen.append((params.get("access_token", ""), bool(kw.get("instagram"))))
        return call(method, path, params, **kw)

    sim.router.call = tapped  # type: ignore[method-assign]
    return seen


def polls(scrape: Any, source: str, cadence: str = "fast") -> float:
    got = scrape.value(
        "collectord_source_poll_duration_seconds_count", source=source, cadence=cadence
    )
    return got or 0.0


async def test_tokens_are_renewed_kept_in_state_dir_and_used_after_a_restart(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
) -> None:
    world = simulator.world
    add_ageing_token(world)
    seen = tap_tokens(simulator)
    config = make_config(simulator, sources(simulator), fast="1s")
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    state = tmp_path / "state" / "renewed-tokens.json"
    renewed = await daemon.wait_for(
        lambda s: state.exists() and len(json.loads(state.read_text())["sources"]) == 2
    )
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    kept = json.loads(state.read_text())["sources"]
    new_ig, new_fb = kept["ig-login"]["token"], kept["fb-login"]["token"]
    assert new_ig.startswith("DEMO-IG-LONG-LIVED-LOGIN-TOKEN-")
    assert new_fb.startswith("DEMO-LONG-LIVED-USER-TOKEN-")
    assert world.tokens[new_ig].kind == "IG_USER"

    # the next polls use the new tokens, each on its own host (counted once the polls that
    # were running when the tokens changed are over)
    names = ("ig-login", "fb-login")
    settled = await daemon.wait_for(
        lambda s: all(
            polls(s, n) >= polls(renewed, n) + 1 and polls(s, n, "daily") >= 1 for n in names
        )
    )
    mark = len(seen)
    await daemon.wait_for(lambda s: all(polls(s, n) >= polls(settled, n) + 2 for n in names))
    used = set(seen[mark:])
    assert (new_ig, True) in used
    assert (new_fb, False) in used
    assert not {t for t, _ in used} & {IG_LOGIN_TOKEN, AGEING_TOKEN}
    scrape = await daemon.scrape()
    for name in ("ig-login", "fb-login"):
        assert scrape.value("collectord_source_up", source=name) == 1
        assert scrape.value("instagram_user_followers", source=name) is not None
    assert all(t == new_ig for t, instagram in seen[mark:] if instagram)
    assert await daemon.stop() == 0
    first_logs = daemon.logs()

    # a restart uses the kept tokens and renews nothing
    issued = len(world.tokens)
    mark = len(seen)
    again = await start_daemon(config)
    await again.wait_ready()
    await again.wait_for(lambda s: polls(s, "ig-login") >= 1 and polls(s, "fb-login") >= 1)
    assert len(world.tokens) == issued
    tokens_after = {t for t, _ in seen[mark:]}
    assert new_ig in tokens_after
    assert new_fb in tokens_after
    assert not tokens_after & {IG_LOGIN_TOKEN, AGEING_TOKEN}
    assert await again.stop() == 0

    renewals = [e for e in daemon.log_events() if e.get("event") == "token renewed"]
    assert sorted(e["source"] for e in renewals) == ["fb-login", "ig-login"]
    logs = first_logs + again.logs()
    for token in (IG_LOGIN_TOKEN, AGEING_TOKEN, new_ig, new_fb, world.app_secret):
        assert token not in logs


async def test_a_discovering_sources_token_is_renewed_and_its_children_take_it(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
) -> None:
    world = simulator.world
    add_ageing_token(world)
    seen = tap_tokens(simulator)
    agency = f"""
[[source]]
name = "agency"
plugin = "instagram_user"
access_token = "{AGEING_TOKEN}"
discover = true
renew_token = true
"""
    daemon = await start_daemon(make_config(simulator, agency, fast="1s"))
    await daemon.wait_ready()
    state = tmp_path / "state" / "renewed-tokens.json"
    renewed = await daemon.wait_for(lambda s: state.exists())
    new = json.loads(state.read_text())["sources"]["agency"]["token"]
    assert new.startswith("DEMO-LONG-LIVED-USER-TOKEN-")
    child = f"agency/{world.instagram.user_ids[0]}"

    # the child polls on with the renewed token (counted once polls running at the change
    # are over)
    settled = await daemon.wait_for(lambda s: polls(s, child) >= polls(renewed, child) + 1)
    mark = len(seen)
    await daemon.wait_for(lambda s: polls(s, child) >= polls(settled, child) + 2)
    used = {t for t, _ in seen[mark:]}
    assert new in used
    assert AGEING_TOKEN not in used
    scrape = await daemon.scrape()
    assert scrape.value("collectord_source_up", source=child) == 1
    assert await daemon.stop() == 0
    for token in (AGEING_TOKEN, new, world.app_secret):
        assert token not in daemon.logs()
