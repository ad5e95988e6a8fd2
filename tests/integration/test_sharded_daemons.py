"""Three replicas on three shards, as a StatefulSet runs them: real daemon processes against
one simulator, each with its own state_dir, together polling every source exactly once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import Daemon, free_port, running

from collectord.sharding import shard_of
from collectord.simulator import Simulator, World

pytestmark = pytest.mark.integration

PAGES = 9


@pytest.fixture
async def many_pages(frozen_now: datetime) -> AsyncIterator[Simulator]:
    async with running(World(clock=lambda: frozen_now, page_count=PAGES)) as sim:
        yield sim


@pytest.fixture
def replica(tmp_path: Path, start_daemon: Callable[..., Any]) -> Callable[..., Any]:
    """``replica(name, config_text, *args, hostname=..., port=...)``: a daemon in
    ``tmp_path/name`` (its own config, state_dir and log), with ``$HOSTNAME`` set as a pod's
    would be, listening on ``port`` (default: a free one)."""

    async def start(
        name: str, config_text: str, *args: str, hostname: str = "", port: int = 0
    ) -> Daemon:
        home = tmp_path / name
        home.mkdir()
        env = {"HOSTNAME": hostname or name}
        daemon: Daemon = await start_daemon(config_text, *args, home=home, port=port, env=env)
        return daemon

    return start


def config(sim: Simulator, shard: str = "", sources: str = "", tables: str = "") -> str:
    """A replica's config: ``sources`` (default: one per simulated Page), then ``tables``."""
    world = sim.world
    sources = sources or "".join(
        f'\n[[source]]\nname = "page-{i}"\nplugin = "facebook_page"\n'
        f'access_token = "{page.token}"\npage_id = "{page.id}"\n'
        'metrics = ["followers_count", "page_views_total"]\n'
        for i, page in enumerate(world.pages.values())
    )
    return f"""
[collector]
listen = "127.0.0.1:@PORT@"
state_dir = "state"
{shard}

[graph]
base_url = "{sim.url}"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"
timeout = "5s"

[schedule]
fast_interval = "1h"
daily_interval = "1h"
jitter = "0s"
{sources}
[sink.jsonl]
path = "samples.jsonl"
{tables}"""


async def test_three_replicas_on_three_shards_expose_every_source_once(
    many_pages: Simulator, replica: Any
) -> None:
    names = [f"page-{i}" for i in range(PAGES)]
    assert {shard_of(n, 3) for n in names} == {0, 1, 2}  # every replica has work
    daemons = [
        # the StatefulSet way: auto/3 and the pod's hostname
        await replica("collectord-0", config(many_pages, 'shard = "auto/3"')),
        # the flag overrides the file
        await replica("b", config(many_pages, 'shard = "0/2"'), "--shard", "1/3"),
        await replica("c", config(many_pages, 'shard = "2/3"')),
    ]
    await asyncio.gather(*(d.wait_ready() for d in daemons))
    exposed: list[str] = []
    for index, daemon in enumerate(daemons):
        scrape = await daemon.scrape()
        assert scrape.value("collectord_shard_info", shard=f"{index}/3") == 1
        assert len(scrape.series("collectord_shard_info")) == 1
        polled = {lab["source"] for lab in scrape.series("collectord_source_up")}
        with_values = {lab["source"] for lab in scrape.series("facebook_page_followers")}
        assert polled == with_values == {n for n in names if shard_of(n, 3) == index}
        assert all(scrape.value("collectord_source_up", source=n) == 1 for n in polled)
        exposed += sorted(polled)
        status, page = await daemon.get("/")
        assert status == 200
        assert f"Shard: {index}/3." in page
    assert sorted(exposed) == names  # every source, each exactly once
    for daemon in daemons:
        assert await daemon.stop() == 0
        # each replica keeps its own state, in its own state_dir
        assert (daemon.log_path.parent / "state" / "state.json").exists()


async def test_a_replica_without_an_ordinal_refuses_auto_and_says_why(
    many_pages: Simulator, replica: Any
) -> None:
    daemon = await replica("laptop", config(many_pages, 'shard = "auto/3"'))
    assert await asyncio.wait_for(daemon.proc.wait(), 20) == 2
    assert "the hostname 'laptop' does not end in '-<ordinal>'" in daemon.logs()


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _two_ports() -> int:
    """A base B with ports B0 and B1 (10*B and 10*B + 1) free: the replicas' addresses,
    so that one ``forward_url`` template reaches both."""
    for _ in range(100):
        base = free_port() // 10
        if base * 10 + 1 < 65536 and _free(base * 10) and _free(base * 10 + 1):
            return base
    raise AssertionError("no two adjacent free ports")


async def test_a_webhook_delivery_reaches_the_replica_that_polls_its_account(
    simulator: Simulator, replica: Any, frozen_now: datetime
) -> None:
    world = simulator.world
    ig = world.instagram.user_ids[0]
    story = world.instagram.add_story(ig, frozen_now - timedelta(hours=25))
    source = "northwind-media"
    assert shard_of(source, 2) == 0
    base = _two_ports()

    sources = f"""
[[source]]
name = "{source}"
plugin = "instagram_media"
access_token = "{world.demo_token("instagram_media")}"
ig_user_id = "{ig}"
"""
    webhooks = f"""
[webhooks]
verify_token = "a-verify-token-for-tests"
forward_url = "http://127.0.0.1:{base}{{shard}}/webhooks/meta"
"""

    def text(shard: int) -> str:
        return config(simulator, f'shard = "{shard}/2"', sources, webhooks)

    owner = await replica("collectord-0", text(0), port=base * 10)
    other = await replica("collectord-1", text(1), port=base * 10 + 1)
    await asyncio.gather(owner.wait_ready(), other.wait_ready())

    def story_values(scrape: Any) -> dict[str, float]:
        return {n: v for n, lab, v in scrape.samples if lab.get("media_id") == story}

    # Meta's delivery reaches the replica that does not poll the account
    _, status, _ = await simulator.send_story_insights(other.url + "/webhooks/meta", story)
    assert status == 200
    scrape = await owner.wait_for(lambda s: bool(story_values(s)))
    assert story_values(scrape)["instagram_story_reach"] > 0
    assert scrape.value("collectord_webhook_changes_total", outcome="recorded") == 1
    scrape = await other.scrape()
    assert scrape.value("collectord_webhook_changes_total", outcome="forwarded") == 1
    assert not story_values(scrape)

    # the owner is gone: Meta still gets its 200, the loss is counted and logged once
    assert await owner.stop() == 0
    _, status, _ = await simulator.send_story_insights(other.url + "/webhooks/meta", story)
    assert status == 200
    scrape = await other.scrape()
    assert scrape.value("collectord_webhook_changes_total", outcome="forward_failed") == 1
    assert other.logs().count("webhook forward failed") == 1
    assert world.app_secret not in other.logs()
