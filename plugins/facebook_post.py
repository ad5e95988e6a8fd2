"""``facebook_post``: the posts a Page published lately, and their lifetime insights.

Exposition, for a source ``acme-posts`` (values invented; ``...`` stands for the
``source``, ``page_id`` and ``post_id`` labels shown on the first line)::

    facebook_post_shares_count{source="acme-posts",page_id="1234567890",post_id="1234567890_987"} 12.0
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
and reads their insights in batches, which isolates and disables the culprit; the next poll
expands again with the remaining metrics. A post deleted between the listing and its
insights is skipped (counted as ``skipped_object``), never a failed poll.

Cadence: the metrics Meta marks as refreshed several times a day (``post_clicks*``,
``post_activity_by_action_type*``, the live and social video counters) and the post fields
(shares) are ``fast``; the rest are ``daily``. Meta retired every ``post_impressions*``
metric (graph-api.md 2.4): ``post_media_view`` (with its breakdowns) and
``post_total_media_view_unique`` replace them. A retired name in ``metrics`` gets a config
warning that says when and what replaced it (still asked for: Meta decides); a Prometheus
name (``facebook_post_clicks``) is a config error; any other name is asked for as a daily
lifetime insight, with a config warning naming the nearest known one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import collectord
from collectord import (
    GraphError,
    InsightRequest,
    InsightValue,
    MetricNames,
    MetricSpec,
    ObjectNotFoundError,
    Option,
    Outcome,
    PermissionDeniedError,
    PollContext,
    Retired,
    Sample,
    SourcePlugin,
    breakdown_key,
    fetch_insights,
    parse_entries,
    parse_time,
    samples_from_values,
)

PREFIX = "facebook_post"
LIFETIME = ("lifetime",)
#: Meta's cap on ``limit`` for the posts edges.
LIST_LIMIT = 100
#: After an expansion that failed without a culprit metric, list plainly this long.
EXPANSION_PAUSE = timedelta(hours=24)
_MEMORY_KEY = "facebook_post.expansion_off_until"
# How a poll got its posts' insights (see _list_posts).
EXPANDED, REJECTED, PLAIN = "expanded", "rejected", "plain"

# Dict-valued metrics: the label their keys go under (DESIGN.md "Metric names").
DICT_LABELS: Mapping[str, str] = {
    "post_reactions_by_type_total": "reaction_type",
    "post_clicks_by_type": "click_type",
    "post_activity_by_action_type": "action_type",
    "post_activity_by_action_type_unique": "action_type",
}

#: Post fields: what is asked for in ``fields`` to read each one.
FIELD_REQUESTS: Mapping[str, str] = {
    "shares": "shares",
    "comments": "comments.summary(true).limit(0)",
    "reactions": "reactions.summary(true).limit(0)",
}
#: Fields Meta may refuse for want of a permission (which fails the whole list call).
GATED_FIELDS = frozenset({"comments", "reactions"})


def _insight(
    graph_name: str,
    cadence: collectord.Cadence,
    help: str,
    *,
    default: bool = False,
    unit: str = "count",
    breakdowns: tuple[str, ...] = (),
) -> MetricSpec:
    """A lifetime post insight; ``unit="ms"`` is Meta's milliseconds, exported in seconds."""
    ms = unit == "ms"
    return MetricSpec(
        graph_name=graph_name,
        prom_name=collectord.prom_name(PREFIX, graph_name, strip="post_", milliseconds=ms),
        cadence=cadence,
        periods=LIFETIME,
        unit="seconds" if ms else unit,
        help=help,
        scale=0.001 if ms else 1.0,
        default=default,
        breakdowns=breakdowns,
    )


# Lifetime post insights Meta serves today (graph-api.md 3.1), none of the retired ones:
# (Meta name, cadence, in the default set, unit, help). Starred metrics are fast.
_INSIGHTS: tuple[tuple[str, collectord.Cadence, bool, str, str], ...] = (
    ("post_clicks", "fast", True, "count", "Clicks anywhere on the post."),
    ("post_clicks_by_type", "fast", True, "count", "Clicks on the post, by click type."),
    ("post_activity_by_action_type", "fast", True, "count", "Stories about the post, by type."),
    ("post_activity_by_action_type_unique", "fast", False, "count", "People, by story type."),
    ("post_video_social_actions_count_unique", "fast", False, "count", "People who reacted."),
    ("post_video_views_live", "fast", False, "count", "Views of a live video."),
    ("post_video_live_current_viewers", "fast", False, "count", "Viewers of a live video."),
    ("post_video_retention_graph", "fast", False, "ratio", "Viewers left, by interval."),
    ("post_video_retention_graph_autoplayed", "fast", False, "ratio", "Same, autoplayed."),
    ("post_video_retention_graph_clicked_to_play", "fast", False, "ratio", "Same, clicked."),
    ("post_total_media_view_unique", "daily", True, "count", "Unique viewers (was reach)."),
    ("post_reactions_by_type_total", "daily", True, "count", "Reactions, by reaction type."),
    *(
        (f"post_reactions_{r}_total", "daily", False, "count", f"'{r}' reactions.")
        for r in ("like", "love", "wow", "haha", "sorry", "anger")
    ),
    ("post_video_views", "daily", True, "count", "3-second video views."),
    *(
        (f"post_video_views_{k}", "daily", False, "count", f"Video views ({k}).")
        for k in (
            "organic",
            "paid",
            "autoplayed",
            "clicked_to_play",
            "sound_on",
            "15s",
            "60s_excludes_shorter",
        )
    ),
    ("post_video_avg_time_watched", "daily", True, "ms", "Average time the video was watched."),
    ("post_video_length", "daily", False, "ms", "Length of the video."),
    ("post_video_view_time", "daily", True, "ms", "Total time the video was watched."),
    ("post_video_view_time_organic", "daily", False, "ms", "Same, organic."),
    *(
        (f"post_video_complete_views_{k}", "daily", False, "count", f"Complete views ({k}).")
        for k in ("organic", "organic_unique", "paid", "paid_unique")
    ),
    *(
        (f"post_video_complete_views_30s_{k}", "daily", False, "count", f"30-second views ({k}).")
        for k in ("autoplayed", "clicked_to_play", "organic", "paid", "unique")
    ),
    ("post_video_views_by_distribution_type", "daily", False, "count", "Views by distribution."),
    *(
        (f"post_video_view_time_by_{by}", "daily", False, "ms", f"View time by {by}.")
        for by in ("distribution_type", "age_bucket_and_gender", "region_id", "country_id")
    ),
    ("post_video_ad_break_ad_impressions", "daily", False, "count", "Ad-break impressions."),
    ("post_video_ad_break_earnings", "daily", False, "currency", "Ad-break earnings."),
    ("post_video_ad_break_ad_cpm", "daily", False, "currency", "Ad-break CPM."),
)

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec.field(
        PREFIX,
        "shares",
        name="shares_count",
        help="Times the post was shared (0 when Meta lists no shares).",
        default=True,
    ),
    MetricSpec.field(
        PREFIX,
        "comments",
        name="comments_count",
        help="Comments (Meta's approximate summary count).",
        default=False,
    ),
    MetricSpec.field(
        PREFIX,
        "reactions",
        name="reactions_count",
        help="Reactions (Meta's summary count).",
        default=False,
    ),
    _insight(
        "post_media_view",
        "daily",
        "Times the post was played or displayed (Views; replaces post_impressions).",
        default=True,
        breakdowns=("is_from_ads", "is_from_followers"),
    ),
    *(_insight(n, c, h, default=d, unit=u) for n, c, d, u, h in _INSIGHTS),
)

# What Meta retired, when, and what to ask for instead (graph-api.md 2.4, 3.1); fnmatch
# patterns, the first match wins (so the specific names come before the families).
NOV_2025 = "in November 2025"
JUNE_2026 = "in June 2026 (with Graph API v26.0)"
EARLIER = "before 2025, with the classic Page metrics"
CLOSEST = (
    "it has no replacement (the closest live metrics are 'post_clicks', "
    "'post_clicks_by_type' and 'post_activity_by_action_type')"
)
BY_ADS = "use 'post_media_view' (its is_from_ads breakdown)"
RETIRED: tuple[Retired, ...] = (
    Retired("post_impressions", NOV_2025, "use 'post_media_view'"),
    Retired("post_impressions_paid", NOV_2025, BY_ADS),
    Retired("post_impressions_organic", NOV_2025, BY_ADS),
    Retired(
        "post_impressions_fan", NOV_2025, "use 'post_media_view' (its is_from_followers breakdown)"
    ),
    Retired("post_impressions_viral", NOV_2025),
    Retired("post_impressions_nonviral", NOV_2025),
    Retired("post_impressions_unique", JUNE_2026, "use 'post_total_media_view_unique'"),
    Retired(
        "post_impressions_*_unique",
        JUNE_2026,
        "the nearest live metric is 'post_total_media_view_unique' (every viewer)",
    ),
    Retired("post_video_views_unique", JUNE_2026, "the nearest live metric is 'post_video_views'"),
    Retired(
        "post_video_views_organic_unique",
        JUNE_2026,
        "the nearest live metric is 'post_video_views_organic'",
    ),
    Retired(
        "post_video_views_paid_unique",
        JUNE_2026,
        "the nearest live metric is 'post_video_views_paid'",
    ),
    Retired("total_video_impressions*", JUNE_2026),
    Retired("total_video_views*_unique", JUNE_2026),
    Retired(
        "post_video_views_10s*",
        "with Graph API v19.0",
        "use 'post_video_views' (3 seconds), 'post_video_views_15s', "
        "'post_video_complete_views_30s_*' or 'post_video_views_60s_excludes_shorter'",
    ),
    Retired(
        "post_video_views_*unique",
        JUNE_2026,
        "the nearest live metric is 'post_video_views' (views, not viewers)",
    ),
    Retired("post_engaged_users", EARLIER, CLOSEST),
    Retired("post_consumptions*", EARLIER, CLOSEST),
    Retired("post_negative_feedback*", EARLIER),
    # the rest of the family Meta retired wholesale
    Retired(
        "post_impressions*",
        "with the other impressions metrics (November 2025 and June 2026)",
        "use 'post_media_view' or 'post_total_media_view_unique'",
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{PREFIX}_": "post_"},
    kind="a post metric",
    asked_as="a daily lifetime metric",
    elsewhere=(("page_*", "Page metrics are read by the facebook_page plugin"),),
)

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
)


class FacebookPost(SourcePlugin):
    name = "facebook_post"
    version = collectord.__version__
    description = "Lifetime insights and shares of a Facebook Page's recent posts"
    options = OPTIONS
    catalogue = CATALOGUE

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """Any name may be asked for, as a daily lifetime insight (Meta decides: a rejected
        one is disabled), with a config warning: what replaced it for a retired name, else
        the nearest known one; a Prometheus name is a config error."""
        NAMES.check(graph_name)
        return _insight(graph_name, "daily", f"Post insight {graph_name}.")

    async def collect(self, ctx: PollContext) -> list[Sample]:
        page_id = str(ctx.options["page_id"])
        fields = ctx.metrics(kind="field")
        insights = ctx.metrics(kind="insight")
        if not fields and not insights:
            return []
        posts, how = await _list_posts(ctx, page_id, fields, insights)
        found: dict[str, list[Sample]] = {}
        for post in posts:
            post_id = str(post["id"])
            labels = {"page_id": page_id, "post_id": post_id}
            out = found.setdefault(post_id, [])
            out.extend(_field_samples(ctx, fields, post, labels))
            if how == EXPANDED:
                entries = _expanded_entries(post)
                out.extend(_insight_samples(ctx, insights, parse_entries(entries), labels))

        requests = _breakdown_requests(insights, found)
        if how != EXPANDED and insights:
            names = tuple(m.graph_name for m in insights)
            requests = [
                InsightRequest(post_id, names, {"period": "lifetime"}) for post_id in found
            ] + requests
        if requests:
            await _fetch_into(ctx, page_id, insights, requests, found, probe=how == REJECTED)
        return [s for samples in found.values() for s in samples]


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
    except PermissionDeniedError:
        gated = [f for f in fields if f.graph_name in GATED_FIELDS]
        if not gated:
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
    paused_until = ctx.memory.get(_MEMORY_KEY)
    if not insights:
        return await _window(ctx, page_id, wanted), PLAIN
    if isinstance(paused_until, datetime) and ctx.now < paused_until:
        return await _window(ctx, page_id, wanted), PLAIN
    names = ",".join(m.graph_name for m in insights)
    expansion = f"insights.metric({names}).period(lifetime)"
    try:
        return await _window(ctx, page_id, [*wanted, expansion]), EXPANDED
    except GraphError as err:
        if err.outcome not in _EXPANSION_REJECTED:
            raise  # the Page itself is gone, auth, throttling, an outage
        why = err.message
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


def _field_samples(
    ctx: PollContext,
    fields: Iterable[MetricSpec],
    post: Mapping[str, Any],
    labels: Mapping[str, str],
) -> list[Sample]:
    out: list[Sample] = []
    for spec in fields:
        value = _field_value(spec.graph_name, post)
        if value is not None:
            out.append(ctx.sample(spec, value, object_id=labels["post_id"], labels=labels))
    return out


def _field_value(name: str, post: Mapping[str, Any]) -> float | None:
    """A post field's number. Meta leaves ``shares`` out for a post never shared."""
    block = post.get(name)
    if name == "shares":
        if block is None:
            return 0.0
        count = block.get("count") if isinstance(block, Mapping) else None
    else:
        summary = block.get("summary") if isinstance(block, Mapping) else None
        count = summary.get("total_count") if isinstance(summary, Mapping) else None
    if isinstance(count, int | float) and not isinstance(count, bool):
        return float(count)
    return None


def _insight_samples(
    ctx: PollContext,
    insights: Iterable[MetricSpec],
    values: Iterable[InsightValue],
    labels: Mapping[str, str],
    *,
    breakdown: bool = False,
) -> list[Sample]:
    """Samples of the plain values (or, with ``breakdown``, of the breakdown rows)."""
    specs = {m.graph_name: m for m in insights}
    grouped: dict[str, list[InsightValue]] = {}
    for v in values:
        if v.name in specs and v.period in LIFETIME and bool(v.dims) == breakdown:
            grouped.setdefault(v.name, []).append(v)
    out: list[Sample] = []
    for name, rows in grouped.items():
        out.extend(
            samples_from_values(
                ctx,
                specs[name],
                rows,
                object_id=labels["post_id"],
                labels=labels,
                dict_label=DICT_LABELS.get(name, "key"),
            )
        )
    return out


def _breakdown_requests(
    insights: Iterable[MetricSpec], posts: Iterable[str]
) -> list[InsightRequest]:
    post_ids = list(posts)
    return [
        InsightRequest(
            post_id,
            (spec.graph_name,),
            {"period": "lifetime", "breakdown": bd},
            key=f"{post_id}|{bd}",
            disable_as=breakdown_key(spec.graph_name, bd),
        )
        for spec in insights
        for bd in spec.breakdowns
        for post_id in post_ids
    ]


async def _fetch_into(
    ctx: PollContext,
    page_id: str,
    insights: Sequence[MetricSpec],
    requests: Sequence[InsightRequest],
    found: dict[str, list[Sample]],
    *,
    probe: bool,
) -> None:
    """Read ``requests`` in batches and add their samples to ``found`` (per post).

    With ``probe`` the first request goes alone, so that a bad metric is isolated on one
    post instead of on every post. Posts that answer with an object error are skipped.
    """
    disabled_before = set(ctx.disabled)
    answers: dict[str, list[dict[str, Any]] | GraphError] = {}
    parts = [requests[:1], requests[1:]] if probe and len(requests) > 1 else [requests]
    for part in parts:
        answers.update(await fetch_insights(ctx, part))
    if probe and set(ctx.disabled) == disabled_before:
        # Nothing to blame on a metric: the expansion itself is the problem; rest from it.
        ctx.memory[_MEMORY_KEY] = ctx.now + EXPANSION_PAUSE

    gone: dict[str, GraphError] = {}
    for ident, answer in answers.items():
        post_id, _, breakdown = ident.partition("|")
        if isinstance(answer, GraphError):
            gone.setdefault(post_id, answer)
            continue
        if post_id not in found:
            continue
        labels = {"page_id": page_id, "post_id": post_id}
        found[post_id].extend(
            _insight_samples(
                ctx, insights, parse_entries(answer), labels, breakdown=bool(breakdown)
            )
        )
    if gone and len(gone) == len(found):
        denied = [e for e in gone.values() if isinstance(e, PermissionDeniedError)]
        if denied:
            raise denied[0]  # no post readable: the token, not the posts
    for post_id, err in gone.items():
        ctx.skip(post_id, "vanished" if isinstance(err, ObjectNotFoundError) else err.reason)
        found.pop(post_id, None)


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [FacebookPost()]
