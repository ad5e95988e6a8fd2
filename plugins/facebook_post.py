"""``facebook_post``: the posts a Page published lately, and their lifetime insights.

Exposition, for a source ``acme-posts`` (values invented; ``...`` stands for the
``source``, ``page_id`` and ``post_id`` labels shown on the first line)::

    facebook_post_shares{source="acme-posts",page_id="1234567890",post_id="1234567890_987"} 12.0
    facebook_post_clicks{...,period="lifetime"} 31.0
    facebook_post_clicks_by_type{...,period="lifetime",click_type="link clicks"} 20.0
    facebook_post_activity_by_action_type{...,period="lifetime",action_type="share"} 4.0
    facebook_post_reactions_by_type{...,period="lifetime",reaction_type="love"} 3.0
    facebook_post_media_view{...,period="lifetime"} 412.0
    facebook_post_media_view_by_is_from_ads{...,period="lifetime",is_from_ads="1"} 25.0
    facebook_post_video_avg_time_watched_seconds{...,period="lifetime"} 7.5

**The window.** Each poll lists the Page's published posts created in the last ``max_age``
(newest first, at most ``max_posts``) and reads only those: a post that ages out of the
window is not requested any more and its series leave ``/metrics`` with the next poll.

**Requests.** The insights ride on the listing itself (field expansion,
``published_posts?fields=id,created_time,shares,insights.metric(a,b).period(lifetime)``), so
N posts cost about N/100 list requests per cadence. Breakdowns (``post_media_view`` by
``is_from_ads`` and ``is_from_followers``) cannot ride along: they go out as batch requests
(one element per post and breakdown, 50 per HTTP request). When Meta rejects the expansion
because one metric is invalid (it fails the whole call), that poll lists the posts plainly
and reads their insights in batches, 3 posts first, which isolates and disables the culprit
(for those posts; for every post once 3 had it rejected); the next poll
expands again with the remaining metrics. A post deleted between the listing and its
insights is skipped (counted as ``skipped_object``), never a failed poll.

**Tiers.** The per-post requests (breakdowns, and the insights when the expansion was
rejected) go to the posts younger than ``tier_age`` (default 48 hours) on every poll and
to older posts once per daily interval; in between an older post keeps the values of its
last read (:mod:`collectord.plugin.tiers`). Values that ride on the listing are fresh on
every poll: they cost no request of their own.

Cadence: the metrics Meta marks as refreshed several times a day (``post_clicks*``,
``post_activity_by_action_type*``, the live and social video counters) and the post fields
(shares) are ``fast``; the rest are ``daily``. Meta retired every ``post_impressions*``
metric (docs/meta-facts.md 2.4): ``post_media_view`` (with its breakdowns) and
``post_total_media_view_unique`` replace them. A retired name in ``metrics`` gets a config
warning that says when and what replaced it (still asked for: Meta decides); a Prometheus
name (``facebook_post_clicks``) is a config error; any other name is asked for as a daily
lifetime insight, with a config warning naming the nearest known one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import collectord
from collectord import (
    TIER_AGE_OPTION,
    GraphError,
    MetricSpec,
    Option,
    Outcome,
    PollContext,
    PollResult,
    Requests,
    Sample,
    SourcePlugin,
    Tag,
    insight_samples,
    number,
    parse_entries,
    parse_time,
    skip_failed,
    tiers,
)

from .facebook_post_catalogue import CATALOGUE, DICT_LABELS, NAMES, RETIRED, insight

__all__ = ["CATALOGUE", "RETIRED", "FacebookPost", "register_source_plugins"]

#: Meta's cap on ``limit`` for the posts edges.
LIST_LIMIT = 100
#: After an expansion that failed without a culprit metric, list plainly this long.
EXPANSION_PAUSE = timedelta(hours=24)
_MEMORY_KEY = "facebook_post.expansion_off_until"  # ISO time, or absent
LIFETIME_PARAMS: Mapping[str, str] = {"period": "lifetime"}
# How a poll got its posts' insights (see _list_posts).
EXPANDED, REJECTED, PLAIN = "expanded", "rejected", "plain"

#: Post fields: what is asked for in ``fields`` to read each one.
FIELD_REQUESTS: Mapping[str, str] = {
    "shares": "shares",
    "comments": "comments.summary(true).limit(0)",
    "reactions": "reactions.summary(true).limit(0)",
}
#: Fields Meta may refuse for want of a permission (which fails the whole list call).
GATED_FIELDS = frozenset({"comments", "reactions"})

OPTIONS: tuple[Option, ...] = (
    Option(
        "page_id",
        "id",
        help="The numeric id of the Facebook Page whose posts are read (its token must be a "
        "Page token with read_insights and pages_read_engagement).",
    ),
    Option(
        "max_age",
        "duration",
        default="28d",
        help="Follow posts created no longer ago than this.",
    ),
    Option(
        "max_posts",
        "int",
        default=100,
        minimum=1,
        help="Follow at most this many posts (the newest).",
    ),
    TIER_AGE_OPTION,
)


class FacebookPost(SourcePlugin):
    """Reads the posts of a window and their lifetime insights (see the module docstring)."""

    name = "facebook_post"
    version = collectord.__version__
    description = "Lifetime insights and shares of a Facebook Page's recent posts"
    options = OPTIONS
    scopes = ("pages_read_engagement", "read_insights")
    discovers = "page"
    catalogue = CATALOGUE

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """Any name may be asked for, as a daily lifetime insight (Meta decides: a rejected
        one is disabled), with a config warning: what replaced it for a retired name, else
        the nearest known one; a Prometheus name is a config error."""
        NAMES.check(graph_name)
        return insight(graph_name, "daily", f"Post insight {graph_name}.")

    async def collect(self, ctx: PollContext) -> PollResult:
        page_id = str(ctx.options["page_id"])
        fields = ctx.metrics(kind="field")
        insights = ctx.metrics(kind="insight")
        if not fields and not insights:
            return ctx.result()
        specs = {m.graph_name: m for m in insights}
        posts, how = await _list_posts(ctx, page_id, fields, insights)
        found: dict[str, list[Sample]] = {}
        for post in posts:
            post_id = str(post["id"])
            labels = _labels(page_id, post_id)
            out = found.setdefault(post_id, [])
            for spec in fields:
                value = _field_value(spec.graph_name, post)
                if value is not None:
                    out.append(ctx.sample(spec, value, object_id=post_id, labels=labels))
            if how == EXPANDED:
                values = parse_entries(_expanded_entries(post))
                out += _samples(ctx, specs, values, labels, breakdown=False)

        # per-post requests for the posts younger than tier_age and the older ones due
        # (once per daily interval); the others keep the values of their last read
        created = {str(p["id"]): parse_time(p.get("created_time")) for p in posts}
        tier = tiers(ctx, created, specs)
        reading = [post_id for post_id in found if post_id in tier.read]
        requests: Requests[Tag] = Requests()
        if how != EXPANDED and insights:
            for post_id in reading:
                requests.add(Tag(post_id), post_id, specs, LIFETIME_PARAMS, per_object=True)
        for spec in insights:
            for bd in spec.breakdowns:
                for post_id in reading:
                    tag = Tag(post_id, bd)
                    requests.add_breakdown(
                        tag, post_id, spec.graph_name, bd, LIFETIME_PARAMS, per_object=True
                    )
        if len(requests):
            await _fetch_into(ctx, page_id, specs, requests, found, probe=how == REJECTED)
        fresh = [s for samples in found.values() for s in samples]
        kept = [s for s in tier.carried(fresh) if s.object_id in found]
        return ctx.result(fresh + kept)


def _labels(page_id: str, post_id: str) -> dict[str, str]:
    return {"page_id": page_id, "post_id": post_id}


def _instant(text: Any) -> datetime | None:
    """A time kept in memory (ISO text); anything else is no time."""
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


async def _list_posts(
    ctx: PollContext,
    page_id: str,
    fields: Sequence[MetricSpec],
    insights: Sequence[MetricSpec],
) -> tuple[list[dict[str, Any]], str]:
    """The posts of the window, newest first, and how their insights came: ``EXPANDED``
    (with the posts), ``REJECTED`` (Meta refused the expansion) or ``PLAIN`` (not asked).

    A gated field (comments, reactions) that Meta refuses with a permission error is
    disabled, and the posts are listed again without it.
    """
    try:
        return await _list_posts_once(ctx, page_id, fields, insights)
    except GraphError as err:
        gated = [f for f in fields if f.graph_name in GATED_FIELDS]
        if err.outcome is not Outcome.PERMISSION or not gated:
            raise
        for spec in gated:
            ctx.disable_metric(spec.graph_name, "permission")
        kept = [f for f in fields if f.graph_name not in GATED_FIELDS]
        return await _list_posts_once(ctx, page_id, kept, insights)


async def _list_posts_once(
    ctx: PollContext,
    page_id: str,
    fields: Sequence[MetricSpec],
    insights: Sequence[MetricSpec],
) -> tuple[list[dict[str, Any]], str]:
    wanted = ["id", "created_time", *(FIELD_REQUESTS[f.graph_name] for f in fields)]
    paused_until = _instant(ctx.memory.get(_MEMORY_KEY))
    if not insights:
        return await _window(ctx, page_id, wanted), PLAIN
    if paused_until is not None and ctx.now < paused_until:
        return await _window(ctx, page_id, wanted), PLAIN
    names = ",".join(m.graph_name for m in insights)
    expansion = f"insights.metric({names}).period(lifetime)"
    try:
        return await _window(ctx, page_id, [*wanted, expansion]), EXPANDED
    except GraphError as err:
        if err.outcome not in _EXPANSION_REJECTED:
            raise  # the Page itself is gone, auth, throttling, an outage
        why = str(err)
    if ctx.log is not None:
        ctx.log.info("post insights expansion rejected; reading them in batches", error=why)
    return await _window(ctx, page_id, wanted), REJECTED


#: Answers to the field expansion that blame the expansion, not the Page.
_EXPANSION_REJECTED = frozenset(
    {Outcome.INVALID_METRIC, Outcome.METRIC_UNSUPPORTED, Outcome.REDUCE_DATA}
)


async def _window(ctx: PollContext, page_id: str, fields: Sequence[str]) -> list[dict[str, Any]]:
    """List ``{page_id}/published_posts`` for the window (cursor paging, ``since``)."""
    max_posts = int(ctx.options["max_posts"])
    cutoff = ctx.now - timedelta(seconds=float(ctx.options["max_age"]))
    params = {
        "fields": ",".join(fields),
        "limit": str(min(LIST_LIMIT, max_posts)),
        "since": str(int(cutoff.timestamp())),
    }
    items = await ctx.graph.get_all(f"{page_id}/published_posts", params, max_items=max_posts)
    dated: list[tuple[datetime, dict[str, Any]]] = []
    for item in items:
        created = parse_time(item.get("created_time"))
        if item.get("id") and created is not None and created >= cutoff:
            dated.append((created, item))
    dated.sort(key=lambda pair: pair[0], reverse=True)
    return [item for _, item in dated[:max_posts]]


def _expanded_entries(post: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    block = post.get("insights")
    data = block.get("data") if isinstance(block, Mapping) else None
    return [e for e in data if isinstance(e, Mapping)] if isinstance(data, list) else []


def _field_value(name: str, post: Mapping[str, Any]) -> float | None:
    """A post field's number. Meta leaves ``shares`` out for a post never shared."""
    block = post.get(name)
    if name == "shares":
        if block is None:
            return 0.0
        return number(block.get("count")) if isinstance(block, Mapping) else None
    summary = block.get("summary") if isinstance(block, Mapping) else None
    return number(summary.get("total_count")) if isinstance(summary, Mapping) else None


def _samples(
    ctx: PollContext,
    specs: Mapping[str, MetricSpec],
    values: Any,
    labels: Mapping[str, str],
    *,
    breakdown: bool,
) -> list[Sample]:
    """Samples of a post's lifetime values (or, with ``breakdown``, its breakdown rows)."""
    return insight_samples(
        ctx,
        specs,
        values,
        breakdown=breakdown,
        object_id=labels["post_id"],
        labels=labels,
        dict_labels=DICT_LABELS,
        spec_periods=True,
    )


async def _fetch_into(
    ctx: PollContext,
    page_id: str,
    specs: Mapping[str, MetricSpec],
    requests: Requests[Tag],
    found: dict[str, list[Sample]],
    *,
    probe: bool,
) -> None:
    """Read ``requests`` in batches and add their samples to ``found`` (per post).

    With ``probe`` the requests of the first few posts go first, so that a bad metric is
    isolated on those posts (and disabled for every post, as Meta rejected it for several)
    instead of on every post. Posts that answer with an object error are skipped;
    when every post is denied, the token lacks the permission and the poll fails.
    """
    parts = requests.split_probe() if probe and len(requests) > 1 else (requests,)
    answers = [pair for part in parts for pair in await part.fetch(ctx)]
    if probe and not ctx.newly_disabled:
        # Nothing to blame on a metric: the expansion itself is the problem; rest from it.
        ctx.memory[_MEMORY_KEY] = (ctx.now + EXPANSION_PAUSE).isoformat()

    gone: dict[str, GraphError] = {}
    for tag, answer in answers:
        if isinstance(answer, GraphError):
            gone.setdefault(tag.object_id, answer)
        elif tag.object_id in found:
            labels = _labels(page_id, tag.object_id)
            values = parse_entries(answer)
            found[tag.object_id] += _samples(
                ctx, specs, values, labels, breakdown=bool(tag.breakdown)
            )
    for post_id in skip_failed(ctx, gone, list(found)):
        found.pop(post_id, None)


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [FacebookPost()]
