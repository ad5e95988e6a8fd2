"""Batch requests against the simulator (docs/meta-facts.md 8)."""

from __future__ import annotations

import json
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


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=lambda: NOW))
    await sim.start()
    yield sim
    await sim.stop()


async def batch(
    http: aiohttp.ClientSession,
    sim: Simulator,
    items: list[dict[str, Any]],
    path: str = "/v26.0/",
    **form: str,
) -> tuple[int, Any]:
    data = {"access_token": sim.world.first_page.token, "batch": json.dumps(items), **form}
    async with http.post(sim.url + path, data=data) as resp:
        return resp.status, await resp.json()


def insights_url(sim: Simulator, metric: str) -> str:
    return f"{sim.world.first_page.id}/insights?metric={metric}&period=day"


async def test_mixed_batch_answers_each_element_in_order(http, sim) -> None:
    items = [
        {"method": "GET", "relative_url": insights_url(sim, "page_views_total")},
        {"method": "GET", "relative_url": insights_url(sim, "page_impressions")},
        {"method": "GET", "relative_url": f"{sim.world.first_page.id}?fields=id,followers_count"},
    ]
    status, answers = await batch(http, sim, items)
    assert status == 200
    assert [a["code"] for a in answers] == [200, 400, 200]
    assert all(isinstance(a["body"], str) for a in answers)
    first, failed, node = (json.loads(a["body"]) for a in answers)
    assert first["data"][0]["name"] == "page_views_total"
    assert failed["error"]["code"] == 100
    assert node["followers_count"] == sim.world.page_field(node["id"], "followers_count")
    names = {h["name"] for h in answers[0]["headers"]}
    assert {"Content-Type", "X-Business-Use-Case-Usage"} <= names


async def test_include_headers_false_drops_headers(http, sim) -> None:
    items = [{"method": "GET", "relative_url": insights_url(sim, "page_views_total")}]
    _, answers = await batch(http, sim, items, include_headers="false")
    assert set(answers[0]) == {"code", "body"}


async def test_element_access_token_overrides_the_top_level_one(http, sim) -> None:
    page = sim.world.first_page
    items = [
        {"method": "GET", "relative_url": insights_url(sim, "page_views_total")},
        {
            "method": "GET",
            "relative_url": insights_url(sim, "page_views_total") + f"&access_token={page.token}",
        },
    ]
    data = {"access_token": USER_TOKEN, "batch": json.dumps(items)}
    async with http.post(f"{sim.url}/v26.0/", data=data) as resp:
        answers = await resp.json()
    assert [a["code"] for a in answers] == [400, 200]
    assert json.loads(answers[0]["body"])["error"]["code"] == 190


async def test_more_than_50_elements_is_refused(http, sim) -> None:
    items = [{"method": "GET", "relative_url": sim.world.first_page.id}] * 51
    status, body = await batch(http, sim, items)
    assert status == 400
    assert body["error"]["message"] == (
        "Too many requests in batch message. Maximum batch size is 50"
    )
    status, answers = await batch(http, sim, items[:50])
    assert status == 200
    assert len(answers) == 50


async def test_null_elements_with_the_null_rate(http, sim) -> None:
    items = [{"method": "GET", "relative_url": sim.world.first_page.id}] * 40
    sim.faults.batch_null_rate = 1.0
    _, answers = await batch(http, sim, items)
    assert answers == [None] * 40
    sim.faults.batch_null_rate = 0.5
    _, answers = await batch(http, sim, items)
    assert None in answers
    assert any(a is not None and a["code"] == 200 for a in answers)


async def test_a_batch_counts_as_one_request_and_k_calls(http, sim) -> None:
    items = [{"method": "GET", "relative_url": sim.world.first_page.id}] * 7
    await batch(http, sim, items)
    await batch(http, sim, items[:3], path="/")
    assert sim.stats() == {"http_requests": 2, "graph_calls": 10}
    assert sim.requests[0].batch_size == 7


async def test_batch_elements_are_metered_one_by_one(http) -> None:
    sim = Simulator(World(clock=lambda: NOW, call_budget=4))
    await sim.start()
    try:
        items = [{"method": "GET", "relative_url": sim.world.first_page.id}] * 6
        _, answers = await batch(http, sim, items)
    finally:
        await sim.stop()
    assert [a["code"] for a in answers] == [200, 200, 200, 200, 400, 400]
    assert json.loads(answers[-1]["body"])["error"]["code"] == 80001


async def test_invalid_batch_parameter(http, sim) -> None:
    data = {"access_token": USER_TOKEN, "batch": "not json"}
    async with http.post(f"{sim.url}/v26.0/", data=data) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == 100


async def test_a_throttled_element_carries_its_usage_and_regain_time(http, sim) -> None:
    sim.faults.throttle(80001, minutes=30, path="insights")
    items = [{"method": "GET", "relative_url": insights_url(sim, "page_follows")}]
    items.append({"method": "GET", "relative_url": sim.world.first_page.id})
    _, answers = await batch(http, sim, items, include_headers="true")
    throttled, fine = answers
    assert json.loads(throttled["body"])["error"]["code"] == 80001
    headers = {h["name"]: h["value"] for h in throttled["headers"]}
    entry = json.loads(headers["X-Business-Use-Case-Usage"])[sim.world.first_page.id][0]
    assert (entry["call_count"], entry["estimated_time_to_regain_access"]) == (100, 30)
    assert headers["facebook-api-version"] == "v26.0"
    ok_headers = {h["name"]: h["value"] for h in fine["headers"]}
    assert "X-Business-Use-Case-Usage" in ok_headers


async def test_a_retired_version_is_served_by_the_oldest_live_one(http, sim) -> None:
    items = [{"method": "GET", "relative_url": sim.world.first_page.id}]
    _, answers = await batch(http, sim, items, path="/v19.0/")
    headers = {h["name"]: h["value"] for h in answers[0]["headers"]}
    assert headers["facebook-api-version"] == "v20.0"
