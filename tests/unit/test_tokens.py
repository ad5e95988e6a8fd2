"""Token checks: what ``debug_token`` says about each source's token becomes the
``collectord_token_*`` metrics and the status page's Tokens section, checked at start-up and
then every ``token_check_interval``; without app credentials nothing is checked and the page
says why. No token text ever reaches a log line, a metric or the page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from collectord.config.loader import load_config
from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.errors import ConfigError, NetworkError
from collectord.exporter.registry import make_registry
from collectord.graph.client import GraphClient
from collectord.graph.stats import GraphStats
from collectord.graph.tokens import NO_APP, NOT_FACEBOOK, TokenWatcher, read_answer
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.scheduling.scheduler import SourceRuntime
from collectord.secret import Secret
from collectord.simulator import Simulator, World
from collectord.simulator.base import TokenInfo
from collectord.simulator.world import EXPIRED_USER_TOKEN, SCOPES
from collectord.store.store import Store
from collectord.web.status_page import render_status_page

PLUGINS = plugin_map(load_source_plugins())
DAY = 86400
EXPIRING = "EAAexpiringUSERtoken000000000000000000000"
NO_DATA = "EAAnoDATAaccessTOKEN0000000000000000000000"
NO_INSIGHTS = "EAAnoINSIGHTSpageTOKEN00000000000000000000"
JUNK = "EAAjunkTOKENmetaCANNOTparse000000000000000"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    world = World()
    now = int(time.time())
    page = world.first_page
    world.add_token(
        TokenInfo(
            EXPIRING, "USER", world.app_id, world.user_id, scopes=SCOPES, expires_at=now + 3 * DAY
        )
    )
    world.add_token(
        TokenInfo(
            NO_DATA,
            "USER",
            world.app_id,
            world.user_id,
            scopes=SCOPES,
            data_access_expires_at=now - DAY,
        )
    )
    lacking = tuple(s for s in SCOPES if s != "read_insights")
    world.add_token(
        TokenInfo(NO_INSIGHTS, "PAGE", world.app_id, world.user_id, page.id, scopes=lacking)
    )
    simulator = Simulator(world)
    await simulator.start()
    yield simulator
    await simulator.stop()


SOURCES = {
    # name: (plugin, token)
    "page": ("facebook_page", None),  # the first Page's own token: never expires
    "expiring": ("instagram_user", EXPIRING),
    "no-data": ("instagram_user", NO_DATA),
    "expired": ("instagram_user", EXPIRED_USER_TOKEN),
    "junk": ("facebook_page", JUNK),
    "no-insights": ("facebook_page", NO_INSIGHTS),
}


def load(tmp_path: Path, sim: Simulator, *, app: bool = True) -> list[SourceConfig]:
    world = sim.world
    lines = ["[graph]", f'base_url = "{sim.url}"']
    if app:
        lines += [f'app_id = "{world.app_id}"', f'app_secret = "{world.app_secret}"']
    ig = world.instagram.user_ids[0]
    for name, (plugin, token) in SOURCES.items():
        key = (
            f'page_id = "{world.first_page.id}"'
            if plugin == "facebook_page"
            else f'ig_user_id = "{ig}"'
        )
        lines += [
            "[[source]]",
            f'name = "{name}"',
            f'plugin = "{plugin}"',
            f'access_token = "{token or world.first_page.token}"',
            key,
        ]
    path = tmp_path / "collector.toml"
    path.write_text("\n".join(lines) + "\n")
    return list(load_config(path, PLUGINS).sources)


def runtimes(store: Store, sources: list[SourceConfig]) -> list[SourceRuntime]:
    out = []
    for src in sources:
        status = store.register(src.name, src.plugin, src.cadences())
        out.append(SourceRuntime(src, PLUGINS[src.plugin], None, status))  # type: ignore[arg-type]
    return out


def every_token(sim: Simulator) -> list[str]:
    return [EXPIRING, NO_DATA, NO_INSIGHTS, JUNK, EXPIRED_USER_TOKEN, sim.world.first_page.token]


async def test_debug_token_answers_become_metrics_and_the_status_page(
    sim: Simulator, tmp_path: Path
) -> None:
    store = Store()
    rts = runtimes(store, load(tmp_path, sim))
    registry = make_registry(store, GraphStats(), [], version="1")
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, rts[0].config.graph)
        with capture_logs() as logs:
            await TokenWatcher(client, rts, store).check_all()
    value = registry.get_sample_value
    now = time.time()

    def src(name: str, **labels: str) -> dict[str, str]:
        return {"source": name, **labels}

    # a Page token from a long-lived user token: valid, never expires, every scope
    assert value("collectord_token_valid", src("page")) == 1
    assert value("collectord_token_expiry_timestamp_seconds", src("page")) == 0
    assert value("collectord_token_data_access_expiry_timestamp_seconds", src("page")) > now
    assert value("collectord_token_info", src("page", type="PAGE")) == 1
    # a user token expiring in 3 days
    expiry = value("collectord_token_expiry_timestamp_seconds", src("expiring"))
    assert 2 * DAY < expiry - now <= 3 * DAY
    assert value("collectord_token_info", src("expiring", type="USER")) == 1
    assert value("collectord_token_valid", src("expiring")) == 1
    # data access lapsed a day ago: the token itself is still valid
    lapsed = value("collectord_token_data_access_expiry_timestamp_seconds", src("no-data"))
    assert lapsed < now
    assert value("collectord_token_valid", src("no-data")) == 1
    # an expired token and one Meta cannot read are not valid
    assert value("collectord_token_valid", src("expired")) == 0
    assert value("collectord_token_expiry_timestamp_seconds", src("expired")) < now
    assert value("collectord_token_valid", src("junk")) == 0
    assert value("collectord_token_expiry_timestamp_seconds", src("junk")) is None
    assert value("collectord_token_missing_scope", src("junk", scope="read_insights")) is None
    # a Page token without read_insights, which facebook_page needs
    missing = src("no-insights", scope="read_insights")
    assert value("collectord_token_missing_scope", missing) == 1
    assert value("collectord_token_missing_scope", src("page", scope="read_insights")) is None
    exposition = generate_latest(registry).decode()
    assert exposition.count("collectord_token_missing_scope{") == 1

    html = render_status_page(store.snapshot(), version="1", ready=True, now=now)
    tokens = html[html.index("<h2>Tokens</h2>") :]
    assert "<td>no-insights</td><td>PAGE</td>" in tokens
    assert "<code>read_insights</code>" in tokens
    assert "never" in tokens

    events = {(e["event"], e.get("source")) for e in logs}
    assert ("token is not valid: collect a new one", "junk") in events
    assert ("token is not valid: collect a new one", "expired") in events
    assert ("token lacks scopes the plugin needs", "no-insights") in events
    assert ("token is not valid: collect a new one", "page") not in events
    shown = repr(logs) + exposition + html
    for token in every_token(sim):
        assert token not in shown


async def test_without_app_credentials_nothing_is_checked_and_the_page_says_why(
    sim: Simulator, tmp_path: Path
) -> None:
    store = Store()
    rts = runtimes(store, load(tmp_path, sim, app=False))
    registry = make_registry(store, GraphStats(), [], version="1")
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, rts[0].config.graph)
        with capture_logs() as logs:
            async with TokenWatcher(client, rts, store) as watcher:
                assert not watcher.enabled
                await watcher.check_all()
    assert sim.requests == []
    lines = generate_latest(registry).decode().splitlines()
    assert [line for line in lines if line.startswith("collectord_token_")] == []
    html = render_status_page(store.snapshot(), version="1", ready=True, now=time.time())
    assert NO_APP in html[html.index("<h2>Tokens</h2>") :]
    assert any(NO_APP in e["event"] for e in logs)


class FakeTime:
    """The watcher's clock and sleep: sleeping moves the clock; after ``rounds`` waits the
    sleep blocks until the watcher is cancelled, and :attr:`done` is set."""

    def __init__(self, rounds: int) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.rounds = rounds
        self.done = asyncio.Event()

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        if len(self.waits) >= self.rounds:
            self.done.set()
            await asyncio.Event().wait()


class Recorder:
    """A Graph client that answers every debug_token with a valid token and notes when."""

    def __init__(self, fake: FakeTime, fail: set[str] | None = None) -> None:
        self.fake = fake
        self.calls: list[tuple[str, float]] = []
        self.fail = fail or set()

    async def debug_token(self, token: Secret, *, graph: GraphConfig, source: str) -> Any:
        self.calls.append((source, self.fake.now - 1000.0))
        if source in self.fail:
            raise NetworkError("connection reset")
        return {"is_valid": True, "type": "PAGE", "expires_at": 0, "scopes": []}


def runtime(store: Store, name: str, graph: GraphConfig) -> SourceRuntime:
    cfg = SourceConfig(
        name=name,
        plugin="facebook_page",
        access_token=Secret(f"EAA-{name}-token"),
        metrics=None,
        schedule=ScheduleConfig(),
        graph=graph,
    )
    status = store.register(name, "facebook_page", ("daily",))
    return SourceRuntime(cfg, PLUGINS["facebook_page"], None, status)  # type: ignore[arg-type]


async def test_tokens_are_checked_at_start_and_then_every_interval_of_each_source() -> None:
    app = GraphConfig(app_id="1", app_secret=Secret("s"))
    store = Store()
    default = runtime(store, "six-hours", app)  # the default interval, 6 h
    hourly = runtime(
        store,
        "hourly",
        GraphConfig(app_id="1", app_secret=Secret("s"), token_check_interval=3600.0),
    )
    fake = FakeTime(rounds=7)
    client = Recorder(fake)
    watcher = TokenWatcher(client, [default, hourly], store, clock=fake.clock, sleep=fake.sleep)
    async with watcher:
        await asyncio.wait_for(fake.done.wait(), 10)
    assert [t for s, t in client.calls if s == "six-hours"] == [0, 6 * 3600]
    assert [t for s, t in client.calls if s == "hourly"] == [h * 3600 for h in range(7)]
    assert fake.waits == [3600.0] * 7


async def test_a_failed_check_keeps_the_last_answer_and_is_logged_once() -> None:
    store = Store()
    rt = runtime(store, "acme", GraphConfig(app_id="1", app_secret=Secret("s")))
    fake = FakeTime(rounds=3)
    client = Recorder(fake)
    watcher = TokenWatcher(client, [rt], store, clock=fake.clock, sleep=fake.sleep)
    await watcher.check_all()
    client.fail.add("acme")
    with capture_logs() as logs:
        await watcher.check_all()
        await watcher.check_all()
    token = store.snapshot().sources[0].token
    assert token is not None
    assert token.valid is True
    assert token.note is not None
    assert "connection reset" in token.note
    assert [e["event"] for e in logs] == ["token check failed"]
    assert "EAA-acme-token" not in repr(logs)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("30s", "at least 1m"), ("0s", "must be positive"), ("6", "duration")],
)
def test_token_check_interval_is_a_duration_of_a_minute_or_more(
    tmp_path: Path, value: str, problem: str
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(f'[graph]\ntoken_check_interval = "{value}"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, PLUGINS)
    assert problem in str(caught.value)
    assert "token_check_interval" in str(caught.value)
    assert "secret" not in str(caught.value)


def test_token_check_interval_defaults_to_6h_and_a_source_can_set_its_own(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(
        '[graph]\ntoken_check_interval = "12h"\n'
        '[[source]]\nname = "a"\nplugin = "facebook_page"\naccess_token = "t"\npage_id = "1"\n'
        '[[source]]\nname = "b"\nplugin = "facebook_page"\naccess_token = "t"\npage_id = "2"\n'
        '[source.graph]\ntoken_check_interval = "1h"\n'
    )
    config = load_config(path, PLUGINS)
    assert GraphConfig().token_check_interval == 6 * 3600
    assert config.graph.token_check_interval == 12 * 3600
    a, b = config.sources
    assert a.graph.token_check_interval == 12 * 3600
    assert b.graph.token_check_interval == 3600


def test_an_instagram_login_source_is_not_inspected_and_the_status_page_says_why() -> None:
    graph = GraphConfig(app_id="1234", app_secret=Secret("not-a-real-secret"))
    src = SourceConfig(
        name="ig-login",
        plugin="instagram_user",
        access_token=Secret("IGAA-not-a-real-token"),
        metrics=None,
        schedule=ScheduleConfig(),
        graph=graph,
        options={"ig_user_id": "17841400000000001", "login": "instagram"},
    )
    store = Store()
    watcher = TokenWatcher(None, runtimes(store, [src]), store)
    assert watcher.runtimes == [], "debug_token cannot read an Instagram-Login token"
    [status] = store.snapshot().sources
    assert status.token is not None
    assert status.token.note == NOT_FACEBOOK


def test_a_scope_granted_for_other_pages_is_missing_for_this_one() -> None:
    needed = ("pages_read_engagement", "read_insights")
    answer = {
        "is_valid": True,
        "type": "USER",
        "scopes": ["pages_show_list", "pages_read_engagement", "read_insights"],
        "granular_scopes": [
            {"scope": "pages_show_list", "target_ids": ["111", "222"]},
            {"scope": "pages_read_engagement", "target_ids": ["111", "222"]},
            {"scope": "read_insights"},  # no target_ids: every object
        ],
    }
    page = ("pages_", "111")
    other = ("pages_", "333")
    assert read_answer(answer, needed, page).missing_scopes == ()
    assert read_answer(answer, needed, other).missing_scopes == ("pages_read_engagement",)
    assert read_answer(answer, needed).missing_scopes == ()  # a source of no one object
    # an Instagram account's id is not compared with the Pages a pages_* scope lists
    assert read_answer(answer, needed, ("instagram_", "333")).missing_scopes == ()
    assert read_answer({**answer, "is_valid": False}, needed, other).missing_scopes == ()


async def test_a_page_token_of_another_page_lacks_its_scopes_for_this_page(
    sim: Simulator, tmp_path: Path
) -> None:
    world = sim.world
    other = world.add_page()  # its Page token grants the Page scopes for it alone
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[graph]\nbase_url = "{sim.url}"\napp_id = "{world.app_id}"\n'
        f'app_secret = "{world.app_secret}"\n[[source]]\nname = "wrong-page"\n'
        f'plugin = "facebook_page"\naccess_token = "{other.token}"\n'
        f'page_id = "{world.first_page.id}"\n'
    )
    store = Store()
    rts = runtimes(store, list(load_config(path, PLUGINS).sources))
    registry = make_registry(store, GraphStats(), [], version="1")
    async with aiohttp.ClientSession() as session:
        await TokenWatcher(GraphClient(session, rts[0].config.graph), rts, store).check_all()
    labels = {"source": "wrong-page", "scope": "pages_read_engagement"}
    assert registry.get_sample_value("collectord_token_missing_scope", labels) == 1
    assert registry.get_sample_value("collectord_token_valid", {"source": "wrong-page"}) == 1
