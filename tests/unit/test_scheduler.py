"""Polling and scheduling: outcomes recorded, failures isolated and logged on change only."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from structlog.testing import capture_logs

from collectord import MetricSpec, PollContext, Sample, SourcePlugin, ThrottledError
from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.errors import ServerError
from collectord.exporter.exposition import make_exposition
from collectord.graph.stats import GraphStats
from collectord.scheduling.scheduler import (
    BACKOFF_CAP,
    BACKOFF_FACTOR,
    Poller,
    PollScheduler,
    SourceRuntime,
    backoff_delay,
)
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


# -- backoff and isolation (issue 9) ---------------------------------------------------


class FastOnly(Scripted):
    catalogue = (FAST,)


def test_backoff_doubles_the_interval_up_to_eight_times_or_six_hours() -> None:
    assert [backoff_delay(900, n) for n in range(1, 7)] == [900, 1800, 3600, 7200, 7200, 7200]
    assert [backoff_delay(3600, n) for n in (2, 3, 4, 40)] == [
        7200,
        14400,
        BACKOFF_CAP,
        BACKOFF_CAP,
    ]
    assert backoff_delay(86400, 5) == 86400, "an interval over the cap is kept"
    assert BACKOFF_FACTOR == 8
    assert BACKOFF_CAP == 6 * 3600


def _next_in(store: Store, name: str) -> float:
    when = store.status(name).per_cadence["fast"].next_run
    assert when is not None
    return (when - datetime.now(UTC)).total_seconds()


async def test_a_failing_job_backs_off_and_a_success_ends_it() -> None:
    store = Store()
    down = ServerError("(#2) down", code=2)
    blocked = ThrottledError("rate limit", code=80001, retry_after=600.0)
    plugin = FastOnly([down, down, down, down, blocked, 1.0, down])
    rt = runtime(store, "a", plugin, fast=3600)
    poller = ObservedPoller(store)
    sched = PollScheduler(poller, [rt], rng=lambda: 0.0)
    sched.start()
    try:
        await poller.wait_for(1)  # the first run, scheduled at start: one failure
        assert _next_in(store, "a") == pytest.approx(3600, abs=30)
        with capture_logs() as logs:
            for expected in (7200, 14400, BACKOFF_CAP):  # 2, 3, 4 failures in a row
                await sched._run("a", "fast")
                assert _next_in(store, "a") == pytest.approx(expected, abs=30)
            await sched._run("a", "fast")  # the governor refused it: not a failure
            assert sched.failures == {("a", "fast"): 4}
            assert _next_in(store, "a") == pytest.approx(BACKOFF_CAP, abs=30)
            await sched._run("a", "fast")  # delivered
            assert sched.failures == {}
            await sched._run("a", "fast")  # failing again starts from the interval
            assert sched.failures == {("a", "fast"): 1}
        events = [e["event"] for e in logs]
        assert events.count("source backing off") == 3
        assert events.count("back to the normal interval") == 1
    finally:
        await sched.shutdown(grace=1)


class Counting(SourcePlugin):
    """Answers every poll at once and tells the test."""

    name = "counting"
    catalogue = (FAST,)

    def __init__(self) -> None:
        self.polls: asyncio.Queue[float] = asyncio.Queue()

    async def collect(self, ctx: PollContext) -> list[Sample]:
        self.polls.put_nowait(asyncio.get_running_loop().time())
        return [ctx.sample(FAST, 1.0, object_id="o", labels={"obj": "o"})]


async def test_a_hanging_and_a_raising_source_never_delay_another() -> None:
    store = Store()
    hanging = FastOnly(["hang"] * 100)
    raising = FastOnly([RuntimeError("plugin bug")] * 100)
    healthy = Counting()
    rts = [
        runtime(store, "hang", hanging, fast=0.2),
        runtime(store, "raise", raising, fast=0.2),
        runtime(store, "ok", healthy, fast=0.2),
    ]
    sched = PollScheduler(Poller(store), rts, rng=lambda: 0.0)
    exposition = make_exposition(store, GraphStats(), [], version="test")
    sched.start()
    try:
        async with asyncio.timeout(10):
            times = [await healthy.polls.get() for _ in range(6)]
            async with asyncio.timeout(1):  # /metrics answers while a poll hangs
                body, _ = await exposition.body("text/plain")
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 2.0, gaps  # on schedule (0.2 s), with room for a slow machine
        assert b'collectord_source_up{plugin="counting",source="ok"} 1.0' in body
        assert len(hanging.calls) == 1, "its later runs return at once, never pile up"
        assert 1 <= sched.failures[("raise", "fast")] <= 3, "it backs off"
        assert _next_in(store, "raise") > _next_in(store, "ok")
    finally:
        await sched.shutdown(grace=0)


async def test_a_removed_source_stops_quietly_and_an_added_one_is_polled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    gated = Gated()
    poller = ObservedPoller(store)
    sched = PollScheduler(poller, [runtime(store, "old", gated, fast=3600)])
    sched.start()
    try:
        await asyncio.wait_for(gated.started.wait(), 10)
        sched.remove_source("old")
        assert sorted(await poller.wait_for(2)) == [("old", "daily"), ("old", "fast")]
        assert not [j for j in sched.scheduler.get_jobs() if j.id.startswith("old:")]
        new = Scripted()
        sched.add_source(runtime(store, "new", new, fast=3600))
        got = await poller.wait_for(2)
        assert sorted(got) == [("new", "daily"), ("new", "fast")]
    finally:
        await sched.shutdown(grace=1)
    assert not store.status("old").per_cadence["fast"].last_error, "cancelled, not failed"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
