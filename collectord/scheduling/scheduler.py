"""Polling: one APScheduler job per (source, cadence), and the poll itself.

Each job runs once right after start-up, spread by the jitter, then on its interval (with
the same jitter on every run). A job never overlaps itself (``max_instances=1`` and a lock
that extra runs requested by plugins share), missed runs coalesce into one, and each poll
is bounded by a timeout. A failing source changes only its own status: errors are
counted, logged once when the source starts failing and once when it recovers.
"""

from __future__ import annotations

import asyncio
import copy
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collectord.config.types import SourceConfig
from collectord.errors import GraphError, PollError
from collectord.logs import get_logger, scrub
from collectord.model import Cadence, Sample
from collectord.plugin.api import PollContext, PollResult, SourceGraph, SourcePlugin
from collectord.store.store import SourceStatus, Store

#: The longest a single poll may take, whatever its interval.
MAX_POLL_TIMEOUT = 30 * 60.0
#: Seconds a shutdown waits for the polls it cancelled (after the grace period).
CANCEL_WAIT = 2.0


class Sink(Protocol):
    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int: ...


@dataclass
class SourceRuntime:
    """A configured source with its plugin, its view of the Graph API and its status."""

    config: SourceConfig
    plugin: SourcePlugin
    graph: SourceGraph
    status: SourceStatus
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.config.name

    def lock(self, cadence: Cadence) -> asyncio.Lock:
        return self.locks.setdefault(cadence, asyncio.Lock())

    def poll_timeout(self, cadence: Cadence) -> float:
        interval = self.config.schedule.interval(cadence)
        return max(min(interval, MAX_POLL_TIMEOUT), self.config.graph.timeout)


def job_id(source: str, cadence: Cadence) -> str:
    return f"{source}:{cadence}"


class Poller:
    """Runs polls of sources and records their outcome in the store and the sinks."""

    def __init__(
        self,
        store: Store,
        sinks: Sequence[Sink] = (),
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.sinks = list(sinks)
        self.clock = clock
        self.log = get_logger("collectord.poll")
        #: Called with (source, cadence, when) for a result's ``poll_again_at``; the
        #: scheduler sets it.
        self.on_poll_request: Callable[[str, Cadence, datetime], None] | None = None

    async def poll(self, rt: SourceRuntime, cadence: Cadence, *, requested: bool = False) -> bool:
        """Poll ``rt`` once for ``cadence``; True when it delivered. ``requested`` marks an
        extra poll a plugin asked for (``PollContext.poll_again_at``)."""
        async with rt.lock(cadence):
            return await self._poll_locked(rt, cadence, requested)

    async def _poll_locked(self, rt: SourceRuntime, cadence: Cadence, requested: bool) -> bool:
        ctx = PollContext(
            source=rt.name,
            plugin=rt.plugin.name,
            cadence=cadence,
            options=rt.config.options,
            graph=rt.graph,
            catalogue=rt.config.specs,
            now=self.clock(),
            disabled_before=dict(rt.status.disabled),
            memory=copy.deepcopy(rt.status.memory),
            log=self.log.bind(source=rt.name, cadence=cadence),
            requested=requested,
        )
        was_ok = rt.status.per_cadence[cadence].ok
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(rt.plugin.collect(ctx), rt.poll_timeout(cadence))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # one failing source must never disturb another
            reason, message = _describe(exc, rt.poll_timeout(cadence))
            self.store.record_failure(
                rt.name,
                cadence,
                reason=reason,
                message=message,
                duration=time.monotonic() - started,
            )
            if was_ok is not False:
                self.log.warning(
                    "source failing",
                    source=rt.name,
                    plugin=rt.plugin.name,
                    cadence=cadence,
                    reason=reason,
                    error=message,
                    exc_info=reason == "other",
                )
            return False
        result = answer if isinstance(answer, PollResult) else ctx.result(answer)
        samples = result.samples
        collected_at = self.clock()
        for d in result.disabled:
            if d.metric not in rt.status.disabled:
                self.log.warning(
                    "metric disabled", source=rt.name, metric=d.metric, reason=d.reason
                )
        for s in result.skipped:
            self.log.debug("object skipped", source=rt.name, object_id=s.object_id, why=s.reason)
        self.store.record_success(rt.name, cadence, result, duration=time.monotonic() - started)
        if result.poll_again_at is not None and self.on_poll_request is not None:
            self.on_poll_request(rt.name, cadence, result.poll_again_at)
        for sink in self.sinks:
            sink.write(rt.name, rt.plugin.name, samples, collected_at)
        if was_ok is False:
            self.log.info("source recovered", source=rt.name, cadence=cadence)
        elif was_ok is None:
            self.log.info("first poll done", source=rt.name, cadence=cadence, samples=len(samples))
        return True


def _describe(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, GraphError):
        return exc.reason, scrub(str(exc))
    if isinstance(exc, TimeoutError):
        return "timeout", f"the poll took longer than {timeout:g}s and was stopped"
    if isinstance(exc, PollError):
        return exc.reason, scrub(str(exc))
    return "other", scrub(f"{type(exc).__name__}: {exc}")


class PollScheduler:
    """Schedules every (source, cadence) poll on an :class:`AsyncIOScheduler`."""

    def __init__(
        self,
        poller: Poller,
        runtimes: Iterable[SourceRuntime],
        *,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.poller = poller
        self.runtimes = {rt.name: rt for rt in runtimes}
        self.rng = rng
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.log = get_logger("collectord.scheduling.scheduler")

    def start(self) -> None:
        self.poller.on_poll_request = self._request_poll
        now = datetime.now(UTC)
        for rt in self.runtimes.values():
            sched = rt.config.schedule
            for cadence in rt.config.cadences():
                interval = sched.interval(cadence)
                first = now + timedelta(seconds=sched.jitter * self.rng())
                self.scheduler.add_job(
                    self._run,
                    IntervalTrigger(seconds=interval, jitter=sched.jitter or None, timezone=UTC),
                    args=(rt.name, cadence),
                    id=job_id(rt.name, cadence),
                    name=f"poll {rt.name} ({cadence})",
                    next_run_time=first,
                    max_instances=1,
                    coalesce=True,
                    misfire_grace_time=max(int(interval / 2), 1),
                )
                rt.status.per_cadence[cadence].next_run = first
        self.scheduler.start()

    async def _run(self, source: str, cadence: Cadence, requested: bool = False) -> None:
        rt = self.runtimes[source]
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self.poller.poll(rt, cadence, requested=requested)
        except asyncio.CancelledError:
            if not self._stopping:
                raise
            # cancelled by shutdown() after its grace period: said once there, not as a
            # failed job by APScheduler
        finally:
            if task is not None:
                self._tasks.discard(task)
            job = self.scheduler.get_job(job_id(source, cadence))
            if job is not None:
                rt.status.per_cadence[cadence].next_run = job.next_run_time

    def _request_poll(self, source: str, cadence: Cadence, when: datetime) -> None:
        if not self.scheduler.running:
            return
        stamp = int(when.timestamp())
        self.scheduler.add_job(
            self._run,
            "date",
            run_date=max(when, datetime.now(UTC)),
            args=(source, cadence, True),
            id=f"{job_id(source, cadence)}:extra:{stamp}",
            replace_existing=True,
            misfire_grace_time=300,
        )

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop scheduling; give running polls ``grace`` seconds, then cancel them.

        The scheduler is paused first (no new runs) and shut down only after the wait:
        APScheduler's shutdown cancels the jobs still running at once.
        """
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
        running = {t for t in self._tasks if not t.done()}
        if running:
            self.log.info("waiting for running polls", polls=len(running), grace=grace)
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_WAIT)
                self.log.warning("cancelled polls at shutdown", polls=len(pending))
        if self.scheduler.running:
            # AsyncIOScheduler.shutdown only schedules itself on the loop: let it run
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
