"""Polling on a schedule: one APScheduler job per (source, cadence).

Each job runs once right after start-up, spread by the jitter (or, when the state file
says its last poll succeeded less than an interval ago, an interval after that poll), then
on its interval (with the same jitter on every run). A job never overlaps itself: a run that comes due while the
previous poll is still going (one the rate-limit governor is pacing) returns at once with a
debug line, rather than piling up behind it (APScheduler would warn "maximum number of
running instances reached" on every such run); extra runs requested by plugins share the
poll's lock. Missed runs coalesce into one, and each poll
is bounded by a timeout (see :mod:`collectord.scheduling.poller`). The next run of each job
is recorded in the store for the status page.

Backoff: a job whose polls keep failing waits longer before the next one, its interval
times 2^(failures-1), at most :data:`BACKOFF_FACTOR` times the interval and never more than
:data:`BACKOFF_CAP` (unless the interval itself is longer); the first success brings the
normal interval back. A poll the rate-limit governor refused is not a failure, and neither is
one that did not run because its source waits for a new token (``needs_reauth``, see
:mod:`collectord.scheduling.poller`): its jobs stay, and cost nothing until then.

Sources come and go while running (a config reload): :meth:`PollScheduler.add_source` and
:meth:`PollScheduler.remove_source`. Each job runs as its own task, so a source that hangs,
raises or answers slowly never delays another's runs.

The wall clock can jump (NTP stepping it, a VM resumed): :meth:`PollScheduler.watch_clock`
compares it with the monotonic clock and moves every pending run by the jump, so no run is
lost for hours behind a clock set back, and no burst of runs follows a clock set forward.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from collectord.logs import get_logger
from collectord.model import Cadence
from collectord.scheduling.poller import (
    MAX_POLL_TIMEOUT,
    Poller,
    Sink,
    SourceRuntime,
    job_id,
)

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FACTOR",
    "CANCEL_WAIT",
    "MAX_POLL_TIMEOUT",
    "PollScheduler",
    "Poller",
    "Sink",
    "SourceRuntime",
    "backoff_delay",
    "job_id",
]

#: Seconds a shutdown waits for the polls it cancelled (after the grace period).
CANCEL_WAIT = 1.5
#: A failing job waits at most this many intervals before its next poll ...
BACKOFF_FACTOR = 8
#: ... and at most this many seconds (6 h), unless its own interval is longer.
BACKOFF_CAP = 6 * 3600.0
#: Seconds between two looks at the wall clock, and the drift that counts as a jump.
CLOCK_CHECK_EVERY = 10.0
CLOCK_JUMP = 5.0


def backoff_delay(interval: float, failures: int) -> float:
    """Seconds until the next poll of a job after ``failures`` failed polls in a row:
    ``interval`` times 2^(failures-1), at most ``BACKOFF_FACTOR`` times ``interval`` and at most
    ``BACKOFF_CAP`` (an interval longer than the cap is kept as it is)."""
    if failures <= 1:
        return interval
    factor = min(2 ** min(failures - 1, 30), BACKOFF_FACTOR)
    return max(interval, min(interval * factor, BACKOFF_CAP))


class PollScheduler:
    """Schedules every (source, cadence) poll on an :class:`AsyncIOScheduler`."""

    def __init__(
        self,
        poller: Poller,
        runtimes: Iterable[SourceRuntime],
        *,
        rng: Callable[[], float] = random.random,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.poller = poller
        self.runtimes = {rt.name: rt for rt in runtimes}
        self.rng = rng
        self.wall = wall
        self.monotonic = monotonic
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        #: Running poll tasks, with the source each one polls.
        self._tasks: dict[asyncio.Task[Any], str] = {}
        #: Tasks cancelled because their source was removed or changed (ended quietly).
        self._dropped: set[asyncio.Task[Any]] = set()
        #: Failed polls in a row, per (source, cadence).
        self.failures: dict[tuple[str, str], int] = {}
        self._stopping = False
        self._clock_task: asyncio.Task[None] | None = None
        self._clock_mark: tuple[float, float] | None = None
        self.log = get_logger("collectord.scheduling.scheduler")

    def start(self) -> None:
        self.poller.on_poll_request = self._request_poll
        now = datetime.now(UTC)
        for rt in self.runtimes.values():
            sched = rt.config.schedule
            for cadence in rt.config.cadences():
                interval = sched.interval(cadence)
                # Right away (spread by the jitter), unless the last poll (restored from
                # the state file) succeeded less than an interval ago: then an interval
                # after it, so a daily job whose data is fresh is not fetched again.
                first = now
                restored = rt.status.per_cadence[cadence]
                if restored.ok and restored.last_success is not None:
                    first = max(now, datetime.fromtimestamp(restored.last_success + interval, UTC))
                self._add_job(rt, cadence, first)
        self.scheduler.start()

    def _add_job(self, rt: SourceRuntime, cadence: Cadence, first: datetime) -> None:
        """The interval job of ``rt`` at ``cadence``, first run at ``first`` plus jitter
        (replacing the job of that id, for a source a reload changed)."""
        sched = rt.config.schedule
        interval = sched.interval(cadence)
        first += timedelta(seconds=sched.jitter * self.rng())
        self.scheduler.add_job(
            self._run,
            IntervalTrigger(seconds=interval, jitter=sched.jitter or None, timezone=UTC),
            args=(rt.name, cadence),
            id=job_id(rt.name, cadence),
            name=f"poll {rt.name} ({cadence})",
            next_run_time=first,
            max_instances=2,  # the second returns at once (see _run)
            coalesce=True,
            misfire_grace_time=max(int(interval / 2), 1),
            replace_existing=True,
        )
        self.poller.store.set_interval(rt.name, cadence, interval)
        self.poller.store.set_next_run(rt.name, cadence, first)

    async def _run(self, source: str, cadence: Cadence, requested: bool = False) -> None:
        rt = self.runtimes.get(source)
        if rt is None:  # removed by a reload while this run was due
            return
        if rt.lock(cadence).locked():
            self.log.debug("poll still running, run skipped", source=source, cadence=cadence)
            return
        task = asyncio.current_task()
        if task is not None:
            self._tasks[task] = source
        histogram = rt.status.per_cadence[cadence].durations
        recorded = histogram.total
        delivered: bool | None = None
        try:
            delivered = await self.poller.poll(rt, cadence, requested=requested)
        except asyncio.CancelledError:
            if not self._stopping and task not in self._dropped:
                raise
            # cancelled by shutdown() after its grace period (said once there, not as a
            # failed job by APScheduler), or its source was removed or changed by a reload
        finally:
            if task is not None:
                self._tasks.pop(task, None)
                self._dropped.discard(task)
        if delivered is None or self.runtimes.get(source) is not rt:
            return
        # a poll refused by the governor records no duration: it is no failure
        failed = not delivered and histogram.total > recorded
        self._after_poll(rt, cadence, delivered=delivered, failed=failed)

    def _after_poll(
        self, rt: SourceRuntime, cadence: Cadence, *, delivered: bool, failed: bool
    ) -> None:
        """Back off after a failed poll, forget the failures after a good one, and record
        the job's next run for the status page."""
        key = (rt.name, cadence)
        job = self.scheduler.get_job(job_id(rt.name, cadence))
        if delivered:
            if self.failures.pop(key, 0) > 1 and job is not None:
                self.log.info("back to the normal interval", source=rt.name, cadence=cadence)
        elif failed:
            failures = self.failures[key] = self.failures.get(key, 0) + 1
            interval = rt.config.schedule.interval(cadence)
            delay = backoff_delay(interval, failures)
            if delay > interval and job is not None and not self._stopping:
                jitter = rt.config.schedule.jitter * self.rng()
                when = datetime.now(UTC) + timedelta(seconds=delay + jitter)
                job.modify(next_run_time=when)
                self.log.info(
                    "source backing off",
                    source=rt.name,
                    cadence=cadence,
                    failures=failures,
                    next_poll_in=round(delay + jitter),
                )
        job = self.scheduler.get_job(job_id(rt.name, cadence))
        if job is not None:
            self.poller.store.set_next_run(rt.name, cadence, job.next_run_time)

    # -- sources added and removed by a reload -------------------------------------------
    def add_source(self, rt: SourceRuntime) -> None:
        """Schedule a source a reload added or changed: first polls within the jitter."""
        self.runtimes[rt.name] = rt
        now = datetime.now(UTC)
        for cadence in rt.config.cadences():
            self._add_job(rt, cadence, now)

    def remove_source(self, name: str) -> None:
        """Stop polling ``name``: its jobs (extra runs too) go, a poll in flight is
        cancelled quietly, its backoff is forgotten."""
        self.runtimes.pop(name, None)
        prefix = f"{name}:"
        for job in self.scheduler.get_jobs():
            if job.id.startswith(prefix):
                job.remove()
        for task, source in list(self._tasks.items()):
            if source == name and not task.done():
                self._dropped.add(task)
                task.cancel()
        for key in [k for k in self.failures if k[0] == name]:
            del self.failures[key]

    # -- the wall clock ------------------------------------------------------------------
    def watch_clock(self, every: float = CLOCK_CHECK_EVERY) -> None:
        """Look at the wall clock every ``every`` seconds (until shutdown) and follow its
        jumps with :meth:`check_clock`."""
        self._clock_mark = (self.wall(), self.monotonic())

        async def watch() -> None:
            while True:
                await asyncio.sleep(every)
                self.check_clock()

        self._clock_task = asyncio.create_task(watch(), name="clock watch")

    def check_clock(self) -> float:
        """Move every pending run by the wall clock's jump since the last look (none when
        it drifted less than :data:`CLOCK_JUMP`); returns the jump in seconds.

        A moved run is kept between now and the longest wait its job can have (its
        interval, or its backoff): APScheduler may have re-planned a job after a jump
        before this look, and that run must not be pushed out by the jump once more.
        """
        wall, mono = self.wall(), self.monotonic()
        mark, self._clock_mark = self._clock_mark, (wall, mono)
        if mark is None:
            return 0.0
        jump = (wall - mark[0]) - (mono - mark[1])
        if abs(jump) < CLOCK_JUMP:
            return 0.0
        self.log.warning("wall clock jumped, runs moved with it", seconds=round(jump))
        now = datetime.fromtimestamp(wall, UTC)
        for job in self.scheduler.get_jobs():
            if job.next_run_time is None:
                continue
            when = max(job.next_run_time + timedelta(seconds=jump), now)
            source, _, cadence = job.id.partition(":")
            rt = self.runtimes.get(source)
            if rt is not None and cadence in rt.config.cadences():
                sched = rt.config.schedule
                failures = self.failures.get((source, cadence), 1)
                longest = backoff_delay(sched.interval(cadence), failures) + sched.jitter
                when = min(when, now + timedelta(seconds=longest))
                job.modify(next_run_time=when)
                self.poller.store.set_next_run(source, cadence, when)  # type: ignore[arg-type]
            else:  # an extra run a plugin asked for
                job.modify(next_run_time=when)
        return jump

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

    @contextlib.asynccontextmanager
    async def running(self, grace: Callable[[], float]) -> AsyncIterator[PollScheduler]:
        """The schedule, running while entered (the wall clock watched); leaving gives
        running polls ``grace()`` seconds."""
        self.start()
        self.watch_clock()
        try:
            yield self
        finally:
            await self.shutdown(grace())

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop scheduling; give running polls ``grace`` seconds, then cancel them and wait
        at most ``CANCEL_WAIT`` for them.

        The scheduler is paused first (no new runs) and shut down only after the wait:
        APScheduler's shutdown cancels the jobs still running at once.
        """
        self._stopping = True
        clock, self._clock_task = self._clock_task, None
        if clock is not None:
            clock.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clock
        if self.scheduler.running:
            self.scheduler.pause()
        running = {t for t in self._tasks if not t.done()}
        if running:
            self.log.info("waiting for running polls", polls=len(running), grace=round(grace, 1))
            _done, pending = await asyncio.wait(running, timeout=max(grace, 0.0))
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CANCEL_WAIT)
                self.log.warning("cancelled polls at shutdown", polls=len(pending))
        if self.scheduler.running:
            # AsyncIOScheduler.shutdown only schedules itself on the loop: let it run
            self.scheduler.shutdown(wait=False)
            await asyncio.sleep(0)
