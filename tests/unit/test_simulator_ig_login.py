"""The simulator's Instagram API with Instagram Login: its own host, its own tokens, and
the refresh rules Meta documents (at least 24 hours old, not expired, 60 more days)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from clock_support import Clock

from collectord.simulator import Simulator, World
from collectord.simulator.world import IG_LOGIN_TOKEN, IG_SHORT_LOGIN_TOKEN, USER_TOKEN

FROZEN = datetime(2026, 3, 3, 12, tzinfo=UTC)
IG = "/graph.instagram.com"


@pytest.fixture
def clock() -> Clock[datetime]:
    return Clock(FROZEN)


@pytest.fixture
async def sim(clock: Clock[datetime]) -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=clock))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def get(sim: Simulator, path: str, **params: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.get(f"{sim.url}{path}", params=params) as resp:
        return resp.status, await resp.json()


def ig_id(sim: Simulator) -> str:
    return str(sim.world.instagram.user_ids[0])


async def test_an_instagram_login_token_reads_its_account_on_the_instagram_host(
    sim: Simulator,
) -> None:
    status, me = await get(sim, f"{IG}/v26.0/me", access_token=IG_LOGIN_TOKEN, fields="id")
    assert status == 200
    assert me["id"] == ig_id(sim)
    status, node = await get(
        sim, f"{IG}/v26.0/{ig_id(sim)}", access_token=IG_LOGIN_TOKEN, fields="followers_count"
    )
    assert status == 200
    assert isinstance(node["followers_count"], int)


async def test_each_host_refuses_the_other_logins_tokens(sim: Simulator) -> None:
    status, body = await get(sim, f"{IG}/v26.0/{ig_id(sim)}", access_token=USER_TOKEN)
    assert status == 400
    assert body["error"]["code"] == 190
    status, body = await get(sim, f"/v26.0/{ig_id(sim)}", access_token=IG_LOGIN_TOKEN)
    assert status == 400
    assert body["error"]["code"] == 190


async def test_facebook_things_are_not_on_the_instagram_host(sim: Simulator) -> None:
    page = sim.world.first_page.id
    status, body = await get(sim, f"{IG}/v26.0/{page}", access_token=IG_LOGIN_TOKEN)
    assert status == 400
    assert body["error"]["code"] == 100
    media = await get(
        sim, f"{IG}/v26.0/{ig_id(sim)}/media", access_token=IG_LOGIN_TOKEN, fields="id"
    )
    media_id = media[1]["data"][0]["id"]
    status, body = await get(
        sim,
        f"{IG}/v26.0/{media_id}/insights",
        access_token=IG_LOGIN_TOKEN,
        metric="facebook_views",
    )
    assert status == 400
    assert body["error"]["code"] == 100


async def test_a_token_a_day_old_is_refreshed_for_sixty_days(
    sim: Simulator, clock: Clock[datetime]
) -> None:
    status, body = await get(
        sim,
        f"{IG}/refresh_access_token",
        grant_type="ig_refresh_token",
        access_token=IG_LOGIN_TOKEN,
    )
    assert status == 200
    assert body["expires_in"] == 60 * 86400
    new = body["access_token"]
    assert new != IG_LOGIN_TOKEN
    assert (await get(sim, f"{IG}/v26.0/me", access_token=new))[0] == 200
    # the new token is younger than a day: refused until it is one
    status, body = await get(
        sim, f"{IG}/refresh_access_token", grant_type="ig_refresh_token", access_token=new
    )
    assert status == 400
    assert "24 hours" in body["error"]["message"]
    clock.now += timedelta(hours=24)
    status, _ = await get(
        sim, f"{IG}/refresh_access_token", grant_type="ig_refresh_token", access_token=new
    )
    assert status == 200


async def test_an_expired_token_is_not_refreshed(sim: Simulator, clock: Clock[datetime]) -> None:
    clock.now += timedelta(days=61)
    status, body = await get(
        sim,
        f"{IG}/refresh_access_token",
        grant_type="ig_refresh_token",
        access_token=IG_LOGIN_TOKEN,
    )
    assert status == 400
    assert body["error"]["code"] == 190


async def test_a_short_lived_token_is_exchanged_not_refreshed(sim: Simulator) -> None:
    status, _ = await get(
        sim,
        f"{IG}/refresh_access_token",
        grant_type="ig_refresh_token",
        access_token=IG_SHORT_LOGIN_TOKEN,
    )
    assert status == 400
    status, body = await get(
        sim,
        f"{IG}/access_token",
        grant_type="ig_exchange_token",
        client_secret=sim.world.app_secret,
        access_token=IG_SHORT_LOGIN_TOKEN,
    )
    assert status == 200
    assert body["expires_in"] == 60 * 86400


async def test_debug_token_cannot_read_an_instagram_login_token(sim: Simulator) -> None:
    status, body = await get(
        sim, "/v26.0/debug_token", input_token=IG_LOGIN_TOKEN, access_token=sim.world.app_token
    )
    assert status == 200
    assert body["data"]["is_valid"] is False
