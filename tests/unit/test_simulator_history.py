"""The simulator's history for collectord backfill: every past day Meta's windows reach has
a value, the same one for the same world and clock, and a window wider than Meta allows
gets Meta's error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from collectord.simulator import Simulator, World

NOW = datetime(2026, 12, 4, 5, 30, tzinfo=UTC)


@pytest.fixture
async def sims() -> AsyncIterator[tuple[Simulator, Simulator]]:
    one, two = Simulator(World(clock=lambda: NOW)), Simulator(World(clock=lambda: NOW))
    await one.start()
    await two.start()
    yield one, two
    await one.stop()
    await two.stop()


async def _get(sim: Simulator, node: str, plugin: str, **params: str) -> tuple[int, Any]:
    query = {**params, "access_token": sim.world.demo_token(plugin)}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.url}/v26.0/{node}/insights", params=query) as resp,
    ):
        return resp.status, await resp.json()


def _span(days_back: int, days: int) -> dict[str, str]:
    since = NOW - timedelta(days=days_back)
    return {
        "since": str(int(since.timestamp())),
        "until": str(int(since.timestamp()) + days * 86400),
    }


async def test_page_history_covers_90_days_a_call_and_is_the_same_for_the_same_world(
    sims: tuple[Simulator, Simulator],
) -> None:
    one, two = sims
    page = one.world.demo_ids()["page_id"]
    params = {"metric": "page_post_engagements,page_media_view", "period": "day"}
    status, body = await _get(one, page, "facebook_page", **params, **_span(720, 90))
    assert status == 200
    for entry in body["data"]:
        assert len(entry["values"]) == 90  # two years back: every day has its value
    status, again = await _get(two, page, "facebook_page", **params, **_span(720, 90))
    assert again["data"] == body["data"]

    status, body = await _get(one, page, "facebook_page", **params, **_span(120, 91))
    assert status == 400
    assert body["error"]["code"] == 100
    assert "There cannot be more than 90 days" in body["error"]["message"]


async def test_account_history_is_daily_and_refuses_windows_over_30_days(
    sims: tuple[Simulator, Simulator],
) -> None:
    one, two = sims
    ig = one.world.demo_ids()["ig_user_id"]
    series = {"metric": "reach", "period": "day", "metric_type": "time_series"}
    status, body = await _get(one, ig, "instagram_user", **series, **_span(89, 30))
    assert status == 200
    assert len(body["data"][0]["values"]) == 30
    status, again = await _get(two, ig, "instagram_user", **series, **_span(89, 30))
    assert again["data"] == body["data"]

    totals = {"metric": "views,likes", "period": "day", "metric_type": "total_value"}
    days = [await _get(one, ig, "instagram_user", **totals, **_span(n, 1)) for n in (89, 45, 2)]
    assert all(status == 200 for status, _ in days)
    assert all(entry["total_value"]["value"] > 0 for _, b in days for entry in b["data"])

    status, body = await _get(one, ig, "instagram_user", **series, **_span(89, 31))
    assert status == 400
    assert "There cannot be more than 30 days" in body["error"]["message"]
