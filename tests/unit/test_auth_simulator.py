"""The simulator's login pieces: the dialog's redirect, the one-time code, the exchanges
and a token made to expire during a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from collectord.simulator import Simulator, World
from collectord.simulator.world import USER_TOKEN

FROZEN = datetime(2026, 3, 3, 12, tzinfo=UTC)
BACK = "http://127.0.0.1:9/callback"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=lambda: FROZEN))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def get(sim: Simulator, path: str, **params: str) -> tuple[int, Any, str]:
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{sim.url}{path}", params=params, allow_redirects=False) as resp,
    ):
        body = await resp.json() if resp.content_type == "application/json" else None
        return resp.status, body, resp.headers.get("Location", "")


async def dialog(sim: Simulator, **extra: str) -> dict[str, list[str]]:
    params = {"client_id": sim.world.app_id, "redirect_uri": BACK, "state": "s1", **extra}
    status, _, location = await get(sim, "/v26.0/dialog/oauth", **params)
    assert status == 302
    assert location.startswith(BACK + "?")
    return parse_qs(urlsplit(location).query)


def exchange_params(sim: Simulator, code: str, redirect_uri: str = BACK) -> dict[str, str]:
    world = sim.world
    return {
        "client_id": world.app_id,
        "client_secret": world.app_secret,
        "redirect_uri": redirect_uri,
        "code": code,
    }


async def test_the_dialog_redirects_with_a_code_good_once_for_a_short_lived_token(
    sim: Simulator,
) -> None:
    back = await dialog(sim, scope="read_insights,pages_show_list")
    assert back["state"] == ["s1"]
    code = back["code"][0]
    status, body, _ = await get(sim, "/v26.0/oauth/access_token", **exchange_params(sim, code))
    assert status == 200
    assert body["expires_in"] == 5400
    info = sim.world.tokens[body["access_token"]]
    assert (info.kind, info.scopes) == ("USER", ("read_insights", "pages_show_list"))
    again = await get(sim, "/v26.0/oauth/access_token", **exchange_params(sim, code))
    assert again[0] == 400
    assert again[1]["error"]["code"] == 100
    # and the long-lived one keeps the scopes the person granted
    world = sim.world
    long = await get(
        sim, "/v26.0/oauth/access_token", grant_type="fb_exchange_token",
        client_id=world.app_id, client_secret=world.app_secret,
        fb_exchange_token=body["access_token"],
    )  # fmt: skip
    assert world.tokens[long[1]["access_token"]].scopes == info.scopes
    # the request log never holds the code or the secret
    logged = " ".join(str(entry.params) for entry in sim.requests)
    assert code not in logged
    assert world.app_secret not in logged


async def test_a_code_for_another_redirect_uri_is_refused(sim: Simulator) -> None:
    code = (await dialog(sim))["code"][0]
    params = exchange_params(sim, code, redirect_uri="http://127.0.0.1:9/other")
    status, body, _ = await get(sim, "/v26.0/oauth/access_token", **params)
    assert status == 400
    assert "authorization code" in body["error"]["message"]


async def test_a_cancelled_dialog_and_an_unknown_app(sim: Simulator) -> None:
    sim.world.consent = False
    back = await dialog(sim)
    assert back["error"] == ["access_denied"]
    assert back["error_reason"] == ["user_denied"]
    assert "code" not in back
    status, body, _ = await get(sim, "/dialog/oauth", client_id="42", redirect_uri=BACK)
    assert status == 400
    assert body["error"]["code"] == 101


async def test_a_token_made_to_expire_answers_190_463(sim: Simulator) -> None:
    assert (await get(sim, "/v26.0/me", access_token=USER_TOKEN))[0] == 200
    sim.world.expire_token(USER_TOKEN)
    status, body, _ = await get(sim, "/v26.0/me", access_token=USER_TOKEN)
    assert status in (400, 401)
    assert (body["error"]["code"], body["error"]["error_subcode"]) == (190, 463)
