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
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable
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
    "CANCEL_WAIT",
    "MAX_POLL_TIMEOUT",
    "PollScheduler",
    "Poller",
    "Sink",
    "SourceRuntime",
    "job_id",
]

#: Seconds a shutdown waits for the polls it cancelled (after the grace period).
CANCEL_WAIT = 2.0


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
                # Right away (spread by the jitter), unless the last poll (restored from
                # the state file) succeeded less than an interval ago: then an interval
                # after it, so a daily job whose data is fresh is not fetched again.
                first = now
                restored = rt.status.per_cadence[cadence]
                if restored.ok and restored.last_success is not None:
                    first = max(now, datetime.fromtimestamp(restored.last_success + interval, UTC))
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
                )
                self.poller.store.set_next_run(rt.name, cadence, first)
        self.scheduler.start()

    async def _run(self, source: str, cadence: Cadence, requested: bool = False) -> None:
        rt = self.runtimes[source]
        if rt.lock(cadence).locked():
            self.log.debug("poll still running, run skipped", source=source, cadence=cadence)
            return
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
                self.poller.store.set_next_run(source, cadence, job.next_run_time)

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
