"""A real daemon throttled by Meta: it stops calling, counts the skipped polls, comes back.

The simulator runs on real time here (its blocks end on the clock the daemon sees). Meta
states a regain time in whole minutes, so the block lasts one minute: the shortest Meta
can ask for. The fast interval is two seconds, so recovery "within one interval" is tight.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conftest import running

from collectord.simulator import Simulator, World

pytestmark = pytest.mark.integration

FAST = 2.0
#: The daemon's clock and the simulator's are the same, but the daemon's block starts when
#: the throttled answer arrives and a poll's success is stamped when it ends: room for
#: both on a loaded machine (a governor that paced on the throttled answers' 100 % would
#: come back a minute late, not seconds).
SLACK = 2.0


@pytest.fixture
async def real_time_simulator() -> AsyncIterator[Simulator]:
    async with running(World()) as sim:
        yield sim


def page_source(sim: Simulator) -> str:
    world = sim.world
    return f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
"""


class Stamped:
    """Every Graph call with when it was answered and which HTTP request carried it."""

    def __init__(self, sim: Simulator, tap: Any) -> None:
        self.sim = sim
        self.calls: list[tuple[float, int, Any]] = []
        self.block_end: float | None = None
        tap.after = self._after

    def _after(self, call: Any) -> None:
        request = len(self.sim.requests) - 1
        self.calls.append((time.time(), request, call))
        if self.block_end is None and self.sim.router.blocks:
            self.block_end = max(until for until, _, _ in self.sim.router.blocks.values())

    def first_throttled_request(self) -> int:
        return next(req for _, req, call in self.calls if _is_throttle(call))


def _is_throttle(call: Any) -> bool:
    body = call.body if isinstance(call.body, dict) else {}
    error = body.get("error")
    return isinstance(error, dict) and error.get("code") == 80001


async def test_a_throttled_source_stops_calling_and_collects_again_within_an_interval(
    real_time_simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    sim = real_time_simulator
    stamped = Stamped(sim, tap(sim))
    fast = f"{FAST:g}s"
    daemon = await start_daemon(make_config(sim, page_source(sim), fast=fast, daily="1h"))
    await daemon.wait_ready()
    labels = {"source": "acme-page", "plugin": "facebook_page"}
    success = "collectord_source_last_success_timestamp_seconds"
    throttled = "collectord_source_poll_errors_total"
    await daemon.wait_for_value(success, cadence="fast", **labels)

    # Meta blocks the Page's budget for a minute on the next call, and holds the block
    sim.faults.throttle(80001, minutes=1, hold=True)

    await daemon.wait_for(lambda _: stamped.block_end is not None, within=10 * FAST)
    block_end = stamped.block_end
    assert block_end is not None

    # polls during the block are refused before any request: counted, not failed
    scrape = await daemon.wait_for(
        lambda s: (s.value(throttled, reason="throttled", **labels) or 0) >= 3,
        within=block_end - time.time(),
    )
    assert time.time() < block_end, "the polls were counted while the budget was blocked"
    assert (scrape.value(throttled, reason="throttled", **labels) or 0) >= 3

    # collecting again within one fast interval of the block's end
    def collected(s: Any) -> bool:
        return (s.value(success, cadence="fast", **labels) or 0) >= block_end

    scrape = await daemon.wait_for(collected, within=block_end - time.time() + 4 * FAST + 5)
    back = scrape.value(success, cadence="fast", **labels)
    assert back is not None
    assert back - block_end <= FAST + SLACK, f"back {back - block_end:.1f}s after the block"

    # no request reached the budget while it was blocked (only the throttled one itself)
    first = stamped.first_throttled_request()
    during = [
        (stamp, call.path)
        for stamp, req, call in stamped.calls
        if req > first and stamp < block_end
    ]
    assert during == []
    assert sim.router.calls_during_block == 0

    # logged once when the pause began and once when polls ran again
    events = [e.get("event") for e in daemon.log_events()]
    assert events.count("polls paused by the rate limit") == 1
    assert events.count("polls resumed after the rate limit") == 1
    assert events.count("graph api throttled, pausing calls") == 1
    await daemon.stop()
