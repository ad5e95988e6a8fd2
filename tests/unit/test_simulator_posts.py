"""The simulator's post listing, field expansion and post insights."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from collectord.simulator import Simulator, World
from collectord.simulator.world import USER_TOKEN

NOW = datetime(2026, 7, 15, 18, 0, tzinfo=UTC)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def started(**kw: Any) -> Simulator:
    sim = Simulator(World(clock=lambda: NOW, **kw))
    await sim.start()
    return sim


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = await started()
    yield sim
    await sim.stop()


async def get(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as resp:
        return resp.status, await resp.json()


async def page_get(http, sim: Simulator, path: str, **params: str) -> tuple[int, Any]:
    page = sim.world.first_page
    return await get(http, f"{sim.url}/v26.0/{path}", access_token=page.token, **params)


async def walk(http, sim: Simulator, **params: str) -> list[list[str]]:
    """Follow ``next`` from the first page; the ids of every page."""
    page = sim.world.first_page
    status, body = await page_get(http, sim, f"{page.id}/posts", **params)
    assert status == 200
    pages = [[p["id"] for p in body["data"]]]
    while "next" in body["paging"]:
        status, body = await get(http, body["paging"]["next"])
        assert status == 200
        pages.append([p["id"] for p in body["data"]])
    return pages


def video_and_other(world: World) -> tuple[str, str]:
    posts = world.posts(world.first_page.id)
    video = next(p.id for p in posts if p.is_video)
    other = next(p.id for p in posts if not p.is_video)
    return video, other


# -- listing ------------------------------------------------------------------------------


async def test_cursor_paging_with_an_empty_page_that_has_next(http, sim) -> None:
    pages = await walk(http, sim, limit="10")
    assert [len(p) for p in pages] == [10, 0, 10, 10]
    ids = [post_id for page in pages for post_id in page]
    assert ids == [p.id for p in sim.world.posts(sim.world.first_page.id)]


async def test_no_empty_page_when_turned_off(http) -> None:
    sim = await started(empty_page=False, n_posts=25)
    try:
        pages = await walk(http, sim, limit="10")
    finally:
        await sim.stop()
    assert [len(p) for p in pages] == [10, 10, 5]


async def test_limit_over_100_is_an_error(http, sim) -> None:
    page = sim.world.first_page
    status, body = await page_get(http, sim, f"{page.id}/posts", limit="101")
    assert (status, body["error"]["code"]) == (400, 100)


async def test_post_ids_fields_and_published_posts(http, sim) -> None:
    page = sim.world.first_page
    fields = "id,created_time,message,permalink_url,status_type,shares{count}"
    status, body = await page_get(
        http, sim, f"{page.id}/published_posts", fields=fields, limit="100"
    )
    assert status == 200
    truth = {p.id: p for p in sim.world.posts(page.id)}
    assert len(body["data"]) == len(truth)
    for item in body["data"]:
        post = truth[item["id"]]
        assert item["id"].startswith(f"{page.id}_")
        assert item["created_time"] == post.created_time.strftime("%Y-%m-%dT%H:%M:%S+0000")
        assert item["permalink_url"] == post.permalink_url
        assert item.get("message") == post.message
        shares = sim.world.post_insight(post.id, "post_activity_by_action_type").get("share", 0)
        assert item.get("shares", {"count": 0})["count"] == shares
    assert any("message" not in item for item in body["data"])


async def test_since_until_filter_on_created_time(http, sim) -> None:
    page = sim.world.first_page
    posts = sim.world.posts(page.id)
    since, until = posts[9].created_time, posts[3].created_time
    status, body = await page_get(
        http,
        sim,
        f"{page.id}/posts",
        since=str(int(since.timestamp())),
        until=str(int(until.timestamp())),
        limit="100",
    )
    assert status == 200
    assert [p["id"] for p in body["data"]] == [p.id for p in posts[3:10]]


async def test_unknown_post_field_fails_the_list(http, sim) -> None:
    page = sim.world.first_page
    status, body = await page_get(http, sim, f"{page.id}/posts", fields="id,impressions")
    assert (status, body["error"]["code"]) == (400, 100)


async def test_reactions_and_comments_summaries(http, sim) -> None:
    page = sim.world.first_page
    _, body = await page_get(
        http,
        sim,
        f"{page.id}/posts",
        fields="id,reactions.summary(true).limit(0),comments.summary(true).limit(0)",
        limit="3",
    )
    for item in body["data"]:
        reactions = sim.world.post_insight(item["id"], "post_reactions_by_type_total")
        assert item["reactions"] == {
            "data": [],
            "summary": {"total_count": sum(reactions.values())},
        }
        assert item["comments"]["summary"]["total_count"] >= 0


# -- field expansion ----------------------------------------------------------------------


async def test_insights_expansion_matches_the_ground_truth(http, sim) -> None:
    page = sim.world.first_page
    status, body = await page_get(
        http,
        sim,
        f"{page.id}/posts",
        fields="id,insights.metric(post_media_view,post_reactions_by_type_total).period(lifetime)",
        limit="5",
    )
    assert status == 200
    for item in body["data"]:
        entries = {e["name"]: e for e in item["insights"]["data"]}
        assert set(entries) == {"post_media_view", "post_reactions_by_type_total"}
        for name, entry in entries.items():
            assert entry["period"] == "lifetime"
            assert entry["values"] == [{"value": sim.world.post_insight(item["id"], name)}]


async def test_an_invalid_metric_in_the_expansion_fails_the_whole_list(http, sim) -> None:
    page = sim.world.first_page
    status, body = await page_get(
        http,
        sim,
        f"{page.id}/posts",
        fields="id,insights.metric(post_media_view,post_impressions)",
    )
    assert status == 400
    assert body["error"]["message"] == "(#100) The value must be a valid insights metric"


# -- post insights ------------------------------------------------------------------------


async def test_lifetime_post_insights_have_no_end_time(http, sim) -> None:
    video, _ = video_and_other(sim.world)
    status, body = await page_get(
        http,
        sim,
        f"{video}/insights",
        metric="post_clicks,post_clicks_by_type,post_activity_by_action_type",
    )
    assert status == 200
    assert set(body["paging"]) == {"previous", "next"}
    for entry in body["data"]:
        assert entry["id"] == f"{video}/insights/{entry['name']}/lifetime"
        assert len(entry["values"]) == 1
        assert set(entry["values"][0]) == {"value"}
        assert entry["values"][0]["value"] == sim.world.post_insight(video, entry["name"])
    by_type = next(e for e in body["data"] if e["name"] == "post_clicks_by_type")
    assert all(v > 0 for v in by_type["values"][0]["value"].values())


async def test_zero_keys_are_left_out_of_dict_values(http, sim) -> None:
    _, other = video_and_other(sim.world)
    status, body = await page_get(http, sim, f"{other}/insights", metric="post_clicks_by_type")
    assert status == 200
    keys = set(body["data"][0]["values"][0]["value"])
    assert "video play" not in keys
    assert keys


async def test_video_metrics_only_for_video_posts(http, sim) -> None:
    video, other = video_and_other(sim.world)
    metrics = "post_video_views,post_video_avg_time_watched"
    _, body = await page_get(http, sim, f"{video}/insights", metric=metrics, period="lifetime")
    values = {e["name"]: e["values"][0]["value"] for e in body["data"]}
    assert values["post_video_views"] > 0
    assert values["post_video_avg_time_watched"] >= 5000  # milliseconds
    _, body = await page_get(http, sim, f"{other}/insights", metric=metrics, period="lifetime")
    values = {e["name"]: e["values"][0]["value"] for e in body["data"]}
    assert values == {"post_video_views": 0}


async def test_day_values_of_video_metrics_have_end_times(http, sim) -> None:
    video, _ = video_and_other(sim.world)
    _, body = await page_get(http, sim, f"{video}/insights/post_video_views/day")
    assert [e["period"] for e in body["data"]] == ["day"]
    for value in body["data"][0]["values"]:
        assert value["end_time"].endswith("T07:00:00+0000")


async def test_post_media_view_breakdown(http, sim) -> None:
    video, _ = video_and_other(sim.world)
    _, body = await page_get(
        http, sim, f"{video}/insights", metric="post_media_view", breakdown="is_from_followers"
    )
    values = body["data"][0]["values"]
    assert [v["is_from_followers"] for v in values] == ["0", "1"]
    assert sum(v["value"] for v in values) == sim.world.post_insight(video, "post_media_view")


async def test_deleted_post_is_100_subcode_33(http, sim) -> None:
    video, _ = video_and_other(sim.world)
    sim.world.delete_post(video)
    status, body = await page_get(http, sim, f"{video}/insights", metric="post_clicks")
    assert status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)
    assert video not in [p.id for p in sim.world.posts(sim.world.first_page.id)]


async def test_post_insights_need_a_page_token(http, sim) -> None:
    video, _ = video_and_other(sim.world)
    status, body = await get(
        http, f"{sim.url}/v26.0/{video}/insights", access_token=USER_TOKEN, metric="post_clicks"
    )
    assert (status, body["error"]["code"]) == (400, 190)


async def test_retired_post_metric_fails(http, sim) -> None:
    video, _ = video_and_other(sim.world)
    status, body = await page_get(
        http, sim, f"{video}/insights", metric="post_clicks,post_impressions_unique"
    )
    assert (status, body["error"]["code"]) == (400, 100)
