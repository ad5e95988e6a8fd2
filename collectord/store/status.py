"""What collectord knows about one source's polls: the store's live records and the frozen
copies readers get.

:class:`SourceStatus` (with :class:`CadenceStatus` and :class:`DurationHistogram`) is written
by the :class:`~collectord.store.store.Store` only. Readers (``/metrics``, the status page)
get :class:`SourceView` / :class:`CadenceView` / :class:`DurationCounts`: frozen dataclasses
holding tuples and read-only mappings, copied when the store changed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from collectord.model import Cadence, TokenView

#: The states of a source, as ``collectord_source_state{state}`` exports them (one is 1,
#: the others 0); see :func:`source_state` and docs/operations.md "Source states".
SOURCE_STATES: tuple[str, ...] = ("ok", "failing", "needs_reauth", "throttled", "stale")
#: Data older than this many intervals of its cadence is stale.
STALE_INTERVALS = 2.0

#: Upper bounds of the poll-duration histogram, in seconds.
DURATION_BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


@dataclass(frozen=True, slots=True)
class DurationCounts:
    """A frozen copy of a poll-duration histogram."""

    counts: tuple[int, ...]
    total: int
    sum: float

    def buckets(self) -> list[tuple[str, float]]:
        """``(le, cumulative count)`` pairs ending with ``+Inf``, as prometheus-client wants."""
        out = [
            (repr(float(b)), float(c)) for b, c in zip(DURATION_BUCKETS, self.counts, strict=True)
        ]
        out.append(("+Inf", float(self.total)))
        return out


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
        return self.frozen().buckets()

    def frozen(self) -> DurationCounts:
        return DurationCounts(tuple(self.counts), self.total, self.sum)


@dataclass(frozen=True, slots=True)
class Reauth:
    """Why a source waits for a new token: the kind of problem (an
    :class:`~collectord.errors.AuthKind` value), the advice logged, since when (unix time)."""

    kind: str
    advice: str
    since: float


@dataclass(frozen=True, slots=True)
class CadenceView:
    """A frozen copy of :class:`CadenceStatus`."""

    ok: bool | None
    last_success: float | None
    last_error: str | None
    last_error_reason: str | None
    next_run: datetime | None
    newest_end_time: float | None
    durations: DurationCounts
    throttled: bool = False
    interval: float | None = None


@dataclass
class CadenceStatus:
    """The polls of one (source, cadence): outcome of the last one, next run, durations."""

    ok: bool | None = None  # None: not polled yet
    last_success: float | None = None  # unix time
    last_error: str | None = None
    last_error_reason: str | None = None
    next_run: datetime | None = None
    newest_end_time: float | None = None  # unix time
    durations: DurationHistogram = field(default_factory=DurationHistogram)
    #: The last poll was skipped: its rate-limit budget was blocked.
    throttled: bool = False
    #: Seconds between two polls (set by the scheduler), for staleness.
    interval: float | None = None

    def frozen(self) -> CadenceView:
        return CadenceView(
            self.ok,
            self.last_success,
            self.last_error,
            self.last_error_reason,
            self.next_run,
            self.newest_end_time,
            self.durations.frozen(),
            self.throttled,
            self.interval,
        )


class _Derived:
    """What both the live status and its frozen copy derive from their cadences."""

    per_cadence: Mapping[str, CadenceStatus] | Mapping[str, CadenceView]
    reauth: Reauth | None

    @property
    def up(self) -> bool:
        """True when the last poll of every cadence succeeded and the token is not known
        to be dead."""
        return self.reauth is None and all(s.ok for s in self.per_cadence.values())

    @property
    def first_polls_done(self) -> bool:
        """True once every cadence was polled, or the source waits for a new token (its
        other cadences will not be polled before: it is as ready as it gets)."""
        return self.reauth is not None or all(s.ok is not None for s in self.per_cadence.values())

    @property
    def pending(self) -> bool:
        """True before any poll of any cadence (and nothing restored from the state file)."""
        return self.reauth is None and all(s.ok is None for s in self.per_cadence.values())

    def state(self, now: float) -> str:
        """The source's state at unix time ``now``, one of :data:`SOURCE_STATES`, the first
        that holds of:

        - ``needs_reauth``: a poll failed because of the token (expired, revoked, a
          permission missing); no poll runs until a reload brings another token;
        - ``throttled``: the last poll of some cadence was skipped because its rate-limit
          budget was blocked (until a poll of it runs again);
        - ``stale``: the newest data of some cadence was collected more than
          :data:`STALE_INTERVALS` of its intervals before ``now`` (after failures, or
          restored from the state file and not refreshed yet);
        - ``failing``: the last poll of some cadence failed;
        - ``ok``: otherwise (a source not polled yet included).
        """
        cadences = self.per_cadence.values()
        if self.reauth is not None:
            return "needs_reauth"
        if any(s.throttled for s in cadences):
            return "throttled"
        if any(_stale(s, now) for s in cadences):
            return "stale"
        if any(s.ok is False for s in cadences):
            return "failing"
        return "ok"

    @property
    def last_success(self) -> float | None:
        times = [s.last_success for s in self.per_cadence.values() if s.last_success]
        return max(times) if times else None

    @property
    def last_error(self) -> str | None:
        errs = [s.last_error for s in self.per_cadence.values() if s.ok is False and s.last_error]
        return errs[0] if errs else None


def _stale(cs: CadenceStatus | CadenceView, now: float) -> bool:
    if cs.last_success is None or not cs.interval:
        return False
    return now - cs.last_success > STALE_INTERVALS * cs.interval


@dataclass(frozen=True)
class SourceView(_Derived):
    """A frozen copy of :class:`SourceStatus` for readers (no memory: that is the plugin's)."""

    name: str
    plugin: str
    cadences: tuple[Cadence, ...]
    per_cadence: Mapping[str, CadenceView]
    errors: Mapping[str, int]
    skipped: Mapping[str, int]
    disabled: Mapping[str, str]
    token: TokenView | None
    reauth: Reauth | None = None


@dataclass
class SourceStatus(_Derived):
    """Everything known about one source; written by the store only.

    Implements :class:`collectord.plugin.api.SourceState`.
    """

    name: str
    plugin: str
    cadences: tuple[Cadence, ...]
    per_cadence: dict[str, CadenceStatus] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    #: Skipped objects by the plugin's reason (``not_enough_viewers``, ``vanished``, ...),
    #: for the status page; ``/metrics`` counts them all as ``skipped_object``.
    skipped: Counter[str] = field(default_factory=Counter)
    disabled: dict[str, str] = field(default_factory=dict)
    #: When each disabled metric was (last) rejected: re-probed a day later.
    disabled_at: dict[str, datetime] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    token: TokenView | None = None
    #: Set when a poll failed because of the token: no poll runs until it is cleared.
    reauth: Reauth | None = None

    def __post_init__(self) -> None:
        for c in self.cadences:
            self.per_cadence.setdefault(c, CadenceStatus())

    def frozen(self) -> SourceView:
        """A copy sharing nothing mutable with this status."""
        return SourceView(
            name=self.name,
            plugin=self.plugin,
            cadences=self.cadences,
            per_cadence=MappingProxyType({c: s.frozen() for c, s in self.per_cadence.items()}),
            errors=MappingProxyType(dict(self.errors)),
            skipped=MappingProxyType(dict(self.skipped)),
            disabled=MappingProxyType(dict(self.disabled)),
            token=self.token,
            reauth=self.reauth,
        )
