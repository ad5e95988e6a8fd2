"""``facebook_app``: a Facebook app's active-user counts and its App Insights metrics.

Exposition, for a source ``acme-app`` (values invented)::

    facebook_app_daily_active_users{source="acme-app",app_id="4321"} 1520.0
    facebook_app_api_calls{source="acme-app",app_id="4321",period="daily"} 98211.0
    facebook_app_api_avg_request_time_seconds{source="acme-app",app_id="4321",period="daily"} 0.182
    facebook_app_api_calls_by_client{source="acme-app",app_id="4321",period="daily",client="android"} 51200.0

The App Insights edge takes the metric in the path:
``GET {app_id}/app_insights/{metric}?period=daily&breakdowns[0]=client&aggregateBy=COUNT``
``&since=..&until=..``. One request per metric, sent as batch requests (50 per
HTTP request). ``period``, ``breakdowns`` and ``aggregate_by`` are the source's and apply to
every metric; the ``period`` label is the requested period. With ``breakdowns`` the series go
to ``facebook_app_<metric>_by_<breakdowns joined by _>``, one label per breakdown. Custom app
events are asked for as ``metrics = ["app_event:<event name>"]`` (``event_name=``), exported
as ``facebook_app_app_event_<event name>``.

**Meta retired Facebook Analytics in 2021** (docs/meta-facts.md 4), and with it most of this edge,
so no App Insights metric is in the default set: a source asks for them by listing them in
``metrics``. A metric that Meta answers as invalid or unsupported (code 100, 2500, or "does not support
this operation") is disabled for the source: reported once in the log, exported as
``collectord_metric_disabled{metric,reason}``, never requested again by this process, and
never a failed poll by itself. The app node's active-user fields (``daily_active_users``,
``weekly_active_users``, ``monthly_active_users``, strings in Meta's answer) are read on the
fast cadence; the insights are daily.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import collectord
from collectord import (
    GraphError,
    MetricSpec,
    Option,
    Outcome,
    PollContext,
    PollResult,
    Requests,
    Sample,
    Secret,
    SourcePlugin,
    breakdown_name,
    disable_reason,
    field_samples,
    is_metric_error,
    number,
    parse_entries,
    parse_time,
)

from .facebook_app_catalogue import AGGREGATIONS, BREAKDOWNS, CATALOGUE, PERIODS, insight

__all__ = ["CATALOGUE", "AppRow", "FacebookApp", "parse_app_rows", "register_source_plugins"]

EDGE = "app_insights"
#: ``metrics = ["app_event:<name>"]`` reads the custom app event ``<name>``.
APP_EVENT = "app_event"

#: How far back each period is read (``lifetime`` takes no range; ``range`` sums this span).
LOOKBACK: Mapping[str, timedelta] = {
    "mins_15": timedelta(hours=2),
    "hourly": timedelta(days=1),
    **dict.fromkeys(("daily", "weekly", "days_28", "monthly"), timedelta(days=3)),
    "range": timedelta(days=28),
}
#: The step between data points. A row's ``time`` starts its step: the Pacific midnight
#: starting the day for daily-style periods, whose weekly, 28-day and monthly values are
#: rolling windows ending with that day.
STEP: Mapping[str, timedelta] = {
    "mins_15": timedelta(minutes=15),
    "hourly": timedelta(hours=1),
    **dict.fromkeys(("daily", "weekly", "days_28", "monthly"), timedelta(days=1)),
}

OPTIONS: tuple[Option, ...] = (
    Option("app_id", "id", help="The numeric id of the app whose insights are read."),
    Option("period", "str", default="daily", choices=PERIODS, help="Period of every metric."),
    Option(
        "breakdowns",
        "str_list",
        default=(),
        choices=BREAKDOWNS,
        help="App Insights breakdowns to request, each sent as breakdowns[n] (for example country).",
    ),
    Option(
        "aggregate_by",
        "str",
        default=None,
        choices=AGGREGATIONS,
        help="How App Insights aggregates each value (its aggregateBy parameter); Meta's default when unset.",
    ),
)


class FacebookApp(SourcePlugin):
    """Reads one app: its active-user fields, and one App Insights request per metric."""

    name = "facebook_app"
    version = collectord.__version__
    description = "Facebook app active users and App Insights (retired by Meta in 2021)"
    options = OPTIONS
    #: None: its usual token, the app token, carries no scopes (a user token needs read_insights).
    scopes = ()
    catalogue = CATALOGUE

    def validate(self, options: Mapping[str, Any]) -> list[str]:
        problems: list[str] = []
        breakdowns = tuple(options.get("breakdowns") or ())
        aggregate = options.get("aggregate_by")
        if aggregate == "TOPK" and not breakdowns:
            problems.append("aggregate_by: 'TOPK' ranks combinations of breakdowns; set breakdowns")
        level = [b for b in breakdowns if b.startswith("acquisition_source_l")]
        if level and aggregate != "COUNT":
            problems.append(f"breakdowns: {level[0]!r} is only valid with aggregate_by = 'COUNT'")
        if ("age" in breakdowns) != ("gender" in breakdowns):
            problems.append("breakdowns: 'age' and 'gender' must be used together")
        return problems

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        if graph_name == APP_EVENT:
            return None  # needs an event name: app_event:<name>
        if graph_name.startswith(f"{APP_EVENT}:"):
            event = graph_name.partition(":")[2]
            return insight(graph_name, PERIODS, f"App event {event!r}.") if event else None
        # Any other name may be asked for: Meta decides, and a rejected one is disabled.
        return insight(graph_name, (), f"App insight {graph_name}.")

    def default_access_token(self, app_id: str | None, app_secret: Secret | None) -> str | None:
        """The app token ``app_id|app_secret`` when ``[graph]`` sets both."""
        secret = app_secret.reveal() if isinstance(app_secret, Secret) else app_secret
        if app_id and secret:
            return f"{app_id}|{secret}"
        return None

    async def collect(self, ctx: PollContext) -> PollResult:
        app_id = str(ctx.options["app_id"])
        samples: list[Sample] = []
        fields = ctx.metrics(kind="field")
        if fields:
            samples += await _field_samples(ctx, app_id, fields)
        insights = _offering_period(ctx, ctx.metrics(kind="insight"))
        if insights:
            samples += await _insight_samples(ctx, app_id, insights)
        return ctx.result(samples)


def _offering_period(ctx: PollContext, insights: Sequence[MetricSpec]) -> list[MetricSpec]:
    """The metrics that offer the source's ``period`` (the catalogue lists each metric's
    periods); the others are disabled without asking Meta. A metric the catalogue does not
    know (``periods`` empty) is asked for, and Meta decides."""
    period = str(ctx.options["period"])
    offered: list[MetricSpec] = []
    for spec in insights:
        if spec.periods and period not in spec.periods:
            ctx.disable_metric(spec.graph_name, "unsupported_period")
        else:
            offered.append(spec)
    return offered


async def _field_samples(
    ctx: PollContext, app_id: str, fields: Sequence[MetricSpec]
) -> list[Sample]:
    """The app node's fields. A field Meta rejects is disabled and the others read."""
    names = [f.graph_name for f in fields]
    try:
        node = await ctx.graph.get(app_id, {"fields": ",".join(names)})
    except GraphError as err:
        if not is_metric_error(err):
            raise  # the app itself, the token, Meta
        node = {}
        for name in names:  # find the culprit: one request per field, once
            try:
                node.update(await ctx.graph.get(app_id, {"fields": name}))
            except GraphError as one:
                if not is_metric_error(one):
                    raise
                ctx.disable_metric(name, disable_reason(one))
    return field_samples(ctx, fields, node, object_id=app_id, labels={"app_id": app_id})


def _params(ctx: PollContext, spec: MetricSpec) -> dict[str, str]:
    """The query of one metric's request: the source's period, breakdowns, aggregation
    and time range, and the event name of an ``app_event:<name>`` metric."""
    period = str(ctx.options["period"])
    params: dict[str, str] = {"period": period}
    for i, bd in enumerate(ctx.options.get("breakdowns") or ()):
        params[f"breakdowns[{i}]"] = bd
    if ctx.options.get("aggregate_by"):
        params["aggregateBy"] = str(ctx.options["aggregate_by"])
    if period in LOOKBACK:
        params["since"] = str(int((ctx.now - LOOKBACK[period]).timestamp()))
        params["until"] = str(int(ctx.now.timestamp()))
    event = spec.graph_name.partition(":")[2]
    if event:
        params["event_name"] = event
    return params


#: Answers about the app that end the poll: the token cannot read its insights.
_DENIED = frozenset({Outcome.PERMISSION, Outcome.TOO_FEW_VIEWERS})


async def _insight_samples(
    ctx: PollContext, app_id: str, insights: Sequence[MetricSpec]
) -> list[Sample]:
    requests: Requests[MetricSpec] = Requests()
    for spec in insights:
        requests.add(
            spec,
            app_id,
            (spec.graph_name.partition(":")[0],),
            _params(ctx, spec),
            edge=EDGE,
            metric_in_path=True,
            disable_as=spec.graph_name,  # app_event:<name>, one event at a time
        )
    period = str(ctx.options["period"])
    breakdowns = tuple(ctx.options.get("breakdowns") or ())
    out: list[Sample] = []
    for spec, answer in await requests.fetch(ctx):
        if isinstance(answer, GraphError):
            if answer.outcome in _DENIED:
                raise answer  # the token cannot read this app
            # "does not support this operation" (100/33): the retired edge
            ctx.disable_metric(spec.graph_name, "unsupported")
            continue
        for row in parse_app_rows(answer, period):
            labels = {"app_id": app_id, "period": period}
            metric = spec.prom_name
            if row.dims:
                dims = dict(row.dims)
                names = list(breakdowns) or list(dims)
                metric = breakdown_name(spec.prom_name, ",".join(names))
                labels.update({n: dims.get(n, "") for n in names})
            if row.key is not None:
                labels["key"] = row.key
            out.append(
                ctx.sample(
                    spec,
                    row.value,
                    object_id=app_id,
                    labels=labels,
                    period=period,
                    end_time=row.end_time,
                    metric=metric,
                )
            )
    return out


@dataclass(frozen=True)
class AppRow:
    """One number of an App Insights answer: its breakdown values or dict key, and the end
    of the interval it covers (None when unknown)."""

    value: float
    end_time: datetime | None
    dims: tuple[tuple[str, str], ...] = ()
    key: str | None = None


def parse_app_rows(entries: Sequence[Mapping[str, Any]], period: str) -> Iterator[AppRow]:
    """Flatten the ``data`` of an App Insights answer.

    The edge answers rows ``{"time": "2026-11-22T08:00:00+0000", "value": "132",
    "breakdowns": {"client": "android"}}`` (values often strings; ``time`` starts the
    interval); entries in the ``/insights`` shape (``name``, ``values``) are read as such.
    Non-numeric values are skipped, never turned into zeros.
    """
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        if "values" in entry or "total_value" in entry:
            for v in parse_entries([entry]):
                yield AppRow(v.value, v.end_time, v.dims, v.key)
            continue
        end_time = _interval_end(parse_time(entry.get("time")), period)
        raw = entry.get("breakdowns")
        dims = (
            tuple((str(k), str(v)) for k, v in raw.items() if v is not None)
            if isinstance(raw, Mapping)
            else ()
        )
        value = entry.get("value")
        if isinstance(value, Mapping):
            for key, sub in value.items():
                num = number(sub)
                if num is not None:
                    yield AppRow(num, end_time, dims, str(key))
            continue
        num = number(value)
        if num is not None:
            yield AppRow(num, end_time, dims)


def _interval_end(start: datetime | None, period: str) -> datetime | None:
    """The end of the step a row's ``time`` starts (None for ``lifetime`` and ``range``)."""
    if start is None or period not in STEP:
        return None
    return start + STEP[period]


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [FacebookApp()]
