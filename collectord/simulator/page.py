"""The Page node, its fields and its insights (docs/meta-facts.md 2).

``GET /{page}?fields=...``: one unknown field fails the whole call (code 100), one
unauthorised field (``business``) fails it with 403 ``(#200)``. Expansions:
``instagram_business_account{id,username}``, ``insights.metric(..).period(..)`` and
``posts.limit(n){...}``.

``GET /{page}/insights?metric=a,b[&period=][&since=&until=|&date_preset=][&breakdown=]``
and the ``/insights/{metric}[/{period}]`` forms: without ``period`` each metric comes
once per period it supports; a metric that does not support the requested period is
left out, as is a metric without data; one unknown or retired metric fails the whole
call. ``breakdown=is_from_ads`` (or ``is_from_followers``) on ``page_media_view`` puts
each day twice in ``values``, with the flag as a string ``"0"``/``"1"``; the monetisation
breakdowns (``earning_source``, ``monetization_tool``) put it once per key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from collectord.simulator.access import require_page_reader, require_page_token
from collectord.simulator.base import (
    SimRequest,
    daily_rhythm,
    fb_time,
    invalid_metric_error,
    split_csv,
)
from collectord.simulator.errors import (
    no_metric,
    nonexisting_field,
    permission_error,
    unknown_path,
)
from collectord.simulator.fields import FieldSpec, format_fields, parse_fields
from collectord.simulator.page_metrics import (
    ALL_PERIODS,
    PAGE_METRICS,
    followers_total,
    is_monetised,
    over_range,
    page_value,
    split_value,
    title,
)
from collectord.simulator.posts import POST_EDGES, list_posts
from collectord.simulator.timewin import Window, query_window, reject_unknown, window_paging

if TYPE_CHECKING:
    from collectord.simulator.world_view import PageInfo, WorldView

BREAKDOWNS = ("is_from_ads", "is_from_followers", "earning_source", "monetization_tool")
_NUMERIC_FIELDS = (
    "fan_count",
    "followers_count",
    "talking_about_count",
    "checkins",
    "were_here_count",
)
_PLAIN_FIELDS = (
    "id",
    "name",
    "username",
    "category",
    "link",
    "about",
    "website",
    "verification_status",
    "has_transitioned_to_new_page_experience",
    "is_published",
    *_NUMERIC_FIELDS,
)
_GATED_FIELDS = {"business": "business_management", "leadgen_tos_accepted": "leads_retrieval"}


def handle_page(world: WorldView, req: SimRequest, page: PageInfo) -> dict[str, Any]:
    """Every request whose node is a Page (``req.node_id`` may be ``me``)."""
    if req.edge is None:
        require_page_reader(req, page.id)
        return page_node(world, req, page)
    if req.edge == "insights":
        require_page_token(req, page.id)
        return page_insights(world, req, page.id)
    if req.edge in POST_EDGES:
        require_page_token(req, page.id)
        return list_posts(world, req, page.id)
    raise unknown_path(req.edge)


def page_field_value(world: WorldView, page: PageInfo, name: str) -> Any:
    """The value of a plain Page field now (ground truth for tests)."""
    now = world.now_q()
    followers = followers_total(world, page.id, now)
    numbers = {
        "followers_count": followers,
        "fan_count": round(followers * 0.97),
        "talking_about_count": round(followers * 0.04 * daily_rhythm(now)),
        "checkins": 120,
        "were_here_count": 120,
    }
    if name in numbers:
        return numbers[name]
    return {
        "id": page.id,
        "name": page.name,
        "username": page.username,
        "category": page.category,
        "link": f"https://www.facebook.com/{page.username}",
        "about": f"{page.name}: a simulated Page served by collectord's Graph API simulator.",
        "website": "https://example.invalid/",
        "verification_status": "not_verified",
        "has_transitioned_to_new_page_experience": True,
        "is_published": True,
    }[name]


def page_node(
    world: WorldView, req: SimRequest, page: PageInfo, specs: list[FieldSpec] | None = None
) -> dict[str, Any]:
    """The Page's fields (``id,name`` by default), expansions included."""
    specs = specs if specs is not None else parse_fields(req.params.get("fields") or "id,name")
    for spec in specs:
        if spec.name in _GATED_FIELDS:
            raise permission_error(
                f"(#200) Requires {_GATED_FIELDS[spec.name]} permission to manage the object"
            )
        if spec.name not in (
            *_PLAIN_FIELDS,
            "access_token",
            "instagram_business_account",
            "insights",
            "tasks",
            *POST_EDGES,
        ):
            raise nonexisting_field(spec.name, "Page")
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name in _PLAIN_FIELDS:
            out[name] = page_field_value(world, page, name)
        elif name == "access_token":
            if req.token.kind in ("USER", "SYSTEM_USER", "PAGE"):
                out[name] = page.token
        elif name == "tasks":
            out[name] = ["MANAGE", "CREATE_CONTENT", "MODERATE", "ADVERTISE", "ANALYZE"]
        elif name == "instagram_business_account":
            if page.ig_user_id:
                out[name] = instagram_account(world, req, page.ig_user_id, spec.sub)
        elif name == "insights":
            require_page_token(req, page.id)
            params = {k: v for k, v in spec.modifiers.items()}
            out[name] = page_insights(world, req, page.id, params=params, paging=False)
        else:
            require_page_token(req, page.id)
            params = {k: v for k, v in spec.modifiers.items()}
            if spec.sub:
                params["fields"] = format_fields(spec.sub)
            out[name] = list_posts(world, req, page.id, params=params, path=f"{page.id}/{name}")
    if "id" not in out:
        out["id"] = page.id
    return out


def instagram_account(
    world: WorldView, req: SimRequest, ig_user_id: str, sub: tuple[FieldSpec, ...] | None
) -> dict[str, Any]:
    """``instagram_business_account{...}``: the id, or the IG user's fields when asked."""
    if not sub or world.instagram is None or [s.name for s in sub] == ["id"]:
        return {"id": ig_user_id}
    ig_req = SimRequest(
        method="GET",
        version=req.version,
        node_id=ig_user_id,
        edge=None,
        rest=(),
        params={"fields": format_fields(sub)},
        token=req.token,
        now=req.now,
        base_url=req.base_url,
        raw_token=req.raw_token,
    )
    return world.instagram.handle(ig_req)


def page_insights(
    world: WorldView,
    req: SimRequest,
    page_id: str,
    *,
    params: dict[str, str] | None = None,
    paging: bool = True,
) -> dict[str, Any]:
    """The body of ``/{page}/insights`` (or of the ``insights`` field expansion)."""
    params = req.params if params is None else params
    metric_text = req.rest[0] if req.rest else params.get("metric")
    names = split_csv(metric_text)
    if not names:
        raise no_metric()
    if any(name not in PAGE_METRICS for name in names):
        raise invalid_metric_error()
    period = req.rest[1] if len(req.rest) > 1 else params.get("period")
    if period:
        reject_unknown(period, ALL_PERIODS, "period")
    breakdowns = split_csv(params.get("breakdown"))
    for b in breakdowns:
        reject_unknown(b, BREAKDOWNS, "breakdown")
    window = query_window(params, req.now)
    data = []
    for name in names:
        for p in [period] if period else list(PAGE_METRICS[name].periods):
            entry = _entry(world, page_id, name, p, window, breakdowns)
            if entry is not None:
                data.append(entry)
    body: dict[str, Any] = {"data": data}
    if paging:
        body["paging"] = window_paging(req, window)
    return body


def _entry(
    world: WorldView, page_id: str, name: str, period: str, window: Window, breakdowns: list[str]
) -> dict[str, Any] | None:
    metric = PAGE_METRICS[name]
    if metric.monetised and not is_monetised(world, page_id):
        return None  # no data: Meta leaves the metric out
    values: list[dict[str, Any]] = []
    if period == "total_over_range":
        total = over_range(world, page_id, name, window.end_times)
        if total is None:
            return None
        values.append({"value": total, "end_time": fb_time(window.end_times[-1])})
    elif period not in metric.periods:
        return None
    else:
        usable = [b for b in breakdowns if b in metric.breakdowns]
        for end in window.end_times:
            value = page_value(world, page_id, name, period, end)
            stamp = fb_time(end)
            if not usable or not isinstance(value, int | float):
                values.append({"value": value, "end_time": stamp})
                continue
            for b in usable:
                for flag, part in split_value(world, page_id, name, b, value, end).items():
                    values.append({"value": part, "end_time": stamp, b: flag})
    heading, description = title(name, period)
    return {
        "name": name,
        "period": period,
        "values": values,
        "title": heading,
        "description": description,
        "id": f"{page_id}/insights/{name}/{period}",
    }
