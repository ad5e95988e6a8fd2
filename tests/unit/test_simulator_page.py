"""The simulator's Page node and Page insights, compared with the World's ground truth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from collectord.simulator import Simulator, World
from collectord.simulator.page_metrics import (
    BREAKDOWN_KEYS,
    PAGE_METRICS,
    RETIRED_PAGE_METRICS,
    split_value,
)

SUMMER = datetime(2026, 7, 15, 18, 0, tzinfo=UTC)  # PDT: Pacific midnight is 07:00 UTC
WINTER = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)  # PST: Pacific midnight is 08:00 UTC
MONETISATION = tuple(name for name, metric in PAGE_METRICS.items() if metric.monetised)


def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=lambda: SUMMER))
    await sim.start()
    yield sim
    await sim.stop()


async def get(http: aiohttp.ClientSession, url: str, **params: str) -> tuple[int, Any]:
    async with http.get(url, params=params) as resp:
        return resp.status, await resp.json()


async def insights(http, sim: Simulator, suffix: str = "", **params: str) -> tuple[int, Any]:
    page = sim.world.first_page
    url = f"{sim.url}/v26.0/{page.id}/insights{suffix}"
    return await get(http, url, access_token=page.token, **params)


# -- node fields --------------------------------------------------------------------------


async def test_page_fields_match_the_world(http, sim) -> None:
    page = sim.world.first_page
    fields = "id,name,fan_count,followers_count,talking_about_count,link,category"
    status, body = await get(
        http, f"{sim.url}/v26.0/{page.id}", access_token=page.token, fields=fields
    )
    assert status == 200
    for name in fields.split(","):
        assert body[name] == sim.world.page_field(page.id, name)
    assert body["followers_count"] > 0


async def test_linked_instagram_account_and_its_fields(http, sim) -> None:
    page = sim.world.first_page
    status, body = await get(
        http,
        f"{sim.url}/v26.0/{page.id}",
        access_token=page.token,
        fields="instagram_business_account",
    )
    assert status == 200
    assert body["instagram_business_account"] == {"id": "17841400000000001"}
    _, body = await get(
        http,
        f"{sim.url}/v26.0/{page.id}",
        access_token=page.token,
        fields="instagram_business_account{id,username}",
    )
    assert body["instagram_business_account"]["id"] == "17841400000000001"
    assert body["instagram_business_account"]["username"]


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [("id,name,no_such_field", 400, 100), ("id,business", 403, 200)],
)
async def test_one_bad_field_fails_the_whole_node_call(http, sim, fields, status, code) -> None:
    page = sim.world.first_page
    got, body = await get(
        http, f"{sim.url}/v26.0/{page.id}", access_token=page.token, fields=fields
    )
    assert (got, body["error"]["code"]) == (status, code)
    assert set(body) == {"error"}


async def test_values_move_with_the_clock_but_not_within_a_step(http) -> None:
    now = [SUMMER]
    sim = Simulator(World(clock=lambda: now[0], value_step=60))
    await sim.start()
    try:
        page = sim.world.first_page
        url = f"{sim.url}/v26.0/{page.id}"
        _, before = await get(http, url, access_token=page.token, fields="followers_count")
        now[0] = SUMMER + timedelta(seconds=59)
        _, same = await get(http, url, access_token=page.token, fields="followers_count")
        now[0] = SUMMER + timedelta(days=3)
        _, later = await get(http, url, access_token=page.token, fields="followers_count")
    finally:
        await sim.stop()
    assert same == before
    assert later["followers_count"] > before["followers_count"]


# -- insights shapes ----------------------------------------------------------------------


async def test_missing_period_gives_every_supported_period(http, sim) -> None:
    status, body = await insights(http, sim, metric="page_media_view,page_follows")
    assert status == 200
    pairs = [(e["name"], e["period"]) for e in body["data"]]
    assert pairs == [
        ("page_media_view", "day"),
        ("page_media_view", "week"),
        ("page_media_view", "days_28"),
        ("page_follows", "day"),
    ]
    page_id = sim.world.first_page.id
    for entry in body["data"]:
        assert entry["id"] == f"{page_id}/insights/{entry['name']}/{entry['period']}"
    prefixes = {e["period"]: e["title"].split()[0] for e in body["data"]}
    assert prefixes == {"day": "Daily", "week": "Weekly", "days_28": "28"}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (SUMMER, ["2026-07-14T07:00:00+0000", "2026-07-15T07:00:00+0000"]),
        (WINTER, ["2026-01-14T08:00:00+0000", "2026-01-15T08:00:00+0000"]),
    ],
)
async def test_default_window_is_the_last_two_pacific_days(http, now, expected) -> None:
    sim = Simulator(World(clock=lambda: now))
    await sim.start()
    try:
        status, body = await insights(http, sim, metric="page_views_total", period="day")
    finally:
        await sim.stop()
    assert status == 200
    ends = [v["end_time"] for v in body["data"][0]["values"]]
    assert ends == expected


async def test_values_equal_the_ground_truth(http, sim) -> None:
    world, page = sim.world, sim.world.first_page
    _, body = await insights(
        http, sim, metric="page_post_engagements,page_total_media_view_unique,page_follows"
    )
    for entry in body["data"]:
        for value in entry["values"]:
            expected = world.page_insight(
                page.id, entry["name"], entry["period"], parse(value["end_time"])
            )
            assert value["value"] == expected
    week = next(e for e in body["data"] if e["period"] == "week")
    day = next(
        e
        for e in body["data"]
        if e["period"] == "day" and e["name"] == "page_total_media_view_unique"
    )
    assert week["values"][-1]["value"] > day["values"][-1]["value"]


async def test_since_until_across_the_dst_change(http, sim) -> None:
    since = int(datetime(2026, 3, 7, 8, 0, tzinfo=UTC).timestamp())  # Pacific midnight, PST
    until = int(datetime(2026, 3, 10, 7, 0, tzinfo=UTC).timestamp())  # Pacific midnight, PDT
    status, body = await insights(
        http, sim, metric="page_views_total", period="day", since=str(since), until=str(until)
    )
    assert status == 200
    ends = [v["end_time"] for v in body["data"][0]["values"]]
    assert ends == [
        "2026-03-08T08:00:00+0000",
        "2026-03-09T07:00:00+0000",
        "2026-03-10T07:00:00+0000",
    ]


async def test_paging_moves_the_window_and_carries_the_token(http, sim) -> None:
    page = sim.world.first_page
    since = int(datetime(2026, 7, 10, 7, 0, tzinfo=UTC).timestamp())
    until = int(datetime(2026, 7, 12, 7, 0, tzinfo=UTC).timestamp())
    _, body = await insights(
        http, sim, metric="page_views_total", period="day", since=str(since), until=str(until)
    )
    for key, shift in (("previous", -172800), ("next", 172800)):
        url = urlsplit(body["paging"][key])
        assert f"{url.scheme}://{url.netloc}" == sim.url
        assert url.path == f"/v26.0/{page.id}/insights"
        query = parse_qs(url.query)
        assert query["access_token"] == [page.token]
        assert query["metric"] == ["page_views_total"]
        assert (int(query["since"][0]), int(query["until"][0])) == (since + shift, until + shift)
    status, older = await get(http, body["paging"]["previous"])
    assert status == 200
    ends = [v["end_time"] for v in older["data"][0]["values"]]
    assert ends == ["2026-07-09T07:00:00+0000", "2026-07-10T07:00:00+0000"]


async def test_is_from_ads_breakdown_is_flattened(http, sim) -> None:
    page = sim.world.first_page
    _, plain = await insights(http, sim, metric="page_media_view", period="day")
    status, body = await insights(
        http, sim, metric="page_media_view", period="day", breakdown="is_from_ads"
    )
    assert status == 200
    values = body["data"][0]["values"]
    assert len(values) == 2 * len(plain["data"][0]["values"])
    for day in plain["data"][0]["values"]:
        parts = {v["is_from_ads"]: v["value"] for v in values if v["end_time"] == day["end_time"]}
        assert set(parts) == {"0", "1"}
        assert sum(parts.values()) == day["value"]
        truth = sim.world.page_insight(
            page.id, "page_media_view", "day", parse(day["end_time"]), breakdown="is_from_ads"
        )
        assert parts == truth


async def test_dict_valued_metrics(http, sim) -> None:
    page = sim.world.first_page
    status, body = await insights(http, sim, metric="page_actions_post_reactions_total")
    assert status == 200
    for value in body["data"][0]["values"]:
        assert isinstance(value["value"], dict)
        assert set(value["value"]) <= {"like", "love", "wow", "haha", "sorry", "anger"}
        assert all(count > 0 for count in value["value"].values())
        expected = sim.world.page_insight(
            page.id, "page_actions_post_reactions_total", "day", parse(value["end_time"])
        )
        assert value["value"] == expected


# -- errors and omissions -----------------------------------------------------------------


@pytest.mark.parametrize("bad", [*RETIRED_PAGE_METRICS, "no_such_metric"])
async def test_a_retired_or_unknown_metric_fails_the_whole_call(http, sim, bad) -> None:
    status, body = await insights(http, sim, metric=f"page_views_total,{bad}")
    assert status == 400
    assert body["error"]["code"] == 100
    assert body["error"]["message"] == "(#100) The value must be a valid insights metric"


async def test_a_span_over_90_days_is_rejected(http, sim) -> None:
    until = int(SUMMER.timestamp())
    status, body = await insights(
        http, sim, metric="page_views_total", since=str(until - 91 * 86400), until=str(until)
    )
    assert (status, body["error"]["code"]) == (400, 100)
    assert "90 days" in body["error"]["message"]


async def test_no_metric_is_code_3001(http, sim) -> None:
    status, body = await insights(http, sim)
    assert status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (3001, 1504028)


async def test_metric_and_period_in_the_path(http, sim) -> None:
    status, body = await insights(http, sim, "/page_views_total")
    assert status == 200
    assert [e["period"] for e in body["data"]] == ["day", "week", "days_28"]
    status, body = await insights(http, sim, "/page_views_total/week")
    assert [(e["name"], e["period"]) for e in body["data"]] == [("page_views_total", "week")]


async def test_metrics_without_data_or_the_period_are_left_out(http) -> None:
    sim = Simulator(World(clock=lambda: SUMMER, page_count=2))
    await sim.start()
    try:
        other = list(sim.world.pages.values())[1]  # not monetised: no earnings, no ad breaks
        url = f"{sim.url}/v26.0/{other.id}/insights"
        metrics = ",".join(["page_views_total", *MONETISATION])
        _, body = await get(http, url, access_token=other.token, metric=metrics)
        assert {e["name"] for e in body["data"]} == {"page_views_total"}
        _, body = await get(
            http, url, access_token=other.token, metric="page_follows", period="week"
        )
        assert body["data"] == []
    finally:
        await sim.stop()


async def test_total_over_range_sums_the_days(http, sim) -> None:
    page = sim.world.first_page
    _, days = await insights(http, sim, metric="page_views_total", period="day")
    _, total = await insights(http, sim, metric="page_views_total", period="total_over_range")
    assert total["data"][0]["values"][0]["value"] == sum(
        v["value"] for v in days["data"][0]["values"]
    )
    assert page.id in total["data"][0]["id"]


async def test_insights_field_expansion_on_the_page(http, sim) -> None:
    page = sim.world.first_page
    status, body = await get(
        http,
        f"{sim.url}/v26.0/{page.id}",
        access_token=page.token,
        fields="id,insights.metric(page_views_total).period(day)",
    )
    assert status == 200
    entry = body["insights"]["data"][0]
    assert (entry["name"], entry["period"]) == ("page_views_total", "day")
    assert len(entry["values"]) == 2


async def test_date_preset_last_7d(http, sim) -> None:
    status, body = await insights(
        http, sim, metric="page_views_total", period="day", date_preset="last_7d"
    )
    assert status == 200
    ends = [parse(v["end_time"]) for v in body["data"][0]["values"]]
    assert len(ends) == 7
    assert ends[-1] == datetime(2026, 7, 15, 7, 0, tzinfo=UTC)


# -- monetisation and ad breaks (the first Page is monetised) ---------------------------


def test_every_monetisation_and_ad_break_metric_of_the_reference_is_served() -> None:
    assert set(MONETISATION) == {
        "page_daily_video_ad_break_ad_impressions_by_crosspost_status",
        "page_daily_video_ad_break_cpm_by_crosspost_status",
        "page_daily_video_ad_break_earnings_by_crosspost_status",
        "content_monetization_earnings",
        "monetization_approximate_earnings",
        "creator_monetization_qualified_views",
    }


async def test_ad_breaks_by_crosspost_status_are_consistent(http, sim) -> None:
    metrics = ",".join(
        f"page_daily_video_ad_break_{x}_by_crosspost_status"
        for x in ("ad_impressions", "cpm", "earnings")
    )
    status, body = await insights(http, sim, metric=metrics)
    assert status == 200
    by_name = {e["name"]: e for e in body["data"]}
    assert [e["period"] for e in body["data"]] == ["day", "day", "day"]
    impressions, cpm, earnings = (
        by_name[f"page_daily_video_ad_break_{x}_by_crosspost_status"]["values"]
        for x in ("ad_impressions", "cpm", "earnings")
    )
    for imp, price, earned in zip(impressions, cpm, earnings, strict=True):
        assert set(imp["value"]) == set(price["value"]) == set(earned["value"])
        assert set(imp["value"]) <= {"owned", "crossposted"}
        for key, count in imp["value"].items():
            assert isinstance(count, int)
            assert count > 0
            assert 2.0 <= price["value"][key] <= 8.0
            assert earned["value"][key] == pytest.approx(
                count * price["value"][key] / 1000, abs=0.01
            )


async def test_earnings_are_amounts_that_grow_with_the_period(http, sim) -> None:
    status, body = await insights(http, sim, metric="monetization_approximate_earnings")
    assert status == 200
    newest = {e["period"]: e["values"][-1]["value"] for e in body["data"]}
    assert list(newest) == ["day", "week", "days_28", "month"]
    assert all(isinstance(v, float) for v in newest.values())
    assert 0 < newest["day"] < newest["week"] < newest["days_28"] < newest["month"]
    assert all(round(v, 2) == v for v in newest.values()), "to the cent"


@pytest.mark.parametrize(
    ("metric", "breakdown"),
    [
        ("content_monetization_earnings", "earning_source"),
        ("monetization_approximate_earnings", "monetization_tool"),
    ],
)
async def test_earnings_breakdowns_split_the_total(http, sim, metric, breakdown) -> None:
    page = sim.world.first_page
    _, plain = await insights(http, sim, metric=metric, period="day")
    status, body = await insights(http, sim, metric=metric, period="day", breakdown=breakdown)
    assert status == 200
    values = body["data"][0]["values"]
    for day in plain["data"][0]["values"]:
        parts = {v[breakdown]: v["value"] for v in values if v["end_time"] == day["end_time"]}
        assert set(parts) == set(BREAKDOWN_KEYS[breakdown])
        assert sum(parts.values()) == pytest.approx(day["value"], abs=0.005)
        assert parts == split_value(
            sim.world, page.id, metric, breakdown, day["value"], parse(day["end_time"])
        )


async def test_qualified_views_per_day_and_lifetime(http, sim) -> None:
    status, body = await insights(http, sim, metric="creator_monetization_qualified_views")
    assert status == 200
    newest = {e["period"]: e["values"][-1]["value"] for e in body["data"]}
    assert list(newest) == ["day", "lifetime"]
    assert 0 < newest["day"] < newest["lifetime"]


# -- issue 8: completed days only, and Meta's revisions of the last days ---------------


async def test_a_day_is_revised_for_two_days_then_final_and_the_running_day_is_absent(
    http,
) -> None:
    now = [SUMMER]
    sim = Simulator(World(clock=lambda: now[0]))
    await sim.start()
    day_end = datetime(2026, 7, 15, 7, 0, tzinfo=UTC)  # 2026-07-14, Pacific
    window = {
        "since": str(int((day_end - timedelta(days=1)).timestamp())),
        "until": str(int((day_end + timedelta(days=1)).timestamp())),  # the running day too
    }
    readings = []
    try:
        for later in (0, 1, 3, 5):
            now[0] = SUMMER + timedelta(days=later)
            _, body = await insights(http, sim, metric="page_media_view", period="day", **window)
            values = body["data"][0]["values"]
            readings.append({v["end_time"]: v["value"] for v in values})
    finally:
        await sim.stop()
    first, next_day, final, later = (r["2026-07-15T07:00:00+0000"] for r in readings)
    assert list(readings[0]) == ["2026-07-15T07:00:00+0000"], "the running day is not served"
    assert first < next_day < final == later, "revised upwards, then final"
