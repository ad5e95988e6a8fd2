"""instagram_media: the media window, per-product-type metric sets, skipped objects, stories
and their final snapshot, and what a cycle costs, against a fake that answers like Meta
(docs/meta-facts.md 6, 8, 11)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collectord_plugins.instagram_media import InstagramMedia
from config_support import metrics_rejected, metrics_said, write_source

from collectord import (
    PermissionDeniedError,
    Sample,
)
from collectord.cli import main
from collectord.config.loader import load_config
from collectord.graph.answers import meta_error
from collectord.testing import FakeGraph, PluginHost

IG = "17841400000000001"
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)

# Meta's matrix (docs/meta-facts.md 6.2): which metrics each product type answers.
BOTH = {
    "views",
    "reach",
    "total_interactions",
    "shares",
    "reposts",
    "facebook_views",
    "total_views",
}
VALID = {
    "FEED": BOTH
    | {"likes", "comments", "saved", "total_likes", "total_comments", "follows"}
    | {"profile_visits", "profile_activity", "impressions"},
    "REELS": BOTH
    | {"likes", "comments", "saved", "total_likes", "total_comments"}
    | {"ig_reels_avg_watch_time", "ig_reels_video_view_total_time", "reels_skip_rate"}
    | {"crossposted_views"},
    "STORY": BOTH
    | {"follows", "profile_visits", "profile_activity", "impressions", "replies"}
    | {"navigation", "link_clicks"},
}
BREAKDOWNS = {"navigation": "story_navigation_action_type", "profile_activity": "action_type"}
NAVIGATION = {"tap_forward": 19, "tap_back": 4, "tap_exit": 1, "swipe_forward": 1}


@dataclass
class Media:
    id: str
    created: datetime
    product: str = "FEED"
    media_type: str = "IMAGE"
    pre_conversion: bool = False
    gone: bool = False  # deleted after it was listed
    viewers: int = 100
    empty: bool = False  # Meta has no data yet


@dataclass
class FakeInstagram(FakeGraph):
    """An IG account's ``/media``, ``/stories`` and media ``/insights`` as Meta serves them."""

    media: list[Media] = field(default_factory=list)
    stories: list[Media] = field(default_factory=list)
    empty_page_after: int | None = 1  # serve an empty page carrying `next` after page N
    permission_denied: bool = False

    def __post_init__(self) -> None:
        FakeGraph.__init__(self)

    @property
    def insight_calls(self) -> list[tuple[str, dict[str, str]]]:
        return [(path, p) for path, p in self.calls if path.endswith("/insights")]

    @property
    def list_calls(self) -> list[tuple[str, dict[str, str]]]:
        """One call per page of ``/media`` or ``/stories``."""
        return [(path, p) for path, p in self.calls if not path.endswith("/insights")]

    @property
    def http_requests(self) -> int:
        return len(self.http)

    @property
    def batch_calls(self) -> int:
        return sum(1 for method, _, _ in self.http if method == "POST")

    def reset(self) -> None:
        """Forget the calls made so far."""
        self.calls.clear()
        self.http.clear()

    def respond(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path.endswith("/insights"):
            return self.insights(path, params)
        pages = self.pages(path, params)
        index = int(params.get("after", "0"))
        body: dict[str, Any] = {"data": pages[index], "paging": {}}
        if index + 1 < len(pages):
            body["paging"] = {"cursors": {"after": str(index + 1)}, "next": "https://x/next"}
        return body

    def by_id(self) -> dict[str, Media]:
        return {m.id: m for m in [*self.media, *self.stories]}

    # -- insights ---------------------------------------------------------------------------
    def insights(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        p = {k: str(v) for k, v in params.items()}
        object_id, edge = path.split("/")
        assert edge == "insights"
        m = self.by_id().get(object_id)
        if m is None or m.gone:
            raise meta_error(
                f"Unsupported get request. Object with ID '{object_id}' does not exist",
                code=100,
                subcode=33,
            )
        if self.permission_denied:
            raise meta_error("(#10) Application does not have permission for this action", code=10)
        if m.pre_conversion:
            raise meta_error("Invalid parameter", code=100, subcode=2108006)
        names = p["metric"].split(",")
        for name in names:
            if name not in VALID[m.product]:
                raise meta_error(
                    f"(#100) The Media Insights API does not support the {name} metric for "
                    "this media product type.",
                    code=100,
                )
            if name == "impressions" and m.created >= datetime(2024, 7, 2, tzinfo=UTC):
                raise meta_error("(#100) impressions: media after 2024-07-02", code=100)
        if p.get("breakdown") and any(BREAKDOWNS.get(n) != p["breakdown"] for n in names):
            raise meta_error("An unknown error has occurred.", code=1)
        if m.product == "STORY" and m.viewers < 5:
            raise meta_error("(#10) Not enough viewers for the media to show insights", code=10)
        if m.empty:
            return {"data": []}
        data = []
        for name in names:
            value = (
                7412 if name == "ig_reels_avg_watch_time" else 25 if name == "navigation" else 40
            )
            entry: dict[str, Any] = {
                "name": name,
                "period": "lifetime",
                "values": [{"value": value}],
                "id": f"{object_id}/insights/{name}/lifetime",
            }
            if p.get("breakdown"):
                entry["total_value"] = {
                    "value": value,
                    "breakdowns": [
                        {
                            "dimension_keys": [p["breakdown"]],
                            "results": [
                                {"dimension_values": [k], "value": v} for k, v in NAVIGATION.items()
                            ],
                        }
                    ],
                }
            data.append(entry)
        return {"data": data}

    # -- lists ------------------------------------------------------------------------------
    def item(self, m: Media) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": m.id,
            "media_type": m.media_type,
            "media_product_type": m.product,
            "timestamp": m.created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        }
        if m.product != "STORY":
            out.update(like_count=int(m.id[-3:]), comments_count=3)
        return out

    def pages(self, path: str, params: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
        """Meta's cursor pages (newest first, ``limit`` capped at 100), one empty page with
        ``next`` among them; ``since`` is not applied (the plugin checks the age itself)."""
        node, edge = path.split("/")
        assert node == IG
        limit = min(int(params.get("limit", 25)), 100)
        source = self.media if edge == "media" else self.stories
        items = [self.item(m) for m in sorted(source, key=lambda m: m.created, reverse=True)]
        pages = [items[i : i + limit] for i in range(0, len(items), limit)] or [[]]
        if self.empty_page_after is not None and len(pages) > self.empty_page_after:
            pages.insert(self.empty_page_after, [])
        return pages


PLUGIN = InstagramMedia()
DEFAULTS = tuple(s for s in PLUGIN.catalogue if s.default)


class Poller:
    """Runs polls of one source like the host does, recording requested extra polls."""

    def __init__(self, graph: FakeInstagram, metrics: Sequence[str] | None = None, **opts: Any):
        self.graph = graph
        options = {"ig_user_id": IG} | opts
        self.host = PluginHost(
            PLUGIN, options, graph=graph, metrics=metrics, source="acme-ig", now=NOW
        )

    @property
    def status(self) -> PluginHost:
        """What the host keeps of the source: disabled metrics, memory, counts."""
        return self.host

    @property
    def extra_polls(self) -> list[datetime]:
        return [when for _, when in self.host.poll_requests]

    async def poll(self, now: datetime = NOW, *, requested: bool = False) -> list[Sample]:
        """One fast poll; returns what ``/metrics`` shows for the source afterwards."""
        await self.host.poll("fast", now=now, requested=requested)
        return list(self.host.samples())

    @property
    def skipped(self) -> int:
        return self.host.errors["skipped_object"]


def media_id(i: int) -> str:
    return f"18{i:016d}"


def story_id(i: int) -> str:
    return f"179{i:015d}"


def metric_sets(graph: FakeInstagram) -> dict[str, set[str]]:
    return {
        path.split("/")[0]: set(p["metric"].split(","))
        for path, p in graph.insight_calls
        if "breakdown" not in p
    }


def of(samples: Sequence[Sample], metric: str, object_id: str | None = None) -> list[Sample]:
    return [
        s for s in samples if s.metric == metric and (object_id is None or s.object_id == object_id)
    ]


async def test_names_labels_and_values_of_posts_and_reels() -> None:
    graph = FakeInstagram(
        media=[
            Media(media_id(1), NOW - timedelta(days=1), "FEED", "IMAGE"),
            Media(media_id(2), NOW - timedelta(days=2), "REELS", "VIDEO"),
        ]
    )
    samples = await Poller(graph).poll()
    (views,) = of(samples, "instagram_media_views", media_id(2))
    assert views.label_dict == {
        "ig_user_id": IG,
        "media_id": media_id(2),
        "media_type": "VIDEO",
        "media_product_type": "REELS",
    }
    assert views.value == 40.0
    assert views.cadence == "fast"
    assert views.period == "lifetime"
    (watch,) = of(samples, "instagram_media_ig_reels_avg_watch_time_seconds")
    assert watch.value == pytest.approx(7.412), "milliseconds become seconds"
    (likes,) = of(samples, "instagram_media_likes", media_id(1))
    assert likes.value == 1.0
    assert likes.label_dict["media_product_type"] == "FEED"
    assert all("period" not in s.label_dict for s in samples)
    assert all(s.cadence == "fast" for s in samples)


async def test_only_metrics_valid_for_the_product_type_are_requested() -> None:
    graph = FakeInstagram(
        media=[
            Media(media_id(1), NOW - timedelta(days=1), "FEED", "CAROUSEL_ALBUM"),
            Media(media_id(2), NOW - timedelta(days=1), "REELS", "VIDEO"),
            Media(media_id(3), NOW - timedelta(days=1), "FEED", "VIDEO"),
        ],
        stories=[Media(story_id(1), NOW - timedelta(hours=2), "STORY")],
    )
    poller = Poller(graph)
    await poller.poll()
    assert poller.status.disabled == {}, "no call failed for a product-type mismatch"
    sets = metric_sets(graph)
    # likes and comments are the like_count and comments_count fields of the list (one
    # series per measure): their insights are not asked
    feed = {"views", "reach", "total_interactions", "saved", "shares"}
    feed |= {"reposts", "follows", "profile_visits"}
    assert sets[media_id(1)] == sets[media_id(3)] == feed, "media_type does not change the set"
    reels = (feed - {"follows", "profile_visits"}) | {
        "ig_reels_avg_watch_time",
        "ig_reels_video_view_total_time",
    }
    assert sets[media_id(2)] == reels
    assert sets[story_id(1)] == {
        "views",
        "reach",
        "replies",
        "shares",
        "total_interactions",
        "follows",
        "profile_visits",
        "navigation",
    }
    listed = graph.list_calls[0][1]["fields"].split(",")
    assert "children" not in listed, "carousel children are never read or queried"


async def test_impressions_only_for_media_from_before_july_2024() -> None:
    graph = FakeInstagram(
        media=[
            Media(media_id(1), datetime(2024, 6, 30, tzinfo=UTC)),
            Media(media_id(2), datetime(2024, 7, 3, tzinfo=UTC)),
        ]
    )
    poller = Poller(graph, metrics=["impressions", "views"], max_age="1000d")
    samples = await poller.poll()
    assert poller.status.disabled == {}
    assert metric_sets(graph) == {media_id(1): {"impressions", "views"}, media_id(2): {"views"}}
    assert [s.object_id for s in of(samples, "instagram_media_impressions")] == [media_id(1)]


async def test_expected_object_errors_are_skipped_and_counted() -> None:
    graph = FakeInstagram(
        media=[
            Media(media_id(1), NOW - timedelta(days=1)),
            Media(media_id(2), NOW - timedelta(days=2), pre_conversion=True),
            Media(media_id(3), NOW - timedelta(days=3), gone=True),
            Media(media_id(4), NOW - timedelta(days=4), empty=True),
        ],
        stories=[
            Media(story_id(1), NOW - timedelta(hours=1), "STORY", viewers=3),
            Media(story_id(2), NOW - timedelta(hours=2), "STORY"),
        ],
    )
    poller = Poller(graph)
    samples = await poller.poll()
    assert poller.skipped == 3, "pre-conversion media, the quiet story, the vanished media"
    assert poller.status.disabled == {}
    insight_objects = {s.object_id for s in samples if s.metric.endswith("_views")}
    assert insight_objects == {media_id(1), story_id(2)}, "empty data is no data, no error"
    assert of(samples, "instagram_media_likes", media_id(2)), "its fields still flow"

    # pre-conversion media is permanent: not asked again, still counted
    graph.reset()
    await poller.poll()
    assert media_id(2) not in metric_sets(graph)
    assert poller.skipped == 6


async def test_permission_missing_for_every_object_fails_the_poll() -> None:
    graph = FakeInstagram(
        media=[Media(media_id(i), NOW - timedelta(days=i)) for i in range(1, 4)],
        permission_denied=True,
    )
    with pytest.raises(PermissionDeniedError):
        await Poller(graph).poll()


async def test_story_navigation_total_and_breakdown_in_separate_families() -> None:
    graph = FakeInstagram(stories=[Media(story_id(1), NOW - timedelta(hours=3), "STORY")])
    samples = await Poller(graph).poll()
    (total,) = of(samples, "instagram_story_navigation")
    assert total.value == 25.0
    assert total.label_dict == {"ig_user_id": IG, "media_id": story_id(1)}
    rows = of(samples, "instagram_story_navigation_by_story_navigation_action_type")
    assert {s.label_dict["story_navigation_action_type"]: s.value for s in rows} == {
        k: float(v) for k, v in NAVIGATION.items()
    }
    assert sum(s.value for s in rows) == total.value
    assert all(
        set(s.label_dict) == {"ig_user_id", "media_id"} for s in samples if "_by_" not in s.metric
    )
    bd_calls = [p for _, p in graph.insight_calls if "breakdown" in p]
    assert bd_calls == [{"metric": "navigation", "breakdown": "story_navigation_action_type"}]


async def test_final_snapshot_is_requested_once_per_story_before_expiry() -> None:
    early = NOW - timedelta(hours=20)
    graph = FakeInstagram(
        stories=[
            Media(story_id(1), early, "STORY"),
            Media(story_id(2), early + timedelta(minutes=2), "STORY"),  # same burst
            Media(story_id(3), NOW - timedelta(hours=2), "STORY"),
            Media(story_id(4), NOW - timedelta(hours=23, minutes=58), "STORY"),  # too late
        ]
    )
    poller = Poller(graph)
    await poller.poll()
    lead = timedelta(hours=24) - timedelta(minutes=5)
    assert poller.extra_polls == [early + lead], "the burst's extra poll comes first"
    await poller.poll(NOW + timedelta(minutes=15))
    # the extra poll of the burst asks for the next one due
    await poller.poll(early + lead, requested=True)
    assert sorted(poller.extra_polls) == [early + lead, NOW - timedelta(hours=2) + lead]
    await poller.poll(early + lead + timedelta(minutes=1))
    assert len(poller.extra_polls) == 2, "asked once per story, not once per poll"


async def test_expired_story_leaves_metrics_and_memory() -> None:
    graph = FakeInstagram(stories=[Media(story_id(1), NOW - timedelta(hours=20), "STORY")])
    poller = Poller(graph)
    assert of(await poller.poll(), "instagram_story_views")
    graph.stories = []  # 24 h later Meta no longer lists it
    samples = await poller.poll(NOW + timedelta(hours=5))
    assert not [s for s in samples if s.metric.startswith("instagram_story_")]
    assert poller.status.memory["final_snapshot_at"] == {}


async def test_stories_can_be_left_out() -> None:
    graph = FakeInstagram(stories=[Media(story_id(1), NOW - timedelta(hours=1), "STORY")])
    samples = await Poller(graph, include_stories=False).poll()
    assert samples == []
    assert graph.list_calls == [(f"{IG}/media", graph.list_calls[0][1])]


async def test_media_window_by_age_and_count() -> None:
    graph = FakeInstagram(
        media=[Media(media_id(i), NOW - timedelta(days=i, hours=1)) for i in range(40)]
    )
    poller = Poller(graph, max_age="10d")
    samples = await poller.poll()
    assert {s.object_id for s in samples} == {media_id(i) for i in range(10)}
    assert set(metric_sets(graph)) == {media_id(i) for i in range(10)}, "old media not asked"

    graph.reset()
    samples = await Poller(graph, max_media=5).poll()
    assert {s.object_id for s in samples} == {media_id(i) for i in range(5)}, "the newest 5"
    assert all(int(p["limit"]) <= 100 for _, p in graph.list_calls)


async def test_a_cycle_costs_the_list_pages_plus_one_batch_per_50_media() -> None:
    graph = FakeInstagram(
        media=[Media(media_id(i), NOW - timedelta(hours=i + 1)) for i in range(500)],
        stories=[Media(story_id(i), NOW - timedelta(hours=i + 1), "STORY") for i in range(5)],
    )
    poller = Poller(graph, max_media=500)
    samples = await poller.poll()
    assert {s.object_id for s in of(samples, "instagram_media_reach")} == {
        media_id(i) for i in range(500)
    }, "every page was read, the empty one with `next` included"
    media_pages = sum(1 for path, _ in graph.list_calls if path.endswith("/media"))
    assert media_pages == 5 + 1  # 500 / 100, plus Meta's empty page
    # 500 media + 5 stories x (plain + navigation breakdown) = 510 elements
    assert len(graph.insight_calls) == 510
    assert graph.batch_calls == 11
    assert graph.http_requests == media_pages + 1 + 11


async def test_daily_poll_does_nothing() -> None:
    graph = FakeInstagram(media=[Media(media_id(1), NOW - timedelta(days=1))])
    poller = Poller(graph)
    assert (await poller.host.poll("daily")).samples == ()
    assert graph.http_requests == 0


def test_catalogue_and_validation() -> None:
    assert {s.cadence for s in PLUGIN.catalogue} == {"fast"}
    assert all(
        len({*s.group} & {"FEED", "REELS", "STORY"}) == len(s.group) for s in PLUGIN.catalogue
    )
    for product, valid in VALID.items():
        names = {s.graph_name for s in PLUGIN.catalogue if product in s.group}
        assert names <= valid, f"{product}: {names - valid} would fail Meta's call"
    story = {s.prom_name for s in PLUGIN.catalogue if s.group == ("STORY",)}
    assert all(n.startswith("instagram_story_") for n in story)
    assert {o.name: o.type for o in PLUGIN.options}["ig_user_id"] == "id"


@dataclass
class PickyInstagram(FakeInstagram):
    """Meta refusing some metrics for some media ("not supported for this media type"), and
    answering the story navigation breakdown with code 1 while ``navigation_unknown``."""

    refuse: dict[str, set[str]] = field(default_factory=dict)
    navigation_unknown: bool = False

    def insights(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        object_id = path.split("/")[0]
        names = str(params.get("metric", "")).split(",")
        refused = [n for n in names if n in self.refuse.get(object_id, set())]
        if refused:
            raise meta_error(
                f"(#100) The metric {refused[0]} is not supported for this media type", code=100
            )
        if self.navigation_unknown and params.get("breakdown") == "story_navigation_action_type":
            raise meta_error("An unknown error has occurred.", code=1)
        return super().insights(path, params)


def kinds_of_media() -> PickyInstagram:
    return PickyInstagram(
        media=[
            Media(media_id(1), NOW - timedelta(days=1), "FEED", "IMAGE"),
            Media(media_id(2), NOW - timedelta(days=2), "FEED", "IMAGE"),
            Media(media_id(3), NOW - timedelta(days=3), "FEED", "CAROUSEL_ALBUM"),
            Media(media_id(4), NOW - timedelta(days=4), "REELS", "VIDEO"),
        ],
        stories=[Media(story_id(1), NOW - timedelta(hours=2), "STORY")],
    )


async def test_shares_refused_for_one_feed_image_is_disabled_for_that_image_only() -> None:
    graph = kinds_of_media()
    graph.refuse = {media_id(1): {"shares"}}
    poller = Poller(graph, tier_age="30d")  # every media read on every poll
    samples = await poller.poll()
    key = f"FEED/IMAGE/shares@{media_id(1)}"
    assert poller.status.disabled == {key: "unsupported"}
    assert poller.skipped == 0, "a refused metric does not cost the post"
    refused_post = {s.metric for s in samples if s.object_id == media_id(1)}
    assert {
        "instagram_media_views",
        "instagram_media_reach",
        "instagram_media_saved",
        "instagram_media_likes",
    } <= refused_post, "the other metrics of that post arrive in the same poll"
    assert "instagram_media_shares" not in refused_post

    graph.reset()
    samples = await poller.poll(NOW + timedelta(minutes=15))
    sets = metric_sets(graph)
    assert "shares" not in sets[media_id(1)]
    # issue 8: Meta refusing one image its shares no longer costs every feed image theirs
    for other in (media_id(2), media_id(3), media_id(4), story_id(1)):
        assert "shares" in sets[other], other
    assert {s.object_id for s in of(samples, "instagram_media_shares")} == {
        media_id(2),
        media_id(3),
        media_id(4),
    }
    assert [s.object_id for s in of(samples, "instagram_story_shares")] == [story_id(1)]
    assert len(of(samples, "instagram_media_views")) == 4, "every media still has its views"
    key = f"FEED/IMAGE/shares@{media_id(1)}"
    assert poller.status.disabled == {key: "unsupported"}


async def test_story_shares_refused_does_not_cost_the_media_their_shares() -> None:
    graph = kinds_of_media()
    graph.refuse = {story_id(1): {"shares"}}
    poller = Poller(graph)
    await poller.poll()
    assert poller.status.disabled == {f"STORY/shares@{story_id(1)}": "unsupported"}
    graph.reset()
    samples = await poller.poll(NOW + timedelta(minutes=15))
    assert "shares" not in metric_sets(graph)[story_id(1)]
    assert len(of(samples, "instagram_media_shares")) == 4
    assert of(samples, "instagram_story_views")


NAV_BY = "instagram_story_navigation_by_story_navigation_action_type"


async def test_story_breakdown_with_unknown_error_twice_is_disabled_and_navigation_stays() -> None:
    graph = kinds_of_media()
    graph.navigation_unknown = True
    poller = Poller(graph)

    samples = await poller.poll()
    assert not of(samples, NAV_BY), "missing from this poll"
    assert of(samples, "instagram_story_navigation"), "the plain metric came"
    assert len(of(samples, "instagram_media_views")) == 4, "the poll did not fail"
    assert poller.status.disabled == {}
    assert poller.skipped == 0, "the story is not skipped for its breakdown"

    samples = await poller.poll(NOW + timedelta(minutes=15))
    assert poller.status.disabled == {
        "STORY/navigation:story_navigation_action_type": "unsupported_breakdown"
    }
    assert of(samples, "instagram_story_navigation")

    graph.reset()
    samples = await poller.poll(NOW + timedelta(minutes=30))
    assert not [p for _, p in graph.insight_calls if "breakdown" in p], "no longer asked"
    assert [s.value for s in of(samples, "instagram_story_navigation")] == [25.0]


async def test_story_breakdown_failing_once_comes_back_and_is_not_disabled() -> None:
    graph = kinds_of_media()
    graph.navigation_unknown = True
    poller = Poller(graph)
    await poller.poll()
    graph.navigation_unknown = False
    samples = await poller.poll(NOW + timedelta(minutes=15))
    assert poller.status.disabled == {}
    rows = of(samples, NAV_BY)
    assert {s.label_dict["story_navigation_action_type"] for s in rows} == set(NAVIGATION)


def media_only(samples: Sequence[Sample]) -> list[Sample]:
    return [s for s in samples if not s.metric.startswith("instagram_story_")]


async def test_requested_poll_reads_the_stories_only_and_keeps_the_media() -> None:
    graph = kinds_of_media()
    poller = Poller(graph)
    full = await poller.poll()
    assert len(of(full, "instagram_media_views")) == 4

    # a new post appears; the extra poll before the story expires must not list media
    graph.media.append(Media(media_id(5), NOW - timedelta(minutes=5), "FEED", "IMAGE"))
    graph.reset()
    extra = await poller.poll(NOW + timedelta(minutes=10), requested=True)

    assert [path for path, _ in graph.list_calls] == [f"{IG}/stories"]
    assert {path.split("/")[0] for path, _ in graph.insight_calls} == {story_id(1)}
    assert graph.http_requests == 2, "one page of stories, one batch of story insights"
    assert media_only(extra) == media_only(full), "the media's samples of the last full poll"
    assert of(extra, "instagram_story_views"), "the story's values are read again"
    assert of(extra, NAV_BY)
    handed_back = poller.host.results[-1]
    assert handed_back.partial, "the store keeps the media's series"
    assert {s.metric.split("_")[1] for s in handed_back.samples} == {"story"}, (
        "only the stories' values are handed back (and reach the JSONL sink)"
    )

    # the next scheduled poll lists the media again and finds the new post
    graph.reset()
    later = await poller.poll(NOW + timedelta(minutes=15))
    assert f"{IG}/media" in {path for path, _ in graph.list_calls}
    assert len(of(later, "instagram_media_views")) == 5


async def test_requested_poll_without_a_full_poll_before_is_a_full_poll() -> None:
    graph = kinds_of_media()
    poller = Poller(graph)
    samples = await poller.poll(requested=True)
    assert f"{IG}/media" in {path for path, _ in graph.list_calls}
    assert len(of(samples, "instagram_media_views")) == 4
    assert of(samples, "instagram_story_views")


# -- names in `metrics`, through the config loader ------------------------------------


def write(tmp_path: Path, *metrics: str) -> Path:
    return write_source(tmp_path, "instagram_media", "ig_user_id", IG, metrics)


def rejected(tmp_path: Path, *metrics: str) -> list[str]:
    return metrics_rejected(tmp_path, PLUGIN, "ig_user_id", IG, metrics)


def said(tmp_path: Path, *metrics: str) -> tuple[list[str], list[str]]:
    """The metrics the source collects and the config warnings, as a user reads them."""
    return metrics_said(tmp_path, PLUGIN, "ig_user_id", IG, metrics)


DEC_2023 = "in December 2023"
NAVIGATION_INSTEAD = "use 'navigation' (its story_navigation_action_type breakdown)"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("plays", "in April 2025 (Graph API v22.0); use 'views'"),
        ("clips_replays_count", "in April 2025 (Graph API v22.0); use 'views'"),
        ("video_views", "in January 2025 (Graph API v21.0); use 'views'"),
        ("carousel_album_reach", f"{DEC_2023}; use 'reach' on the carousel itself"),
        ("carousel_album_engagement", f"{DEC_2023}; use 'total_interactions' on the carousel"),
        ("carousel_album_video_views", f"{DEC_2023}; use 'views' on the carousel itself"),
        ("engagement", f"{DEC_2023}; use 'total_interactions'"),
        ("taps_forward", f"for stories {DEC_2023}; {NAVIGATION_INSTEAD}"),
        ("taps_back", f"for stories {DEC_2023}; {NAVIGATION_INSTEAD}"),
        ("exits", f"for stories {DEC_2023}; {NAVIGATION_INSTEAD}"),
    ],
)
def test_a_retired_name_warns_when_and_what_replaced_it_and_is_still_asked_for(
    tmp_path: Path, name: str, reason: str
) -> None:
    specs, warned = said(tmp_path, "views", name)
    assert name in specs
    assert warned == [
        f"{name!r} was retired by Meta {reason} (Meta rejects it: it will be disabled)"
    ]


def test_impressions_loads_without_a_warning_it_still_answers_for_older_posts(
    tmp_path: Path,
) -> None:
    config = load_config(write(tmp_path, "impressions"), {"instagram_media": PLUGIN}, environ={})
    assert config.warnings == ()
    assert [(s.prom_name, s.group) for s in config.sources[0].specs] == [
        ("instagram_media_impressions", ("FEED",))
    ]
    assert "impressions" not in {s.graph_name for s in PLUGIN.catalogue if s.default}


@pytest.mark.parametrize(
    ("name", "field"), [("likes", "like_count"), ("comments", "comments_count")]
)
def test_likes_and_comments_insights_are_read_as_the_fields_one_series_each(
    tmp_path: Path, name: str, field: str
) -> None:
    """The ``likes`` insight counts what the ``like_count`` field counts: listing it gets
    the field (``instagram_media_likes``), once even when both are listed."""
    specs, warned = said(tmp_path, "views", name, field)
    assert sorted(specs) == sorted([field, "views", "views"])  # media and story views
    prom = f"instagram_media_{name}"
    assert warned == [
        f"{name!r} is read as the media's {field!r} field ({prom}): "
        + ("the same count, exported once")
    ]
    specs, _ = said(tmp_path, name)
    assert specs == [field]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("instagram_media_view", "did you mean 'views'?"),
        ("instagram_story_navigation_by_action_type", "did you mean 'navigation'?"),
        ("instagram_media_ig_reels_avg_watch_time", "did you mean 'ig_reels_avg_watch_time'?"),
        (
            "instagram_story_impressions",
            "'impressions' was retired by Meta in April 2025 (Graph API v22.0) for media "
            "created from 2024-07-02 on (every live story among them); use 'views' "
            "('impressions' still answers for posts created before 2024-07-02)",
        ),
        (
            "instagram_story_exits",
            f"'exits' was retired by Meta for stories {DEC_2023}; {NAVIGATION_INSTEAD}",
        ),
    ],
)
def test_a_prometheus_name_is_an_error_naming_the_meta_name(
    tmp_path: Path, name: str, hint: str
) -> None:
    assert rejected(tmp_path, "views", name) == [
        f"unknown metric {name!r}: list metrics by their Graph API name ({hint})"
    ]


@pytest.mark.parametrize(
    ("name", "remark"),
    [
        ("viewz", "did you mean 'views'?"),
        ("follower_count", "account metrics are read by the instagram_user plugin"),
        ("profile_links_taps", "account metrics are read by the instagram_user plugin"),
        ("brand_new", "Meta decides, and a name it rejects is disabled"),
    ],
)
def test_another_unknown_name_is_asked_for_posts_and_reels_with_a_warning(
    tmp_path: Path, name: str, remark: str
) -> None:
    config = load_config(write(tmp_path, name), {"instagram_media": PLUGIN}, environ={})
    (spec,) = config.sources[0].specs
    assert (spec.graph_name, spec.group, spec.cadence) == (name, ("FEED", "REELS"), "fast")
    assert said(tmp_path, name)[1] == [
        f"{name!r} is not an Instagram media metric collectord knows; it is asked for as a "
        f"lifetime metric of posts and reels ({remark})"
    ]


def test_every_catalogue_name_loads_without_a_warning(tmp_path: Path) -> None:
    names = sorted({s.graph_name for s in PLUGIN.catalogue})
    specs, warned = said(tmp_path, *names)
    assert (set(specs), warned) == (set(names), [])


def test_check_prints_the_warning_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", str(write(tmp_path, "views", "plays"))]) == 0
    out = capsys.readouterr().out
    assert "warning: " in out
    assert "'plays' was retired by Meta in April 2025 (Graph API v22.0)" in out


async def test_a_kind_wide_rejection_is_re_probed_a_day_later_on_a_few_media_only() -> None:
    graph = PickyInstagram(
        media=[Media(media_id(i), NOW - timedelta(hours=i), "FEED", "IMAGE") for i in range(1, 9)],
        stories=[],
    )
    graph.refuse = {media_id(i): {"shares"} for i in range(1, 9)}
    poller = Poller(graph)
    await poller.poll()
    assert poller.status.disabled == {"FEED/IMAGE/shares": "unsupported"}

    graph.reset()  # a day later Meta still rejects it: three media find out, not eight
    await poller.poll(NOW + timedelta(days=1))
    asked = {  # every call, not only each media's last one: a rejected call is split
        path.split("/")[0]
        for path, p in graph.insight_calls
        if "breakdown" not in p and "shares" in p["metric"].split(",")
    }
    assert asked == {media_id(1), media_id(2), media_id(3)}
    assert poller.status.disabled == {"FEED/IMAGE/shares": "unsupported"}
    assert poller.status.errors["invalid_metric"] == 1

    graph.refuse = {}  # Meta serves it again: the next re-probe brings it back
    graph.reset()
    samples = await poller.poll(NOW + timedelta(days=2))
    assert poller.status.disabled == {}
    assert len(of(samples, "instagram_media_shares")) == 8


async def test_older_media_are_read_once_a_day_and_keep_their_values_in_between() -> None:
    young, old, older = media_id(1), media_id(2), media_id(3)
    graph = FakeInstagram(
        media=[
            Media(young, NOW - timedelta(hours=5)),
            Media(old, NOW - timedelta(days=3), "REELS", "VIDEO"),
            Media(older, NOW - timedelta(days=10)),
        ],
        stories=[Media(story_id(1), NOW - timedelta(hours=20), "STORY")],
    )
    poller = Poller(graph)  # tier_age: the default 48 hours
    first = await poller.poll()
    assert set(metric_sets(graph)) == {young, old, older, story_id(1)}

    graph.reset()
    later = await poller.poll(NOW + timedelta(minutes=15))
    assert set(metric_sets(graph)) == {young, story_id(1)}, "young media and stories only"
    for media in (old, older):
        kept = {(s.metric, s.labels, s.value) for s in first if s.object_id == media}
        now = {(s.metric, s.labels, s.value) for s in later if s.object_id == media}
        assert kept == now, "values kept"
        assert of(later, "instagram_media_views", media)

    graph.reset()
    await poller.poll(NOW + timedelta(hours=12))
    assert set(metric_sets(graph)) == {young, story_id(1)}
    graph.reset()
    await poller.poll(NOW + timedelta(hours=24))
    assert {young, old, older} <= set(metric_sets(graph)), "a day later: read again"


async def test_a_daily_interval_of_the_source_sets_when_older_media_are_read() -> None:
    graph = FakeInstagram(media=[Media(media_id(1), NOW - timedelta(days=3))])
    poller = Poller(graph, include_stories=False, tier_age="1d")
    poller.host.intervals["daily"] = 3600.0
    await poller.poll()
    graph.reset()
    await poller.poll(NOW + timedelta(minutes=15))
    assert metric_sets(graph) == {}
    await poller.poll(NOW + timedelta(hours=1))
    assert set(metric_sets(graph)) == {media_id(1)}


async def test_an_older_media_whose_read_failed_is_read_again_on_the_next_poll() -> None:
    graph = FakeInstagram(media=[Media(media_id(1), NOW - timedelta(days=3), gone=True)])
    poller = Poller(graph, include_stories=False)
    await poller.poll()  # Meta failed this media's insights once
    assert not of(list(poller.host.samples()), "instagram_media_views")
    graph.media[0].gone = False
    graph.reset()
    samples = await poller.poll(NOW + timedelta(minutes=15))
    assert set(metric_sets(graph)) == {media_id(1)}
    assert of(samples, "instagram_media_views", media_id(1))
