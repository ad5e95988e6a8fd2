"""``instagram_media``: insights of an Instagram account's recent media and live stories.

Exposition, for a source ``northwind-media`` (values invented)::

    instagram_media_likes{source="northwind-media",ig_user_id="17841400000000001",media_id="18000000000000042",media_type="VIDEO",media_product_type="REELS"} 311.0
    instagram_media_views{source="northwind-media",ig_user_id="17841400000000001",media_id="18000000000000042",media_type="VIDEO",media_product_type="REELS"} 9120.0
    instagram_media_ig_reels_avg_watch_time_seconds{source="northwind-media",ig_user_id="17841400000000001",media_id="18000000000000042",media_type="VIDEO",media_product_type="REELS"} 7.412
    instagram_story_navigation{source="northwind-media",ig_user_id="17841400000000001",media_id="17900000000000007"} 25.0
    instagram_story_navigation_by_story_navigation_action_type{source="northwind-media",ig_user_id="17841400000000001",media_id="17900000000000007",story_navigation_action_type="tap_forward"} 19.0

Everything is ``fast``. One poll:

1. lists the media window, ``{ig-user-id}/media`` newest first with cursor paging: media
   created within ``max_age``, at most ``max_media``; ``like_count`` and
   ``comments_count`` come with the list;
2. lists the live stories, ``{ig-user-id}/stories`` (when ``include_stories``);
3. asks for the insights of the media younger than ``tier_age`` (default 48 hours) and of
   the older ones last read a daily interval ago, in one request per media with exactly
   the metrics Meta serves for its ``media_product_type`` (docs/meta-facts.md 6.2: the
   spec's ``group``), plus one request per story and breakdown; all of them go out as
   batch requests, 50 per HTTP request, the batches side by side. Older media keep the
   values of their last read in between (:mod:`collectord.plugin.tiers`), so a window of
   500 media costs about its young media per poll plus each old one once a day. Carousel
   children are never queried (Meta has no insights for them).

Expected per-object answers are skipped and counted, never failures of the poll: media
posted before the business conversion (code 100, subcode 2108006; remembered and not asked
again), stories seen by fewer than 5 accounts (code 10), objects that vanished (100/33).
A story lives 24 hours: one extra poll is requested a few minutes before it expires so
that its final values reach the JSONL sink. That poll reads the stories only and hands
back their samples as a partial result (the media's series of the last poll stay as they
were), so no media is asked for more often than the fast cadence. Once expired a story is no longer listed and its series leave
``/metrics``. Media older than ``max_age`` leave the same way.

Media and stories share metric names, and Meta's metric sets differ between kinds of
media, so a metric Meta rejects is disabled for one kind only: ``STORY/shares`` for
stories, ``FEED/IMAGE/shares`` for feed images (``{media_product_type}/{media_type}``);
and only for the media Meta rejected it for (``FEED/IMAGE/shares@1789...``) until it was 3
media of that kind. A day later it is asked for again (of 3 media per kind first), and
comes back when Meta answers.

Meta replaced ``impressions``, ``plays``, ``video_views`` and the ``carousel_album_*``
metrics with ``views``; ``impressions`` still answers for media created before 2024-07-02
only, so it is off by default and, when asked for, requested for those media only. Any
other retired name in ``metrics`` gets a config warning that says when and what replaced
it (still asked for: Meta decides); a Prometheus name (``instagram_story_navigation``) is a
config error; any other unknown name is asked for as a media metric of posts and reels,
with a config warning naming the nearest known one.
"""

from __future__ import annotations

import bisect
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import collectord
from collectord import (
    TIER_AGE_OPTION,
    GraphApi,
    GraphError,
    MetricSpec,
    Option,
    PollContext,
    PollResult,
    Requests,
    Sample,
    SourcePlugin,
    Tag,
    field_samples,
    insight_samples,
    parse_entries,
    parse_time,
    skip_failed,
    tiers,
)

from .instagram_media_catalogue import (
    CATALOGUE,
    MEDIA_PRODUCTS,
    NAMES,
    RETIRED,
    SAME_AS_FIELD,
    STORY,
    media_insight,
)
from .instagram_media_webhook import FIELD as WEBHOOK_FIELD
from .instagram_media_webhook import story_webhook_samples
from .instagram_user_catalogue import LOGIN, login_api

__all__ = ["CATALOGUE", "RETIRED", "InstagramMedia", "media_scope", "register_source_plugins"]

#: ``impressions`` answers only for media created before this instant (docs/meta-facts.md 6.2).
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

# Keys of ctx.memory (plain data only).
_FINAL = "final_snapshot_at"  # story id -> planned extra poll (ISO text)
_NO_INSIGHTS = "pre_conversion_media"  # media id -> "2108006": not asked again
_MEDIA_READ = "media_read_at"  # when the media window was last read (ISO text)


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
    TIER_AGE_OPTION,
    LOGIN,
)

#: Media metrics about Facebook (crossposting, ads) that the Instagram API with Instagram
#: Login does not serve (docs/meta-facts.md 10.8): left out for ``login = "instagram"``.
FACEBOOK_ONLY: frozenset[str] = frozenset(
    {"facebook_views", "crossposted_views", "total_likes", "total_comments", "total_views"}
)


#: What a poll asks for: the insights of each object, and each object's labels and specs.
Objects = dict[str, tuple[Mapping[str, str], Mapping[str, MetricSpec]]]


def _served(ctx: PollContext, specs: Sequence[MetricSpec]) -> tuple[MetricSpec, ...]:
    """``specs`` without the ones the source's API does not serve (:data:`FACEBOOK_ONLY`
    for an Instagram-Login source)."""
    if ctx.options.get("login") != "instagram":
        return tuple(specs)
    return tuple(s for s in specs if s.graph_name not in FACEBOOK_ONLY)


def media_scope(product_type: str, media_type: str) -> str:
    """The kind of media a rejected metric is disabled for: ``FEED/IMAGE``."""
    return f"{product_type}/{media_type}"


class InstagramMedia(SourcePlugin):
    """Reads the media window and the live stories, and their insights in one fetch."""

    name = "instagram_media"
    version = collectord.__version__
    description = "Instagram media (posts, reels) and story insights"
    options = OPTIONS
    scopes = ("instagram_basic", "instagram_manage_insights", "pages_read_engagement")
    discovers = "instagram"
    catalogue = CATALOGUE

    def api_for(self, options: Mapping[str, Any]) -> GraphApi:
        """graph.instagram.com for ``login = "instagram"``, else the Facebook Graph API."""
        return login_api(options)

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """Any name may be asked for, as a metric of posts and reels (Meta decides: a
        rejected one is disabled for that kind of media), with a config warning: what
        replaced it for a retired name, else the nearest known one; a Prometheus name is a
        config error. ``likes`` and ``comments`` are the media's ``like_count`` and
        ``comments_count`` fields (the same counts, one series each)."""
        field = SAME_AS_FIELD.get(graph_name)
        if field is not None:
            spec = next(s for s in CATALOGUE if s.graph_name == field)
            warnings.warn(
                f"{graph_name!r} is read as the media's {field!r} field ({spec.prom_name}): "
                "the same count, exported once",
                stacklevel=2,
            )
            return spec
        NAMES.check(graph_name)
        return media_insight(graph_name, f"Instagram media insight {graph_name}.")

    def webhook_samples(
        self,
        field: str,
        object_id: str,
        value: Mapping[str, Any],
        *,
        options: Mapping[str, Any],
        catalogue: Sequence[MetricSpec],
    ) -> list[Sample] | None:
        """A ``story_insights`` delivery about this source's account (with
        ``include_stories``): the story's final values (docs/meta-facts.md 6.8)."""
        mine = str(options.get("ig_user_id")) == object_id and options.get("include_stories", True)
        if field != WEBHOOK_FIELD or not mine:
            return None
        return story_webhook_samples(object_id, value, catalogue)

    async def collect(self, ctx: PollContext) -> PollResult:
        ig_user_id = str(ctx.options["ig_user_id"])
        requests: Requests[Tag] = Requests()
        objects: Objects = {}
        # An extra poll before a story expires reads the stories only (once the media
        # were read): a partial result, the store keeps the media's series.
        stories_only = ctx.requested and bool(ctx.memory.get(_MEDIA_READ))
        samples: list[Sample] = []
        if not stories_only:
            samples += await _media_requests(ctx, ig_user_id, requests, objects)
            ctx.memory[_MEDIA_READ] = ctx.now.isoformat()

        story_specs = _served(ctx, ctx.metrics(kind="insight", group=STORY))
        if ctx.options.get("include_stories", True) and story_specs:
            stories = await ctx.graph.get_all(
                f"{ig_user_id}/stories", {"fields": STORY_FIELDS, "limit": PAGE_LIMIT}
            )
            plan_final_snapshots(ctx, stories)
            for story in stories:
                story_id = str(story.get("id") or "")
                if story_id:
                    labels = {"ig_user_id": ig_user_id, "media_id": story_id}
                    _add(requests, objects, story_id, labels, story_specs, STORY)

        samples += await _read_answers(ctx, requests, objects)
        return ctx.result(samples, partial=stories_only)


async def _media_requests(
    ctx: PollContext,
    ig_user_id: str,
    requests: Requests[Tag],
    objects: Objects,
) -> list[Sample]:
    """List the media window; add each media's insight requests to ``requests`` and
    return the samples of the fields that came with the list."""
    samples: list[Sample] = []
    fields = ctx.metrics(kind="field")
    by_product = {p: _served(ctx, ctx.metrics(kind="insight", group=p)) for p in MEDIA_PRODUCTS}
    if not fields and not any(by_product.values()):
        return samples
    window = await list_media(ctx, ig_user_id)
    asked = {s.graph_name for specs in by_product.values() for s in specs}
    tier = tiers(ctx, {str(m["id"]): parse_time(m.get("timestamp")) for m in window}, asked)
    for item in window:
        labels = _media_labels(ig_user_id, item)
        media_id = labels["media_id"]
        samples += field_samples(ctx, fields, item, object_id=media_id, labels=labels)
        scope = media_scope(labels["media_product_type"], labels["media_type"])
        specs = _media_specs(by_product.get(labels["media_product_type"], ()), item)
        if media_id in ctx.memory.get(_NO_INSIGHTS, ()):
            ctx.skip(media_id, "pre_conversion")
        elif specs and media_id in tier.read:
            _add(requests, objects, media_id, labels, specs, scope)
    # older media not due keep the insights of their last read (a daily one)
    return samples + tier.carried(samples)


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
    """Plan one extra poll per story shortly before it expires (24 h after its
    ``timestamp``), shared between stories that expire close together, and ask for the
    next one due. A result carries one ask, so every poll asks again for the earliest
    planned one still ahead (the host keeps one extra poll per instant): a later story's
    snapshot is asked for by the poll that took the earlier one."""
    planned: dict[str, str] = ctx.memory.setdefault(_FINAL, {})
    live: set[str] = set()
    dated: list[tuple[datetime, str]] = []
    for story in stories:
        story_id = str(story.get("id") or "")
        created = parse_time(story.get("timestamp"))
        live.add(story_id)
        if story_id and story_id not in planned and created is not None:
            dated.append((created, story_id))
    for story_id in [s for s in planned if s not in live]:
        del planned[story_id]  # expired: no longer listed
    # the planned instants still ahead, sorted: a new story shares the latest one within
    # FINAL_SNAPSHOT_SHARE before its own (a bisection, so thousands of stories stay cheap)
    ahead = sorted({t for t in map(_instant, planned.values()) if t is not None and t > ctx.now})
    for created, story_id in sorted(dated):  # oldest first, so later ones can share
        at = created + STORY_LIFETIME - FINAL_SNAPSHOT_LEAD
        if at <= ctx.now:
            planned[story_id] = ""  # this poll is its last before expiry
            continue
        index = bisect.bisect_right(ahead, at)
        if index and ahead[index - 1] >= at - FINAL_SNAPSHOT_SHARE:
            at = ahead[index - 1]
        else:
            ahead.insert(index, at)
        planned[story_id] = at.isoformat()
    if ahead:
        ctx.poll_again_at(ahead[0])


def _instant(text: Any) -> datetime | None:
    """A planned instant kept in memory (ISO text); anything else is none."""
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


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
    requests: Requests[Tag],
    objects: Objects,
    object_id: str,
    labels: Mapping[str, str],
    specs: Sequence[MetricSpec],
    scope: str,
) -> None:
    """One request for the object's metric set, and one per metric and breakdown, all in
    ``scope`` (what Meta rejects is disabled for objects of that kind only)."""
    by_name = {s.graph_name: s for s in specs}
    objects[object_id] = (labels, by_name)
    requests.add(Tag(object_id), object_id, by_name, scope=scope, per_object=True)
    for spec in specs:
        for bd in spec.breakdowns:
            requests.add_breakdown(
                Tag(object_id, bd), object_id, spec.graph_name, bd, scope=scope, per_object=True
            )


async def _read_answers(
    ctx: PollContext, requests: Requests[Tag], objects: Objects
) -> list[Sample]:
    """Samples of every answer; object errors are skipped once per object, except a
    permission error on every object (the token lacks the permission: the poll fails)."""
    samples: list[Sample] = []
    failed: dict[str, GraphError] = {}
    # a re-probe goes to a few media of each kind first: a metric Meta still rejects is
    # disabled for the kind again before the other media ask for it
    parts = requests.split_probe() if ctx.reprobing else (requests,)
    answers = [pair for part in parts for pair in await part.fetch(ctx)]
    for tag, answer in answers:
        if isinstance(answer, GraphError):
            failed.setdefault(tag.object_id, answer)
            continue
        labels, specs = objects[tag.object_id]
        samples += insight_samples(
            ctx,
            specs,
            parse_entries(answer),
            breakdown=bool(tag.breakdown),  # the total comes from the plain call
            object_id=tag.object_id,
            labels=labels,
            with_period=False,
        )
    reasons = skip_failed(ctx, failed, list(objects), default="unsupported")
    for object_id, reason in reasons.items():
        if reason == "pre_conversion":
            ctx.memory.setdefault(_NO_INSIGHTS, {})[object_id] = "2108006"
    # an object that failed in one of its requests is dropped whole, never half-exported
    return [s for s in samples if s.object_id not in failed]


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [InstagramMedia()]
