"""The simulator's app node and app_insights edge, in both the documented and retired modes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from collectord.simulator import Faults, Simulator, World
from collectord.simulator.world import USER_TOKEN

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def started(world: World | None = None, faults: Faults | None = None) -> Simulator:
    sim = Simulator(world or World(clock=lambda: NOW), faults)
    await sim.start()
    return sim


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = await started()
    yield sim
    await sim.stop()


async def app_get(
    http: aiohttp.ClientSession,
    sim: Simulator,
    suffix: str,
    token: str | None = None,
    **params: str,
) -> tuple[int, Any]:
    world = sim.world
    url = f"{sim.url}/v26.0/{world.app_id}{suffix}"
    async with http.get(url, params={"access_token": token or world.app_token, **params}) as resp:
        return resp.status, await resp.json()


async def test_app_node_active_user_fields(http, sim) -> None:
    fields = "id,name,daily_active_users,weekly_active_users,monthly_active_users"
    status, body = await app_get(http, sim, "", fields=fields)
    assert status == 200
    for name in fields.split(","):
        assert body[name] == sim.world.app_field(sim.world.app_id, name)
    assert int(body["daily_active_users"]) < int(body["monthly_active_users"])
    status, body = await app_get(http, sim, "", fields="id,bogus")
    assert (status, body["error"]["code"]) == (400, 100)


async def test_daily_points_default_to_the_last_two_days(http, sim) -> None:
    status, body = await app_get(http, sim, "/app_insights/api_calls")
    assert status == 200
    # 2026-03-08 is the DST change: the day starts at 08:00 UTC, the next at 07:00 UTC.
    assert [p["time"] for p in body["data"]] == [
        "2026-03-08T08:00:00+0000",
        "2026-03-09T07:00:00+0000",
    ]
    for point in body["data"]:
        assert isinstance(point["value"], str)
        truth = sim.world.app_insight(sim.world.app_id, "api_calls", "daily", parse(point["time"]))
        assert float(point["value"]) == truth
    assert "next" in body["paging"]


@pytest.mark.parametrize(
    "params",
    [{"breakdowns[0]": "country"}, {"breakdowns": '["country"]'}, {"breakdowns": "country"}],
)
async def test_country_breakdown(http, sim, params) -> None:
    status, body = await app_get(http, sim, "/app_insights/mobile_referrals", **params)
    assert status == 200
    countries = {p["breakdowns"]["country"] for p in body["data"]}
    assert {"US", "BR"} <= countries
    for point in body["data"]:
        truth = sim.world.app_insight(
            sim.world.app_id,
            "mobile_referrals",
            "daily",
            parse(point["time"]),
            breakdowns=point["breakdowns"],
        )
        assert float(point["value"]) == truth


async def test_two_breakdowns_combine(http, sim) -> None:
    _, body = await app_get(
        http,
        sim,
        "/app_insights/api_calls",
        **{"breakdowns[0]": "client", "breakdowns[1]": "auth_state"},
    )
    combos = {tuple(sorted(p["breakdowns"].items())) for p in body["data"]}
    assert (("auth_state", "1"), ("client", "ios")) in combos
    assert all(set(p["breakdowns"]) == {"client", "auth_state"} for p in body["data"])


async def test_periods(http, sim) -> None:
    app_id = sim.world.app_id
    _, daily = await app_get(http, sim, "/app_insights/story_impressions", period="daily")
    _, weekly = await app_get(http, sim, "/app_insights/story_impressions", period="weekly")
    assert float(weekly["data"][-1]["value"]) > float(daily["data"][-1]["value"])
    _, hourly = await app_get(http, sim, "/app_insights/story_impressions", period="hourly")
    assert len(hourly["data"]) == 24
    _, life = await app_get(
        http, sim, "/app_insights/facebook_login_total_users", period="lifetime"
    )
    assert len(life["data"]) == 1
    truth = sim.world.app_insight(
        app_id, "facebook_login_total_users", "lifetime", parse(life["data"][0]["time"])
    )
    assert float(life["data"][0]["value"]) == truth
    since = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    until = datetime(2026, 3, 8, 8, 0, tzinfo=UTC)
    _, ranged = await app_get(
        http,
        sim,
        "/app_insights/api_calls",
        period="range",
        since=str(int(since.timestamp())),
        until=str(int(until.timestamp())),
    )
    assert len(ranged["data"]) == 1
    assert parse(ranged["data"][0]["time"]) == since
    truth = sim.world.app_insight(app_id, "api_calls", "range", since, until=until)
    assert float(ranged["data"][0]["value"]) == truth


@pytest.mark.parametrize(
    ("metric", "period"),
    [("api_calls", "hourly"), ("api_calls", "lifetime"), ("api_calls", "yearly")],
)
async def test_unsupported_periods_are_rejected(http, sim, metric, period) -> None:
    status, body = await app_get(http, sim, f"/app_insights/{metric}", period=period)
    assert (status, body["error"]["code"]) == (400, 100)


async def test_aggregate_by(http, sim) -> None:
    _, count = await app_get(http, sim, "/app_insights/api_calls", aggregateBy="COUNT")
    _, users = await app_get(http, sim, "/app_insights/api_calls", aggregateBy="USERS")
    assert float(users["data"][0]["value"]) < float(count["data"][0]["value"])
    status, body = await app_get(http, sim, "/app_insights/api_calls", aggregateBy="NOPE")
    assert (status, body["error"]["code"]) == (400, 100)


async def test_app_event_needs_event_name(http, sim) -> None:
    status, body = await app_get(http, sim, "/app_insights/app_event")
    assert (status, body["error"]["code"]) == (400, 100)
    status, body = await app_get(
        http, sim, "/app_insights/app_event", event_name="fb_mobile_purchase", aggregateBy="SUM"
    )
    assert status == 200
    point = body["data"][0]
    truth = sim.world.app_insight(
        sim.world.app_id,
        "app_event",
        "daily",
        parse(point["time"]),
        aggregate_by="SUM",
        event_name="fb_mobile_purchase",
    )
    assert float(point["value"]) == truth


async def test_summary_and_metric_key(http, sim) -> None:
    status, body = await app_get(
        http, sim, "/app_insights", metric_key="api_errors", summary="true"
    )
    assert status == 200
    assert body["summary"]["name"] == "api_errors"
    assert body["summary"]["period"] == "daily"


async def test_unknown_or_missing_metric(http, sim) -> None:
    status, body = await app_get(http, sim, "/app_insights/app_event_bogus")
    assert (status, body["error"]["code"]) == (400, 100)
    status, body = await app_get(http, sim, "/app_insights")
    assert (status, body["error"]["code"]) == (400, 3001)


async def test_app_insights_need_the_app_token(http, sim) -> None:
    for token in (USER_TOKEN, sim.world.first_page.token):
        status, body = await app_get(http, sim, "/app_insights/api_calls", token=token)
        assert (status, body["error"]["code"]) == (400, 3000)


@pytest.mark.parametrize("how", ["world", "faults"])
async def test_retired_edge_answers_code_100(http, how) -> None:
    world = World(clock=lambda: NOW, app_insights_retired=how == "world")
    faults = Faults()
    faults.app_insights_retired = how == "faults"
    sim = await started(world, faults)
    try:
        status, body = await app_get(http, sim, "/app_insights/api_calls")
        assert (status, body["error"]["code"]) == (400, 100)
        assert "unsupported" in body["error"]["message"].lower()
        status, _ = await app_get(http, sim, "", fields="id,daily_active_users")
        assert status == 200
    finally:
        await sim.stop()


async def test_app_insights_in_a_batch(http, sim) -> None:
    batch = [{"method": "GET", "relative_url": f"{sim.world.app_id}/app_insights/api_calls"}]
    form = {"access_token": sim.world.app_token, "batch": json.dumps(batch)}
    async with http.post(f"{sim.url}/v26.0/", data=form) as resp:
        answers = await resp.json()
    assert answers[0]["code"] == 200
    assert len(json.loads(answers[0]["body"])["data"]) == 2
