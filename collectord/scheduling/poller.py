"""Running one poll: the plugin's answer recorded in the store and handed to the sinks.

:class:`Poller` builds the :class:`~collectord.plugin.api.PollContext`, bounds the poll with
a timeout, and hands the :class:`~collectord.plugin.api.PollResult` to the store (the only
writer of a source's status) and then to the sinks. A failing source changes only its own
status: errors are counted, logged once when the source starts failing and once when it
recovers. A poll refused because the source's rate-limit budget is blocked (a
:class:`~collectord.errors.ThrottledError`) is not a failure: it is counted as
``throttled``, logged once when the pause starts and once when polls run again; the
source's last outcome stays, and its state is ``throttled`` until a poll runs again.

A poll that fails because of the token (it expired or was revoked, the user changed their
password, a permission is missing on the source's own object: the Graph layer's
``token_kind``) puts the source in ``needs_reauth``: the log says once what happened and
how to fix it, and from then on every poll of the source returns at once without calling
Meta (its last values stay exposed, ``collectord_source_up`` is 0) until a reload brings
it another token (:mod:`collectord.reload`).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from collectord.config.types import SourceConfig
from collectord.errors import (
    AuthKind,
    GraphError,
    Outcome,
    PollError,
    ThrottledError,
    counting_problems,
    reauth_advice,
    truncate,
)
from collectord.logs import get_logger, scrub
from collectord.model import Cadence, Sample
from collectord.plugin.api import PollContext, PollResult, SourceGraph, SourcePlugin
from collectord.plugin.kit import MAX_SERIES_PER_METRIC, cap_series
from collectord.store.store import SourceStatus, Store

T = TypeVar("T")

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
            if rt.status.reauth is not None:
                # waiting for a new token: asking Meta again with this one fails again
                self.log.debug("poll skipped: needs a new token", source=rt.name, cadence=cadence)
                return False
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
            with counting_problems() as problems:
                answer = await asyncio.wait_for(
                    _contained(rt.plugin.collect(ctx)), rt.poll_timeout(cadence)
                )
        except asyncio.CancelledError:
            raise
        except ThrottledError as exc:
            self._paused(rt, cadence, exc)
            return False
        except Exception as exc:  # one failing source must never disturb another
            reason, message = _describe(exc, rt.poll_timeout(cadence), rt)
            self.store.record_failure(
                rt.name,
                cadence,
                reason=reason,
                message=message,
                duration=time.monotonic() - started,
            )
            kind = exc.token_kind if isinstance(exc, GraphError) else None
            if kind is not None:
                self._needs_reauth(rt, cadence, kind, message)
            elif was_ok is not False:
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
        result = self._capped(rt, result, problems)
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
        if problems:
            self.store.count_errors(rt.name, problems)
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

    def record_webhook(
        self,
        runtimes: Iterable[SourceRuntime],
        field: str,
        object_id: str,
        value: Mapping[str, Any],
    ) -> int:
        """Hand one change of a signed webhook delivery to each source whose plugin takes
        it (:meth:`~collectord.plugin.api.SourcePlugin.webhook_samples`), and record its
        samples as a poll would: in the store, where they replace the series they carry and
        leave the others, and in the sinks. Returns how many sources took the change."""
        taken = 0
        for rt in list(runtimes):
            try:
                samples = rt.plugin.webhook_samples(
                    field, object_id, value, options=rt.config.options, catalogue=rt.config.specs
                )
            except Exception:  # a plugin's fault must not fail the delivery for the others
                self.log.warning(
                    "webhook change failed", source=rt.name, field=field, exc_info=True
                )
                continue
            if samples is None:
                continue
            taken += 1
            samples, _ = cap_series(samples)
            for cadence in dict.fromkeys(s.cadence for s in samples):
                mine = [s for s in samples if s.cadence == cadence]
                self.store.add_samples(rt.name, cadence, mine)
            if samples:
                for sink in self.sinks:
                    sink.write(rt.name, rt.plugin.name, samples, self.clock())
                self.log.info("webhook recorded", source=rt.name, field=field, samples=len(samples))
        return taken

    def _capped(self, rt: SourceRuntime, result: PollResult, problems: Counter[str]) -> PollResult:
        """``result`` with at most :data:`~collectord.plugin.kit.MAX_SERIES_PER_METRIC`
        series per metric and object; what is dropped is logged once and counted as a
        ``bad_response``."""
        kept, dropped = cap_series(result.samples)
        if not dropped:
            return result
        problems["bad_response"] += len(dropped)
        self.log.warning(
            "series over the cap dropped",
            source=rt.name,
            limit=MAX_SERIES_PER_METRIC,
            metrics=sorted({metric for metric, _ in dropped})[:5],
            dropped=sum(dropped.values()),
        )
        return dataclasses.replace(result, samples=tuple(kept))

    def _needs_reauth(
        self, rt: SourceRuntime, cadence: Cadence, kind: AuthKind, message: str
    ) -> None:
        """Stop polling ``rt`` until its token changes; say once what to do."""
        token = rt.status.token
        expiry = token.expires_at if token is not None else None
        on = None
        if kind is AuthKind.EXPIRED and expiry:
            on = datetime.fromtimestamp(expiry, UTC).strftime("%Y-%m-%d %H:%M UTC")
        advice = reauth_advice(kind, on)
        if self.store.set_reauth(rt.name, kind.value, advice):
            self.log.error(
                "source needs a new token",
                source=rt.name,
                plugin=rt.plugin.name,
                cadence=cadence,
                problem=kind.value,
                what_to_do=advice,
                error=message,
            )

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


async def _contained(coro: Coroutine[Any, Any, T]) -> T:
    """Await a plugin's ``collect``, turning a ``SystemExit`` or ``GeneratorExit`` it raises
    into a failed poll: raised in a task, they would end the event loop and the daemon."""
    try:
        return await coro
    except (SystemExit, GeneratorExit) as exc:
        if isinstance(exc, GeneratorExit) and _closed_from_outside(exc):
            raise  # this coroutine is being closed: let it close
        detail = f"{type(exc).__name__}({exc})" if str(exc) else type(exc).__name__
        raise PollError(f"the plugin raised {detail}", reason="other") from None


def _closed_from_outside(exc: GeneratorExit) -> bool:
    """Whether ``exc`` was thrown in by ``close()`` (its traceback ends in the awaiting
    frame) rather than raised by the plugin's own code (deeper frames)."""
    tb = exc.__traceback__
    return tb is None or tb.tb_next is None


def _describe(
    exc: BaseException, timeout: float, rt: SourceRuntime | None = None
) -> tuple[str, str]:
    if isinstance(exc, GraphError) and exc.outcome is Outcome.OBJECT_GONE:
        return "not_found", _not_found(exc, rt)
    if isinstance(exc, GraphError):
        return exc.reason, scrub(str(exc))
    if isinstance(exc, TimeoutError):
        return "timeout", f"the poll took longer than {timeout:g}s and was stopped"
    if isinstance(exc, PollError):
        return exc.reason, scrub(str(exc))
    return "other", truncate(scrub(f"{type(exc).__name__}: {exc}"))


def _not_found(exc: GraphError, rt: SourceRuntime | None) -> str:
    """The message of a source whose own object Meta does not find (code 100/33 escaping
    the plugin: per-object answers are skipped by the plugins): the ids it is configured
    with, and Meta's words."""
    ids = []
    if rt is not None:
        options = rt.config.options
        ids = [
            f"{o.name}={options[o.name]}"
            for o in rt.plugin.options
            if o.type == "id" and options.get(o.name)
        ]
    named = f" ({', '.join(ids)})" if ids else ""
    return scrub(
        f"the source's object{named} does not exist or cannot be read with its token: {exc}"
    )
