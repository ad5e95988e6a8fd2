"""The simulator's core over loopback: versions, headers, tokens, proofs, debug_token,
token exchange, /me/accounts and the request counters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from collectord.simulator import Simulator, World, serve
from collectord.simulator.base import TokenInfo
from collectord.simulator.world import EXPIRED_USER_TOKEN, SHORT_USER_TOKEN, USER_TOKEN

NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start(world: World) -> Simulator:
    sim = Simulator(world)
    await sim.start()
    return sim


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = await start(World(clock=lambda: NOW, proof_clock=lambda: NOW, page_count=3))
    yield sim
    await sim.stop()


async def get(
    http: aiohttp.ClientSession, sim: Simulator, path: str, **params: str
) -> tuple[int, Any, Any]:
    async with http.get(sim.url + path, params=params) as resp:
        return resp.status, await resp.json(), resp.headers


def page(sim: Simulator) -> tuple[str, str]:
    first = sim.world.first_page
    return first.id, first.token


# -- versions and headers -----------------------------------------------------------------


@pytest.mark.parametrize("version", [f"v{n}.0" for n in range(20, 28)])
async def test_supported_versions_answer_and_echo_the_version(http, sim, version) -> None:
    page_id, token = page(sim)
    status, body, headers = await get(http, sim, f"/{version}/{page_id}", access_token=token)
    assert status == 200
    assert body == {"id": page_id, "name": sim.world.first_page.name}
    assert headers["facebook-api-version"] == version


async def test_unversioned_path_uses_the_default_version(http, sim) -> None:
    page_id, token = page(sim)
    status, _, headers = await get(http, sim, f"/{page_id}", access_token=token)
    assert status == 200
    assert headers["facebook-api-version"] == "v26.0"


@pytest.mark.parametrize("version", ["v30.0", "v26", "v26.1"])
async def test_unknown_version_is_code_2500(http, sim, version) -> None:
    page_id, token = page(sim)
    status, body, _ = await get(http, sim, f"/{version}/{page_id}", access_token=token)
    assert status == 400
    assert body["error"]["code"] == 2500
    assert "Unknown path components" in body["error"]["message"]


async def test_expired_version_is_served_by_the_oldest_available(http, sim) -> None:
    page_id, token = page(sim)
    status, _, headers = await get(http, sim, f"/v19.0/{page_id}", access_token=token)
    assert status == 200
    assert headers["facebook-api-version"] == "v20.0"


async def test_trace_headers_match_the_error_fbtrace_id(http, sim) -> None:
    status, body, headers = await get(http, sim, "/v26.0/105000000000001")
    assert status == 400
    assert body["error"]["fbtrace_id"] == headers["x-fb-trace-id"]
    assert headers["X-FB-Debug"]
    assert headers["Content-Type"].startswith("application/json")


# -- tokens -------------------------------------------------------------------------------


async def test_missing_token_is_code_104(http, sim) -> None:
    status, body, _ = await get(http, sim, "/v26.0/105000000000001")
    assert (status, body["error"]["code"]) == (400, 104)
    assert body["error"]["message"] == "An access token is required to request this resource."


async def test_unknown_token_cannot_be_parsed(http, sim) -> None:
    status, body, _ = await get(http, sim, "/v26.0/105000000000001", access_token="nope")
    assert (status, body["error"]["code"]) == (400, 190)
    assert body["error"]["message"] == "Invalid OAuth access token - Cannot parse access token"
    assert "error_subcode" not in body["error"]


async def test_expired_and_revoked_tokens_carry_subcodes(http, sim) -> None:
    _, body, _ = await get(http, sim, "/v26.0/me", access_token=EXPIRED_USER_TOKEN)
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)
    page_id, token = page(sim)
    sim.world.revoke_token(token, 492)
    _, body, _ = await get(http, sim, f"/v26.0/{page_id}", access_token=token)
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 492)


async def test_token_in_the_authorization_header_is_accepted(http, sim) -> None:
    page_id, token = page(sim)
    headers = {"Authorization": f"OAuth {token}"}
    async with http.get(f"{sim.url}/v26.0/{page_id}", headers=headers) as resp:
        assert resp.status == 200


async def test_user_token_on_page_insights_needs_a_page_token(http, sim) -> None:
    page_id, _ = page(sim)
    status, body, _ = await get(
        http, sim, f"/v26.0/{page_id}/insights", access_token=USER_TOKEN, metric="page_views_total"
    )
    assert (status, body["error"]["code"]) == (400, 190)
    assert body["error"]["message"] == "(#190) This method must be called with a Page Access Token"


async def test_other_pages_token_and_app_token_are_refused(http, sim) -> None:
    page_id, _ = page(sim)
    other = list(sim.world.pages.values())[1].token
    status, body, _ = await get(
        http, sim, f"/v26.0/{page_id}/insights", access_token=other, metric="page_views_total"
    )
    assert (status, body["error"]["code"]) == (403, 200)
    status, body, _ = await get(http, sim, f"/v26.0/{page_id}", access_token=sim.world.app_token)
    assert (status, body["error"]["code"]) == (403, 10)


async def test_unknown_object_is_code_100_subcode_33(http, sim) -> None:
    _, token = page(sim)
    status, body, _ = await get(http, sim, "/v26.0/999999", access_token=token)
    assert status == 400
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (100, 33)
    assert body["error"]["type"] == "GraphMethodException"


# -- appsecret_proof ----------------------------------------------------------------------


def proof(secret: str, message: str) -> str:
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


async def test_classic_and_timed_proofs_are_accepted(http, sim) -> None:
    page_id, token = page(sim)
    secret = sim.world.app_secret
    status, _, _ = await get(
        http, sim, f"/v26.0/{page_id}", access_token=token, appsecret_proof=proof(secret, token)
    )
    assert status == 200
    at = str(int((NOW - timedelta(minutes=4)).timestamp()))
    status, _, _ = await get(
        http,
        sim,
        f"/v26.0/{page_id}",
        access_token=token,
        appsecret_proof=proof(secret, f"{token}|{at}"),
        appsecret_time=at,
    )
    assert status == 200


async def test_wrong_or_stale_proof_fails_the_call(http, sim) -> None:
    page_id, token = page(sim)
    secret = sim.world.app_secret
    wrong = proof("another-secret", token)
    stale_at = str(int((NOW - timedelta(minutes=6)).timestamp()))
    for extra in (
        {"appsecret_proof": wrong},
        {"appsecret_proof": proof(secret, f"{token}|{stale_at}"), "appsecret_time": stale_at},
    ):
        status, body, _ = await get(http, sim, f"/v26.0/{page_id}", access_token=token, **extra)
        assert (status, body["error"]["code"]) == (400, 100)
        assert body["error"]["message"] == "Invalid appsecret_proof provided in the API argument"


async def test_required_proof_is_demanded(http) -> None:
    sim = await start(World(clock=lambda: NOW, require_proof=True))
    try:
        page_id, token = page(sim)
        status, body, _ = await get(http, sim, f"/v26.0/{page_id}", access_token=token)
        assert (status, body["error"]["code"]) == (400, 100)
        ok = proof(sim.world.app_secret, token)
        status, _, _ = await get(
            http, sim, f"/v26.0/{page_id}", access_token=token, appsecret_proof=ok
        )
        assert status == 200
    finally:
        await sim.stop()


# -- debug_token and token exchange -------------------------------------------------------


async def test_debug_token_of_a_page_token(http, sim) -> None:
    page_id, token = page(sim)
    status, body, _ = await get(
        http, sim, "/v26.0/debug_token", input_token=token, access_token=sim.world.app_token
    )
    assert status == 200
    data = body["data"]
    assert data["type"] == "PAGE"
    assert data["is_valid"] is True
    assert data["expires_at"] == 0
    assert data["app_id"] == sim.world.app_id
    assert data["profile_id"] == page_id
    assert {"read_insights", "pages_read_engagement"} <= set(data["scopes"])
    engagement = next(g for g in data["granular_scopes"] if g["scope"] == "pages_read_engagement")
    assert engagement["target_ids"] == [page_id]


async def test_debug_token_of_user_invalid_and_revoked_tokens(http, sim) -> None:
    app = sim.world.app_token
    _, body, _ = await get(
        http, sim, "/v26.0/debug_token", input_token=USER_TOKEN, access_token=app
    )
    assert body["data"]["type"] == "USER"
    assert body["data"]["expires_at"] > NOW.timestamp()
    _, body, _ = await get(http, sim, "/v26.0/debug_token", input_token="junk", access_token=app)
    assert body["data"]["is_valid"] is False
    assert body["data"]["error"]["code"] == 190
    sim.world.revoke_token(USER_TOKEN, 460)
    _, body, _ = await get(
        http, sim, "/v26.0/debug_token", input_token=USER_TOKEN, access_token=app
    )
    assert body["data"]["is_valid"] is False
    assert body["data"]["error"]["subcode"] == 460


async def test_debug_token_of_an_expired_token_and_of_lapsed_data_access(http, sim) -> None:
    world = sim.world
    app = world.app_token
    _, body, _ = await get(
        http, sim, "/v26.0/debug_token", input_token=EXPIRED_USER_TOKEN, access_token=app
    )
    data = body["data"]
    assert data["is_valid"] is False
    assert data["error"]["subcode"] == 463
    assert 0 < data["expires_at"] <= NOW.timestamp()
    assert data["type"] == "USER"
    assert "read_insights" in data["scopes"]
    lapsed = int(NOW.timestamp()) - 86400
    token = "DEMO-LAPSED-DATA-ACCESS-not-a-real-token"
    world.add_token(
        TokenInfo(token, "USER", world.app_id, world.user_id, data_access_expires_at=lapsed)
    )
    _, body, _ = await get(http, sim, "/v26.0/debug_token", input_token=token, access_token=app)
    assert body["data"]["is_valid"] is True
    assert body["data"]["data_access_expires_at"] == lapsed
    _, body, _ = await get(http, sim, "/v26.0/debug_token", input_token=app, access_token=app)
    assert body["data"]["type"] == "APP"
    assert "data_access_expires_at" not in body["data"]


async def test_exchange_gives_a_working_long_lived_token(http, sim) -> None:
    world = sim.world
    status, body, _ = await get(
        http,
        sim,
        "/v26.0/oauth/access_token",
        grant_type="fb_exchange_token",
        client_id=world.app_id,
        client_secret=world.app_secret,
        fb_exchange_token=SHORT_USER_TOKEN,
    )
    assert status == 200
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 5183944
    status, me, _ = await get(http, sim, "/v26.0/me", access_token=body["access_token"])
    assert (status, me["id"]) == (200, world.user_id)


async def test_exchange_with_a_wrong_secret_or_an_expired_token_fails(http, sim) -> None:
    world = sim.world
    base = {"grant_type": "fb_exchange_token", "client_id": world.app_id}
    status, body, _ = await get(
        http,
        sim,
        "/v26.0/oauth/access_token",
        **base,
        client_secret="wrong",
        fb_exchange_token=SHORT_USER_TOKEN,
    )
    assert status == 400
    assert body["error"]["message"] == "Error validating client secret."
    _, body, _ = await get(
        http,
        sim,
        "/v26.0/oauth/access_token",
        **base,
        client_secret=world.app_secret,
        fb_exchange_token=EXPIRED_USER_TOKEN,
    )
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)


async def test_client_credentials_give_the_app_token(http, sim) -> None:
    world = sim.world
    _, body, _ = await get(
        http,
        sim,
        "/v26.0/oauth/access_token",
        grant_type="client_credentials",
        client_id=world.app_id,
        client_secret=world.app_secret,
    )
    assert body["access_token"] == world.app_token


# -- /me and /me/accounts -----------------------------------------------------------------


async def test_me_accounts_pages_with_cursors_and_page_tokens(http, sim) -> None:
    world = sim.world
    status, first, _ = await get(
        http,
        sim,
        "/v26.0/me/accounts",
        access_token=USER_TOKEN,
        limit="2",
        fields="id,name,access_token,instagram_business_account{id}",
    )
    assert status == 200
    assert len(first["data"]) == 2
    assert set(first["paging"]["cursors"]) == {"before", "after"}
    assert first["data"][0]["instagram_business_account"] == {"id": "17841400000000001"}
    assert "instagram_business_account" not in first["data"][1]
    async with http.get(first["paging"]["next"]) as resp:
        second = await resp.json()
    assert len(second["data"]) == 1
    assert "next" not in second["paging"]
    listed = first["data"] + second["data"]
    assert [p["id"] for p in listed] == list(world.pages)
    for entry in listed:
        status, body, _ = await get(
            http,
            sim,
            f"/v26.0/{entry['id']}/insights",
            access_token=entry["access_token"],
            metric="page_views_total",
        )
        assert status == 200, body


async def test_me_accounts_rejects_a_limit_over_100(http, sim) -> None:
    status, body, _ = await get(
        http, sim, "/v26.0/me/accounts", access_token=USER_TOKEN, limit="101"
    )
    assert (status, body["error"]["code"]) == (400, 100)


async def test_me_with_a_page_token_is_the_page(http, sim) -> None:
    page_id, token = page(sim)
    _, body, _ = await get(http, sim, "/v26.0/me", access_token=token)
    assert body["id"] == page_id


# -- demo helpers and counters ------------------------------------------------------------


def test_demo_ids_tokens_and_known_ids() -> None:
    world = World(clock=lambda: NOW, page_count=2)
    ids = world.demo_ids()
    assert ids["page_id"] in world.known_ids("page_id")
    assert ids["app_id"] in world.known_ids("app_id")
    assert ids["ig_user_id"] == "17841400000000001"
    assert world.demo_token("facebook_post") == world.first_page.token
    assert world.demo_token("facebook_app") == f"{world.app_id}|{world.app_secret}"
    assert world.tokens[world.demo_token("instagram_media")].kind == "USER"
    assert all("not-a-real" in world.demo_token(p) for p in ("facebook_page", "instagram_user"))


async def test_stats_count_http_requests_and_graph_calls(http, sim) -> None:
    page_id, token = page(sim)
    await get(http, sim, f"/v26.0/{page_id}", access_token=token)
    await get(http, sim, f"/v26.0/{page_id}", access_token="bad")
    assert sim.stats() == {"http_requests": 2, "graph_calls": 2}
    assert [e.status for e in sim.requests] == [200, 400]
    assert all("access_token" not in e.params for e in sim.requests)
    sim.reset_stats()
    assert sim.stats() == {"http_requests": 0, "graph_calls": 0}


async def test_serve_runs_until_stopped(http) -> None:
    stop = asyncio.Event()
    ready = asyncio.Event()
    urls: list[str] = []

    def on_ready(url: str) -> None:
        urls.append(url)
        ready.set()

    world = World(clock=lambda: NOW)
    task = asyncio.create_task(serve("127.0.0.1", 0, stop, world=world, ready=on_ready))
    await asyncio.wait_for(ready.wait(), timeout=10)
    params = {"access_token": world.first_page.token}
    async with http.get(f"{urls[0]}/v26.0/{world.first_page.id}", params=params) as resp:
        assert resp.status == 200
    stop.set()
    await asyncio.wait_for(task, timeout=10)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(f"{urls[0]}/v26.0/me"):
            pass
