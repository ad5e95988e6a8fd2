"""The JSONL sink of a real daemon under faults: ``kill -9`` in the middle of writes, and a
file that cannot be written for a while."""

from __future__ import annotations

import asyncio
import json
import random
import signal
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import running

from collectord.simulator import Simulator, World
from collectord.simulator.base import quantize

pytestmark = pytest.mark.integration

KILLS = 6


def sources(sim: Simulator) -> str:
    """A Page and its posts: a few hundred series per poll."""
    world = sim.world
    return f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"

[[source]]
name = "acme-posts"
plugin = "facebook_post"
access_token = "{world.demo_token("facebook_post")}"
page_id = "{world.first_page.id}"
"""


async def until(check: Callable[[], bool], within: float = 20.0) -> None:
    """Re-check a file another process writes every few milliseconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - the file is written by another process
            await asyncio.sleep(0.002)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@pytest.fixture
async def moving() -> AsyncIterator[tuple[Simulator, list[datetime]]]:
    """A simulator whose clock the test moves: a day later, every value is new."""
    now = [quantize(datetime.now(UTC), 60)]
    async with running(World(clock=lambda: now[0])) as sim:
        yield sim, now


async def test_kill_9_mid_write_leaves_whole_lines_and_no_duplicate(
    moving: tuple[Simulator, list[datetime]],
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
) -> None:
    sim, now = moving
    config = make_config(sim, sources(sim))
    jsonl = tmp_path / "samples.jsonl"
    state = tmp_path / "state" / "state.json"
    rng = random.Random(9)
    for n in range(KILLS):
        now[0] += timedelta(days=1)  # new days: every round has records to write
        state.unlink(missing_ok=True)  # safe to delete: the next start polls again
        before = size(jsonl)
        daemon = await start_daemon(config)
        await until(lambda before=before: size(jsonl) > before)  # the writer is at work
        if n % 2:  # every other time, a little later: between, or inside, later batches
            await asyncio.sleep(rng.uniform(0, 0.05))
        assert await daemon.stop(signal.SIGKILL) == -signal.SIGKILL

    last = await start_daemon(config)
    await last.wait_ready()
    assert await last.stop() == 0

    raw = jsonl.read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(line) for line in raw.splitlines()]  # every line parses
    assert len(records) > 100
    latest: dict[tuple[str, str, str | None], float | None] = {}
    repeated = []
    for r in records:
        key = (r["metric"], json.dumps(r["labels"], sort_keys=True), r["end_time"])
        if key in latest and latest[key] == r["value"]:
            repeated.append(r)
        latest[key] = r["value"]
    assert not repeated, f"{len(repeated)} records written twice, e.g. {repeated[0]}"
    for partial in tmp_path.glob("samples.jsonl.partial-*"):  # noqa: ASYNC240
        assert not partial.read_bytes().endswith(b"\n"), "only a torn tail is moved aside"
    torn = [e for e in last.log_events() if e.get("event") == "jsonl torn line repaired"]
    assert all(e["bytes"] > 0 for e in torn)


async def test_an_unwritable_sink_holds_its_records_until_it_can_write(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the sink's folder should be")
    # a file where a folder above the sink's should be: its folder cannot be made until
    # the file goes (a folder that is a file right away is refused by the config check)
    target = blocker / "sub" / "samples.jsonl"
    config = make_config(simulator, sources(simulator)).replace(
        str(tmp_path / "samples.jsonl"), str(target)
    )
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    scrape = await daemon.wait_for(lambda s: (s.value("collectord_sink_errors_total") or 0) > 0)
    assert scrape.value("collectord_source_up", source="acme-page") == 1
    exposed = {
        (name, json.dumps(labels, sort_keys=True))
        for name, labels, _ in scrape.samples
        if name.startswith("facebook_")
    }

    blocker.unlink()  # the fault clears; no new poll comes within the hour
    await until(lambda: target.exists() and target.read_bytes().endswith(b"\n"))
    scrape = await daemon.wait_for(
        lambda s: s.value("collectord_sink_records_total") == len(target.read_text().splitlines())
    )
    written = {
        (r["metric"], json.dumps(r["labels"], sort_keys=True))
        for r in map(json.loads, target.read_text().splitlines())
    }
    assert exposed <= written, "every series the polls returned reached the file"
    assert scrape.value("collectord_sink_dropped_total") == 0
    assert await daemon.stop() == 0
    events = [e.get("event") for e in daemon.log_events()]
    assert events.count("jsonl write failed") == 1
    assert events.count("jsonl write recovered") == 1
