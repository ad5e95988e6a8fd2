"""Running one poll: the plugin's answer recorded in the store and handed to the sinks.

:class:`Poller` builds the :class:`~collectord.plugin.api.PollContext`, bounds the poll with
a timeout, and hands the :class:`~collectord.plugin.api.PollResult` to the store (the only
writer of a source's status) and then to the sinks. A failing source changes only its own
status: errors are counted, logged once when the source starts failing and once when it
recovers. A poll refused because the source's rate-limit budget is blocked (a
:class:`~collectord.errors.ThrottledError`) is not a failure: it is counted as
``throttled``, logged once when the pause starts and once when polls run again, and the
source keeps its state.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from collectord.config.types import SourceConfig
from collectord.errors import GraphError, PollError, ThrottledError
from collectord.logs import get_logger, scrub
from collectord.model import Cadence, Sample
from collectord.plugin.api import PollContext, PollResult, SourceGraph, SourcePlugin
from collectord.store.store import SourceStatus, Store

#: The longest a single poll may take, whatever its interval.
MAX_POLL_TIMEOUT = 30 * 60.0


class Sink(Protocol):
    """Where samples go besides the store; ``write`` must return quickly (on the loop)."""

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
    #: Cadences whose polls are paused by a blocked rate-limit budget.
    paused: set[str] = field(default_factory=set)

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
            disabled_at=dict(rt.status.disabled_at),
            memory=copy.deepcopy(rt.status.memory),
            log=self.log.bind(source=rt.name, cadence=cadence),
            requested=requested,
            previous=self.store.cadence_samples(rt.name, cadence),
            intervals={c: rt.config.schedule.interval(c) for c in ("fast", "daily")},
        )
        was_ok = rt.status.per_cadence[cadence].ok
        started = time.monotonic()
        try:
            answer = await asyncio.wait_for(rt.plugin.collect(ctx), rt.poll_timeout(cadence))
        except asyncio.CancelledError:
            raise
        except ThrottledError as exc:
            self._paused(rt, cadence, exc)
            return False
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
        for key in result.reenabled:
            self.log.info("metric re-enabled", source=rt.name, metric=key)
        for s in result.skipped:
            self.log.debug("object skipped", source=rt.name, object_id=s.object_id, why=s.reason)
        self.store.record_success(rt.name, cadence, result, duration=time.monotonic() - started)
        if result.poll_again_at is not None and self.on_poll_request is not None:
            self.on_poll_request(rt.name, cadence, result.poll_again_at)
        for sink in self.sinks:
            sink.write(rt.name, rt.plugin.name, samples, collected_at)
        if cadence in rt.paused:
            rt.paused.discard(cadence)
            self.log.info("polls resumed after the rate limit", source=rt.name, cadence=cadence)
        if was_ok is False:
            self.log.info("source recovered", source=rt.name, cadence=cadence)
        elif was_ok is None:
            self.log.info("first poll done", source=rt.name, cadence=cadence, samples=len(samples))
        return True

    def _paused(self, rt: SourceRuntime, cadence: Cadence, exc: ThrottledError) -> None:
        """Count a poll stopped by Meta's rate limit; one log line per pause."""
        message = scrub(str(exc))
        self.store.record_skip(rt.name, cadence, reason=exc.reason, message=message)
        if cadence not in rt.paused:
            rt.paused.add(cadence)
            self.log.info(
                "polls paused by the rate limit",
                source=rt.name,
                cadence=cadence,
                budget=exc.budget,
                code=exc.code,
                seconds=None if exc.retry_after is None else round(exc.retry_after),
            )


def _describe(exc: BaseException, timeout: float) -> tuple[str, str]:
    if isinstance(exc, GraphError):
        return exc.reason, scrub(str(exc))
    if isinstance(exc, TimeoutError):
        return "timeout", f"the poll took longer than {timeout:g}s and was stopped"
    if isinstance(exc, PollError):
        return exc.reason, scrub(str(exc))
    return "other", scrub(f"{type(exc).__name__}: {exc}")
