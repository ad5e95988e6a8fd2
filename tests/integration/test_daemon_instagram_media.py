"""``instagram_media`` end to end: media and story insights against the simulator, the
expected per-object errors, and a story's final snapshot in the JSONL file."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

MEDIA_LABELS = {"source", "ig_user_id", "media_id", "media_type", "media_product_type"}
STORY_LABELS = {"source", "ig_user_id", "media_id"}
#: Default insights per product type (docs/meta-facts.md 6.2); ``_seconds``: Meta's milliseconds.
COMMON = ("views", "reach", "total_interactions", "likes", "comments", "saved", "shares")
PER_PRODUCT = {
    "FEED": (*COMMON, "reposts", "follows", "profile_visits"),
    "REELS": (*COMMON, "reposts", "ig_reels_avg_watch_time", "ig_reels_video_view_total_time"),
}
MILLISECONDS = {"ig_reels_avg_watch_time", "ig_reels_video_view_total_time"}
STORY_METRICS = (
    "views",
    "reach",
    "replies",
    "shares",
    "total_interactions",
    "follows",
    "profile_visits",
    "navigation",
)
NAVIGATION_BY = "instagram_story_navigation_by_story_navigation_action_type"

Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def media_source(sim: Simulator, name: str, **options: object) -> str:
    lines = "\n".join(f"{key} = {value}" for key, value in options.items())
    return f"""
[[source]]
name = "{name}"
plugin = "instagram_media"
access_token = "{sim.world.demo_token("instagram_media")}"
ig_user_id = "{sim.world.instagram.user_ids[0]}"
{lines}
"""


StoryValues = dict[tuple[str, str | None], float]


def last_served_story_values(recorder: Any, story: str) -> StoryValues:
    """The story's values in the last insights answers the simulator served:
    (family, navigation action or None) -> value, for every story metric."""
    served = [c for c in recorder.matching(f"/{story}/insights") if c.status == 200]
    plain = [c for c in served if "breakdown" not in c.params]
    split = [c for c in served if c.params.get("breakdown") == "story_navigation_action_type"]
    assert plain
    assert split
    final: StoryValues = {
        (f"instagram_story_{e['name']}", None): float(e["values"][0]["value"])
        for e in plain[-1].body["data"]
    }
    (nav,) = split[-1].body["data"]
    for row in nav["total_value"]["breakdowns"][0]["results"]:
        final[(NAVIGATION_BY, row["dimension_values"][0])] = float(row["value"])
    assert {name for name, _ in final} == {
        *(f"instagram_story_{m}" for m in STORY_METRICS),
        NAVIGATION_BY,
    }
    return final


def newest_records(
    records: list[dict[str, Any]], story: str
) -> dict[tuple[str, str | None], dict[str, Any]]:
    """The newest JSONL record of each of the story's series."""
    newest: dict[tuple[str, str | None], dict[str, Any]] = {}
    for record in records:
        if record["object_id"] == story:
            action = record["labels"].get("story_navigation_action_type")
            newest[(record["metric"], action)] = record
    return newest


def exposed(scrape: Any, source: str, media_id: str) -> Series:
    """Every series ``/metrics`` has for one media or story: (family, labels) -> value."""
    return {
        (name, frozenset(labels.items())): value
        for name, labels, value in scrape.samples
        if labels.get("source") == source and labels.get("media_id") == media_id
    }


def expected_media(sim: Simulator, source: str, item: dict[str, Any], now: datetime) -> Series:
    ig = sim.world.instagram
    labels = {
        "source": source,
        "ig_user_id": ig.user_ids[0],
        "media_id": item["id"],
        "media_type": item["media_type"],
        "media_product_type": item["media_product_type"],
    }
    key = frozenset(labels.items())
    out: Series = {
        ("instagram_media_likes", key): float(item["like_count"]),
        ("instagram_media_comments", key): float(item["comments_count"]),
    }
    if item["pre_conversion"]:
        return out  # no insights: skipped
    for metric in PER_PRODUCT[item["media_product_type"]]:
        value = float(ig.media_insight(item["id"], metric, now))
        if metric in MILLISECONDS:
            out[(f"instagram_media_{metric}_seconds", key)] = value / 1000
        else:
            out[(f"instagram_media_{metric}", key)] = value
    return out


def expected_story(sim: Simulator, source: str, story_id: str, now: datetime) -> Series:
    ig = sim.world.instagram
    labels = {"source": source, "ig_user_id": ig.user_ids[0], "media_id": story_id}
    out: Series = {
        (f"instagram_story_{m}", frozenset(labels.items())): float(
            ig.story_insight(story_id, m, now)
        )
        for m in STORY_METRICS
    }
    nav = ig.story_insight(story_id, "navigation", now, breakdown="story_navigation_action_type")
    for action, value in nav.items():
        split = {**labels, "story_navigation_action_type": action}
        out[(NAVIGATION_BY, frozenset(split.items()))] = float(value)
    return out


def window_cut(items: list[dict[str, Any]], now: datetime) -> tuple[int, str]:
    """The newest media up to the first REELS and the first FEED (at least four), and a
    ``max_age`` ending midway between the last of them and the next older one."""
    first = {
        product: next(i for i, m in enumerate(items) if m["media_product_type"] == product)
        for product in PER_PRODUCT
    }
    size = max(4, *(i + 1 for i in first.values()))
    newer, older = items[size - 1]["created_at"], items[size]["created_at"]
    middle = older + (newer - older) / 2
    return size, f'"{int((now - middle).total_seconds())}s"'


def skipped(scrape: Any, source: str) -> float:
    got = scrape.value(
        "collectord_source_poll_errors_total", source=source, reason="skipped_object"
    )
    return got or 0.0


async def test_media_and_stories_match_the_simulator(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
    frozen_now: datetime,
) -> None:
    ig = simulator.world.instagram
    user = ig.user_ids[0]
    quiet = ig.add_story(user, frozen_now - timedelta(hours=2), quiet=True)
    items = ig.media(user, frozen_now)  # newest first
    size, max_age = window_cut(items, frozen_now)
    whole = timedelta(days=1) + frozen_now - items[-1]["created_at"]
    pre_conversion = [m for m in items if m["pre_conversion"]]
    assert pre_conversion, "the oldest media predate the business conversion"
    stories = ig.stories(user, frozen_now)
    small = [s["id"] for s in stories if s["reach"] < 5]
    seen = [s["id"] for s in stories if s["reach"] >= 5]
    assert quiet in small
    assert seen

    recorder = tap(simulator)
    sources = media_source(simulator, "recent-media", max_age=max_age) + media_source(
        simulator,
        "all-media",
        max_age=f'"{int(whole.total_seconds())}s"',
        max_media=200,
        include_stories="false",
    )
    daemon = await start_daemon(make_config(simulator, sources))
    await daemon.wait_ready()
    scrape = await daemon.scrape()
    assert await daemon.stop() == 0

    # The window: max_age keeps the newest media only; stories are not media.
    def followed(source: str, family: str) -> set[str]:
        return {lab["media_id"] for lab, _ in scrape.matching(family, source=source)}

    assert followed("recent-media", "instagram_media_likes") == {m["id"] for m in items[:size]}
    assert followed("all-media", "instagram_media_likes") == {m["id"] for m in items}
    assert not exposed(scrape, "recent-media", items[size]["id"]), "older than max_age"

    # Per product type: exactly the metrics Meta serves for it, with their labels.
    for item in items[:size]:
        want = expected_media(simulator, "recent-media", item, frozen_now)
        assert exposed(scrape, "recent-media", item["id"]) == pytest.approx(want), item["id"]
    reel = next(m for m in items[:size] if m["media_product_type"] == "REELS")
    feed = next(m for m in items[:size] if m["media_product_type"] == "FEED")
    watch = "instagram_media_ig_reels_avg_watch_time_seconds"
    assert scrape.matching(watch, media_id=reel["id"], media_type=reel["media_type"])
    assert not scrape.matching(watch, media_id=feed["id"])
    assert {frozenset(lab) for lab, _ in scrape.matching(watch)} == {frozenset(MEDIA_LABELS)}

    # Media from before the business conversion: fields only, skipped and counted.
    for item in pre_conversion:
        want = expected_media(simulator, "all-media", item, frozen_now)
        assert exposed(scrape, "all-media", item["id"]) == pytest.approx(want), item["id"]
    assert skipped(scrape, "all-media") == len(pre_conversion)
    older = [m for m in items if not m["pre_conversion"]][-1]  # from before July 2024
    want = expected_media(simulator, "all-media", older, frozen_now)
    assert exposed(scrape, "all-media", older["id"]) == pytest.approx(want)

    # Stories: live ones with their values; under 5 viewers skipped and counted.
    for story_id in seen:
        want = expected_story(simulator, "recent-media", story_id, frozen_now)
        assert exposed(scrape, "recent-media", story_id) == want, story_id
    for story_id in small:
        assert not scrape.with_label("media_id", story_id), story_id
    assert skipped(scrape, "recent-media") == len(small)
    assert {frozenset(lab) for lab, _ in scrape.matching("instagram_story_reach")} == {
        frozenset(STORY_LABELS)
    }
    assert not followed("all-media", "instagram_story_reach"), "include_stories = false"
    for source in ("recent-media", "all-media"):
        assert scrape.value("collectord_source_up", source=source) == 1

    # Carousel children (ids 176...) are never queried.
    assert recorder.calls
    children = [c.path for c in recorder.calls if "/176" in c.path]
    assert not children


async def test_story_final_snapshot_lands_in_jsonl_and_series_leave_after_expiry(
    live_simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
    jsonl_records: Callable[[], list[dict[str, Any]]],
) -> None:
    sim = live_simulator
    ig = sim.world.instagram
    user = ig.user_ids[0]
    recorder = tap(sim)
    config = make_config(sim, media_source(sim, "stories", max_media=2), fast="1s")
    daemon = await start_daemon(config)
    await daemon.wait_ready()

    # A story posted almost 24 hours ago: it expires four seconds from now.
    story = ig.add_story(user, sim.world.now() - timedelta(hours=24, seconds=-4))
    await daemon.wait_for_value("instagram_story_views", source="stories", media_id=story)
    gone = await daemon.wait_for(lambda s: not s.with_label("media_id", story))
    assert gone.value("collectord_source_up", source="stories") == 1
    assert gone.matching("instagram_story_views", source="stories"), "the other stories stay"
    assert await daemon.stop() == 0

    # What the simulator served in the last poll before the story expired is the newest
    # value of each of its series in the JSONL file.
    final = last_served_story_values(recorder, story)
    newest = newest_records(jsonl_records(), story)
    assert {key: r["value"] for key, r in newest.items()} == final
    base = {"source": "stories", "ig_user_id": user, "media_id": story}
    for (_, action), record in newest.items():
        extra = {"story_navigation_action_type": action} if action else {}
        assert record["labels"] == {**base, **extra}
        assert record["plugin"] == "instagram_media"


async def test_extra_poll_before_a_story_expires_reads_stories_only(
    live_simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
    jsonl_records: Callable[[], list[dict[str, Any]]],
) -> None:
    sim = live_simulator
    ig = sim.world.instagram
    user = ig.user_ids[0]
    # Its final snapshot is due 5 minutes before it expires: 3 seconds after start-up, long
    # before the next regular poll (fast_interval = 1h).
    story = ig.add_story(user, sim.world.now() - timedelta(hours=24, minutes=-5, seconds=-3))
    recorder = tap(sim)
    config = make_config(sim, media_source(sim, "slow", max_media=3), fast="1h")
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    first = await daemon.scrape()
    media_families = {
        n
        for n, lab, _ in first.samples
        if n.startswith("instagram_media_") and lab.get("source") == "slow"
    }
    assert media_families

    def fast_polls(scrape: Any) -> float:
        count = scrape.value(
            "collectord_source_poll_duration_seconds_count", source="slow", cadence="fast"
        )
        return count or 0.0

    later = await daemon.wait_for(lambda s: fast_polls(s) >= 2)
    assert await daemon.stop() == 0

    # The extra poll listed the stories again and read their insights, but not the media.
    assert len(recorder.matching(f"/{user}/stories")) == 2
    assert len(recorder.matching(f"/{user}/media")) == 1
    media_ids = {lab["media_id"] for lab in first.series("instagram_media_views")}
    assert media_ids
    for media_id in media_ids:
        assert len(recorder.matching(f"/{media_id}/insights")) == 1, media_id
    assert len([c for c in recorder.matching(f"/{story}/insights") if c.status == 200]) >= 4

    # The media's series stay as they were; the story's values as the extra poll read them
    # are the newest in the JSONL file (its final snapshot).
    for name in media_families:
        assert later.matching(name, source="slow") == first.matching(name, source="slow")
    final = last_served_story_values(recorder, story)
    newest = newest_records(jsonl_records(), story)
    assert {key: r["value"] for key, r in newest.items()} == final
