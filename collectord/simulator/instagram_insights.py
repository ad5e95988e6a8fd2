"""``/{ig-user}/insights`` and ``/{ig-media}/insights`` of the simulator.

Requests are validated the way Meta does it (docs/meta-facts.md 5.3, 6.2 to 6.5): any unknown
or retired metric, wrong ``metric_type``, unsupported breakdown or product type fails the
whole call. Answer shapes follow 5.4 and 6.3:

- total_value: ``{"name", "period": "day", "title", "description",
  "total_value": {"value": N, "breakdowns": [{"dimension_keys": [...],
  "results": [{"dimension_values": [...], "value": n}]}]}, "id"}``.
- time_series (reach, follower_count): ``"values": [{"value", "end_time"}]`` with one entry
  per Pacific midnight in ``(since, until]``; online_followers has ``period: lifetime`` and a
  dict of hours ``"0".."23"`` as each value.
- demographics: ``total_value`` has no ``value``, only ``breakdowns`` whose
  ``dimension_keys`` are ``["timeframe", *breakdown]`` (for example
  ``["timeframe", "age", "gender"]``) and whose results read
  ``{"dimension_values": ["THIS_MONTH", "25-34", "F"], "value": 812}``; top 45 results,
  no ``end_time``.
- media: ``period: lifetime``, ``values: [{"value"}]`` without ``end_time``; with a breakdown
  a ``total_value`` block is added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from collectord.simulator.base import (
    SimError,
    SimRequest,
    fb_time,
    object_missing_error,
    pacific_day_ends,
    parse_time_param,
    require,
    split_csv,
)
from collectord.simulator.instagram_catalog import (
    MAX_WINDOW_DAYS,
    MEDIA_METRICS,
    RETIRED_TIMEFRAMES,
    TIMEFRAMES,
    USER_DIMENSIONS,
    USER_METRICS,
    UserMetric,
    bad_enum_error,
    carousel_child_error,
    media_impressions_error,
    metric_type_error,
    not_crossposted_error,
    not_enough_viewers_error,
    period_error,
    pre_conversion_error,
    product_type_error,
    unknown_error,
    user_impressions_error,
    window_error,
)
from collectord.simulator.instagram_model import IgAccount, IgChild, IgMedia

if TYPE_CHECKING:
    from collectord.simulator.instagram_view import InstagramView


@dataclass
class _Result:
    """One metric's answer before it is shaped into JSON."""

    total: int | None = None
    breakdown: dict[tuple[str, ...], int] | None = None
    series: list[tuple[datetime, Any]] | None = None


def _window(
    now: datetime,
    since: datetime | None,
    until: datetime | None,
) -> tuple[datetime, datetime]:
    """The requested ``[since, until)`` (default: the 24 h before ``now``); over 30 days fails."""
    if since is None and until is None:
        return now - timedelta(days=1), now
    if until is None:
        until = now
    if since is None:
        since = until - timedelta(days=1)
    if until < since:
        raise SimError(100, "(#100) The since parameter must be earlier than until")
    if until - since > timedelta(days=MAX_WINDOW_DAYS):
        raise window_error()
    return since, until


def _compute(
    world: InstagramView,
    acct: IgAccount,
    spec: UserMetric,
    *,
    now: datetime,
    metric_type: str | None,
    dims: list[str],
    timeframe: str | None,
    since: datetime | None,
    until: datetime | None,
) -> _Result | None:
    """The value of one valid metric, or None when Meta has no data (accounts under 100
    followers on follower metrics)."""
    at = world.step(now)
    values = world.values
    if spec.follower_gated and values.followers(acct, at) < 100:
        return None
    if spec.kind == "demographic":
        tf = timeframe or "this_month"
        return _Result(breakdown=values.demographics(acct, spec.name, tf, at, dims))
    lo, hi = _window(at, since, until)
    hi = min(hi, at)  # no data from the future
    if spec.kind == "series" or metric_type != "total_value":
        ends = pacific_day_ends(lo, hi)
        if spec.name == "online_followers":
            return _Result(series=[(e, values.online_followers(acct, e)) for e in ends])
        return _Result(series=values.daily_series(acct, spec.name, ends, at))
    if spec.name == "follows_and_unfollows":
        split = values.follows_split(acct, lo, hi, at) if hi > lo else {}
        total = sum(split.values())
        return _Result(
            total=total, breakdown={(k,): v for k, v in split.items() if v} if dims else None
        )
    total = values.window_total(acct, spec.name, lo, hi, at)
    return _Result(
        total=total, breakdown=values.split(acct, spec.name, total, dims) if dims else None
    )


def user_metric_value(
    world: InstagramView,
    acct: IgAccount,
    metric: str,
    *,
    now: datetime,
    metric_type: str | None = None,
    breakdown: str | None = None,
    timeframe: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Any:
    """Ground truth of one account metric, in the most comparable shape:

    ``int`` (total_value), ``{key: int}`` (a breakdown or demographics; the key is the
    dimension value, or a tuple of values for a combined breakdown, without the
    timeframe), ``[{"value", "end_time"}]`` (time series, as in the answer), or None (no
    data for a small account).
    """
    dims = split_csv(breakdown)
    res = _compute(
        world,
        acct,
        USER_METRICS[metric],
        now=now,
        metric_type=metric_type,
        dims=dims,
        timeframe=timeframe,
        since=since,
        until=until,
    )
    if res is None:
        return None
    if res.series is not None:
        return [{"value": v, "end_time": fb_time(e)} for e, v in res.series]
    if res.breakdown is not None:
        return {(k[0] if len(k) == 1 else k): v for k, v in res.breakdown.items()}
    return res.total


def _parse_time(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_time_param(raw)
    except ValueError:
        raise SimError(100, f"(#100) The parameter {name} is not a valid time") from None


def _validate_user(params: dict[str, str]) -> tuple[list[UserMetric], str | None, list[str]]:
    names = split_csv(require(params, "metric"))
    for i, name in enumerate(names):
        if name == "impressions":
            raise user_impressions_error()
        if name not in USER_METRICS:
            raise bad_enum_error("metric", i, list(USER_METRICS))
    specs = [USER_METRICS[n] for n in names]
    metric_type = params.get("metric_type") or None
    if metric_type not in (None, "total_value", "time_series"):
        raise bad_enum_error("metric_type", None, ("time_series", "total_value"))
    if metric_type == "total_value":
        series_only = [s.name for s in specs if s.kind == "series"]
        if series_only:
            raise metric_type_error(series_only, "time_series")
    else:
        totals_only = [s.name for s in specs if s.kind in ("total", "demographic")]
        if totals_only:
            raise metric_type_error(totals_only, "total_value")
    period = params.get("period")
    for s in specs:
        if period and period != s.period:
            raise period_error(s.name, period)
    dims = split_csv(params.get("breakdown"))
    for i, d in enumerate(dims):
        if d not in USER_DIMENSIONS:
            raise bad_enum_error("breakdown", i, USER_DIMENSIONS)
    if metric_type != "total_value":
        dims = []  # time series ignore breakdowns
    elif dims and any(not set(dims) <= s.breakdowns for s in specs):
        raise unknown_error()
    demographic = [s.name for s in specs if s.kind == "demographic"]
    if demographic:
        tf = params.get("timeframe")
        if not tf:
            raise SimError(
                100,
                f"(#100) The parameter timeframe is required for the "
                f"metrics ({', '.join(demographic)})",
            )
        if tf in RETIRED_TIMEFRAMES:
            raise SimError(
                100,
                f"(#100) The timeframe {tf} is no longer supported from "
                "v20.0; use this_week or this_month",
            )
        if tf not in TIMEFRAMES:
            raise bad_enum_error("timeframe", None, TIMEFRAMES)
        if not dims:
            raise SimError(
                100,
                f"(#100) The metrics ({', '.join(demographic)}) require a "
                "breakdown: age, city, country or gender",
            )
    return specs, metric_type, dims


def _paging_url(req: SimRequest, since: datetime, until: datetime) -> str:
    query = {
        "access_token": req.raw_token,
        **req.params,
        "since": str(int(since.timestamp())),
        "until": str(int(until.timestamp())),
    }
    path = "/".join(p for p in (req.version, req.node_id, req.edge) if p)
    return f"{req.base_url}/{path}?{urlencode(query)}"


def user_insights(world: InstagramView, acct: IgAccount, req: SimRequest) -> dict[str, Any]:
    """Answer ``GET /{ig-user-id}/insights``."""
    params = req.params
    specs, metric_type, dims = _validate_user(params)
    since, until = _parse_time(params, "since"), _parse_time(params, "until")
    timeframe = params.get("timeframe")
    data = []
    for spec in specs:
        res = _compute(
            world,
            acct,
            spec,
            now=req.now,
            metric_type=metric_type,
            dims=dims,
            timeframe=timeframe,
            since=since,
            until=until,
        )
        if res is None:
            continue
        period = spec.period
        entry: dict[str, Any] = {
            "name": spec.name,
            "period": period,
            "title": spec.title,
            "description": spec.description,
        }
        if res.series is not None:
            entry["values"] = [{"value": v, "end_time": fb_time(e)} for e, v in res.series]
        else:
            block: dict[str, Any] = {} if res.total is None else {"value": res.total}
            if res.breakdown is not None:
                keys = list(dims)
                prefix: list[str] = []
                if spec.kind == "demographic":
                    keys, prefix = ["timeframe", *dims], [str(timeframe).upper()]
                block["breakdowns"] = [
                    {
                        "dimension_keys": keys,
                        "results": [
                            {"dimension_values": [*prefix, *k], "value": v}
                            for k, v in res.breakdown.items()
                        ],
                    }
                ]
            entry["total_value"] = block
        entry["id"] = f"{acct.id}/insights/{spec.name}/{period}"
        data.append(entry)
    body: dict[str, Any] = {"data": data}
    if any(s.kind != "demographic" for s in specs):
        lo, hi = _window(world.step(req.now), since, until)
        span = hi - lo
        body["paging"] = {
            "previous": _paging_url(req, lo - span, lo),
            "next": _paging_url(req, hi, hi + span),
        }
    return body


def media_insights(
    world: InstagramView, node: IgMedia | IgChild, req: SimRequest
) -> dict[str, Any]:
    """Answer ``GET /{ig-media-id}/insights`` for a post, reel, story or carousel child."""
    names = split_csv(require(req.params, "metric"))
    for i, name in enumerate(names):
        if name not in MEDIA_METRICS:
            raise bad_enum_error("metric", i, list(MEDIA_METRICS))
    if isinstance(node, IgChild):
        raise carousel_child_error()
    if node.is_story and not world.is_live(node, req.now):
        raise object_missing_error(node.id)
    if node.pre_conversion:
        raise pre_conversion_error()
    for name in names:
        spec = MEDIA_METRICS[name]
        if node.product_type not in spec.products:
            raise product_type_error(name)
        if name == "impressions" and not node.legacy:
            raise media_impressions_error()
        if spec.needs_crosspost and not node.crossposted:
            raise not_crossposted_error(name)
    dims = split_csv(req.params.get("breakdown"))
    if dims and (len(dims) > 1 or any(MEDIA_METRICS[n].breakdown != dims[0] for n in names)):
        raise unknown_error()
    values = world.media_values(node, req.now)
    if node.is_story and int(values["reach"]) < 5:
        raise not_enough_viewers_error()
    data = []
    for name in names:
        value = values[name]
        entry: dict[str, Any] = {
            "name": name,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": MEDIA_METRICS[name].title,
            "description": MEDIA_METRICS[name].description,
        }
        if dims:
            by = values[f"{name}_by"]
            assert isinstance(by, dict)
            entry["total_value"] = {
                "value": value,
                "breakdowns": [
                    {
                        "dimension_keys": dims,
                        "results": [{"dimension_values": [k], "value": v} for k, v in by.items()],
                    }
                ],
            }
        entry["id"] = f"{node.id}/insights/{name}/lifetime"
        data.append(entry)
    return {"data": data}
