"""The scaffolding every Graph API plugin needs, written once.

- :func:`number`: Meta's number (a JSON number or a numeric string; a boolean is not one).
- :class:`Tag` and :class:`Requests`: insight requests tagged with what they are about (a
  frozen dataclass, never a string to parse back), and their answers handed back per tag.
- :func:`breakdown_rows`: keep an answer's breakdown rows, or its plain values only (Meta
  may echo the total in a breakdown answer; it belongs to the plain family).
- :func:`insight_samples`: samples of the parsed values of an answer, grouped per metric.
- :func:`field_samples`: samples of a node's numeric fields.
- :func:`skip_failed`: skip objects whose insights failed, and fail the poll when every
  object was denied (the token lacks the permission, not the objects).
- :func:`cap_series`: at most :data:`MAX_SERIES_PER_METRIC` series of one metric for one
  object in a poll's result (the host applies it to every plugin's result).
- :func:`completed_days`: Meta's last completed days (US Pacific, docs/meta-facts.md
  2.5), as explicit ``since``/``until`` windows, so a "day" value is a day.
- :func:`days_between` and :func:`windows`: the completed days of a past range, and
  those days joined into the widest windows Meta allows in one query (history).

``MetricSpec.insight`` and ``MetricSpec.field`` (:mod:`collectord.model`) build catalogue
entries that know Meta's units (``unit="ms"``: scaled to seconds, ``_seconds`` suffix).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from collectord.errors import GraphError, Outcome
from collectord.graph.insights import (
    KIND_AFTER,
    InsightRequest,
    InsightValue,
    breakdown_key,
    fetch_insights,
    samples_from_values,
    scoped_key,
)
from collectord.model import MetricSpec, Sample, number, series_key
from collectord.plugin.api import PollContext

__all__ = [
    "MAX_SERIES_PER_METRIC",
    "METRIC_OUTCOMES",
    "PACIFIC",
    "SKIP_REASONS",
    "Day",
    "Requests",
    "Tag",
    "breakdown_rows",
    "cap_series",
    "completed_days",
    "days_between",
    "disable_reason",
    "field_samples",
    "insight_samples",
    "is_metric_error",
    "number",
    "skip_failed",
    "skip_reason",
    "windows",
]

T = TypeVar("T", bound=Hashable)

#: What an answer's data is: its ``data`` entries, or the object-level error that stopped it.
Answer = list[dict[str, Any]] | GraphError


@dataclass(frozen=True, slots=True)
class Tag:
    """What one insights request is about: its object and, for a breakdown request, the
    breakdown (``timeframe`` for Instagram's demographics). Plugins that need more context
    use their own frozen dataclass with :class:`Requests`."""

    object_id: str
    breakdown: str = ""
    timeframe: str = ""


class Requests(Generic[T]):
    """Insight requests, each tagged with a hashable value (a frozen dataclass).

    :meth:`fetch` runs them through :func:`~collectord.fetch_insights` (culprit metrics
    disabled, batch requests) and returns ``(tag, answer)`` pairs in the order added.
    """

    def __init__(self) -> None:
        self._items: list[tuple[T, InsightRequest]] = []

    def __len__(self) -> int:
        return len(self._items)

    def add(
        self,
        tag: T,
        object_id: str,
        metrics: Iterable[str],
        params: Mapping[str, str] | None = None,
        *,
        scope: str = "",
        edge: str = "insights",
        metric_in_path: bool = False,
        disable_as: str = "",
        per_object: bool = False,
    ) -> None:
        """A request of ``metrics`` of ``object_id`` (see :class:`~collectord.InsightRequest`;
        ``per_object``: a rejected metric is disabled for this object until several
        objects of the scope had it rejected)."""
        key = f"#{len(self._items)}"
        request = InsightRequest(
            object_id,
            tuple(metrics),
            dict(params or {}),
            key=key,
            edge=edge,
            metric_in_path=metric_in_path,
            disable_as=disable_as,
            scope=scope,
            per_object=per_object,
        )
        self._items.append((tag, request))

    def add_breakdown(
        self,
        tag: T,
        object_id: str,
        metric: str,
        breakdown: str,
        params: Mapping[str, str] | None = None,
        *,
        scope: str = "",
        per_object: bool = False,
    ) -> None:
        """A request of one metric by one breakdown: Meta refusing the breakdown disables
        it alone (``reach:follow_type``, within ``scope``), never the plain metric."""
        self.add(
            tag,
            object_id,
            (metric,),
            {**(params or {}), "breakdown": breakdown},
            scope=scope,
            disable_as=scoped_key(scope, breakdown_key(metric, breakdown)),
            per_object=per_object,
        )

    def split(self, count: int) -> tuple[Requests[T], Requests[T]]:
        """The first ``count`` requests and the others, as two sets of requests (to send a
        probe first: a bad metric is then isolated on one object, not on every one)."""
        head: Requests[T] = Requests()
        tail: Requests[T] = Requests()
        head._items, tail._items = self._items[:count], self._items[count:]
        return head, tail

    def split_probe(self) -> tuple[Requests[T], Requests[T]]:
        """The requests of the first few objects of each scope (enough for a metric
        rejected by all of them to be disabled for their whole kind:
        :data:`~collectord.graph.insights.KIND_AFTER`) and the others, each in the order
        added: send the probe first, and a bad metric costs a few objects, not all."""
        head: Requests[T] = Requests()
        tail: Requests[T] = Requests()
        chosen: dict[str, list[str]] = {}
        for item in self._items:
            seen = chosen.setdefault(item[1].scope, [])
            if item[1].object_id not in seen and len(seen) < KIND_AFTER:
                seen.append(item[1].object_id)
            (head if item[1].object_id in seen else tail)._items.append(item)
        return head, tail

    async def fetch(self, ctx: PollContext) -> list[tuple[T, Answer]]:
        """Every request's answer, with its tag; auth, throttling and outages are raised."""
        if not self._items:
            return []
        answers = await fetch_insights(ctx, [req for _, req in self._items])
        return [(tag, answers.get(req.ident, [])) for tag, req in self._items]

    async def answered(self, ctx: PollContext, object_id: str) -> list[tuple[T, Any]]:
        """:meth:`fetch` for one object's requests, without the refused ones: a refused
        breakdown request (its tag has a ``breakdown``: permission, too few people, not
        supported) is left out and counted (``ctx.skip``), and the rest of the poll
        delivers; a refused plain request is raised, the poll cannot deliver."""
        out: list[tuple[T, Any]] = []
        for tag, answer in await self.fetch(ctx):
            if not isinstance(answer, GraphError):
                out.append((tag, answer))
            elif getattr(tag, "breakdown", ""):
                ctx.skip(object_id, skip_reason(answer, "unsupported"))
            else:
                raise answer
        return out


def breakdown_rows(values: Iterable[InsightValue], *, breakdown: bool) -> list[InsightValue]:
    """The breakdown rows of an answer (``breakdown``), or its plain values only."""
    return [v for v in values if bool(v.dims) == breakdown]


def insight_samples(
    ctx: PollContext,
    specs: Mapping[str, MetricSpec],
    values: Iterable[InsightValue],
    *,
    breakdown: bool,
    object_id: str,
    labels: Mapping[str, str],
    dict_labels: Mapping[str, str] | None = None,
    with_period: bool = True,
    spec_periods: bool = False,
) -> list[Sample]:
    """Samples of the values of ``specs`` metrics in one answer.

    ``breakdown`` keeps the breakdown rows only, else the plain values only (see
    :func:`breakdown_rows`); ``spec_periods`` keeps only the periods a spec lists (when it
    lists any). ``dict_labels`` names the label of a dict-valued metric's keys (``key`` by
    default); ``with_period`` makes ``period`` a label.
    """
    grouped: dict[str, list[InsightValue]] = {}
    for v in breakdown_rows(values, breakdown=breakdown):
        spec = specs.get(v.name)
        if spec is None or (spec_periods and spec.periods and v.period not in spec.periods):
            continue
        grouped.setdefault(v.name, []).append(v)
    out: list[Sample] = []
    for name, rows in grouped.items():
        out.extend(
            samples_from_values(
                ctx,
                specs[name],
                rows,
                object_id=object_id,
                labels=labels,
                with_period=with_period,
                dict_label=(dict_labels or {}).get(name, "key"),
            )
        )
    return out


def field_samples(
    ctx: PollContext,
    fields: Iterable[MetricSpec],
    node: Mapping[str, Any],
    *,
    object_id: str,
    labels: Mapping[str, str],
) -> list[Sample]:
    """Samples of a node's fields; a field Meta left out or that is not a number has none."""
    out: list[Sample] = []
    for spec in fields:
        value = number(node.get(spec.graph_name))
        if value is not None:
            out.append(ctx.sample(spec, value, object_id=object_id, labels=labels))
    return out


#: The most series of one metric (family) for one object a poll keeps: Meta's largest
#: real breakdowns (cities, countries) have a few hundred keys; an answer with more is a
#: fault of Meta's, and would make an unbounded number of series.
MAX_SERIES_PER_METRIC = 1_000


def cap_series(
    samples: Sequence[Sample], limit: int = MAX_SERIES_PER_METRIC
) -> tuple[list[Sample], dict[tuple[str, str], int]]:
    """``samples`` with at most ``limit`` series per metric and object (the first ones
    met are kept), and, per ``(metric, object_id)`` over the cap, how many samples were
    dropped (empty when none)."""
    seen: dict[tuple[str, str], set[Any]] = {}
    kept: list[Sample] = []
    dropped: dict[tuple[str, str], int] = {}
    for sample in samples:
        where = (sample.metric, sample.object_id)
        series = seen.setdefault(where, set())
        key = series_key(sample.metric, sample.labels)
        if key not in series:
            if len(series) >= limit:
                dropped[where] = dropped.get(where, 0) + 1
                continue
            series.add(key)
        kept.append(sample)
    return kept, dropped


#: Outcomes that blame a metric (or a field), not the object or the token.
METRIC_OUTCOMES: frozenset[Outcome] = frozenset(
    {Outcome.INVALID_METRIC, Outcome.METRIC_UNSUPPORTED}
)


def is_metric_error(err: GraphError) -> bool:
    """Whether Meta rejected a metric or field of the request (disable it, keep the rest)."""
    return err.outcome in METRIC_OUTCOMES


def disable_reason(err: GraphError) -> str:
    """The reason a metric Meta rejected is disabled under: ``unsupported`` or
    ``invalid_metric``."""
    return "unsupported" if err.outcome is Outcome.METRIC_UNSUPPORTED else "invalid_metric"


#: Skip reasons (``collectord_source_skipped`` status) of the per-object outcomes.
SKIP_REASONS: Mapping[Outcome, str] = {
    Outcome.OBJECT_GONE: "vanished",
    Outcome.BEFORE_CONVERSION: "pre_conversion",
    Outcome.TOO_FEW_VIEWERS: "not_enough_viewers",
    Outcome.PERMISSION: "permission",
}


def skip_reason(err: GraphError, default: str | None = None) -> str:
    """Why an object was skipped, from the outcome of Meta's answer: :data:`SKIP_REASONS`,
    else ``default`` (the error's counting reason when ``None``)."""
    return SKIP_REASONS.get(err.outcome, default if default is not None else err.reason)


def skip_failed(
    ctx: PollContext,
    failed: Mapping[str, GraphError],
    objects: Sequence[str] | int,
    *,
    default: str | None = None,
) -> dict[str, str]:
    """Skip every object of ``failed`` (``ctx.skip``) and return its reasons.

    When every one of ``objects`` (or that many) failed and every failure is a permission
    error, the token cannot read any of them: the first error is raised and the poll fails.
    """
    total = objects if isinstance(objects, int) else len(set(objects))
    if failed and len(failed) >= total:
        errors = list(failed.values())
        if all(e.outcome is Outcome.PERMISSION for e in errors):
            raise errors[0]
    reasons = {oid: skip_reason(err, default) for oid, err in failed.items()}
    for object_id, reason in reasons.items():
        ctx.skip(object_id, reason)
    return reasons


class UsPacific(tzinfo):
    """US Pacific time by the rules in force since 2007 (UTC-8; UTC-7 from the second
    Sunday of March, 02:00, to the first Sunday of November, 02:00): the stand-in for a
    system without a time zone database (a slim container)."""

    @staticmethod
    def _sunday(year: int, month: int, nth: int) -> datetime:
        first = datetime(year, month, 1)
        return first + timedelta(days=(6 - first.weekday()) % 7 + 7 * (nth - 1), hours=2)

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=-8) + self.dst(dt)

    def dst(self, dt: datetime | None) -> timedelta:
        if dt is None:
            return timedelta(0)
        local = dt.replace(tzinfo=None)
        start, end = self._sunday(dt.year, 3, 2), self._sunday(dt.year, 11, 1)
        return timedelta(hours=1) if start <= local < end else timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "PDT" if self.dst(dt) else "PST"

    def fromutc(self, dt: datetime) -> datetime:
        standard = dt + timedelta(hours=-8)
        start = self._sunday(dt.year, 3, 2) + timedelta(hours=8)  # in UTC
        end = self._sunday(dt.year, 11, 1) + timedelta(hours=7)
        naive = dt.replace(tzinfo=None)
        return standard + (timedelta(hours=1) if start <= naive < end else timedelta(0))


def _pacific() -> tzinfo:
    try:
        return ZoneInfo("America/Los_Angeles")
    except ZoneInfoNotFoundError:
        return UsPacific()


#: Meta's day: a daily value covers a US Pacific day and its ``end_time`` is the Pacific
#: midnight that ends it (docs/meta-facts.md 2.5, 5.4).
PACIFIC = _pacific()


def _pacific_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Day:
    """One completed Meta day: ``[since, until)`` in UTC, ``until`` being its ``end_time``
    (23 or 25 hours long on the days the clocks change); from :func:`windows`, a run of
    consecutive days."""

    since: datetime
    until: datetime

    def params(self) -> dict[str, str]:
        """``since``/``until`` as Meta takes them (Unix seconds)."""
        return {
            "since": str(int(self.since.timestamp())),
            "until": str(int(self.until.timestamp())),
        }


def completed_days(now: datetime, count: int) -> tuple[Day, ...]:
    """The last ``count`` completed Meta days before ``now``, newest first: the newest ends
    at the last Pacific midnight at or before ``now``. Reading more than one re-reads days
    Meta may still revise (Instagram values can be 48 hours late, 5.3)."""
    today = now.astimezone(PACIFIC).date()
    return tuple(
        Day(
            _pacific_midnight(today - timedelta(days=i + 1)),
            _pacific_midnight(today - timedelta(days=i)),
        )
        for i in range(count)
    )


def days_between(since: datetime, until: datetime) -> tuple[Day, ...]:
    """The completed Meta days that lie wholly in ``[since, until]``, oldest first (a
    plugin's :meth:`~collectord.SourcePlugin.history` reads them)."""
    first = since.astimezone(PACIFIC).date()
    if _pacific_midnight(first) < since:
        first += timedelta(days=1)
    out: list[Day] = []
    day = first
    while _pacific_midnight(day + timedelta(days=1)) <= until:
        out.append(Day(_pacific_midnight(day), _pacific_midnight(day + timedelta(days=1))))
        day += timedelta(days=1)
    return tuple(out)


def windows(days: Sequence[Day], max_days: int) -> tuple[Day, ...]:
    """``days`` (consecutive, oldest first) joined into windows no longer than ``max_days``
    times 24 hours, as one query may span (90 days for Page insights, 30 for an Instagram
    account's, docs/meta-facts.md 2.6, 5.3; a window holding the 25-hour day the clocks go
    back has one day fewer); each window's ``until`` is its last day's end."""
    limit = timedelta(days=max(1, max_days))
    out: list[Day] = []
    for day in days:
        if out and day.until - out[-1].since <= limit:
            out[-1] = Day(out[-1].since, day.until)
        else:
            out.append(day)
    return tuple(out)
