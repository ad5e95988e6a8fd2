"""Fetching ``/insights`` edges the way Meta needs it, for every plugin.

Meta fails a whole insights call when one metric in it is invalid (retired, unknown, or
unsupported for the object). :func:`fetch_insights` sends many requests at once (as batch
requests), and when one fails that way it splits the metric list in halves until it has
found the culprit, disables that metric for the source (``ctx.disable_metric``: logged
once, exported as ``collectord_metric_disabled``) and keeps the others flowing. A request's
``scope`` narrows that to one kind of object (``STORY/shares``, ``FEED/IMAGE/shares``) where
Meta's metric sets differ between kinds that share metric names.

A request of a source of many objects (``per_object``: posts, media) keeps a rejection to
its object (``FEED/IMAGE/shares@1789``): Meta may refuse a metric for one media and serve
it for the next. Once Meta rejected it for :data:`KIND_AFTER` objects of the scope, it is
disabled for the scope, so a metric Meta dropped for a whole kind costs a few objects'
splitting, not every object's on every poll. Every disabled name is asked for again a day
after its rejection (``PollContext.is_disabled`` answers False for it; the host re-enables
it when Meta answers, and renews it for a day when Meta rejects it again).

Meta answers a breakdown that a metric does not support with code 1, "An unknown error has
occurred" (docs/meta-facts.md 5.3, 6.3), which is otherwise a transient failure; the
Graph layer gives it the outcome ``BREAKDOWN_UNSUPPORTED``
(:func:`collectord.graph.answers.answer_to`). A breakdown request that still fails that way after the client's retries,
while other requests of the same fetch succeed, is left out of that poll (the poll does not
fail); when it fails so in two polls in a row (or once on its daily re-probe), the
breakdown is disabled (``unsupported_breakdown``), so a passing fault of Meta's never
costs it for good. When
nothing succeeds, Meta is down and the error is raised.

:func:`parse_entries` turns the ``data`` entries of an answer, in any of Meta's shapes
(``values`` time series, flattened breakdown flags such as ``is_from_ads``, dict values,
``total_value`` with ``breakdowns``), into flat :class:`InsightValue` objects.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from collectord.errors import (
    GraphError,
    InvalidRequestError,
    Outcome,
    PermissionDeniedError,
    count_problem,
)
from collectord.graph.answers import answer_to
from collectord.graph.client import METRICS_PER_REQUEST
from collectord.logs import get_logger
from collectord.model import MetricSpec, Sample, breakdown_name, number

if TYPE_CHECKING:
    from collectord.plugin.api import PollContext

#: ``ctx.memory`` key: breakdown requests whose last answer was that error.
_UNKNOWN_BREAKDOWNS = "insights.unknown_error_breakdowns"

#: The most values read from one insights entry (one metric and period of one object:
#: its days times its keys or breakdown rows) and from one answer; Meta's largest real
#: entries (demographics by city, a few days) hold a few hundred.
MAX_VALUES_PER_ENTRY = 5_000
MAX_VALUES_PER_ANSWER = 50_000

#: A metric Meta rejects for this many objects of one scope (in force together) is
#: disabled for the whole scope; for fewer, for those objects only.
KIND_AFTER = 3


@dataclass(frozen=True)
class InsightRequest:
    """Insights of ``metrics`` for one object. ``key`` identifies the request's answer
    (defaults to ``object_id``); ``params`` are extra query parameters (``period``,
    ``breakdown``, ``metric_type``, ...). With ``metric_in_path`` the (single) metric goes
    into the path, ``{object_id}/{edge}/{metric}``, as the App Insights edge wants it.
    ``disable_as`` is the name a rejected single-metric request is disabled under (default:
    the metric, within ``scope``): a breakdown request uses :func:`breakdown_key` so that
    Meta refusing the breakdown does not cost the plain metric. ``scope`` (default: none)
    keeps a rejection to one kind of object: metric ``m`` is disabled as ``{scope}/{m}``
    (:func:`scoped_key`), and only requests of the same scope stop asking for it.
    ``per_object`` (a source of many objects: posts, media) keeps a rejection to the
    object until :data:`KIND_AFTER` objects of the scope had it rejected."""

    object_id: str
    metrics: tuple[str, ...]
    params: Mapping[str, str] = field(default_factory=dict)
    key: str = ""
    edge: str = "insights"
    metric_in_path: bool = False
    disable_as: str = ""
    scope: str = ""
    per_object: bool = False

    @property
    def ident(self) -> str:
        return self.key or self.object_id

    @property
    def has_breakdown(self) -> bool:
        """True for a request of a breakdown (``breakdown=``, ``breakdowns[n]=``)."""
        return any(k == "breakdown" or k.startswith("breakdowns[") for k in self.params)

    def disable_key(self, metric: str) -> str:
        """The name ``metric`` of this request is disabled under."""
        if self.disable_as and len(self.metrics) == 1:
            return self.disable_as
        return scoped_key(self.scope, metric)

    def call(self) -> tuple[str, dict[str, str]]:
        if self.metric_in_path:
            return f"{self.object_id}/{self.edge}/{self.metrics[0]}", dict(self.params)
        return f"{self.object_id}/{self.edge}", {"metric": ",".join(self.metrics), **self.params}

    def part(self, metrics: tuple[str, ...]) -> InsightRequest:
        """The same request for a subset of its metrics."""
        return dataclasses.replace(self, metrics=metrics)


def breakdown_key(metric: str, breakdown: str) -> str:
    """The name a breakdown request is disabled under: ``page_media_view:is_from_ads``."""
    return f"{metric}:{breakdown}"


def scoped_key(scope: str, name: str) -> str:
    """``name`` (a metric or a :func:`breakdown_key`) disabled for one kind of object only:
    ``STORY/shares``; without a scope, ``name`` itself."""
    return f"{scope}/{name}" if scope else name


def _is_metric_error(err: GraphError) -> bool:
    return err.outcome in (Outcome.INVALID_METRIC, Outcome.METRIC_UNSUPPORTED)


def _is_object_error(err: GraphError) -> bool:
    """Errors about one object (gone, pre-conversion media, a story under five viewers)."""
    return isinstance(err, InvalidRequestError | PermissionDeniedError)


def _disable_reason(err: GraphError) -> str:
    return "unsupported" if err.outcome is Outcome.METRIC_UNSUPPORTED else "invalid_metric"


async def fetch_insights(
    ctx: PollContext, requests: Sequence[InsightRequest]
) -> dict[str, list[dict[str, Any]] | GraphError]:
    """Run ``requests`` and return, per request ``ident``, its ``data`` entries (joined over
    the split parts) or the object-level error that stopped it (a deleted object, a
    permission error on it: the caller decides whether to skip it or fail). Any other error
    (auth, throttling, transient failures that outlasted the retries) is raised.

    Metric errors never come back: the culprit metrics are disabled and the rest fetched.
    A request Meta finds too big ("reduce the amount of data") is split in halves; one
    metric that is still too big is raised.
    Requests are chunked to :data:`~collectord.graph.client.METRICS_PER_REQUEST` metrics
    and handed to ``ctx.graph.get_many`` (the client decides how they go out).
    """
    results: dict[str, list[dict[str, Any]] | GraphError] = {}
    pending: list[InsightRequest] = []
    for req in requests:
        results.setdefault(req.ident, [])
        if req.disable_as and _is_off(ctx, req, req.disable_as):
            continue
        metrics = [m for m in req.metrics if not _is_off(ctx, req, scoped_key(req.scope, m))]
        size = 1 if req.metric_in_path else METRICS_PER_REQUEST
        for i in range(0, len(metrics), size):
            pending.append(req.part(tuple(metrics[i : i + size])))

    answered = False  # did any request of this fetch succeed?
    rejected: dict[str, dict[str, str]] = {}  # per-object requests: key -> object -> reason
    unknown: list[tuple[InsightRequest, GraphError]] = []
    suspects: set[str] = ctx.memory.setdefault(_UNKNOWN_BREAKDOWNS, set())
    while pending:
        answers = await _send(ctx, pending)
        retry: list[InsightRequest] = []
        for req, answer in zip(pending, answers, strict=True):
            current = results.get(req.ident)
            if isinstance(current, GraphError):
                continue  # the object already failed; ignore the other parts
            if not isinstance(answer, GraphError):
                answered = True
                if req.has_breakdown:
                    suspects.discard(req.disable_key(req.metrics[0]))
                data = answer.get("data")
                if not isinstance(data, list):
                    data = []
                results[req.ident] = [*(current or []), *data]
                continue
            if answer.outcome is Outcome.BREAKDOWN_UNSUPPORTED:
                unknown.append((req, answer))
                continue
            if answer.outcome is Outcome.REDUCE_DATA and len(req.metrics) > 1:
                half = len(req.metrics) // 2  # ask for less: each half on its own
                retry.extend((req.part(req.metrics[:half]), req.part(req.metrics[half:])))
                continue
            if not _is_metric_error(answer):
                if not _is_object_error(answer):
                    raise answer
                results[req.ident] = answer
                continue
            if len(req.metrics) == 1:
                key, reason = req.disable_key(req.metrics[0]), _disable_reason(answer)
                if req.per_object:
                    rejected.setdefault(key, {})[req.object_id] = reason
                else:
                    ctx.disable_metric(key, reason)
                continue
            half = len(req.metrics) // 2
            retry.extend((req.part(req.metrics[:half]), req.part(req.metrics[half:])))
        pending = retry
    _disable_rejected(ctx, rejected)
    if unknown and not answered:
        raise unknown[0][1]  # nothing answered: Meta is failing, not the breakdown
    for key in dict.fromkeys(req.disable_key(req.metrics[0]) for req, _err in unknown):
        if key in suspects or key in ctx.disabled_before:  # a re-probe: fails once, off
            suspects.discard(key)
            ctx.disable_metric(key, "unsupported_breakdown")
        else:
            suspects.add(key)  # left out of this poll; disabled if the next one fails too
    return results


def _is_off(ctx: PollContext, req: InsightRequest, key: str) -> bool:
    """Whether ``key`` is disabled for the request's object (for its scope, or for that
    object alone)."""
    if ctx.is_disabled(key):
        return True
    return req.per_object and ctx.is_disabled(ctx.object_key(key, req.object_id))


def _disable_rejected(ctx: PollContext, rejected: Mapping[str, Mapping[str, str]]) -> None:
    """Disable what Meta rejected for some objects: for those objects, or for the whole
    scope once :data:`KIND_AFTER` objects had it rejected (the object-scoped names go)."""
    for key, objects in rejected.items():
        hit = set(objects) | set(ctx.disabled_objects(key))
        if len(hit) >= KIND_AFTER:
            ctx.disable_metric(key, next(iter(objects.values())))
            continue
        for object_id, reason in objects.items():
            ctx.disable_metric(ctx.object_key(key, object_id), reason)


async def _send(
    ctx: PollContext, requests: Sequence[InsightRequest]
) -> list[dict[str, Any] | GraphError]:
    """One answer per request: its body or its error, read as the answer to that request
    (the caller decides which errors end the fetch)."""
    calls = [r.call() for r in requests]
    answers = await ctx.graph.get_many(calls)
    return [
        answer_to(a, params) if isinstance(a, GraphError) else a
        for a, (_, params) in zip(answers, calls, strict=True)
    ]


@dataclass(frozen=True)
class InsightValue:
    """One number Meta gave for a metric.

    ``dims`` holds the breakdown dimensions that produced it (``{"is_from_ads": "1"}``,
    ``{"age": "25-34", "gender": "F"}``); ``key`` is set for dict-valued metrics (the dict
    key, with no named breakdown); ``total`` is True for a ``total_value`` total.
    """

    name: str
    period: str | None
    end_time: datetime | None
    value: float
    dims: tuple[tuple[str, str], ...] = ()
    key: str | None = None


def parse_time(text: str | None) -> datetime | None:
    """Meta's ``2026-03-03T08:00:00+0000`` as an aware datetime (None stays None, and so
    does anything that is not such a time)."""
    if not text or not isinstance(text, str) or len(text) > 64:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    except (TypeError, ValueError):
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_entries(entries: Sequence[Mapping[str, Any]]) -> Iterator[InsightValue]:
    """Flatten insights ``data`` entries into :class:`InsightValue` objects.

    Unknown shapes and non-numeric values are skipped (never turned into zeros), whatever
    the types Meta sent. At most :data:`MAX_VALUES_PER_ENTRY` values of one entry and
    :data:`MAX_VALUES_PER_ANSWER` of all are read: the rest is dropped with one warning and
    counted as a ``bad_response`` (a metric answering 300,000 keys is not 300,000 series).
    """
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        return
    total = 0
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        period = entry.get("period") if isinstance(entry.get("period"), str) else None
        for count, value in enumerate(_entry_values(name, period, entry)):
            if total >= MAX_VALUES_PER_ANSWER:
                _over_cap(name, MAX_VALUES_PER_ANSWER)
                return
            if count >= MAX_VALUES_PER_ENTRY:
                _over_cap(name, MAX_VALUES_PER_ENTRY)
                break
            total += 1
            yield value


def _entry_values(
    name: str, period: str | None, entry: Mapping[str, Any]
) -> Iterator[InsightValue]:
    values = entry.get("values")
    if not isinstance(values, list):
        values = []
    for item in values:
        if isinstance(item, Mapping):
            yield from _from_value_item(name, period, item)
    total = entry.get("total_value")
    if isinstance(total, Mapping):
        yield from _from_total_value(name, period, total, with_total=not values)


def _over_cap(name: str, limit: int) -> None:
    get_logger("collectord.graph.insights").warning(
        "insights answer over the cap, the rest dropped", metric=name[:100], limit=limit
    )
    count_problem("bad_response")


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float) and not isinstance(value, bool)


def _from_value_item(
    name: str, period: str | None, item: Mapping[str, Any]
) -> Iterator[InsightValue]:
    end_time = parse_time(item.get("end_time"))
    flags = tuple(
        (str(k), str(v))
        for k, v in item.items()
        if k not in ("value", "end_time") and (_scalar(v) or isinstance(v, bool))
    )
    value = item.get("value")
    if isinstance(value, Mapping):
        for key, sub in value.items():
            num = number(sub)
            if num is not None:
                yield InsightValue(name, period, end_time, num, flags, key=str(key))
        return
    num = number(value)
    if num is not None:
        yield InsightValue(name, period, end_time, num, flags)


def _from_total_value(
    name: str, period: str | None, total: Mapping[str, Any], *, with_total: bool
) -> Iterator[InsightValue]:
    """The breakdown rows of a ``total_value``, and its total unless ``values`` had it."""
    breakdowns = total.get("breakdowns")
    if isinstance(breakdowns, list):
        for bd in breakdowns:
            if not isinstance(bd, Mapping):
                continue
            raw_keys = bd.get("dimension_keys")
            results = bd.get("results")
            if not isinstance(raw_keys, list) or not isinstance(results, list):
                continue
            keys = [str(k) for k in raw_keys if _scalar(k)]
            for result in results:
                if not isinstance(result, Mapping):
                    continue
                raw_values = result.get("dimension_values")
                if not isinstance(raw_values, list) or not all(map(_scalar, raw_values)):
                    continue
                values = [str(v) for v in raw_values]
                num = number(result.get("value"))
                if num is None or len(values) != len(keys) or len(keys) != len(raw_keys):
                    continue
                end_time = parse_time(result.get("end_time"))
                dims = tuple(zip(keys, values, strict=True))
                yield InsightValue(name, period, end_time, num, dims)
    num = number(total.get("value"))
    if with_total and num is not None:
        yield InsightValue(name, period, None, num)


def samples_from_values(
    ctx: PollContext,
    spec: MetricSpec,
    values: Iterator[InsightValue] | Sequence[InsightValue],
    *,
    object_id: str,
    labels: Mapping[str, str],
    with_period: bool = True,
    dict_label: str = "key",
) -> list[Sample]:
    """Samples of ``spec`` from parsed values, named and labelled as collectord names families.

    A plain value keeps ``spec.prom_name``; a dict value keeps it too, with the dict key
    under ``dict_label``; a breakdown row goes to ``<name>_by_<dimensions>`` with one label
    per dimension (``timeframe`` is a label but not part of the family name). ``period`` is
    a label when ``with_period`` is set.
    """
    out: list[Sample] = []
    for v in values:
        lab = dict(labels)
        if with_period and v.period:
            lab["period"] = v.period
        metric = spec.prom_name
        if v.dims:
            named = [k for k, _ in v.dims if k != "timeframe"] or [k for k, _ in v.dims]
            metric = breakdown_name(spec.prom_name, ",".join(named))
            for k, dv in v.dims:
                lab[k] = dv
        if v.key is not None:
            lab[dict_label] = v.key
        out.append(
            ctx.sample(
                spec,
                v.value,
                object_id=object_id,
                labels=lab,
                period=v.period,
                end_time=v.end_time,
                metric=metric,
            )
        )
    return out
