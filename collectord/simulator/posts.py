"""Page posts: the ``/posts``-style edges, the post node and post insights (docs/meta-facts.md 3).

Listing uses cursor paging (``limit`` at most 100, ``after``/``before`` cursors,
``paging.next`` only while more posts follow). With ``World(empty_page=True)`` the
second page comes back empty but still carries ``next`` (privacy filtering, 11), so
clients must stop on a missing ``next``, not on a short page. ``since``/``until`` filter
on ``created_time``. ``fields`` may expand ``insights.metric(a,b).period(lifetime)``
(one invalid metric fails the whole list call), ``shares{count}`` (left out when
nothing was shared) and ``reactions``/``comments`` ``.summary(true).limit(0)``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from collectord.simulator.access import require_page_token
from collectord.simulator.base import (
    SimRequest,
    fb_time,
    invalid_metric_error,
    object_missing_error,
    parse_time_param,
    split_csv,
)
from collectord.simulator.cursors import decode_cursor, encode_cursor, parse_limit
from collectord.simulator.errors import (
    no_metric,
    nonexisting_field,
    unknown_path,
)
from collectord.simulator.fields import FieldSpec, parse_fields
from collectord.simulator.post_metrics import POST_METRICS, post_value, split_value, title
from collectord.simulator.timewin import (
    Window,
    graph_url,
    query_window,
    reject_unknown,
    request_path,
    window_paging,
)

if TYPE_CHECKING:
    from collectord.simulator.world_view import Post, WorldView

DEFAULT_FIELDS = "created_time,message,id"
POST_EDGES = ("posts", "published_posts", "feed")
POST_PERIODS = ("lifetime", "day", "week", "days_28", "month", "total_over_range")
_SIMPLE_FIELDS = {
    "id",
    "created_time",
    "updated_time",
    "message",
    "permalink_url",
    "full_picture",
    "status_type",
    "is_published",
    "is_hidden",
    "from",
}
_EXPANDED_FIELDS = {"shares", "insights", "reactions", "comments"}
_BREAKDOWNS = ("is_from_ads", "is_from_followers")


# -- listing ----------------------------------------------------------------------------


def validate_post_fields(specs: list[FieldSpec] | tuple[FieldSpec, ...]) -> None:
    """Fail the whole call on an unknown field or an invalid expanded metric."""
    for spec in specs:
        if spec.name not in _SIMPLE_FIELDS | _EXPANDED_FIELDS:
            raise nonexisting_field(spec.name, "PagePost")
        if spec.name == "insights":
            _metric_names(spec.modifiers.get("metric"))


def list_posts(
    world: WorldView,
    req: SimRequest,
    page_id: str,
    *,
    params: dict[str, str] | None = None,
    specs: list[FieldSpec] | tuple[FieldSpec, ...] | None = None,
    path: str | None = None,
) -> dict[str, Any]:
    """One page of a Page's posts (``/{page}/posts``, or the ``posts`` field expansion)."""
    params = req.params if params is None else params
    limit = parse_limit(params)
    specs = specs or parse_fields(params.get("fields") or DEFAULT_FIELDS)
    validate_post_fields(specs)
    posts = world.posts(page_id)
    if params.get("since"):
        since = parse_time_param(params["since"])
        posts = [p for p in posts if p.created_time >= since]
    if params.get("until"):
        until = parse_time_param(params["until"])
        posts = [p for p in posts if p.created_time <= until]
    offset, page_no, empty_served = 0, 0, False
    if params.get("after"):
        cursor = decode_cursor(params["after"])
        offset, page_no = cursor.get("o", 0), cursor.get("p", 0)
        empty_served = bool(cursor.get("e", 0))
    elif params.get("before"):
        cursor = decode_cursor(params["before"])
        offset = max(0, cursor.get("o", 0) - limit)
        page_no, empty_served = max(0, cursor.get("p", 0) - 1), True
    base = {k: v for k, v in params.items() if k not in ("after", "before")}
    base["limit"] = str(limit)
    path = path or request_path(req)

    def link(**cursor: str) -> str:
        return graph_url(req, path, {**base, **cursor})

    if world.empty_page and page_no == 1 and not empty_served and offset < len(posts):
        here = encode_cursor(o=offset, p=page_no, e=1)
        return {
            "data": [],
            "paging": {"cursors": {"before": here, "after": here}, "next": link(after=here)},
        }
    chunk = posts[offset : offset + limit]
    end = offset + len(chunk)
    paging: dict[str, Any] = {
        "cursors": {
            "before": encode_cursor(o=offset, p=page_no, e=1),
            "after": encode_cursor(o=end, p=page_no + 1, e=0),
        }
    }
    if offset > 0:
        paging["previous"] = link(before=paging["cursors"]["before"])
    if end < len(posts):
        paging["next"] = link(after=paging["cursors"]["after"])
    return {"data": [render_post(world, req, p, specs) for p in chunk], "paging": paging}


def _count(world: WorldView, post: Post, metric: str, key: str | None = None) -> int:
    value = post_value(world, post, metric)
    if isinstance(value, dict):
        return sum(value.values()) if key is None else int(value.get(key, 0))
    return int(value or 0)


def render_post(
    world: WorldView, req: SimRequest, post: Post, specs: list[FieldSpec] | tuple[FieldSpec, ...]
) -> dict[str, Any]:
    """The post's fields as requested (fields without a value are left out)."""
    out: dict[str, Any] = {}
    for spec in specs:
        name = spec.name
        if name == "id":
            out["id"] = post.id
        elif name == "created_time":
            out[name] = fb_time(post.created_time)
        elif name == "updated_time":
            out[name] = fb_time(post.created_time + timedelta(minutes=7))
        elif name == "message":
            if post.message:
                out[name] = post.message
        elif name == "permalink_url":
            out[name] = post.permalink_url
        elif name == "full_picture":
            if post.status_type in ("added_photos", "added_video"):
                out[name] = f"https://scontent.example.invalid/{post.id}.jpg"
        elif name == "status_type":
            out[name] = post.status_type
        elif name in ("is_published", "is_hidden"):
            out[name] = name == "is_published"
        elif name == "from":
            out[name] = {"id": post.page_id, "name": world.pages[post.page_id].name}
        elif name == "shares":
            count = _count(world, post, "post_activity_by_action_type", "share")
            if count:
                out[name] = {"count": count}
        elif name in ("reactions", "comments"):
            metric = "post_reactions_by_type_total" if name == "reactions" else None
            total = (
                _count(world, post, metric)
                if metric
                else _count(world, post, "post_activity_by_action_type", "comment")
            )
            edge: dict[str, Any] = {"data": []}
            if spec.modifiers.get("summary", "").lower() in ("true", "1", "total_count"):
                edge["summary"] = {"total_count": total}
            out[name] = edge
        elif name == "insights":
            window = query_window(spec.modifiers, req.now)
            names = _metric_names(spec.modifiers.get("metric"))
            period = _period(spec.modifiers.get("period"))
            out[name] = {"data": insights_data(world, post, names, period, window, [])}
    return out


# -- post node and post insights --------------------------------------------------------


def handle_post(world: WorldView, req: SimRequest) -> dict[str, Any]:
    """``GET /{page}_{post}`` and ``GET /{page}_{post}/insights[/{metric}[/{period}]]``."""
    post = world.post(req.node_id)
    if post is None:
        raise object_missing_error(req.node_id)
    require_page_token(req, post.page_id)
    if req.edge is None:
        specs = parse_fields(req.params.get("fields") or DEFAULT_FIELDS)
        validate_post_fields(specs)
        return render_post(world, req, post, specs)
    if req.edge != "insights":
        raise unknown_path(req.edge)
    metric_text = req.rest[0] if req.rest else req.params.get("metric")
    names = _metric_names(metric_text)
    period = _period(req.rest[1] if len(req.rest) > 1 else req.params.get("period"))
    breakdowns = split_csv(req.params.get("breakdown"))
    for b in breakdowns:
        reject_unknown(b, _BREAKDOWNS, "breakdown")
    window = query_window(req.params, req.now)
    data = insights_data(world, post, names, period, window, breakdowns)
    return {"data": data, "paging": window_paging(req, window)}


def _metric_names(text: str | None) -> list[str]:
    names = split_csv(text)
    if not names:
        raise no_metric()
    if any(name not in POST_METRICS for name in names):
        raise invalid_metric_error()
    return names


def _period(period: str | None) -> str | None:
    if period:
        reject_unknown(period, POST_PERIODS, "period")
    return period or None


def insights_data(
    world: WorldView,
    post: Post,
    names: list[str],
    period: str | None,
    window: Window,
    breakdowns: list[str],
) -> list[dict[str, Any]]:
    """``data`` entries for a post's insights; ``lifetime`` values carry no ``end_time``."""
    data = []
    for name in names:
        metric = POST_METRICS[name]
        for p in [period] if period else list(metric.periods):
            if p not in metric.periods:
                continue
            if p == "lifetime":
                values = _values(world, post, name, p, None, breakdowns, metric.breakdowns)
            else:
                values = []
                for end in window.end_times:
                    values += _values(world, post, name, p, end, breakdowns, metric.breakdowns)
            if not values:
                continue
            heading, description = title(name, p)
            data.append(
                {
                    "name": name,
                    "period": p,
                    "values": values,
                    "title": heading,
                    "description": description,
                    "id": f"{post.id}/insights/{name}/{p}",
                }
            )
    return data


def _values(
    world: WorldView,
    post: Post,
    name: str,
    period: str,
    end: Any,
    asked: list[str],
    supported: tuple[str, ...],
) -> list[dict[str, Any]]:
    value = post_value(world, post, name, period, end)
    if value is None:
        return []
    stamp = {"end_time": fb_time(end)} if end is not None else {}
    usable = [b for b in asked if b in supported]
    if not usable or not isinstance(value, int):
        return [{"value": value, **stamp}]
    out = []
    for b in usable:
        for flag, part in split_value(world, post, name, b, value).items():
            out.append({"value": part, **stamp, b: flag})
    return out
