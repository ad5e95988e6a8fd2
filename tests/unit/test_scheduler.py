"""Polling and scheduling: outcomes recorded, failures isolated and logged on change only."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from collectord import MetricSpec, PollContext, Sample, SourcePlugin, ThrottledError
from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.errors import ServerError
from collectord.scheduling.scheduler import Poller, PollScheduler, SourceRuntime
from collectord.store.store import Store

FAST = MetricSpec("f", "test_f", "fast", kind="field")
DAILY = MetricSpec("d", "test_d", "daily")


class Scripted(SourcePlugin):
    """Answers each poll from a script of outcomes; records calls."""

    name = "scripted"
    catalogue = (FAST, DAILY)

    def __init__(self, outcomes: Sequence[object] = ()) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[str] = []
        self.requested: list[bool] = []
        self.called = asyncio.Event()

    async def collect(self, ctx: PollContext) -> list[Sample]:
        self.calls.append(ctx.cadence)
        self.requested.append(ctx.requested)
        self.called.set()
        outcome = self.outcomes.pop(0) if self.outcomes else 1.0
        if isinstance(outcome, BaseException):
            raise outcome
        if outcome == "hang":
            await asyncio.Event().wait()
        spec = FAST if ctx.cadence == "fast" else DAILY
        return [ctx.sample(spec, float(outcome), object_id="o", labels={"obj": "o"})]


class RecordingSink:
    def __init__(self) -> None:
        self.batches: list[tuple[str, int]] = []

    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int:
        self.batches.append((source, len(samples)))
        return len(samples)


class ObservedPoller(Poller):
    """A Poller that tells the test each time a poll finished."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.finished: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

    async def poll(self, rt: SourceRuntime, cadence, *, requested: bool = False) -> bool:  # type: ignore[no-untyped-def]
        try:
            return await super().poll(rt, cadence, requested=requested)
        finally:
            self.finished.put_nowait((rt.name, cadence))

    async def wait_for(self, count: int) -> list[tuple[str, str]]:
        async with asyncio.timeout(10):
            return [await self.finished.get() for _ in range(count)]


def runtime(
    store: Store, name: str, plugin: SourcePlugin, *, fast: float = 900, timeout=30.0
) -> SourceRuntime:
    cfg = SourceConfig(
        name=name,
        plugin=plugin.name,
        access_token=None,
        metrics=None,
        schedule=ScheduleConfig(fast_interval=fast, daily_interval=86400, jitter=0),
        graph=GraphConfig(timeout=timeout),
        specs=plugin.catalogue,
    )
    status = store.register(name, plugin.name, cfg.cadences())
    return SourceRuntime(cfg, plugin, graph=None, status=status)  # type: ignore[arg-type]


async def test_success_failure_recovery_logged_once_each() -> None:
    # issue 8: a throttled poll is no longer a failure (next test), so a server error fails
    store, sink = Store(), RecordingSink()
    plugin = Scripted([2.0, ServerError("(#2) down", code=2), ServerError("(#2)", code=2), 3.0])
    rt = runtime(store, "a", plugin)
    poller = Poller(store, [sink])
    with capture_logs() as logs:
        assert await poller.poll(rt, "fast") is True
        assert await poller.poll(rt, "fast") is False
        assert await poller.poll(rt, "fast") is False
        assert await poller.poll(rt, "fast") is True
    events = [e["event"] for e in logs if e["log_level"] in ("warning", "info")]
    assert events.count("source failing") == 1
    assert events.count("source recovered") == 1
    st = store.status("a")
    assert st.errors["server"] == 2
    assert st.per_cadence["fast"].ok is True
    assert [s.value for s in store.samples("a")] == [3.0]
    assert sink.batches == [("a", 1), ("a", 1)], "failed polls write nothing"


async def test_polls_refused_by_a_blocked_budget_are_skipped_quietly() -> None:
    store, sink = Store(), RecordingSink()
    blocked = ThrottledError("rate limit reached earlier", code=80001, retry_after=600.0)
    plugin = Scripted([2.0, blocked, blocked, blocked, 3.0])
    rt = runtime(store, "a", plugin)
    poller = Poller(store, [sink])
    with capture_logs() as logs:
        results = [await poller.poll(rt, "fast") for _ in range(5)]
    assert results == [True, False, False, False, True]
    events = [e["event"] for e in logs if e["log_level"] in ("warning", "info")]
    assert "source failing" not in events
    assert [e["log_level"] for e in logs if e["log_level"] == "warning"] == []
    assert events.count("polls paused by the rate limit") == 1
    assert events.count("polls resumed after the rate limit") == 1
    st = store.status("a")
    assert st.errors["throttled"] == 3
    assert st.per_cadence["fast"].ok is True
    assert [s.value for s in store.samples("a")] == [3.0]


async def test_failed_poll_keeps_last_good_values() -> None:
    store = Store()
    rt = runtime(store, "a", Scripted([5.0, RuntimeError("boom")]))
    poller = Poller(store)
    await poller.poll(rt, "fast")
    with capture_logs() as logs:
        await poller.poll(rt, "fast")
    assert [s.value for s in store.samples("a")] == [5.0]
    assert store.status("a").per_cadence["fast"].last_error == "RuntimeError: boom"
    assert store.status("a").errors["other"] == 1
    assert logs[0]["reason"] == "other"


async def test_timeout_bounds_a_poll() -> None:
    store = Store()
    rt = runtime(store, "slow", Scripted(["hang"]), fast=0.05, timeout=0.05)
    assert await Poller(store).poll(rt, "fast") is False
    assert store.status("slow").per_cadence["fast"].last_error_reason == "timeout"


async def test_scheduler_runs_each_cadence_at_start_and_isolates_sources() -> None:
    store = Store()
    bad = Scripted([RuntimeError("down")] * 100)
    good = Scripted()
    rts = [runtime(store, "bad", bad, fast=3600), runtime(store, "good", good, fast=3600)]
    poller = ObservedPoller(store)
    sched = PollScheduler(poller, rts)
    sched.start()
    try:
        await poller.wait_for(4)
    finally:
        await sched.shutdown(grace=1)
    assert store.ready
    assert sorted(good.calls) == ["daily", "fast"]
    assert sorted(bad.calls) == ["daily", "fast"]
    assert store.status("good").up
    assert not store.status("bad").up
    assert store.status("good").per_cadence["fast"].next_run is not None


async def test_shutdown_cancels_a_hanging_poll(caplog: pytest.LogCaptureFixture) -> None:
    store = Store()
    plugin = Scripted(["hang", "hang"])
    sched = PollScheduler(Poller(store), [runtime(store, "h", plugin)])
    sched.start()
    await asyncio.wait_for(plugin.called.wait(), 10)
    with capture_logs() as logs:
        await sched.shutdown(grace=0.1)
    assert not sched.scheduler.running
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "cancelled polls at shutdown"
    ]
    # APScheduler does not report the cancelled polls as failed jobs
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class Gated(SourcePlugin):
    """A poll that runs until the test opens the gate."""

    name = "gated"
    catalogue = (FAST, DAILY)

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def collect(self, ctx: PollContext) -> list[Sample]:
        self.started.set()
        await self.gate.wait()
        spec = FAST if ctx.cadence == "fast" else DAILY
        return [ctx.sample(spec, 7.0, object_id="o", labels={"obj": "o"})]


async def test_shutdown_lets_running_polls_finish_within_the_grace(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    plugin = Gated()
    sched = PollScheduler(Poller(store), [runtime(store, "g", plugin)])
    sched.start()
    await asyncio.wait_for(plugin.started.wait(), 10)
    stopping = asyncio.create_task(sched.shutdown(grace=30))
    for _ in range(20):  # let shutdown start waiting (it must not cancel the polls)
        await asyncio.sleep(0)
    assert not stopping.done()
    plugin.gate.set()
    await asyncio.wait_for(stopping, 10)
    assert not sched.scheduler.running
    assert store.ready, "both polls finished and were recorded"
    assert sorted(s.value for s in store.samples("g")) == [7.0, 7.0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_extra_poll_requested_by_plugin_runs() -> None:
    store = Store()
    plugin = Scripted()
    rt = runtime(store, "x", plugin, fast=3600)
    poller = ObservedPoller(store)
    sched = PollScheduler(poller, [rt])
    sched.start()
    try:
        await poller.wait_for(2)  # the start-up polls of both cadences
        assert poller.on_poll_request is not None
        poller.on_poll_request("x", "fast", datetime.now(UTC))
        assert await poller.wait_for(1) == [("x", "fast")]
    finally:
        await sched.shutdown(grace=1)
    assert plugin.calls.count("fast") == 2
    # the plugin is told which poll it asked for; the scheduled ones are not marked
    assert list(zip(plugin.calls, plugin.requested, strict=True))[-1] == ("fast", True)
    assert plugin.requested.count(True) == 1


async def test_a_run_due_while_the_poll_is_still_running_returns_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # issue 8: a poll paced by the governor outlasts its interval; the runs coming due
    # meanwhile must not pile up ("maximum number of running instances reached")
    store = Store()
    plugin = Gated()
    calls: list[str] = []
    original = plugin.collect

    async def counting(ctx: PollContext) -> list[Sample]:
        calls.append(ctx.cadence)
        return await original(ctx)

    plugin.collect = counting  # type: ignore[method-assign]
    sched = PollScheduler(Poller(store), [runtime(store, "g", plugin)])
    first = asyncio.create_task(sched._run("g", "fast"))
    await asyncio.wait_for(plugin.started.wait(), 10)
    await asyncio.wait_for(sched._run("g", "fast"), 1)  # returns without waiting
    await asyncio.wait_for(sched._run("g", "fast"), 1)
    plugin.gate.set()
    await asyncio.wait_for(first, 10)
    assert calls == ["fast"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
