"""Usage headers, throttling, every fault kind and the HTTP control endpoints."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from clock_support import Clock

from collectord.simulator import Faults, Simulator, World
from collectord.simulator.world import USER_TOKEN

NOW = datetime(2026, 7, 15, 18, 0, tzinfo=UTC)
IG_USER = "17841400000000001"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> Clock[datetime]:
    return Clock(NOW)


@pytest.fixture
async def sim(clock: Clock[datetime]) -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=clock, call_budget=10, usage_window=3600))
    await sim.start()
    yield sim
    await sim.stop()


async def get(
    http: aiohttp.ClientSession, sim: Simulator, path: str, token: str | None = None, **params: str
) -> tuple[int, Any, Any]:
    params = {"access_token": token or sim.world.first_page.token, **params}
    async with http.get(f"{sim.url}/v26.0/{path}", params=params) as resp:
        return resp.status, await resp.json(), resp.headers


def buc(headers: Any, key: str) -> dict[str, Any]:
    return json.loads(headers["X-Business-Use-Case-Usage"])[key][0]


# -- usage and throttling -----------------------------------------------------------------


async def test_page_usage_rises_and_throttles_with_80001(http, sim) -> None:
    page_id = sim.world.first_page.id
    counts = []
    for _ in range(10):
        status, _, headers = await get(http, sim, page_id)
        assert status == 200
        counts.append(buc(headers, page_id)["call_count"])
    assert counts == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    status, body, headers = await get(http, sim, page_id)
    assert (status, body["error"]["code"]) == (400, 80001)
    usage = buc(headers, page_id)
    assert usage["type"] == "pages"
    assert usage["estimated_time_to_regain_access"] == 60


async def test_access_returns_when_the_window_rolls(http, sim, clock) -> None:
    page_id = sim.world.first_page.id
    for _ in range(10):
        await get(http, sim, page_id)
    assert (await get(http, sim, page_id))[0] == 400
    clock.now = NOW + timedelta(hours=1, seconds=1)
    status, _, headers = await get(http, sim, page_id)
    assert status == 200
    assert buc(headers, page_id)["call_count"] == 10


@pytest.mark.parametrize(
    ("path", "token", "code", "http_status"),
    [
        ("{app}", "app", 4, 403),
        ("me", "user", 17, 400),
        ("{page}", "user", 32, 400),
    ],
)
async def test_platform_throttles(http, sim, path, token, code, http_status) -> None:
    world = sim.world
    token = world.app_token if token == "app" else USER_TOKEN
    path = path.format(app=world.app_id, page=world.first_page.id)
    for _ in range(10):
        status, _, headers = await get(http, sim, path, token)
        assert status == 200
    assert json.loads(headers["X-App-Usage"])["call_count"] == 100
    status, body, _ = await get(http, sim, path, token)
    assert (status, body["error"]["code"]) == (http_status, code)
    if code == 4:
        assert body["error"]["is_transient"] is True


async def test_instagram_calls_are_metered_per_ig_account(http, sim) -> None:
    for _ in range(10):
        status, body, headers = await get(http, sim, IG_USER, USER_TOKEN)
        assert status == 200, body
    assert buc(headers, IG_USER)["type"] == "instagram"
    status, body, _ = await get(http, sim, IG_USER, USER_TOKEN)
    assert (status, body["error"]["code"]) == (400, 80002)


# -- fault kinds --------------------------------------------------------------------------


async def test_throttle_fault_limited_to_a_path_and_a_count(http, sim) -> None:
    page_id = sim.world.first_page.id
    sim.faults.throttle(80001, minutes=7, count=2, path="insights")
    status, _, _ = await get(http, sim, page_id)
    assert status == 200
    for _ in range(2):
        status, body, headers = await get(http, sim, f"{page_id}/insights", metric="page_follows")
        assert body["error"]["code"] == 80001
        assert buc(headers, page_id)["estimated_time_to_regain_access"] == 7
        assert buc(headers, page_id)["call_count"] == 100
    status, _, _ = await get(http, sim, f"{page_id}/insights", metric="page_follows")
    assert status == 200


async def test_throttle_fault_with_retry_after(http, sim) -> None:
    sim.faults.throttle(4, minutes=2, retry_after=True)
    status, body, headers = await get(http, sim, sim.world.app_id, sim.world.app_token)
    assert (status, body["error"]["code"]) == (403, 4)
    assert headers["Retry-After"] == "120"
    assert json.loads(headers["X-App-Usage"])["call_count"] == 100


async def test_server_error_json_and_html(http, sim) -> None:
    sim.faults.server_error()
    status, body, _ = await get(http, sim, sim.world.first_page.id)
    assert status == 500
    assert body["error"]["code"] == 2
    assert body["error"]["is_transient"] is True
    sim.faults.server_error(html=True)
    async with http.get(f"{sim.url}/v26.0/{sim.world.first_page.id}") as resp:
        assert resp.status == 502
        assert resp.content_type == "text/html"
        assert "<html>" in await resp.text()
    status, _, _ = await get(http, sim, sim.world.first_page.id)
    assert status == 200


async def test_malformed_json(http, sim) -> None:
    sim.faults.malformed_json()
    params = {"access_token": sim.world.first_page.token, "fields": "id,name,followers_count"}
    async with http.get(f"{sim.url}/v26.0/{sim.world.first_page.id}", params=params) as resp:
        assert resp.status == 200
        text = await resp.text()
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


async def test_delay_is_used_up(http, sim) -> None:
    rule = sim.faults.delay(0.01, count=1)
    status, _, _ = await get(http, sim, sim.world.first_page.id)
    assert status == 200
    assert rule not in sim.faults.rules
    assert sim.faults.rules == []


async def test_token_error_until_cleared(http, sim) -> None:
    sim.faults.token_error(492)
    for _ in range(2):
        status, body, _ = await get(http, sim, sim.world.first_page.id)
        assert (status, body["error"]["code"], body["error"]["error_subcode"]) == (400, 190, 492)
    sim.faults.clear()
    assert (await get(http, sim, sim.world.first_page.id))[0] == 200


async def test_invalid_metrics_fault(http, sim) -> None:
    page_id = sim.world.first_page.id
    sim.faults.invalid_metrics(["page_views_total", "post_clicks"])
    status, body, _ = await get(
        http, sim, f"{page_id}/insights", metric="page_follows,page_views_total"
    )
    assert (status, body["error"]["code"]) == (400, 100)
    status, _, _ = await get(http, sim, f"{page_id}/insights", metric="page_follows")
    assert status == 200
    status, body, _ = await get(
        http, sim, f"{page_id}/posts", fields="id,insights.metric(post_clicks)"
    )
    assert body["error"]["message"] == "(#100) The value must be a valid insights metric"


def test_fault_options_are_checked() -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="unknown fault kind"):
        faults.add("explode")
    with pytest.raises(ValueError, match="needs seconds"):
        faults.add("delay")
    with pytest.raises(ValueError, match="unknown options"):
        faults.add("throttle", colour="red")


# -- control endpoints --------------------------------------------------------------------


async def test_control_endpoint_adds_lists_and_clears_faults(http, sim) -> None:
    spec = {"kind": "throttle", "code": 17, "minutes": 3, "count": 1}
    async with http.post(f"{sim.url}/_sim/faults", json=spec) as resp:
        assert resp.status == 200
        assert (await resp.json())["faults"][0]["code"] == 17
    _, body, _ = await get(http, sim, "me", USER_TOKEN)
    assert body["error"]["code"] == 17
    async with http.post(f"{sim.url}/_sim/faults", json={"batch_null_rate": 0.25}) as resp:
        assert (await resp.json())["batch_null_rate"] == 0.25
    async with http.post(f"{sim.url}/_sim/faults", json=[{"kind": "token_error"}]) as resp:
        assert resp.status == 200
    async with http.get(f"{sim.url}/_sim/faults") as resp:
        listed = await resp.json()
    assert [f["kind"] for f in listed["faults"]] == ["token_error"]
    async with http.delete(f"{sim.url}/_sim/faults") as resp:
        assert (await resp.json()) == {
            "faults": [],
            "batch_null_rate": 0.0,
            "app_insights_retired": False,
        }
    async with http.post(f"{sim.url}/_sim/faults", json={"kind": "nope"}) as resp:
        assert resp.status == 400


async def test_control_endpoint_request_log_without_secrets(http, sim) -> None:
    page = sim.world.first_page
    await get(http, sim, page.id, fields="id")
    items = [{"method": "GET", "relative_url": page.id}] * 3
    data = {"access_token": page.token, "batch": json.dumps(items)}
    async with http.post(f"{sim.url}/v26.0/", data=data) as resp:
        assert resp.status == 200
    async with http.get(f"{sim.url}/_sim/requests") as resp:
        body = await resp.json()
    assert body["stats"] == {"http_requests": 2, "graph_calls": 4}
    assert body["requests"][0]["params"] == {"fields": "id"}
    assert body["requests"][1]["batch_size"] == 3
    assert page.token not in json.dumps(body)
    async with http.delete(f"{sim.url}/_sim/requests") as resp:
        assert (await resp.json())["stats"] == {"http_requests": 0, "graph_calls": 0}


async def test_control_endpoint_world(http, sim) -> None:
    async with http.get(f"{sim.url}/_sim/world") as resp:
        body = await resp.json()
    assert body["ids"] == sim.world.demo_ids()
    assert body["tokens"]["facebook_page"] == sim.world.first_page.token


# -- held throttles (issue 8) -------------------------------------------------------------


async def test_a_held_throttle_keeps_the_budget_blocked_until_the_regain_time(
    http, sim, clock
) -> None:
    page_id = sim.world.first_page.id
    sim.faults.throttle(80001, minutes=30, hold=True, path="insights")
    status, body, headers = await get(http, sim, f"{page_id}/insights", metric="page_follows")
    assert body["error"]["code"] == 80001
    assert buc(headers, page_id)["estimated_time_to_regain_access"] == 30
    clock.now = NOW + timedelta(minutes=10)
    status, body, headers = await get(http, sim, page_id)
    assert body["error"]["code"] == 80001, "the whole Page budget is blocked"
    assert buc(headers, page_id)["estimated_time_to_regain_access"] == 20
    assert sim.router.calls_during_block == 1
    clock.now = NOW + timedelta(minutes=30)
    status, _, _ = await get(http, sim, page_id)
    assert status == 200


@pytest.mark.parametrize("code", [4, 17, 32, 613])
async def test_platform_throttles_with_and_without_a_regain_time(http, sim, code) -> None:
    page_id = sim.world.first_page.id
    sim.faults.throttle(code, minutes=3, retry_after=True)
    _, body, headers = await get(http, sim, page_id, USER_TOKEN)
    assert body["error"]["code"] == code
    assert headers["Retry-After"] == "180"
    sim.faults.throttle(code, minutes=3)
    _, body, headers = await get(http, sim, page_id, USER_TOKEN)
    assert body["error"]["code"] == code
    assert "Retry-After" not in headers
    assert json.loads(headers["X-App-Usage"])["call_count"] == 100


async def test_a_buc_throttle_without_a_regain_time(http, sim) -> None:
    page_id = sim.world.first_page.id
    sim.faults.throttle(80001, minutes=3, regain=False)
    _, body, headers = await get(http, sim, page_id)
    assert body["error"]["code"] == 80001
    assert buc(headers, page_id)["estimated_time_to_regain_access"] == 0
    assert buc(headers, page_id)["call_count"] == 100


def test_huge_and_endless_answers_are_faults_of_their_own() -> None:
    from collectord.simulator.faults import Faults

    faults = Faults()
    (huge,) = faults.apply_json({"kind": "huge", "megabytes": 2, "path": "insights"})
    faults.endless(count=2)
    assert huge.options == {"megabytes": 2}
    assert faults.take("huge", ["/v26.0/1/insights"]) is huge
    assert faults.take("huge", ["/v26.0/1/insights"]) is None  # one answer by default
    assert faults.take("endless", ["/v26.0/1"]) is not None
    assert [r.kind for r in faults.rules] == ["endless"]
