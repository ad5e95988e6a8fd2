"""The app node and its ``app_insights`` edge, as the v2.8-era reference describes them.

``GET /{app}/app_insights/{metric}`` (or ``?metric_key=``) with ``period`` (``daily``
default; ``weekly``, ``monthly``, ``days_28``, ``range``, ``hourly``/``mins_15`` for
metrics listed with hourly data, ``lifetime`` for ``facebook_login_total_users``),
``since``/``until``, ``breakdowns[0]=country`` style breakdowns (also a JSON list or a
comma list in ``breakdowns``), ``aggregateBy``, ``event_name`` (required for
``app_event``) and ``summary=true``. It needs the app token.

Answer shape (one data point per time bucket and breakdown combination; zero rows left
out; ``value`` is a numeric string as the Analytics-era API sent it; ``time`` is the
start of the bucket: the Pacific midnight that starts the day for daily-style periods,
whose ``weekly``/``days_28``/``monthly`` values are rolling windows ending with that
day)::

    {"data": [{"time": "2026-03-01T08:00:00+0000", "value": "1234",
               "breakdowns": {"country": "US"}}, ...],
     "paging": {"previous": "...", "next": "..."},
     "summary": {"name": "api_calls", "period": "daily", "since": "...", "until": "..."}}

The edge died in 2021 (docs/meta-facts.md 4): with ``World(app_insights_retired=True)`` or the
``app_insights_retired`` fault every call answers code 100 (:func:`retired_error`).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from collectord.simulator.access import require_app_token
from collectord.simulator.app_metrics import (
    AGGREGATIONS,
    BREAKDOWN_VALUES,
    GENERIC_BREAKDOWNS,
    METRICS,
    PERIODS,
    app_field_value,
    breakdown_values,
    point_value,
    supported_periods,
)
from collectord.simulator.base import (
    SimError,
    SimRequest,
    fb_time,
    invalid_metric_error,
    pacific_midnight_on_or_before,
    quantize,
    require,
)
from collectord.simulator.errors import graph_error, no_metric, nonexisting_field, unknown_path
from collectord.simulator.timewin import (
    Window,
    pacific_midnight_days_before,
    query_window,
    reject_unknown,
    window_paging,
)

if TYPE_CHECKING:
    from collectord.simulator.world import World

APP_FIELDS = (
    "id",
    "name",
    "category",
    "link",
    "namespace",
    "company",
    "daily_active_users",
    "weekly_active_users",
    "monthly_active_users",
    "daily_active_users_rank",
    "monthly_active_users_rank",
)


def retired_error() -> SimError:
    """What the retired edge answers (docs/meta-facts.md 4): code 100, "unsupported"."""
    return graph_error(
        100,
        "(#100) Unsupported get request: the app_insights edge is no longer supported on node "
        "type (Application)",
    )


# -- handlers ----------------------------------------------------------------------------


def handle_app(world: World, req: SimRequest, *, retired: bool) -> dict[str, Any]:
    """``GET /{app}`` (fields) and ``GET /{app}/app_insights[/{metric}]``."""
    if req.edge is None:
        fields = [f.strip() for f in (req.params.get("fields") or "id,name").split(",") if f]
        for name in fields:
            if name not in APP_FIELDS:
                raise nonexisting_field(name, "Application")
        return {name: app_field_value(world, name) for name in fields}
    if req.edge != "app_insights":
        raise unknown_path(req.edge)
    require_app_token(req, world.app_id)
    if retired:
        raise retired_error()
    return app_insights(world, req)


def parse_breakdowns(params: dict[str, str]) -> list[str]:
    """``breakdowns[0]=a&breakdowns[1]=b``, ``breakdowns=["a","b"]`` or ``breakdowns=a,b``."""
    indexed = sorted(
        (int(k[len("breakdowns[") : -1]), v)
        for k, v in params.items()
        if k.startswith("breakdowns[") and k.endswith("]") and k[len("breakdowns[") : -1].isdigit()
    )
    names = [v for _, v in indexed]
    raw = params.get("breakdowns", "").strip()
    if raw.startswith("["):
        try:
            names += [str(v) for v in json.loads(raw)]
        except ValueError:
            raise graph_error(100, "(#100) breakdowns must be a list of strings") from None
    elif raw:
        names += [v.strip() for v in raw.split(",") if v.strip()]
    known = (*BREAKDOWN_VALUES, *GENERIC_BREAKDOWNS)
    for i, name in enumerate(names):
        reject_unknown(name, known, f"breakdowns[{i}]")
    return names


def _times(period: str, params: dict[str, str], now: datetime) -> tuple[Window, list[datetime]]:
    """The query window and the ``time`` of each data point."""
    if period in ("hourly", "mins_15"):
        step = timedelta(minutes=15 if period == "mins_15" else 60)
        last = quantize(now, step.total_seconds())
        window = query_window(params, now, max_span=timedelta(days=7))
        if not params.get("since") and not params.get("until"):
            window = Window(last - (16 if period == "mins_15" else 24) * step, last, ())
        first = quantize(window.since, step.total_seconds())
        count = int((min(window.until, last) - first) / step)
        return window, [first + i * step for i in range(max(count, 0))]
    if period == "lifetime":
        midnight = pacific_midnight_on_or_before(now)
        return Window(midnight - timedelta(days=1), midnight, (midnight,)), [midnight]
    default_days = 7 if period == "range" else 2
    window = query_window(params, now, default_days=default_days)
    if period == "range":
        return window, [window.since]
    return window, [pacific_midnight_days_before(end, 1) for end in window.end_times]


def app_insights(world: World, req: SimRequest) -> dict[str, Any]:
    """The body of ``/{app}/app_insights/{metric}``."""
    params = req.params
    metric = req.rest[0] if req.rest else params.get("metric_key") or params.get("metric")
    if not metric:
        raise no_metric()
    if metric not in METRICS:
        raise invalid_metric_error()
    event_name = require(params, "event_name") if metric == "app_event" else None
    period = params.get("period") or "daily"
    reject_unknown(period, PERIODS, "period")
    if period not in supported_periods(metric):
        raise graph_error(100, f"(#100) The period {period} is not supported for {metric}")
    aggregate_by = params.get("aggregateBy") or params.get("aggregate_by")
    if aggregate_by:
        reject_unknown(aggregate_by.upper(), tuple(AGGREGATIONS), "aggregateBy")
    names = parse_breakdowns(params)
    window, times = _times(period, params, req.now)
    combos: list[dict[str, str]] = [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(breakdown_values(n) for n in names))
    ]
    data = []
    for t in times:
        points = []
        for combo in combos:
            value = point_value(
                world,
                metric,
                period,
                t,
                breakdowns=combo or None,
                aggregate_by=aggregate_by,
                event_name=event_name,
                until=window.until,
            )
            if value:
                point: dict[str, Any] = {"time": fb_time(t), "value": str(value)}
                if combo:
                    point["breakdowns"] = combo
                points.append(point)
        if (aggregate_by or "").upper() == "TOPK":
            points = sorted(points, key=lambda p: -float(p["value"]))[:10]
        data.extend(points)
    body: dict[str, Any] = {"data": data}
    if period != "lifetime":
        body["paging"] = window_paging(req, window)
    if params.get("summary", "").lower() not in ("", "false", "0"):
        body["summary"] = {
            "name": metric,
            "period": period,
            "since": fb_time(window.since),
            "until": fb_time(window.until),
        }
    return body
