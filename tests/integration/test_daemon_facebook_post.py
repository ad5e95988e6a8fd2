"""``facebook_post`` end to end: the daemon's ``/metrics`` against the simulator's posts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from collectord.simulator import Simulator, World
from collectord.simulator.post_metrics import split_value

pytestmark = pytest.mark.integration

POST_LABELS = {"source", "page_id", "post_id"}
INSIGHT_LABELS = POST_LABELS | {"period"}


def post_source(world: World, name: str, **options: object) -> str:
    lines = "\n".join(f"{key} = {value}" for key, value in options.items())
    return f"""
[[source]]
name = "{name}"
plugin = "facebook_post"
access_token = "{world.demo_token("facebook_post")}"
page_id = "{world.first_page.id}"
{lines}
"""


#: (family, all labels) -> value
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def expected_post(world: World, source: str, post_id: str) -> Series:
    """Every series ``/metrics`` should have for one post with the default metrics, from
    the simulator's ground truth."""
    post = world.post(post_id)
    assert post is not None
    base = {"source": source, "page_id": post.page_id, "post_id": post_id}
    out: Series = {}

    def put(family: str, value: float, **labels: str) -> None:
        out[(family, frozenset({**base, **labels}.items()))] = float(value)

    activity = world.post_insight(post_id, "post_activity_by_action_type")
    put("facebook_post_shares", activity.get("share", 0))
    for action, value in activity.items():
        put("facebook_post_activity_by_action_type", value, period="lifetime", action_type=action)
    for graph, family in [
        ("post_media_view", "facebook_post_media_view"),
        ("post_total_media_view_unique", "facebook_post_total_media_view_unique"),
        ("post_clicks", "facebook_post_clicks"),
        ("post_video_views", "facebook_post_video_views"),
    ]:
        put(family, world.post_insight(post_id, graph), period="lifetime")
    views = world.post_insight(post_id, "post_media_view")
    for breakdown in ("is_from_ads", "is_from_followers"):
        family = f"facebook_post_media_view_by_{breakdown}"
        for flag, part in split_value(world, post, "post_media_view", breakdown, views).items():
            put(family, part, period="lifetime", **{breakdown: flag})
    for kind, value in world.post_insight(post_id, "post_reactions_by_type_total").items():
        put("facebook_post_reactions_by_type", value, period="lifetime", reaction_type=kind)
    for kind, value in world.post_insight(post_id, "post_clicks_by_type").items():
        put("facebook_post_clicks_by_type", value, period="lifetime", click_type=kind)
    if post.is_video:  # Meta's milliseconds, exported in seconds
        for graph in ("post_video_avg_time_watched", "post_video_view_time"):
            ms = world.post_insight(post_id, graph)
            put(f"facebook_{graph}_seconds", ms / 1000, period="lifetime")
    return out


def exposed_post(scrape: Any, source: str, post_id: str) -> Series:
    """Every series ``/metrics`` has for one post of ``source``."""
    return {
        (name, frozenset(labels.items())): value
        for name, labels, value in scrape.samples
        if labels.get("post_id") == post_id and labels.get("source") == source
    }


def window_cut(world: World, frozen_now: datetime) -> tuple[int, str]:
    """A window of the newest posts holding a video post and older than it ends midway
    between two posts (hours apart): its size and ``max_age`` in seconds."""
    posts = world.posts(world.first_page.id)
    first_video = next(i for i, p in enumerate(posts) if p.is_video)
    size = first_video + 2
    assert size < len(posts), "the window must leave older posts out"
    newer, older = posts[size - 1].created_time, posts[size].created_time
    middle = older + (newer - older) / 2
    return size, f'"{int((frozen_now - middle).total_seconds())}s"'


async def test_post_window_and_insights_match_the_simulator(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    frozen_now: datetime,
) -> None:
    world = simulator.world
    page_id = world.first_page.id
    posts = world.posts(page_id)
    size, max_age = window_cut(world, frozen_now)
    sources = post_source(world, "recent-posts", max_age=max_age) + post_source(
        world, "newest-three", max_posts=3
    )
    daemon = await start_daemon(make_config(simulator, sources))
    await daemon.wait_ready()
    scrape = await daemon.scrape()

    def followed(source: str) -> set[str]:
        return {
            lab["post_id"]
            for _, lab, _ in scrape.samples
            if lab.get("source") == source and "post_id" in lab
        }

    assert followed("recent-posts") == {p.id for p in posts[:size]}, "max_age"
    assert followed("newest-three") == {p.id for p in posts[:3]}, "max_posts, newest first"
    assert not scrape.with_label("post_id", posts[size].id), "older than max_age: absent"

    videos = [p for p in posts[:size] if p.is_video]
    others = [p for p in posts[:size] if not p.is_video]
    assert videos
    assert others
    for post in posts[:size]:
        expected = expected_post(world, "recent-posts", post.id)
        assert exposed_post(scrape, "recent-posts", post.id) == pytest.approx(expected), post.id
    for post in posts[:3]:
        expected = expected_post(world, "newest-three", post.id)
        assert exposed_post(scrape, "newest-three", post.id) == pytest.approx(expected), post.id

    # Labels exactly per docs/operations.md "Metric names and labels".
    def label_names(family: str) -> set[str]:
        found = {frozenset(lab) for lab in scrape.series(family)}
        assert len(found) == 1, (family, found)
        return set(next(iter(found)))

    assert label_names("facebook_post_shares") == POST_LABELS
    assert label_names("facebook_post_media_view") == INSIGHT_LABELS
    assert label_names("facebook_post_media_view_by_is_from_ads") == INSIGHT_LABELS | {
        "is_from_ads"
    }
    assert label_names("facebook_post_reactions_by_type") == INSIGHT_LABELS | {"reaction_type"}
    assert label_names("facebook_post_clicks_by_type") == INSIGHT_LABELS | {"click_type"}
    assert label_names("facebook_post_video_avg_time_watched_seconds") == INSIGHT_LABELS
    # a family never mixes a total with its breakdown
    assert not scrape.matching("facebook_post_media_view", is_from_ads="1")
    video = videos[0].id
    watched_ms = world.post_insight(video, "post_video_avg_time_watched")
    assert scrape.value(
        "facebook_post_video_avg_time_watched_seconds", source="recent-posts", post_id=video
    ) == pytest.approx(watched_ms / 1000)
    assert not scrape.matching(
        "facebook_post_video_avg_time_watched_seconds", post_id=others[0].id
    ), "no video, no watch time"
    for source in ("recent-posts", "newest-three"):
        assert scrape.value("collectord_source_up", source=source, plugin="facebook_post") == 1
    assert await daemon.stop() == 0


async def test_deleted_post_is_skipped_and_its_series_leave(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    """A post deleted between the listing and its insights is skipped and counted; the
    other posts flow, the next one moves into the window, and the deleted one's series
    leave ``/metrics`` and it is not requested again."""
    world = simulator.world
    posts = world.posts(world.first_page.id)
    victim = posts[1].id
    recorder = tap(simulator)
    config = make_config(
        simulator, post_source(world, "acme-posts", max_posts=5), fast="1s", daily="1s"
    )
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    before = await daemon.scrape()
    assert exposed_post(before, "acme-posts", victim) == pytest.approx(
        expected_post(world, "acme-posts", victim)
    )
    survivors = [p.id for p in posts[:6] if p.id != victim]
    expected = {pid: expected_post(world, "acme-posts", pid) for pid in survivors}

    deleted = asyncio.Event()
    listed = asyncio.Event()
    listings: list[int] = []

    def after(call: Any) -> None:
        daily_listing = call.path.endswith("/published_posts") and "post_media_view" in (
            call.params.get("fields", "")
        )
        if daily_listing:
            listings.append(len(recorder.calls))
            listed.set()
            if not deleted.is_set():  # the listing is answered with the post in it
                world.delete_post(victim)
                deleted.set()

    recorder.after = after
    await asyncio.wait_for(deleted.wait(), 15)
    deleted_at = len(recorder.calls)

    def skipped(scrape: Any) -> float:
        got = scrape.value(
            "collectord_source_poll_errors_total", source="acme-posts", reason="skipped_object"
        )
        return got or 0.0

    await daemon.wait_for(lambda s: skipped(s) >= 1)
    after_scrape = await daemon.wait_for(lambda s: not s.with_label("post_id", victim))
    assert after_scrape.value("collectord_source_up", source="acme-posts") == 1

    # Two more daily polls: the deleted post is never requested again, counted once.
    from_here, wanted = len(recorder.calls), len(listings) + 2
    async with asyncio.timeout(15):
        while len(listings) < wanted:
            listed.clear()
            await listed.wait()
    vanished = [c for c in recorder.calls[deleted_at:] if victim in c.path]
    assert vanished, "its insights were asked for after the listing"
    assert all(c.status != 200 for c in vanished), "and the post was gone"
    assert not [c for c in recorder.calls[from_here:] if victim in c.path]
    final = await daemon.scrape()
    assert skipped(final) == 1
    assert not final.with_label("post_id", victim)
    assert final.value("collectord_source_up", source="acme-posts") == 1
    for pid in survivors:  # the others flow, and posts[5] moved into the window of five
        assert exposed_post(final, "acme-posts", pid) == pytest.approx(expected[pid]), pid
    assert await daemon.stop() == 0
