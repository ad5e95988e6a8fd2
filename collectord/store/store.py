"""The newest samples of every source, and what collectord knows about each source's polls.

Writers (the scheduler) call :meth:`Store.record_success` / :meth:`Store.record_failure`;
readers (the exporter at scrape time, the status page) take :meth:`Store.snapshot`, an
immutable view that needs no lock and does no I/O. All calls happen on the event loop
thread; the exporter's scrape runs there too (prometheus-client is called from the aiohttp
handler), so plain attribute swaps are enough.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collectord.model import Cadence, Sample
from collectord.plugin.api import PollResult

#: Upper bounds of the poll-duration histogram, in seconds.
DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


@dataclass
class DurationHistogram:
    """Cumulative poll-duration observations for one (source, cadence)."""

    counts: list[int] = field(default_factory=lambda: [0] * len(DURATION_BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(DURATION_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as prometheus-client wants."""
        out = [
            (repr(float(b)), float(c)) for b, c in zip(DURATION_BUCKETS, self.counts, strict=True)
        ]
        out.append(("+Inf", float(self.total)))
        return out


@dataclass
class CadenceStatus:
    ok: bool | None = None  # None: not polled yet
    last_success: float | None = None  # unix time
    last_error: str | None = None
    last_error_reason: str | None = None
    next_run: datetime | None = None
    newest_end_time: float | None = None  # unix time
    durations: DurationHistogram = field(default_factory=DurationHistogram)


@dataclass
class SourceStatus:
    """Everything known about one source. Implements :class:`collectord.plugin.api.SourceState`."""

    name: str
    plugin: str
    cadences: tuple[Cadence, ...]
    per_cadence: dict[str, CadenceStatus] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    #: Skipped objects by the plugin's reason (``not_enough_viewers``, ``vanished``, ...),
    #: for the status page; ``/metrics`` counts them all as ``skipped_object``.
    skipped: Counter[str] = field(default_factory=Counter)
    disabled: dict[str, str] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    token_expiry: float | None = None

    def __post_init__(self) -> None:
        for c in self.cadences:
            self.per_cadence.setdefault(c, CadenceStatus())

    # -- derived --------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        """True when the last poll of every cadence succeeded."""
        return all(s.ok for s in self.per_cadence.values())

    @property
    def first_polls_done(self) -> bool:
        return all(s.ok is not None for s in self.per_cadence.values())

    @property
    def state(self) -> str:
        """``pending``, ``ok`` or ``failing``, for the status page and logs."""
        if not any(s.ok is not None for s in self.per_cadence.values()):
            return "pending"
        return "ok" if all(s.ok is not False for s in self.per_cadence.values()) else "failing"

    @property
    def last_success(self) -> float | None:
        times = [s.last_success for s in self.per_cadence.values() if s.last_success]
        return max(times) if times else None

    @property
    def last_error(self) -> str | None:
        errs = [s.last_error for s in self.per_cadence.values() if s.ok is False and s.last_error]
        return errs[0] if errs else None


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the store at one instant."""

    samples: dict[str, tuple[Sample, ...]]  # source name -> all its samples
    sources: tuple[SourceStatus, ...]


def newest_per_series(samples: Iterable[Sample]) -> tuple[Sample, ...]:
    """One sample per series (metric and labels): the one with the newest ``end_time``."""
    best: dict[tuple[str, tuple[tuple[str, str], ...]], Sample] = {}
    for s in samples:
        key = (s.metric, s.labels)
        old = best.get(key)
        if old is None or _end(s) >= _end(old):
            best[key] = s
    return tuple(best.values())


def _end(sample: Sample) -> float:
    return sample.end_time.timestamp() if sample.end_time is not None else float("-inf")


class Store:
    def __init__(self) -> None:
        self._sources: dict[str, SourceStatus] = {}
        self._samples: dict[tuple[str, str], tuple[Sample, ...]] = {}

    def register(self, name: str, plugin: str, cadences: Iterable[Cadence]) -> SourceStatus:
        status = SourceStatus(name=name, plugin=plugin, cadences=tuple(cadences))
        self._sources[name] = status
        return status

    def status(self, name: str) -> SourceStatus:
        return self._sources[name]

    @property
    def sources(self) -> tuple[SourceStatus, ...]:
        return tuple(self._sources.values())

    def record_success(
        self,
        name: str,
        cadence: Cadence,
        result: PollResult | Sequence[Sample],
        *,
        duration: float,
        at: float | None = None,
    ) -> None:
        """Record a poll's result: replace the source's samples of ``cadence`` (series
        missing now disappear) or, for a ``partial`` result, only the series it carries;
        count its skipped objects and newly disabled metrics; keep its memory.

        When a poll returned several values of one series (Meta's last two days), the one
        with the newest ``end_time`` is kept.
        """
        if not isinstance(result, PollResult):
            result = PollResult(samples=tuple(result))
        samples = result.samples
        status = self._sources[name]
        for skip in result.skipped:
            status.errors["skipped_object"] += 1
            status.skipped[skip.reason] += 1
        for d in result.disabled:
            if d.metric not in status.disabled:
                status.disabled[d.metric] = d.reason
                status.errors["invalid_metric"] += 1
        if result.memory is not None:
            status.memory = dict(result.memory)
        cs = status.per_cadence[cadence]
        cs.ok = True
        cs.last_success = time.time() if at is None else at
        cs.last_error = None
        cs.last_error_reason = None
        cs.durations.observe(duration)
        end_times = [s.end_time.timestamp() for s in samples if s.end_time is not None]
        if end_times:
            cs.newest_end_time = max(end_times)
        if result.partial:
            samples = (*self._samples.get((name, cadence), ()), *samples)
        self._samples[(name, cadence)] = newest_per_series(samples)

    def record_failure(
        self, name: str, cadence: Cadence, *, reason: str, message: str, duration: float
    ) -> None:
        """Count the failure; the last good samples stay exposed."""
        status = self._sources[name]
        cs = status.per_cadence[cadence]
        cs.ok = False
        cs.last_error = message
        cs.last_error_reason = reason
        cs.durations.observe(duration)
        status.errors[reason] += 1

    def samples(self, name: str) -> tuple[Sample, ...]:
        out: list[Sample] = []
        for cadence in self._sources[name].cadences:
            out.extend(self._samples.get((name, cadence), ()))
        return tuple(out)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            samples={name: self.samples(name) for name in self._sources},
            sources=self.sources,
        )

    @property
    def ready(self) -> bool:
        """True once every source finished its first poll of every cadence."""
        return all(s.first_polls_done for s in self._sources.values())
