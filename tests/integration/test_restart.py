"""Restart without a gap: a real daemon stopped and started again serves its last values at
once, with their true last-success times, and does not fetch fresh data again; a bad state
file is reported and ignored."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

STATE = Path("state") / "state.json"  # relative to the daemon's folder (tmp_path)


def page_source(sim: Simulator, name: str = "acme-page") -> str:
    world = sim.world
    return f"""
[[source]]
name = "{name}"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
"""


def exposed(scrape: Any) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every Page series and every last-success time, by name and labels."""
    return {
        (name, frozenset(labels.items())): value
        for name, labels, value in scrape.samples
        if name.startswith("facebook_page_")
        or name == "collectord_source_last_success_timestamp_seconds"
    }


async def test_a_restart_serves_the_last_values_at_once_and_fetches_nothing_fresh(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
    tap: Callable[[Simulator], Any],
) -> None:
    config = make_config(simulator, page_source(simulator), fast="1h", daily="24h")
    umask = os.umask(0)  # the daemon inherits it: its files stay private all the same
    try:
        first = await start_daemon(config)
    finally:
        os.umask(umask)
    await first.wait_ready()
    before = exposed(await first.scrape())
    assert await first.stop() == 0
    state = tmp_path / STATE
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    for private in (state, state.parent / "jsonl-index.json", tmp_path / "samples.jsonl"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
    text = state.read_text()
    assert simulator.world.demo_token("facebook_page") not in text, "no secret in the state"
    assert simulator.world.app_secret not in text
    assert json.loads(text)["sources"]["acme-page"]["cadences"].keys() == {"fast", "daily"}

    calls = tap(simulator)
    page_id = simulator.world.first_page.id
    second = await start_daemon(config)
    await second.wait_ready()  # at once: the restored cadences count as polled
    after = exposed(await second.scrape())
    assert after == before
    assert len([k for k in after if k[0].startswith("collectord_")]) == 2  # both cadences
    assert (await second.get("/readyz"))[0] == 200
    assert await second.stop() == 0
    assert not calls.matching(page_id), "fresh data is not fetched again"
    events = [e["event"] for e in second.log_events()]
    assert "state restored" in events
    assert "first poll done" not in events


async def test_a_removed_source_is_dropped_and_a_new_one_polled(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    first = await start_daemon(make_config(simulator, page_source(simulator, "old")))
    await first.wait_ready()
    assert await first.stop() == 0

    second = await start_daemon(make_config(simulator, page_source(simulator, "new")))
    await second.wait_ready()
    scrape = await second.scrape()
    assert scrape.value("facebook_page_followers", source="new") is not None
    assert scrape.value("facebook_page_followers", source="old") is None
    assert not scrape.with_label("source", "old")


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b'{"version": 1, "sources": {"acme-page": ', "not JSON"), (b'{"version": 7}', "version 7")],
)
async def test_a_bad_state_file_is_reported_once_and_the_daemon_polls_as_new(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
    content: bytes,
    problem: str,
) -> None:
    (tmp_path / STATE).parent.mkdir()
    (tmp_path / STATE).write_bytes(content)
    daemon = await start_daemon(make_config(simulator, page_source(simulator)))
    await daemon.wait_ready()
    assert (await daemon.scrape()).value("facebook_page_followers") is not None
    assert await daemon.stop() == 0
    warnings = [e for e in daemon.log_events() if e.get("level") == "warning"]
    assert [w["event"] for w in warnings] == ["state file unusable, ignored"]
    assert problem in warnings[0]["error"]
    assert warnings[0]["path"].endswith(str(STATE))
    assert json.loads((tmp_path / STATE).read_text())["version"] == 1, "replaced at exit"


async def test_kill_9_leaves_a_whole_state_file(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    config = make_config(simulator, page_source(simulator), fast="1h", daily="24h")
    first = await start_daemon(config)
    await first.wait_ready()
    before = exposed(await first.scrape())
    # the first save follows the first success at once; the second one (the other
    # cadence) is debounced: wait until the file has both cadences, then kill
    state = tmp_path / STATE

    async def complete() -> bool:
        try:
            doc = json.loads(state.read_bytes())
        except (OSError, ValueError):
            return False
        cadences = doc["sources"]["acme-page"]["cadences"]
        return all(c["ok"] for c in cadences.values())

    async with asyncio.timeout(15):
        while not await complete():  # noqa: ASYNC110 - the file is another process's
            await asyncio.sleep(0.05)
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    assert not [p for p in state.parent.iterdir() if p.name.endswith(".tmp")]

    second = await start_daemon(config)
    await second.wait_ready()
    assert exposed(await second.scrape()) == before
