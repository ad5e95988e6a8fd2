"""The newest samples of every source, and what collectord knows about each source's polls.

The store is the only writer of :class:`~collectord.store.status.SourceStatus`: the poller
calls :meth:`Store.record_success` / :meth:`Store.record_failure`, the scheduler
:meth:`Store.set_next_run`, the token watcher :meth:`Store.set_token`. Readers (the
exporter, the status page) take :meth:`Store.snapshot`: a frozen copy (tuples, frozen
dataclasses, read-only mappings) sharing nothing mutable with the store, so it can be read
from another thread. Every change bumps :attr:`Store.version`; a snapshot is built only when
the version moved, so scrapes in between reuse it. All writes happen on the event loop.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from collectord.model import Cadence, Sample, SeriesKey, series_key
from collectord.plugin.api import PollResult
from collectord.store.saved import SavedCadence, SavedSource
from collectord.store.status import (
    DURATION_BUCKETS,
    CadenceStatus,
    CadenceView,
    DurationCounts,
    DurationHistogram,
    Reauth,
    SourceStatus,
    SourceView,
    TokenView,
)

__all__ = [
    "DURATION_BUCKETS",
    "CadenceStatus",
    "CadenceView",
    "DurationCounts",
    "DurationHistogram",
    "Reauth",
    "Snapshot",
    "SourceStatus",
    "SourceView",
    "Store",
    "TokenView",
    "newest_per_series",
]


@dataclass(frozen=True)
class Snapshot:
    """An immutable view of the store at one instant (``version`` of the store)."""

    samples: Mapping[str, tuple[Sample, ...]]  # source name -> all its samples
    sources: tuple[SourceView, ...]
    version: int = 0


def _end(sample: Sample) -> float:
    return sample.end_time.timestamp() if sample.end_time is not None else float("-inf")


def _keep_newest(best: dict[SeriesKey, Sample], samples: Iterable[Sample]) -> None:
    """Merge ``samples`` into ``best``: per series (:func:`~collectord.model.series_key`)
    the sample with the newest ``end_time``; a tie goes to the later sample."""
    for s in samples:
        key = series_key(s.metric, s.labels)
        old = best.get(key)
        if old is None or old.end_time is None or (s.end_time is not None and _end(s) >= _end(old)):
            best[key] = s


def newest_per_series(samples: Iterable[Sample]) -> tuple[Sample, ...]:
    """One sample per series (metric and labels as a mapping): the newest ``end_time``."""
    best: dict[SeriesKey, Sample] = {}
    _keep_newest(best, samples)
    return tuple(best.values())


class Store:
    """Samples per (source, cadence) and each source's status; see the module doc."""

    def __init__(self) -> None:
        self._sources: dict[str, SourceStatus] = {}
        self._series: dict[tuple[str, str], dict[SeriesKey, Sample]] = {}
        #: The samples of each (source, cadence) as a tuple, rebuilt only when they changed.
        self._tuples: dict[tuple[str, str], tuple[Sample, ...]] = {}
        self._version = 0
        self._snapshot: Snapshot | None = None
        #: Called after every recorded success (the state file's saver listens here).
        self.on_success: Callable[[], None] | None = None

    @property
    def version(self) -> int:
        """Bumped by every change; equal versions mean equal snapshots."""
        return self._version

    def _changed(self) -> None:
        self._version += 1

    def register(self, name: str, plugin: str, cadences: Iterable[Cadence]) -> SourceStatus:
        status = SourceStatus(name=name, plugin=plugin, cadences=tuple(cadences))
        self._sources[name] = status
        self._changed()
        return status

    def remove(self, name: str) -> None:
        """Forget source ``name`` (a reload removed it): its samples and its status."""
        status = self._sources.pop(name, None)
        if status is None:
            return
        for cadence in status.cadences:
            self._series.pop((name, cadence), None)
            self._tuples.pop((name, cadence), None)
        self._changed()

    def status(self, name: str) -> SourceStatus:
        """The live status of ``name``: read it, never write it (use the store's methods)."""
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
        count its skipped objects and newly disabled metrics (each once: a re-probe Meta
        still rejects only renews the date), forget the re-enabled ones; keep its memory.

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
        for key in result.reenabled:  # re-probed and answered, or replaced
            status.disabled.pop(key, None)
            status.disabled_at.pop(key, None)
        for d in result.disabled:
            if d.metric not in status.disabled:
                status.disabled[d.metric] = d.reason
                status.errors["invalid_metric"] += 1
            if d.at is not None:  # a re-probe Meta still rejects: another day
                status.disabled_at[d.metric] = d.at
        if result.memory is not None:
            status.memory = dict(result.memory)
        cs = status.per_cadence[cadence]
        cs.ok = True
        cs.throttled = False
        cs.last_success = time.time() if at is None else at
        cs.last_error = None
        cs.last_error_reason = None
        cs.durations.observe(duration)
        end_times = {s.end_time for s in samples if s.end_time is not None}  # a few days
        if end_times:
            cs.newest_end_time = max(t.timestamp() for t in end_times)
        self._put((name, cadence), samples, keep=result.partial)

    def add_samples(self, name: str, cadence: Cadence, samples: Sequence[Sample]) -> None:
        """Add values that arrived without a poll (a signed webhook delivery) to the
        source's series of ``cadence``: they replace the series they carry, the others stay,
        and the source's poll status is left as it was."""
        self._put((name, cadence), samples, keep=True)

    def _put(self, key: tuple[str, Cadence], samples: Sequence[Sample], *, keep: bool) -> None:
        """``samples`` become the series of ``key`` (added to those it had, with ``keep``)."""
        series = self._series.get(key, {}) if keep else {}
        _keep_newest(series, samples)
        self._series[key] = series
        self._tuples.pop(key, None)
        self._changed()
        if self.on_success is not None:
            self.on_success()

    def record_failure(
        self, name: str, cadence: Cadence, *, reason: str, message: str, duration: float
    ) -> None:
        """Count the failure; the last good samples stay exposed."""
        status = self._sources[name]
        cs = status.per_cadence[cadence]
        cs.ok = False
        cs.throttled = False
        cs.last_error = message
        cs.last_error_reason = reason
        cs.durations.observe(duration)
        status.errors[reason] += 1
        self._changed()

    def count_errors(self, name: str, counts: Mapping[str, int]) -> None:
        """Count problems of a poll that still delivered (series over the cap, a paging
        loop, a value out of range: ``bad_response``) under their reasons."""
        status = self._sources[name]
        for reason, count in counts.items():
            status.errors[reason] += count
        self._changed()

    def record_skip(self, name: str, cadence: Cadence, *, reason: str, message: str) -> None:
        """Count a poll that did not run (its rate-limit budget is blocked): counted under
        ``reason``, shown as the last error; the cadence counts as ``throttled`` until a
        poll of it runs again, its last outcome is left as it was."""
        status = self._sources[name]
        cs = status.per_cadence[cadence]
        cs.throttled = True
        cs.last_error = message
        cs.last_error_reason = reason
        status.errors[reason] += 1
        self._changed()

    def set_next_run(self, name: str, cadence: Cadence, when: datetime | None) -> None:
        """When the scheduler will poll ``name`` at ``cadence`` next (for the status page)."""
        cs = self._sources[name].per_cadence[cadence]
        if cs.next_run != when:
            cs.next_run = when
            self._changed()

    def set_interval(self, name: str, cadence: Cadence, seconds: float) -> None:
        """The seconds between two polls of ``name`` at ``cadence`` (the scheduler's), by
        which its data is judged stale."""
        cs = self._sources[name].per_cadence[cadence]
        if cs.interval != seconds:
            cs.interval = seconds
            self._changed()

    def set_reauth(self, name: str, kind: str, advice: str, *, at: float | None = None) -> bool:
        """Mark ``name`` as waiting for a new token (``kind``: an
        :class:`~collectord.errors.AuthKind` value); its samples stay. False when it already
        was (the first reason is kept)."""
        status = self._sources[name]
        if status.reauth is not None:
            return False
        status.reauth = Reauth(kind, advice, time.time() if at is None else at)
        self._changed()
        return True

    def clear_reauth(self, name: str) -> bool:
        """``name`` has a new token: polls may run again. False when it was not waiting."""
        status = self._sources.get(name)
        if status is None or status.reauth is None:
            return False
        status.reauth = None
        self._changed()
        return True

    def set_token(self, name: str, token: TokenView) -> None:
        """What the token watcher learnt about the source's token (a source removed
        meanwhile is ignored)."""
        status = self._sources.get(name)
        if status is not None and status.token != token:
            status.token = token
            self._changed()

    def cadence_samples(self, name: str, cadence: Cadence) -> tuple[Sample, ...]:
        """The samples ``name`` holds for ``cadence`` (what its last poll left)."""
        return self._cadence_samples((name, cadence))

    def _cadence_samples(self, key: tuple[str, str]) -> tuple[Sample, ...]:
        found = self._tuples.get(key)
        if found is None:
            found = self._tuples[key] = tuple(self._series.get(key, {}).values())
        return found

    def samples(self, name: str) -> tuple[Sample, ...]:
        """Every sample ``name`` exposes now, cadence after cadence."""
        parts = [self._cadence_samples((name, c)) for c in self._sources[name].cadences]
        if len(parts) == 1:
            return parts[0]
        return tuple(sample for part in parts for sample in part)

    def snapshot(self) -> Snapshot:
        """The frozen copy of the current version (built once per version)."""
        snap = self._snapshot
        if snap is None or snap.version != self._version:
            snap = self._snapshot = Snapshot(
                samples=MappingProxyType({name: self.samples(name) for name in self._sources}),
                sources=tuple(s.frozen() for s in self._sources.values()),
                version=self._version,
            )
        return snap

    def capture(self) -> tuple[SavedSource, ...]:
        """What the state file keeps of every source, now (on the loop; cheap but for a
        copy of each plugin's memory)."""
        out = []
        for name, status in self._sources.items():
            cadences = {
                c: SavedCadence(
                    ok=cs.ok,
                    last_success=cs.last_success,
                    last_error=cs.last_error,
                    last_error_reason=cs.last_error_reason,
                    newest_end_time=cs.newest_end_time,
                    samples=self._cadence_samples((name, c)),
                )
                for c, cs in status.per_cadence.items()
            }
            out.append(
                SavedSource(
                    name=name,
                    plugin=status.plugin,
                    cadences=cadences,
                    disabled=dict(status.disabled),
                    disabled_at=dict(status.disabled_at),
                    memory=copy.deepcopy(status.memory),
                )
            )
        return tuple(out)

    def restore(self, saved: SavedSource) -> int | None:
        """Take back what a previous run saved of a source registered under the same name
        with the same plugin (``None`` otherwise: nothing restored); cadences it no longer
        has are left out. Returns the samples restored. A restored cadence counts as polled
        (``/readyz``); its samples are replaced by its next poll like any others."""
        status = self._sources.get(saved.name)
        if status is None or status.plugin != saved.plugin:
            return None
        count = 0
        for cadence, sc in saved.cadences.items():
            cs = status.per_cadence.get(cadence)
            if cs is None:
                continue
            cs.ok = sc.ok
            cs.last_success = sc.last_success
            cs.last_error = sc.last_error
            cs.last_error_reason = sc.last_error_reason
            cs.newest_end_time = sc.newest_end_time
            series: dict[SeriesKey, Sample] = {}
            _keep_newest(series, sc.samples)
            self._series[(saved.name, cadence)] = series
            self._tuples.pop((saved.name, cadence), None)
            count += len(series)
        status.disabled.update(saved.disabled)
        status.disabled_at.update(saved.disabled_at)
        status.memory = dict(saved.memory)
        self._changed()
        return count

    @property
    def ready(self) -> bool:
        """True once every source finished its first poll of every cadence."""
        return all(s.first_polls_done for s in self._sources.values())
