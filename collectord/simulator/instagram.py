"""Request handlers of the simulated Instagram objects: nodes, edges and paging.

Routes (GET only), for objects an :class:`~collectord.simulator.instagram_world.InstagramWorld`
owns:

- ``/{ig-user-id}?fields=...``, ``/{ig-user-id}/insights``, ``/{ig-user-id}/media``,
  ``/{ig-user-id}/stories``;
- ``/{ig-media-id}?fields=...``, ``/{ig-media-id}/insights``, ``/{ig-media-id}/children``
  (also for stories and carousel children).

Lists are newest first with Meta's cursor paging (docs/meta-facts.md 11): ``limit`` (default 25,
capped at 100), opaque ``after``/``before`` cursors, ``next`` only when more items follow,
and now and then a page that comes back empty but still carries ``next``. ``next`` and
``previous`` are full URLs that include the access token, as Meta's do.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, replace
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from collectord.simulator.base import (
    SimError,
    SimRequest,
    fb_time,
    object_missing_error,
    parse_time_param,
    unit_hash,
)
from collectord.simulator.instagram_catalog import (
    nonexisting_field_error,
    unknown_path_error,
    unsupported_method_error,
)
from collectord.simulator.instagram_insights import media_insights, user_insights
from collectord.simulator.instagram_model import IgAccount, IgChild, IgMedia

if TYPE_CHECKING:
    from collectord.simulator.instagram_view import InstagramView

USER_FIELDS = (
    "id",
    "ig_id",
    "username",
    "name",
    "biography",
    "website",
    "profile_picture_url",
    "followers_count",
    "follows_count",
    "media_count",
)
MEDIA_FIELDS = (
    "id",
    "caption",
    "media_type",
    "media_product_type",
    "timestamp",
    "permalink",
    "like_count",
    "comments_count",
    "media_url",
    "thumbnail_url",
    "shortcode",
    "is_comment_enabled",
    "is_shared_to_feed",
    "username",
    "owner",
    "children",
    "insights",
)
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
EMPTY_PAGE_RATE = 0.2  # share of `after` cursors whose first answer is an empty page


@dataclass(frozen=True)
class Field:
    """One entry of ``fields=``: ``name``, its ``{sub-selection}`` and its modifiers."""

    name: str
    sub: str | None = None
    modifiers: dict[str, str] = dataclass_field(default_factory=dict)


Fields = list[Field]
_MODIFIER = re.compile(r"\.(\w+)\(([^)]*)\)")


def handle(world: InstagramView, req: SimRequest) -> dict[str, Any]:
    """Answer one call on an Instagram object of ``world`` (or raise SimError)."""
    node = world.resolve(req.node_id, req.now)
    if node is None:
        raise object_missing_error(req.node_id)
    if req.method.upper() != "GET":
        raise unsupported_method_error(req.method, req.node_id)
    if req.rest:
        raise unknown_path_error("/".join((str(req.edge), *req.rest)))
    if isinstance(node, IgAccount):
        return _user(world, node, req)
    if isinstance(node, IgMedia) and node.is_story and not world.is_live(node, req.now):
        raise object_missing_error(req.node_id)  # an expired story is gone
    if req.edge is None:
        return _media_fields(world, node, parse_fields(req.params.get("fields")), req)
    if req.edge == "insights":
        return media_insights(world, node, req)
    if req.edge == "children":
        kids = world.children(node) if isinstance(node, IgMedia) else []
        fields = parse_fields(req.params.get("fields"))
        return {"data": [_media_fields(world, c, fields, req) for c in kids]}
    raise unknown_path_error(req.edge)


def parse_fields(spec: str | None) -> Fields:
    """Split ``id,children{id,media_type},insights.metric(reach,views)`` into fields with
    their sub-selection and ``.name(args)`` modifiers; no ``fields`` means just ``id``."""
    items, depth, buf = [], 0, ""
    for ch in spec or "id":
        depth += (ch in "{(") - (ch in "})")
        if ch == "," and depth == 0:
            items.append(buf)
            buf = ""
        else:
            buf += ch
    items.append(buf)
    out: Fields = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        head, brace, sub = item.partition("{")
        name, _, mods = head.partition(".")
        modifiers = dict(_MODIFIER.findall("." + mods)) if mods else {}
        out.append(Field(name.strip(), sub[:-1] if brace else None, modifiers))
    return out


def _user(world: InstagramView, acct: IgAccount, req: SimRequest) -> dict[str, Any]:
    if req.edge == "insights":
        return user_insights(world, acct, req)
    if req.edge == "media":
        return _list_media(world, acct, req)
    if req.edge == "stories":
        return _list_stories(world, acct, req)
    if req.edge is not None:
        raise unknown_path_error(req.edge)
    out: dict[str, Any] = {}
    for name in (f.name for f in parse_fields(req.params.get("fields"))):
        if name not in USER_FIELDS:
            raise nonexisting_field_error(name, "IGUser")
        if name in ("followers_count", "follows_count", "media_count"):
            out[name] = world.user_field(acct.id, name, req.now)
        elif name == "ig_id":
            out[name] = 1_000_000_000 + int(unit_hash(world.seed, acct.id, "ig_id") * 9e9)
        elif name == "profile_picture_url":
            out[name] = f"https://scontent.cdninstagram.com/v/t51.2885-19/{acct.id}_n.jpg"
        else:
            out[name] = getattr(acct, name)
    return out


def _media_fields(
    world: InstagramView, node: IgMedia | IgChild, fields: Fields, req: SimRequest
) -> dict[str, Any]:
    """The requested fields of a media, story or carousel child; fields that do not apply
    to the object (``children`` of a photo, ``like_count`` of a story) are left out."""
    media = node.parent if isinstance(node, IgChild) else node
    acct = world.account_at(media.account)
    is_child = isinstance(node, IgChild)
    media_type = node.media_type
    ext = "mp4" if media_type == "VIDEO" else "jpg"
    known: dict[str, Any] = {
        "id": node.id,
        "media_type": media_type,
        "timestamp": fb_time(media.created_at),
        "media_url": f"https://scontent.cdninstagram.com/v/t51.2885-15/{node.id}_n.{ext}",
        "username": acct.username,
        "owner": {"id": acct.id},
        "shortcode": media.shortcode,
    }
    if media_type == "VIDEO":
        known["thumbnail_url"] = f"https://scontent.cdninstagram.com/v/t51.2885-15/{node.id}_t.jpg"
    if media.is_story:
        known["permalink"] = f"https://instagram.com/stories/{acct.username}/{node.id}/"
    else:
        kind = "reel" if media.product_type == "REELS" else "p"
        known["permalink"] = f"https://www.instagram.com/{kind}/{media.shortcode}/"
    if not is_child:
        known["media_product_type"] = media.product_type
    if not is_child and not media.is_story:
        values = world.media_values(media, req.now)
        known.update(
            like_count=values["likes"], comments_count=values["comments"], is_comment_enabled=True
        )
        if media.caption is not None:
            known["caption"] = media.caption
        if media.product_type == "REELS":
            known["is_shared_to_feed"] = True
    out: dict[str, Any] = {}
    for f in fields:
        if f.name not in MEDIA_FIELDS:
            raise nonexisting_field_error(f.name, "ShadowIGMedia")
        if f.name == "children" and not is_child and media.n_children:
            kids = world.children(media)
            out["children"] = {
                "data": [_media_fields(world, c, parse_fields(f.sub), req) for c in kids]
            }
        elif f.name == "insights":
            out["insights"] = _expanded_insights(world, node, f, req)
        elif f.name in known:
            out[f.name] = known[f.name]
    return out


def _expanded_insights(
    world: InstagramView, node: IgMedia | IgChild, f: Field, req: SimRequest
) -> dict[str, Any]:
    """``insights.metric(a,b)[.breakdown(x)]`` as a field: the ``/insights`` answer of the
    media. As at Meta, an error there (a metric the product type lacks, a media from
    before the conversion) fails the whole call."""
    params = {k: v for k, v in f.modifiers.items() if k in ("metric", "breakdown")}
    sub = replace(req, node_id=node.id, edge="insights", rest=(), params=params)
    return media_insights(world, node, sub)


def _limit(params: dict[str, str]) -> int:
    raw = params.get("limit", "")
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit():
        raise SimError(100, "(#100) The parameter limit must be a positive integer")
    return max(1, min(int(raw), MAX_LIMIT))


def encode_cursor(k: int, flag: int = 0) -> str:
    raw = f"AQH:{k}:{flag}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        tag, k, flag = raw.split(":")
        if tag != "AQH":
            raise ValueError(tag)
        return int(k), int(flag)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise SimError(100, "(#100) The cursor is invalid or has expired") from None


def _url(req: SimRequest, limit: int, **cursor: str) -> str:
    query = {"access_token": req.raw_token}
    query.update((k, v) for k, v in req.params.items() if k not in ("after", "before"))
    query["limit"] = str(limit)
    query.update(cursor)
    path = "/".join(p for p in (req.version, req.node_id, req.edge) if p)
    return f"{req.base_url}/{path}?{urlencode(query)}"


def paginate(
    items: list[IgMedia], req: SimRequest, *, seed: int, empty_pages: bool
) -> tuple[list[IgMedia], dict[str, Any]]:
    """One page of ``items`` (newest first, keyed by their position ``k``) and its
    ``paging`` block."""
    params, limit = req.params, _limit(req.params)
    if params.get("after"):
        k, flag = decode_cursor(params["after"])
        start = next((i for i, m in enumerate(items) if m.k < k), len(items))
        if (
            empty_pages
            and flag == 0
            and start < len(items)
            and unit_hash(seed, req.node_id, "empty-page", k) < EMPTY_PAGE_RATE
        ):
            again = encode_cursor(k, 1)
            return [], {
                "cursors": {"before": again, "after": again},
                "next": _url(req, limit, after=again),
            }
    elif params.get("before"):
        k, _ = decode_cursor(params["before"])
        end = next((i for i, m in enumerate(items) if m.k <= k), len(items))
        start = max(0, end - limit)
        limit = end - start
    else:
        start = 0
    page = items[start : start + limit]
    paging: dict[str, Any] = {}
    if page:
        paging["cursors"] = {"before": encode_cursor(page[0].k), "after": encode_cursor(page[-1].k)}
        if start > 0:
            paging["previous"] = _url(req, _limit(params), before=paging["cursors"]["before"])
        if start + len(page) < len(items):
            paging["next"] = _url(req, _limit(params), after=paging["cursors"]["after"])
    return page, paging


def _list_media(world: InstagramView, acct: IgAccount, req: SimRequest) -> dict[str, Any]:
    """``GET /{ig-user-id}/media``: feed posts and reels, newest first, with cursors."""
    fields = parse_fields(req.params.get("fields"))
    since, until = req.params.get("since"), req.params.get("until")
    try:
        lo = parse_time_param(since) if since else None
        hi = parse_time_param(until) if until else None
    except ValueError:
        raise SimError(100, "(#100) The parameters since and until must be times") from None
    items = [
        world.feed_media(acct.index, k)
        for k in reversed(range(world.media_count(acct.id, req.now)))
    ]
    items = [
        m
        for m in items
        if (lo is None or m.created_at >= lo) and (hi is None or m.created_at <= hi)
    ]
    page, paging = paginate(items, req, seed=world.seed, empty_pages=world.empty_pages)
    return {"data": [_media_fields(world, m, fields, req) for m in page], "paging": paging}


def _list_stories(world: InstagramView, acct: IgAccount, req: SimRequest) -> dict[str, Any]:
    """``GET /{ig-user-id}/stories``: the stories of the last 24 hours, newest first."""
    fields = parse_fields(req.params.get("fields"))
    items = world.live_stories(acct.index, req.now)
    page, paging = paginate(items, req, seed=world.seed, empty_pages=False)
    return {"data": [_media_fields(world, s, fields, req) for s in page], "paging": paging}
