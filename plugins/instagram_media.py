"""``instagram_media``: insights of an Instagram account's recent media and live stories.

Exposition, for a source ``northwind-media`` (values invented)::

    instagram_media_like_count{source="northwind-media",ig_user_id="17841400000000001",media_id="18000000000000042",media_type="VIDEO",media_product_type="REELS"} 311.0
    instagram_media_views{source="northwind-media",ig_user_id="17841400000000001",media_id="18000000000000042",media_type="VIDEO",media_product_type="REELS"} 9120.0
    instagram_media_ig_reels_avg_watch_time_seconds{source="northwind-media",ig_user_id="17841400000000001",media_id="18000000000000042",media_type="VIDEO",media_product_type="REELS"} 7.412
    instagram_story_navigation{source="northwind-media",ig_user_id="17841400000000001",media_id="17900000000000007"} 25.0
    instagram_story_navigation_by_story_navigation_action_type{source="northwind-media",ig_user_id="17841400000000001",media_id="17900000000000007",story_navigation_action_type="tap_forward"} 19.0

Everything is ``fast`` (DESIGN.md "Cadence"). One poll:

1. lists the media window, ``{ig-user-id}/media`` newest first with cursor paging: media
   created within ``max_age``, at most ``max_media``; ``like_count`` and
   ``comments_count`` come with the list;
2. lists the live stories, ``{ig-user-id}/stories`` (when ``include_stories``);
3. asks for every media's insights in one request per media with exactly the metrics
   Meta serves for its ``media_product_type`` (graph-api.md 6.2: the spec's ``group``),
   plus one request per story and breakdown; all of them go out as batch requests, 50 per
   HTTP request. Carousel children are never queried (Meta has no insights for them).

Expected per-object answers are skipped and counted, never failures of the poll: media
posted before the business conversion (code 100, subcode 2108006; remembered and not asked
again), stories seen by fewer than 5 accounts (code 10), objects that vanished (100/33).
A story lives 24 hours: one extra poll is requested a few minutes before it expires so
that its final values reach the JSONL sink. That poll reads the stories only and hands
back the media's samples of the last poll as they were, so no media is asked for more
often than the fast cadence. Once expired a story is no longer listed and its series leave
``/metrics``. Media older than ``max_age`` leave the same way.

Media and stories share metric names, and Meta's metric sets differ between kinds of
media, so a metric Meta rejects is disabled for one kind only: ``STORY/shares`` for
stories, ``FEED/IMAGE/shares`` for feed images (``{media_product_type}/{media_type}``).

Meta replaced ``impressions``, ``plays``, ``video_views`` and the ``carousel_album_*``
metrics with ``views``; ``impressions`` still answers for media created before 2024-07-02
only, so it is off by default and, when asked for, requested for those media only. Any
other retired name in ``metrics`` gets a config warning that says when and what replaced
it (still asked for: Meta decides); a Prometheus name (``instagram_story_navigation``) is a
config error; any other unknown name is asked for as a media metric of posts and reels,
with a config warning naming the nearest known one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import collectord
from collectord import (
    GraphError,
    InsightRequest,
    InsightValue,
    MetricNames,
    MetricSpec,
    Option,
    Outcome,
    PollContext,
    Retired,
    Sample,
    SourcePlugin,
    breakdown_key,
    fetch_insights,
    parse_entries,
    parse_time,
    samples_from_values,
    scoped_key,
)

MEDIA_PREFIX = "instagram_media"
STORY_PREFIX = "instagram_story"
FEED, REELS, STORY = "FEED", "REELS", "STORY"
#: Product types whose media come from ``/media`` and get insights (AD has none here).
MEDIA_PRODUCTS: tuple[str, ...] = (FEED, REELS)

#: ``impressions`` answers only for media created before this instant (graph-api.md 6.2).
IMPRESSIONS_CUTOFF = datetime(2024, 7, 2, tzinfo=UTC)
STORY_LIFETIME = timedelta(hours=24)
#: The final snapshot of a story is taken this long before it expires...
FINAL_SNAPSHOT_LEAD = timedelta(minutes=5)
#: ...or up to this much earlier, when an extra poll is already planned then (a burst of
#: stories shares one extra poll).
FINAL_SNAPSHOT_SHARE = timedelta(minutes=5)

MEDIA_FIELDS = "id,media_type,media_product_type,timestamp,like_count,comments_count"
STORY_FIELDS = "id,media_type,media_product_type,timestamp"
PAGE_LIMIT = 100

# Keys of ctx.memory.
_FINAL = "final_snapshot_at"  # story id -> planned extra poll (ISO text)
_NO_INSIGHTS = "pre_conversion_media"  # media id -> "2108006": not asked again
_MEDIA_SAMPLES = "media_samples"  # the media's samples of the last full poll


def _media(
    graph_name: str,
    help: str,
    products: tuple[str, ...] = MEDIA_PRODUCTS,
    *,
    default: bool = True,
    ms: bool = False,
    unit: str = "count",
    breakdowns: tuple[str, ...] = (),
) -> MetricSpec:
    return MetricSpec(
        graph_name=graph_name,
        prom_name=collectord.prom_name(MEDIA_PREFIX, graph_name, milliseconds=ms),
        cadence="fast",
        periods=("lifetime",),
        unit="seconds" if ms else unit,
        help=help,
        scale=0.001 if ms else 1.0,
        default=default,
        group=products,
        breakdowns=breakdowns,
    )


def _story(
    graph_name: str, help: str, *, default: bool = True, breakdowns: tuple[str, ...] = ()
) -> MetricSpec:
    return MetricSpec(
        graph_name=graph_name,
        prom_name=collectord.prom_name(STORY_PREFIX, graph_name),
        cadence="fast",
        periods=("lifetime",),
        help=help,
        default=default,
        group=(STORY,),
        breakdowns=breakdowns,
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec.field(
        MEDIA_PREFIX, "like_count", "Likes of the media (organic; left out when likes are hidden)."
    ),
    MetricSpec.field(MEDIA_PREFIX, "comments_count", "Comments on the media (organic)."),
    _media("views", "Times the media was played or displayed (replaces impressions, plays)."),
    _media("reach", "Accounts that saw the media (estimated)."),
    _media("total_interactions", "Likes, comments, saves and shares (organic)."),
    _media("likes", "Likes (organic)."),
    _media("comments", "Comments (organic)."),
    _media("saved", "Saves."),
    _media("shares", "Shares."),
    _media("reposts", "Reposts."),
    _media("follows", "Accounts that followed from the post.", (FEED,)),
    _media("profile_visits", "Profile visits from the post.", (FEED,)),
    _media("ig_reels_avg_watch_time", "Average time the reel was watched.", (REELS,), ms=True),
    _media(
        "ig_reels_video_view_total_time",
        "Total time the reel was watched, replays included.",
        (REELS,),
        ms=True,
    ),
    _media(
        "reels_skip_rate",
        "Share of views skipped in the first 3 seconds (Meta: in development).",
        (REELS,),
        unit="ratio",
        default=False,
    ),
    _media(
        "profile_activity",
        "Actions on the profile after seeing the post, by action_type (one more call per media).",
        (FEED,),
        default=False,
        breakdowns=("action_type",),
    ),
    _media("total_likes", "Likes including ads and crossposts (Facebook Login).", default=False),
    _media("total_comments", "Comments including ads and crossposts.", default=False),
    _media("total_views", "Views including ads and crossposts.", default=False),
    _media(
        "facebook_views",
        "Views on Facebook (fails for media not shared to Facebook: then disabled).",
        default=False,
    ),
    _media(
        "crossposted_views",
        "Views on Instagram and Facebook (fails for reels not crossposted: then disabled).",
        (REELS,),
        default=False,
    ),
    _media(
        "impressions",
        "Legacy impressions, for media created before 2024-07-02 only.",
        (FEED,),
        default=False,
    ),
    _story("views", "Times the story was displayed."),
    _story("reach", "Accounts that saw the story (estimated)."),
    _story("replies", "Replies to the story (0 for viewers in the EU and Japan)."),
    _story("shares", "Shares of the story."),
    _story("total_interactions", "Replies and shares of the story."),
    _story("follows", "Accounts that followed from the story."),
    _story("profile_visits", "Profile visits from the story."),
    _story(
        "navigation",
        "Taps forward and back, exits and swipes (by story_navigation_action_type).",
        breakdowns=("story_navigation_action_type",),
    ),
    _story("reposts", "Reposts of the story.", default=False),
    _story("total_views", "Views including ads and crossposts.", default=False),
    _story("link_clicks", "Taps on the story's link sticker.", default=False),
    _story(
        "profile_activity",
        "Actions on the profile after seeing the story, by action_type.",
        default=False,
        breakdowns=("action_type",),
    ),
)

# What Meta retired, when, and what to ask for instead (graph-api.md 6.7); fnmatch patterns,
# the first match wins. ``impressions`` itself is in the catalogue: Meta still answers it for
# media created before 2024-07-02, and collectord asks for it for those media only.
DEC_2023 = "in December 2023"
APRIL_2025 = "in April 2025 (Graph API v22.0)"
RETIRED: tuple[Retired, ...] = (
    Retired("carousel_album_reach", DEC_2023, "use 'reach' on the carousel itself"),
    Retired("carousel_album_saved", DEC_2023, "use 'saved' on the carousel itself"),
    Retired("carousel_album_engagement", DEC_2023, "use 'total_interactions' on the carousel"),
    Retired("carousel_album_impressions", DEC_2023, "use 'views' on the carousel itself"),
    Retired("carousel_album_video_views", DEC_2023, "use 'views' on the carousel itself"),
    Retired("carousel_album_*", DEC_2023, "use 'reach', 'saved' or 'total_interactions'"),
    Retired("engagement", DEC_2023, "use 'total_interactions'"),
    *(
        Retired(
            name,
            f"for stories {DEC_2023}",
            "use 'navigation' (its story_navigation_action_type breakdown)",
        )
        for name in ("taps_forward", "taps_back", "exits")
    ),
    Retired("video_views", "in January 2025 (Graph API v21.0)", "use 'views'"),
    Retired(
        "impressions",
        f"{APRIL_2025} for media created from 2024-07-02 on (every live story among them)",
        "use 'views' ('impressions' still answers for posts created before 2024-07-02)",
    ),
    *(
        Retired(name, APRIL_2025, "use 'views'")
        for name in ("plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count")
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{MEDIA_PREFIX}_": "", f"{STORY_PREFIX}_": ""},
    kind="an Instagram media metric",
    asked_as="a lifetime metric of posts and reels",
    elsewhere=tuple(
        (pattern, "account metrics are read by the instagram_user plugin")
        for pattern in (
            "accounts_engaged",
            "follower_count",
            "follower_demographics",
            "engaged_audience_demographics",
            "online_followers",
            "profile_links_taps",
            "follows_and_unfollows",
        )
    ),
)

OPTIONS: tuple[Option, ...] = (
    Option(
        "ig_user_id",
        "id",
        help="The Instagram professional account's id (1784...); the token needs "
        "instagram_basic and instagram_manage_insights.",
    ),
    Option("max_age", "duration", "30d", help="Follow media created within this age."),
    Option("max_media", "int", 200, help="Follow at most this many (newest) media.", minimum=1),
    Option("include_stories", "bool", True, help="Also collect the live stories' insights."),
)


@dataclass(frozen=True)
class _Target:
    """What one insights request is about: its object, labels and metric specs."""

    object_id: str
    labels: Mapping[str, str]
    specs: Mapping[str, MetricSpec]
    breakdown: bool  # the answer's breakdown rows only (its total comes from the plain call)
    story: bool


def media_scope(product_type: str, media_type: str) -> str:
    """The kind of media a rejected metric is disabled for: ``FEED/IMAGE``."""
    return f"{product_type}/{media_type}"


class InstagramMedia(SourcePlugin):
    name = "instagram_media"
    version = collectord.__version__
    description = "Instagram media (posts, reels) and story insights"
    options = OPTIONS
    catalogue = CATALOGUE

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """Any name may be asked for, as a metric of posts and reels (Meta decides: a
        rejected one is disabled for that kind of media), with a config warning: what
        replaced it for a retired name, else the nearest known one; a Prometheus name is a
        config error."""
        NAMES.check(graph_name)
        return _media(graph_name, f"Instagram media insight {graph_name}.")

    async def collect(self, ctx: PollContext) -> list[Sample]:
        ig_user_id = str(ctx.options["ig_user_id"])
        targets: dict[str, _Target] = {}
        requests: list[InsightRequest] = []

        # An extra poll before a story expires reads the stories only.
        cached: list[Sample] | None = ctx.memory.get(_MEDIA_SAMPLES) if ctx.requested else None
        fields: list[Sample] = []
        if cached is None:
            fields = await _media_requests(ctx, ig_user_id, requests, targets)

        story_specs = ctx.metrics(kind="insight", group=STORY)
        if ctx.options.get("include_stories", True) and story_specs:
            stories = await ctx.graph.get_all(
                f"{ig_user_id}/stories", {"fields": STORY_FIELDS, "limit": PAGE_LIMIT}
            )
            plan_final_snapshots(ctx, stories)
            for story in stories:
                story_id = str(story.get("id") or "")
                if story_id:
                    labels = {"ig_user_id": ig_user_id, "media_id": story_id}
                    _add(requests, targets, story_id, labels, story_specs, STORY)

        insights: list[Sample] = []
        if requests:
            answers = await fetch_insights(ctx, requests)
            insights = _read_answers(ctx, answers, targets)
        story_samples = [s for s in insights if s.metric.startswith(f"{STORY_PREFIX}_")]
        if cached is None:
            media = [s for s in insights if not s.metric.startswith(f"{STORY_PREFIX}_")]
            cached = [*fields, *media]
            ctx.memory[_MEDIA_SAMPLES] = cached
        return [*cached, *story_samples]


async def _media_requests(
    ctx: PollContext,
    ig_user_id: str,
    requests: list[InsightRequest],
    targets: dict[str, _Target],
) -> list[Sample]:
    """List the media window; add each media's insight requests to ``requests`` and
    return the samples of the fields that came with the list."""
    samples: list[Sample] = []
    fields = ctx.metrics(kind="field")
    by_product = {p: ctx.metrics(kind="insight", group=p) for p in MEDIA_PRODUCTS}
    if not fields and not any(by_product.values()):
        return samples
    for item in await list_media(ctx, ig_user_id):
        labels = _media_labels(ig_user_id, item)
        media_id = labels["media_id"]
        for spec in fields:
            value = item.get(spec.graph_name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                samples.append(ctx.sample(spec, value, object_id=media_id, labels=labels))
        scope = media_scope(labels["media_product_type"], labels["media_type"])
        specs = _media_specs(by_product.get(labels["media_product_type"], ()), item)
        if media_id in ctx.memory.get(_NO_INSIGHTS, ()):
            ctx.skip(media_id, "pre_conversion")
        elif specs:
            _add(requests, targets, media_id, labels, specs, scope)
    return samples


async def list_media(ctx: PollContext, ig_user_id: str) -> list[dict[str, Any]]:
    """The media window: created within ``max_age``, at most ``max_media``, newest first
    as Meta lists them (``since`` lets Meta stop early; the age is checked here too)."""
    max_media = int(ctx.options.get("max_media", 200))
    cutoff = ctx.now - timedelta(seconds=float(ctx.options.get("max_age", 30 * 86400)))
    params = {
        "fields": MEDIA_FIELDS,
        "limit": min(PAGE_LIMIT, max_media),
        "since": int(cutoff.timestamp()),
    }
    items = await ctx.graph.get_all(f"{ig_user_id}/media", params, max_items=max_media)
    window: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        media_id = str(item.get("id") or "")
        if not media_id or media_id in seen:
            continue
        created = parse_time(item.get("timestamp"))
        if created is not None and created < cutoff:
            continue
        seen.add(media_id)
        window.append(item)
    known: dict[str, str] = ctx.memory.get(_NO_INSIGHTS, {})
    for media_id in [m for m in known if m not in seen]:
        del known[media_id]  # left the window
    return window[:max_media]


def plan_final_snapshots(ctx: PollContext, stories: Iterable[Mapping[str, Any]]) -> None:
    """Ask once per story for an extra poll shortly before it expires (24 h after its
    ``timestamp``), sharing one extra poll between stories that expire close together."""
    planned: dict[str, str] = ctx.memory.setdefault(_FINAL, {})
    live: set[str] = set()
    dated: list[tuple[datetime, str]] = []
    for story in stories:
        story_id = str(story.get("id") or "")
        created = parse_time(story.get("timestamp"))
        live.add(story_id)
        if story_id and story_id not in planned and created is not None:
            dated.append((created, story_id))
    for created, story_id in sorted(dated):  # oldest first, so later ones can share
        at = created + STORY_LIFETIME - FINAL_SNAPSHOT_LEAD
        if at <= ctx.now:
            planned[story_id] = ""  # this poll is its last before expiry
            continue
        shared = [
            t
            for t in (_instant(text) for text in planned.values())
            if t is not None and at - FINAL_SNAPSHOT_SHARE <= t <= at and t > ctx.now
        ]
        if shared:
            planned[story_id] = max(shared).isoformat()
            continue
        ctx.poll_again_at(at)
        planned[story_id] = at.isoformat()
    for story_id in [s for s in planned if s not in live]:
        del planned[story_id]  # expired: no longer listed


def _instant(text: str) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _media_labels(ig_user_id: str, item: Mapping[str, Any]) -> dict[str, str]:
    return {
        "ig_user_id": ig_user_id,
        "media_id": str(item.get("id") or ""),
        "media_type": str(item.get("media_type") or ""),
        "media_product_type": str(item.get("media_product_type") or ""),
    }


def _media_specs(specs: Sequence[MetricSpec], item: Mapping[str, Any]) -> list[MetricSpec]:
    """The media's metric set; ``impressions`` only for media from before 2024-07-02 (Meta
    fails the whole call for newer ones)."""
    created = parse_time(item.get("timestamp"))
    legacy = created is not None and created < IMPRESSIONS_CUTOFF
    return [s for s in specs if s.graph_name != "impressions" or legacy]


def _add(
    requests: list[InsightRequest],
    targets: dict[str, _Target],
    object_id: str,
    labels: Mapping[str, str],
    specs: Sequence[MetricSpec],
    scope: str,
) -> None:
    """One request for the object's metric set, and one per metric and breakdown, all in
    ``scope`` (what Meta rejects is disabled for objects of that kind only)."""
    story = scope == STORY
    by_name = {s.graph_name: s for s in specs}
    requests.append(InsightRequest(object_id, tuple(by_name), scope=scope))
    targets[object_id] = _Target(object_id, labels, by_name, breakdown=False, story=story)
    for spec in specs:
        for bd in spec.breakdowns:
            key = f"{object_id}|{spec.graph_name}|{bd}"
            disable_as = scoped_key(scope, breakdown_key(spec.graph_name, bd))
            requests.append(
                InsightRequest(
                    object_id,
                    (spec.graph_name,),
                    {"breakdown": bd},
                    key,
                    scope=scope,
                    disable_as=disable_as,
                )
            )
            targets[key] = _Target(object_id, labels, by_name, breakdown=True, story=story)


def _read_answers(
    ctx: PollContext,
    answers: Mapping[str, list[dict[str, Any]] | GraphError],
    targets: Mapping[str, _Target],
) -> list[Sample]:
    """Samples of every answer; object errors are skipped once per object, except a
    permission error on every object (the token lacks the permission: the poll fails)."""
    samples: list[Sample] = []
    failed: dict[str, GraphError] = {}
    for ident, answer in answers.items():
        target = targets[ident]
        if isinstance(answer, GraphError):
            failed.setdefault(target.object_id, answer)
            continue
        by_metric: dict[str, list[InsightValue]] = {}
        for v in parse_entries(answer):
            if v.name in target.specs and bool(v.dims) == target.breakdown:
                by_metric.setdefault(v.name, []).append(v)
        for name, values in by_metric.items():
            samples.extend(
                samples_from_values(
                    ctx,
                    target.specs[name],
                    values,
                    object_id=target.object_id,
                    labels=target.labels,
                    with_period=False,
                )
            )
    objects = {t.object_id: t for t in targets.values()}
    reasons = {oid: skip_reason(err, story=objects[oid].story) for oid, err in failed.items()}
    if reasons and len(reasons) == len(objects) and set(reasons.values()) == {"permission"}:
        raise next(iter(failed.values()))
    for object_id, reason in reasons.items():
        if reason == "pre_conversion":
            ctx.memory.setdefault(_NO_INSIGHTS, {})[object_id] = "2108006"
        ctx.skip(object_id, reason)
    # an object that failed in one of its requests is dropped whole, never half-exported
    return [s for s in samples if s.object_id not in failed]


def skip_reason(err: GraphError, *, story: bool) -> str:
    """Why an object's insights were skipped, from the outcome of Meta's answer."""
    return _SKIP_REASONS.get(err.outcome, "unsupported")


_SKIP_REASONS = {
    Outcome.OBJECT_GONE: "vanished",
    Outcome.BEFORE_CONVERSION: "pre_conversion",
    Outcome.TOO_FEW_VIEWERS: "not_enough_viewers",
    Outcome.PERMISSION: "permission",
}


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [InstagramMedia()]
