"""Self-renewing tokens (``renew_token``): the calls to Meta (mocked with aioresponses),
when a token is due, what lands in ``state_dir``, and what is logged (never a token)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from graph_mocks import Mocked, envelope
from structlog.testing import capture_logs

from collectord import ConfigError
from collectord.auth.renew import STATE_FILE, Renewed, RenewedTokens, Renewer, fingerprint
from collectord.config.loader import load_config
from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.graph.client import GraphClient
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.secret import Secret

PLUGINS = plugin_map(load_source_plugins())
NOW = 1_780_000_000.0
DAY = 86400.0
OLD = "OLD-TOKEN-not-a-real-one"
NEW = "NEW-TOKEN-not-a-real-one"
APP_SECRET = "APP-SECRET-not-a-real-one"
IG_REFRESH = re.compile(r"^https://graph\.instagram\.com/refresh_access_token\?.*$")
FB_EXCHANGE = re.compile(r"^https://graph\.facebook\.com/v26\.0/oauth/access_token\?.*$")
DEBUG = re.compile(r"^https://graph\.facebook\.com/v26\.0/debug_token\?.*$")


def source(*, login: str = "instagram", token: str = OLD, renew: bool = True) -> SourceConfig:
    graph = GraphConfig(app_id="1234", app_secret=Secret(APP_SECRET), graph_keys=frozenset())
    return SourceConfig(
        name="acme",
        plugin="instagram_user",
        access_token=Secret(token),
        metrics=None,
        schedule=ScheduleConfig(),
        graph=graph,
        options={"ig_user_id": "17841400000000001", "login": login},
        renew_token=renew,
    )


class Harness:
    def __init__(self, session: aiohttp.ClientSession, state_dir: Path) -> None:
        self.now = NOW
        self.state_dir = state_dir
        self.client = GraphClient(session, GraphConfig(), max_retries=0, clock=lambda: self.now)
        self.tokens = RenewedTokens(state_dir, clock=lambda: self.now)
        self.sources = [source()]
        self.applied = 0
        self.renewer = Renewer(
            self.client,
            self.tokens,
            lambda: self.sources,
            PLUGINS,
            self.apply,
            clock=lambda: self.now,
        )

    def apply(self) -> None:
        self.applied += 1


@pytest.fixture
def harness(session: aiohttp.ClientSession, tmp_path: Path) -> Harness:
    return Harness(session, tmp_path / "state")


def queries(mocked: Mocked, method: str = "GET") -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(url.with_query(None)), dict(call.kwargs.get("params") or {}))
        for (m, url), calls in mocked.requests.items()
        if m == method
        for call in calls
    ]


async def test_an_instagram_login_token_is_refreshed_and_kept_0600(
    harness: Harness, mocked: Mocked
) -> None:
    mocked.get(
        IG_REFRESH, payload={"access_token": NEW, "token_type": "bearer", "expires_in": 5184000}
    )
    with capture_logs() as logs:
        assert await harness.renewer.check_all() == 1
    [(url, params)] = queries(mocked)
    assert url == "https://graph.instagram.com/refresh_access_token"  # unversioned
    assert params == {"grant_type": "ig_refresh_token", "access_token": OLD}  # no proof
    path = harness.state_dir / STATE_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    kept = json.loads(path.read_text())["sources"]["acme"]
    assert kept["token"] == NEW
    assert kept["expires_at"] == NOW + 5184000
    assert harness.applied == 1
    assert harness.tokens.apply(source()).access_token == Secret(NEW)
    assert [e["event"] for e in logs if e["log_level"] != "debug"] == ["token renewed"]
    assert NEW not in repr(logs)
    assert OLD not in repr(logs)

    # not due again until a third of its life is left; then refreshed with the new token
    mocked.get(IG_REFRESH, payload={"access_token": "NEWER", "expires_in": 5184000})
    harness.now += 30 * DAY
    assert await harness.renewer.check_all() == 0
    harness.now += 11 * DAY
    assert await harness.renewer.check_all() == 1
    assert queries(mocked)[-1][1]["access_token"] == NEW


async def test_a_refused_refresh_is_logged_once_and_tried_again(
    harness: Harness, mocked: Mocked
) -> None:
    refused = envelope(100, "(#100) The access token was issued less than 24 hours ago")
    mocked.get(IG_REFRESH, status=400, payload=refused, repeat=True)
    with capture_logs() as logs:
        assert await harness.renewer.check_all() == 0
        assert await harness.renewer.check_all() == 0
    assert len(queries(mocked)) == 2, "tried again on the next round"
    [told] = [e for e in logs if e["log_level"] == "warning"]
    assert told["event"] == "token renewal failed, the source keeps its token"
    assert "log in again" in told["hint"]
    assert OLD not in repr(logs)
    assert not (harness.state_dir / STATE_FILE).exists()
    assert harness.applied == 0
    assert harness.tokens.apply(source()).access_token == Secret(OLD)


async def test_a_facebook_user_token_is_exchanged_when_a_third_of_its_life_is_left(
    harness: Harness, mocked: Mocked
) -> None:
    harness.sources = [source(login="facebook")]
    life = {"is_valid": True, "type": "USER", "issued_at": NOW - 40 * DAY}
    mocked.get(DEBUG, payload={"data": {**life, "expires_at": NOW + 21 * DAY}})
    assert await harness.renewer.check_all() == 0, "21 of 61 days left: not yet"
    mocked.get(DEBUG, payload={"data": {**life, "expires_at": NOW + 19 * DAY}})
    mocked.get(FB_EXCHANGE, payload={"access_token": NEW, "expires_in": 5183944})
    with capture_logs() as logs:
        assert await harness.renewer.check_all() == 1
    [exchange] = [q for u, q in queries(mocked) if "oauth/access_token" in u]
    assert exchange["grant_type"] == "fb_exchange_token"
    assert exchange["fb_exchange_token"] == OLD
    assert exchange["client_secret"] == APP_SECRET
    assert harness.tokens.apply(source(login="facebook")).access_token == Secret(NEW)
    assert APP_SECRET not in repr(logs)
    assert NEW not in repr(logs)


async def test_a_token_that_never_expires_is_left_alone_with_one_warning(
    harness: Harness, mocked: Mocked
) -> None:
    harness.sources = [source(login="facebook")]
    page = {"data": {"is_valid": True, "type": "PAGE", "expires_at": 0}}
    mocked.get(DEBUG, payload=page, repeat=True)
    with capture_logs() as logs:
        assert await harness.renewer.check_all() == 0
        assert await harness.renewer.check_all() == 0
    assert not [u for u, _ in queries(mocked) if "oauth/access_token" in u]
    [told] = [e for e in logs if e["log_level"] == "warning"]
    assert "never expires" in told["event"]


def test_the_configured_token_wins_again_once_it_changes(tmp_path: Path) -> None:
    tokens = RenewedTokens(tmp_path, clock=lambda: NOW)

    tokens.entries["acme"] = Renewed(Secret(NEW), fingerprint(Secret(OLD)), NOW + DAY, NOW)
    tokens.save()
    again = RenewedTokens(tmp_path, clock=lambda: NOW)  # a restart reads the file
    assert again.apply(source()).access_token == Secret(NEW)
    assert again.apply(source(token="CHANGED")).access_token == Secret("CHANGED")
    assert again.apply(source(renew=False)).access_token == Secret(OLD)
    later = RenewedTokens(tmp_path, clock=lambda: NOW + 2 * DAY)  # the renewed one expired
    assert later.apply(source()).access_token == Secret(OLD)


def test_an_unreadable_file_falls_back_to_the_configured_tokens(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text("{not json")
    with capture_logs() as logs:
        tokens = RenewedTokens(tmp_path, clock=lambda: NOW)
    assert tokens.apply(source()).access_token == Secret(OLD)
    assert [e["event"] for e in logs] == ["renewed tokens unreadable, using the configured ones"]


def _config(tmp_path: Path, source_lines: str, graph: str = "") -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(
        f'{graph}\n[[source]]\nname = "acme"\nplugin = "instagram_user"\n'
        f'access_token = "t"\nig_user_id = "17841400000000001"\nrenew_token = true\n'
        f"{source_lines}\n",
        encoding="utf-8",
    )
    return path


def test_renewing_a_facebook_token_needs_the_app_in_the_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        load_config(_config(tmp_path, ""), PLUGINS, environ={})
    [problem] = refused.value.problems
    assert 'source "acme": renew_token: renewing a Facebook token needs [graph] app_id' in problem
    app = '[graph]\napp_id = "1234"\napp_secret = "s3cret-not-real"\n'
    assert load_config(_config(tmp_path, "", app), PLUGINS, environ={}).sources[0].renew_token
    # an Instagram-Login token is refreshed with itself alone
    ig = load_config(_config(tmp_path, 'login = "instagram"'), PLUGINS, environ={})
    assert ig.sources[0].renew_token
