"""SIGTERM, whatever is in flight: the daemon exits 0 within its shutdown bound. Meta slow
to answer (the poll and the token check cancelled quietly), a second signal during the
shutdown, and a plugin that blocks the event loop itself (the last-resort exit).

The bound is asserted by waiting at most ``SHUTDOWN_BOUND`` + 2 s for the process: Python's
start-up is not part of the bound, and the test's own measurement adds scheduling noise."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lifecycle_support import wait_until

from collectord.daemon import SHUTDOWN_BOUND
from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

#: Longer than the bound: neither the poll nor the token check can finish in time.
SLOW_ANSWER = SHUTDOWN_BOUND + 2.0
#: What the test waits for the process beyond the bound.
WAIT_SLACK = 2.0


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
    code = await daemon.stop(within=SHUTDOWN_BOUND + WAIT_SLACK)

    logs = daemon.logs()
    assert code == 0, logs
    assert "Traceback" not in logs
    assert "raised an exception" not in logs  # APScheduler's "failed job" line
    assert "failed job" not in logs.lower()
    events = daemon.log_events()
    assert any(e.get("event") == "cancelled polls at shutdown" for e in events), logs
    assert events[-1].get("event") == "stopped", logs


async def test_a_second_signal_during_shutdown_starts_no_second_teardown(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    simulator.faults.delay(SLOW_ANSWER, count=None)  # polls in flight at SIGTERM
    daemon = await start_daemon(make_config(simulator, page_source(simulator)))

    async def said(event: str) -> bool:
        return any(e.get("event") == event for e in daemon.log_events())

    await wait_until(lambda: said("collectord started"), 20)
    daemon.proc.send_signal(signal.SIGTERM)
    await wait_until(lambda: said("shutting down"), 5)
    daemon.proc.send_signal(signal.SIGINT)
    await wait_until(lambda: said("already shutting down"), 5)
    code = await daemon.stop(within=SHUTDOWN_BOUND + WAIT_SLACK)  # SIGTERM again
    events = [e.get("event") for e in daemon.log_events()]
    assert code == 0, daemon.logs()
    assert events.count("shutting down") == 1
    assert events.count("already shutting down") == 2
    assert events.count("waiting for running polls") == 1
    assert events[-1] == "stopped"


#: A plugin whose poll blocks the event loop (a CPU-bound or blocking call in a plugin).
BLOCKING = """
import time

import collectord


class Blocking(collectord.SourcePlugin):
    name = "blocking"
    description = "Blocks the event loop for a minute"
    catalogue = (collectord.MetricSpec("x", "blocking_x", "fast", kind="field"),)

    async def collect(self, ctx):
        print("blocking the loop", flush=True)
        time.sleep(60)
        return []


@collectord.hookimpl
def register_source_plugins():
    return [Blocking()]
"""


async def test_a_plugin_blocking_the_loop_still_exits_within_the_bound(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "blocking.py").write_text(BLOCKING)
    source = """
[[source]]
name = "stuck"
plugin = "blocking"
access_token = "unused"
"""
    config = make_config(simulator, source).replace(
        'state_dir = "state"', 'state_dir = "state"\nplugin_dirs = ["plugins"]'
    )
    daemon = await start_daemon(config)
    await wait_until(lambda: _logged(daemon, "blocking the loop"), 20)
    code = await daemon.stop(within=SHUTDOWN_BOUND + WAIT_SLACK)
    assert code == 0, daemon.logs()
    events = daemon.log_events()
    assert events[-2].get("event") == "shutdown overran its bound, exiting now", daemon.logs()
    assert events[-1].get("event") == "stopped"


async def _logged(daemon: Any, text: str) -> bool:
    return text in daemon.logs()


def page_source(simulator: Simulator) -> str:
    world = simulator.world
    return f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
"""
