"""SIGTERM while Meta is slow to answer: the daemon exits cleanly within its shutdown bound,
with the poll and the token check in flight cancelled quietly."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest

from collectord.daemon import SHUTDOWN_BOUND
from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

#: Longer than the bound: neither the poll nor the token check can finish in time.
SLOW_ANSWER = SHUTDOWN_BOUND + 2.0
#: Python's own start-up is not part of the bound; its exit after ``run`` returns is, but
#: the measurement from the test's side adds a little scheduling noise.
MEASURE_SLACK = 0.5


async def test_sigterm_during_slow_requests_exits_0_within_the_bound(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = simulator.world
    faults = simulator.faults
    faults.delay(SLOW_ANSWER, count=None)  # every answer, from now on
    # what the simulator is delaying, as each request arrives
    delayed: asyncio.Queue[set[str]] = asyncio.Queue()
    seen: set[str] = set()
    take = faults.take

    def taking(kind: str, paths: list[str]) -> Any:
        if kind == "delay":
            seen.update("token check" if "debug_token" in p else "poll" for p in paths)
            delayed.put_nowait(set(seen))
        return take(kind, paths)

    monkeypatch.setattr(faults, "take", taking)
    source = f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
"""
    # a request timeout above the delay: the requests are still in flight at SIGTERM
    config = make_config(simulator, source).replace('timeout = "5s"', 'timeout = "60s"')
    daemon = await start_daemon(config)

    try:
        async with asyncio.timeout(30):
            while not {"poll", "token check"} <= await delayed.get():
                pass
    except TimeoutError:
        pytest.fail(f"no poll and token check in flight:\n{daemon.logs()}")
    started = time.monotonic()
    code = await daemon.stop(within=SHUTDOWN_BOUND + 5)
    took = time.monotonic() - started

    logs = daemon.logs()
    assert code == 0, logs
    assert took < SHUTDOWN_BOUND + MEASURE_SLACK, (took, logs)
    assert "Traceback" not in logs
    assert "raised an exception" not in logs  # APScheduler's "failed job" line
    assert "failed job" not in logs.lower()
    events = daemon.log_events()
    assert any(e.get("event") == "cancelled polls at shutdown" for e in events), logs
    assert events[-1].get("event") == "stopped", logs
