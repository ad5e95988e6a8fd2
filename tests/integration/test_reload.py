"""Config reload (SIGHUP): a valid config reschedules only the sources that changed, an
invalid one is refused whole and the running one stays, `_file` tokens are read again, and
a config that came from a pipe is not read twice."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lifecycle_support import polls, wait_until
from structlog.testing import capture_logs

from collectord.config.loader import load_config
from collectord.daemon import Collector
from collectord.exporter.registry import ReloadStats
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.reload import Reloader, needs_restart
from collectord.scheduling.scheduler import PollScheduler
from collectord.simulator import Simulator

pytestmark = pytest.mark.integration


def page(simulator: Simulator, name: str, extra: str = "") -> str:
    world = simulator.world
    return f"""
[[source]]
name = "{name}"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
{extra}
"""


async def hup_and_wait(daemon: Any, event: str, count: int) -> dict[str, Any]:
    """Send SIGHUP; wait for the ``count``-th log line ``event``, return it."""
    daemon.proc.send_signal(signal.SIGHUP)

    async def logged() -> bool:
        return len([e for e in daemon.log_events() if e.get("event") == event]) >= count

    await wait_until(logged, 15)
    return [e for e in daemon.log_events() if e.get("event") == event][count - 1]


async def test_sighup_reschedules_only_the_sources_that_changed(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    one = 'metrics = ["page_views_total"]'
    two = 'metrics = ["page_views_total", "page_post_engagements"]'
    before = page(simulator, "keep") + page(simulator, "drop") + page(simulator, "change", one)
    daemon = await start_daemon(make_config(simulator, before))
    await daemon.wait_ready()
    first = await daemon.scrape()
    started_at = first.value("collectord_config_last_reload_success_timestamp_seconds")
    assert first.value("collectord_config_last_reload_successful") == 1
    assert started_at is not None
    assert started_at > 0

    after = page(simulator, "keep") + page(simulator, "change", two) + page(simulator, "new")
    config = make_config(simulator, after).replace("@PORT@", str(daemon.port))
    (tmp_path / "collector.toml").write_text(config)
    line = await hup_and_wait(daemon, "config reloaded", 1)
    assert (line["added"], line["removed"], line["changed"]) == (["new"], ["drop"], ["change"])
    assert line["unchanged"] == 1

    def settled(s: Any) -> bool:
        return (
            s.value("collectord_source_up", source="new") == 1
            and s.value("facebook_page_post_engagements", source="change") is not None
        )

    scrape = await daemon.wait_for(settled)
    assert "drop" not in {lab.get("source") for _, lab, _ in scrape.samples}
    assert polls(scrape, "keep") == polls(first, "keep"), "an unchanged source is left alone"
    assert polls(scrape, "change") > polls(first, "change"), "a changed one polls again"
    assert scrape.value("collectord_config_last_reload_successful") == 1
    assert scrape.value("collectord_config_last_reload_success_timestamp_seconds") >= started_at
    assert await daemon.stop() == 0


async def test_an_invalid_config_is_refused_whole_and_the_running_one_stays(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    good = make_config(simulator, page(simulator, "acme"))
    daemon = await start_daemon(good)
    await daemon.wait_ready()
    cfg = tmp_path / "collector.toml"
    running = good.replace("@PORT@", str(daemon.port))
    broken = running.replace('jitter = "0s"', 'jitter = "soon"\nbogus = 1') + page(
        simulator, "extra"
    )
    cfg.write_text(broken)
    await hup_and_wait(daemon, "config reload refused, the running config stays", 1)
    scrape = await daemon.wait_for_value("collectord_config_last_reload_successful", 0)
    assert scrape.value("collectord_source_up", source="acme") == 1
    assert scrape.value("collectord_source_up", source="extra") is None
    problems = [e["problem"] for e in daemon.log_events() if e.get("event") == "config problem"]
    assert len(problems) == 2, problems  # each problem once
    # POST /-/reload answers with the outcome: the first problem
    async with daemon.session.post(daemon.url + "/-/reload") as resp:
        assert resp.status == 500
        assert problems[0] in await resp.text()
    assert any("jitter" in p for p in problems)
    assert any("bogus" in p for p in problems)

    # fixed, with a listen address that needs a restart: applied but for that key
    moved = running.replace(f"127.0.0.1:{daemon.port}", "127.0.0.1:1") + page(simulator, "extra")
    cfg.write_text(moved)
    line = await hup_and_wait(daemon, "config change needs a restart, ignored until then", 1)
    assert line["keys"] == ["[collector] listen"]
    scrape = await daemon.wait_for_value("collectord_source_up", 1, source="extra")
    assert scrape.value("collectord_config_last_reload_successful") == 1
    async with daemon.session.post(daemon.url + "/-/reload") as resp:
        assert (resp.status, await resp.text()) == (200, "reloaded\n")
    assert await daemon.stop() == 0


async def test_a_token_file_is_read_again_on_reload(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    world = simulator.world
    token = tmp_path / "page-token"
    token.write_text("not-a-valid-token\n")
    token.chmod(0o600)
    source = f"""
[[source]]
name = "acme"
plugin = "facebook_page"
access_token_file = "{token}"
page_id = "{world.first_page.id}"
"""
    daemon = await start_daemon(make_config(simulator, source))
    await daemon.wait_ready()  # first polls done, failed with the bad token
    await daemon.wait_for_value("collectord_source_up", 0, source="acme")
    token.write_text(world.demo_token("facebook_page") + "\n")
    line = await hup_and_wait(daemon, "config reloaded", 1)
    assert line["changed"] == ["acme"]
    await daemon.wait_for_value("collectord_source_up", 1, source="acme")
    assert await daemon.stop() == 0
    assert world.demo_token("facebook_page") not in daemon.logs()


# -- in-process: a config from a pipe, and a storm coalescing into two reloads ---------


@pytest.fixture
async def collector(simulator: Simulator, tmp_path: Path) -> AsyncIterator[Collector]:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'[graph]\nbase_url = "{simulator.url}"\n' + page(simulator, "acme"))
    plugins = plugin_map(load_source_plugins(()))
    async with Collector(load_config(cfg, plugins), plugins, sinks_enabled=False) as col:
        yield col


async def test_a_config_from_a_pipe_is_not_read_again(collector: Collector, tmp_path: Path) -> None:
    fifo = tmp_path / "from-a-pipe.toml"
    os.mkfifo(fifo)
    collector.use_config(replace(collector.config, path=fifo))
    calls: list[int] = []
    stats = ReloadStats(True, 1.0)

    def loader() -> Any:
        calls.append(1)
        raise AssertionError("a pipe must not be read again")

    reloader = Reloader(
        collector, PollScheduler(collector.poller, collector.runtimes), loader, stats
    )
    with capture_logs() as logs:
        first = await reloader.reload()
        second = await reloader.reload()
    assert first[0] is False
    assert "not a regular file" in first[1]
    assert second == first
    assert calls == []
    assert [e["event"] for e in logs] == ["config reload unavailable"], "said once"
    assert stats == ReloadStats(True, 1.0), "nothing was tried: the metrics stay"


async def test_a_sighup_storm_coalesces_into_one_running_and_one_pending(
    collector: Collector,
) -> None:
    calls: list[int] = []
    entered = threading.Event()
    release = threading.Event()
    config = collector.config

    def loader() -> Any:
        calls.append(1)
        entered.set()
        release.wait(10)
        return config

    stats = ReloadStats()
    reloader = Reloader(
        collector, PollScheduler(collector.poller, collector.runtimes), loader, stats
    )
    for _ in range(300):
        reloader.on_sighup()
    await asyncio.wait_for(asyncio.to_thread(entered.wait, 10), 10)
    for _ in range(300):  # while the first one reads the file
        reloader.on_sighup()
    release.set()

    async def idle() -> bool:
        await asyncio.sleep(0.01)
        return not reloader._tasks

    await wait_until(idle, 10)
    assert len(calls) == 2
    assert reloader.attempts == 2
    assert stats.successful
    # a direct reload (POST /-/reload) answers with its own outcome
    assert await reloader.reload() == (True, "reloaded")


def test_keys_read_only_at_start_are_named_as_needing_a_restart(tmp_path: Path) -> None:
    plugins = plugin_map(load_source_plugins(()))
    cfg = tmp_path / "collector.toml"
    cfg.write_text('[collector]\nlisten = "127.0.0.1:9464"\n[sink.jsonl]\npath = "a.jsonl"\n')
    old = load_config(cfg, plugins)
    assert needs_restart(old, load_config(cfg, plugins)) == []
    new = replace(
        old,
        collector=replace(old.collector, listen_port=9465, log_level="debug"),
        graph=replace(old.graph, max_concurrency=2, timeout=3.0),
        jsonl=None,
    )
    assert needs_restart(old, new) == [
        "[collector] listen",
        "[collector] log_level",
        "[graph] max_concurrency",
        "[sink.jsonl]",
    ]
