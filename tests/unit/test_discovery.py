"""Discovery (issue 10, point 6): which objects a discovering source keeps, the child sources
they become, and the runs against the simulator in-process (the list, its paging, the
``granular_scopes`` fallback, objects coming and going, a failure keeping what was found)."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectord.config.loader import load_config
from collectord.config.types import Config, SourceConfig
from collectord.discovery import Discoverer, Found, children, matches, select
from collectord.discovery.find import granted_page_ids, list_pages
from collectord.errors import ConfigError
from collectord.graph.client import GraphClient
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.secret import MASK, Secret
from collectord.simulator import Simulator, World
from collectord.simulator.world import SCOPES, SYSTEM_USER_TOKEN, USER_TOKEN

FROZEN = datetime(2026, 3, 3, 12, tzinfo=UTC)
PAGES = [
    Found("105000000000001", "Demo Coffee Roasters"),
    Found("105000000000002", "Demo Bike Repair"),
    Found("105000000000003", "Demo Book Club"),
]


@pytest.fixture(scope="module")
def plugins() -> dict[str, Any]:
    return dict(plugin_map(load_source_plugins(())))


def ids(found: list[Found]) -> list[str]:
    return [f.id for f in found]


# -- include / exclude -----------------------------------------------------------------------


def test_no_lists_keep_everything() -> None:
    assert ids(select(PAGES, (), ())) == ids(PAGES)


@pytest.mark.parametrize(
    ("include", "exclude", "kept"),
    [
        (["105000000000002"], [], ["105000000000002"]),
        (["demo bike repair"], [], ["105000000000002"]),  # names regardless of case
        (["Demo B*"], [], ["105000000000002", "105000000000003"]),
        (["*"], ["105000000000001"], ["105000000000002", "105000000000003"]),
        ([], ["*Club"], ["105000000000001", "105000000000002"]),
        (["Demo B*"], ["Demo Book Club"], ["105000000000002"]),  # exclude wins
        (["1050000000000"], [], []),  # an id is matched whole, not as a prefix
        (["nothing like it"], [], []),
    ],
)
def test_include_and_exclude_match_ids_and_names(
    include: list[str], exclude: list[str], kept: list[str]
) -> None:
    assert ids(select(PAGES, include, exclude)) == kept


def test_an_object_without_a_name_is_matched_by_id_only() -> None:
    nameless = Found("17841400000000102", "")
    assert matches(nameless, ["17841400000000102"])
    assert not matches(nameless, ["*x*"])


# -- child sources -----------------------------------------------------------------------------


def load(tmp_path: Path, plugins: dict[str, Any], text: str) -> Config:
    path = tmp_path / "collector.toml"
    path.write_text(text)
    return load_config(path, plugins, environ={})


def parent_table(plugin: str, extra: str = "") -> str:
    return (
        f'[[source]]\nname = "agency"\nplugin = "{plugin}"\n'
        f'access_token = "USER-TOKEN-TEXT"\ndiscover = true\n{extra}\n'
    )


def test_page_children_hold_their_page_token_and_id(
    tmp_path: Path, plugins: dict[str, Any]
) -> None:
    parent = load(tmp_path, plugins, parent_table("facebook_post", "max_posts = 7")).sources[0]
    found = [Found("105000000000002", "Demo Bike Repair", Secret("PAGE-TOKEN-TEXT"))]
    (child,) = children(parent, plugins["facebook_post"], found)
    assert child.name == "agency/105000000000002"
    assert child.parent == "agency"
    assert not child.discover
    assert child.options["page_id"] == "105000000000002"
    assert child.options["max_posts"] == 7  # the parent's own settings carry over
    assert child.access_token == Secret("PAGE-TOKEN-TEXT")
    assert child.specs == parent.specs
    assert child.schedule == parent.schedule
    assert "PAGE-TOKEN-TEXT" not in repr(child)
    assert MASK in repr(child)


def test_instagram_children_use_the_parents_token(tmp_path: Path, plugins: dict[str, Any]) -> None:
    parent = load(tmp_path, plugins, parent_table("instagram_user")).sources[0]
    (child,) = children(parent, plugins["instagram_user"], [Found("17841400000000102", "x")])
    assert child.name == "agency/17841400000000102"
    assert child.options["ig_user_id"] == "17841400000000102"
    assert child.access_token == parent.access_token


# -- the config keys ---------------------------------------------------------------------------


def test_a_discovering_source_is_read_without_its_object_key(
    tmp_path: Path, plugins: dict[str, Any]
) -> None:
    config = load(
        tmp_path,
        plugins,
        parent_table("instagram_media", 'include = ["northwind.*"]\nexclude = ["1784*9"]'),
    )
    src = config.sources[0]
    assert src.discover
    assert "ig_user_id" not in src.options
    assert src.include == ("northwind.*",)
    assert src.exclude == ("1784*9",)


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        (parent_table("facebook_page", 'page_id = "1"'), "page_id: leave it out with discover"),
        (
            '[[source]]\nname = "p"\nplugin = "facebook_page"\naccess_token = "t"\n'
            'page_id = "1"\nexclude = ["2"]\n',
            "exclude: only means something with discover = true",
        ),
        (
            '[[source]]\nname = "a"\nplugin = "facebook_app"\napp_id = "1"\n'
            'access_token = "t"\ndiscover = true\n',
            "discover: plugin 'facebook_app' reads one object and cannot discover",
        ),
        (
            '[[source]]\nname = "p"\nplugin = "facebook_page"\naccess_token = "t"\n',
            "page_id: missing required key",
        ),
        (parent_table("facebook_page", 'include = [""]'), "include: holds an empty entry"),
    ],
)
def test_discovery_keys_are_checked(
    tmp_path: Path, plugins: dict[str, Any], table: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, plugins, table)
    assert any(problem in line for line in info.value.problems), info.value.problems


def test_granted_page_ids_come_from_the_pages_scopes_only() -> None:
    data = {
        "granular_scopes": [
            {"scope": "pages_show_list", "target_ids": ["1", "2"]},
            {"scope": "pages_read_engagement", "target_ids": ["2", "3"]},
            {"scope": "business_management", "target_ids": ["999"]},
            {"scope": "instagram_basic", "target_ids": ["17841400000000001"]},
            {"scope": "read_insights"},
        ]
    }
    assert granted_page_ids(data) == ["1", "2", "3"]
    assert granted_page_ids({}) == []


# -- against the simulator ---------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    world = World(clock=lambda: FROZEN, page_count=4, linked_accounts=3, n_posts=3)
    sim = Simulator(world)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def sim_config(
    tmp_path: Path, plugins: dict[str, Any], sim: Simulator, sources: str, *, app: bool = True
) -> Config:
    world = sim.world
    creds = f'app_id = "{world.app_id}"\napp_secret = "{world.app_secret}"\n' if app else ""
    return load(
        tmp_path,
        plugins,
        f'[graph]\nbase_url = "{sim.url}"\ntimeout = "5s"\n{creds}\n{sources}',
    )


def client(session: aiohttp.ClientSession, config: Config) -> GraphClient:
    return GraphClient(session, config.graph, backoff_base=0.0)


async def test_pages_are_listed_page_by_page(
    sim: Simulator, session: aiohttp.ClientSession, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    for _ in range(120):  # more than one list page of 100
        sim.world.add_page()
    config = sim_config(tmp_path, plugins, sim, parent_table("facebook_page"), app=False)
    graph = client(session, config).bind(Secret(USER_TOKEN))
    listing = await list_pages(graph, None)
    assert [p["id"] for p in listing.pages] == list(sim.world.pages)
    assert listing.fallback is None
    assert listing.skipped
    assert sum("me/accounts" in r.path for r in sim.requests) == 2


async def test_discovery_finds_pages_and_accounts_and_follows_the_world(
    sim: Simulator, session: aiohttp.ClientSession, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    world = sim.world
    tables = parent_table("facebook_page", 'exclude = ["Demo Bakery"]') + (
        '[[source]]\nname = "ig"\nplugin = "instagram_user"\n'
        f'access_token = "{SYSTEM_USER_TOKEN}"\ndiscover = true\n'
    )
    tables = tables.replace("USER-TOKEN-TEXT", USER_TOKEN)
    config = sim_config(tmp_path, plugins, sim, tables)
    discovered: dict[str, tuple[SourceConfig, ...]] = {}
    disc = Discoverer(plugins, discovered)
    await disc.first(client(session, config), config.sources)
    pages = {c.options["page_id"]: c for c in discovered["agency"]}
    assert list(pages) == ["105000000000001", "105000000000002", "105000000000003"]
    for page_id, child in pages.items():
        assert child.access_token == Secret(world.pages[page_id].token)
    accounts = [c.options["ig_user_id"] for c in discovered["ig"]]
    assert accounts == ["17841400000000001", "17841400000000102", "17841400000000103"]
    assert all(c.access_token == Secret(SYSTEM_USER_TOKEN) for c in discovered["ig"])

    changes: list[int] = []
    disc.on_change = lambda: changes.append(1)
    added = world.add_page(instagram=True)
    world.remove_page("105000000000002")
    parents = {s.name: s for s in config.sources}
    assert await disc.run_once(parents["agency"])
    assert await disc.run_once(parents["ig"])
    assert [c.name for c in discovered["agency"]] == [
        "agency/105000000000001",
        "agency/105000000000003",
        f"agency/{added.id}",
    ]
    assert [c.options["ig_user_id"] for c in discovered["ig"]] == [
        "17841400000000001",
        "17841400000000103",
        added.ig_user_id,
    ]
    assert changes == [1, 1]
    assert await disc.run_once(parents["agency"])  # nothing new: no change to apply
    assert changes == [1, 1]


async def test_business_owned_pages_come_from_granular_scopes(
    sim: Simulator, session: aiohttp.ClientSession, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    owned = sim.world.add_page(business=True)
    table = parent_table("facebook_page").replace("USER-TOKEN-TEXT", USER_TOKEN)
    found: dict[str, list[str]] = {}
    for app in (False, True):
        config = sim_config(tmp_path, plugins, sim, table, app=app)
        discovered: dict[str, tuple[SourceConfig, ...]] = {}
        await Discoverer(plugins, discovered).first(client(session, config), config.sources)
        found[str(app)] = [c.options["page_id"] for c in discovered["agency"]]
    assert owned.id not in found["False"]  # the list leaves it out; no app to ask
    assert found["True"] == [*found["False"], owned.id]
    read = [r for r in sim.requests if r.path.endswith(f"/{owned.id}")]
    assert len(read) == 1  # read by id, once, with the fields a listed Page has


async def test_a_failed_run_keeps_what_was_found(
    sim: Simulator, session: aiohttp.ClientSession, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    table = parent_table("facebook_page").replace("USER-TOKEN-TEXT", USER_TOKEN)
    config = sim_config(tmp_path, plugins, sim, table, app=False)
    discovered: dict[str, tuple[SourceConfig, ...]] = {}
    disc = Discoverer(plugins, discovered)
    await disc.first(client(session, config), config.sources)
    before = discovered["agency"]
    sim.world.revoke_token(USER_TOKEN, 460)
    assert not await disc.run_once(config.sources[0])
    assert discovered["agency"] == before
    assert disc.failed == {"agency": 1}


async def test_once_polls_the_children_and_fails_when_discovery_does(
    sim: Simulator, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    from collectord import daemon

    table = parent_table("instagram_user").replace("USER-TOKEN-TEXT", USER_TOKEN)
    config = sim_config(tmp_path, plugins, sim, table, app=False)
    ok, col = await daemon.once(config, plugins, sources=["agency/17841400000000102"])
    assert ok
    assert [s.name for s in col.store.sources] == ["agency/17841400000000102"]

    sim.world.revoke_token(USER_TOKEN, 460)
    ok, col = await daemon.once(config, plugins)
    assert not ok
    assert not col.store.sources


class SlowClient:
    """A Graph client whose first ``/me/accounts`` answers only after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    def bind(self, *args: Any, **kwargs: Any) -> SlowClient:
        return self

    async def get_all(self, path: str, params: Any = None) -> list[dict[str, Any]]:
        self.calls += 1
        if self.calls == 1:
            await asyncio.sleep(self.delay)
        return [{"id": "105000000000001", "name": "Demo Coffee Roasters", "access_token": "T"}]


async def test_a_slow_first_run_goes_on_once_the_daemon_runs(
    tmp_path: Path, plugins: dict[str, Any]
) -> None:
    parent = load(tmp_path, plugins, parent_table("facebook_page")).sources[0]
    parent = dataclasses.replace(parent, graph=dataclasses.replace(parent.graph, timeout=0.05))
    discovered: dict[str, tuple[SourceConfig, ...]] = {}
    disc = Discoverer(plugins, discovered)
    await disc.first(SlowClient(delay=60.0), [parent])  # given up after the 0.05 s timeout
    assert discovered == {}
    changed = asyncio.Event()
    async with disc.running(changed.set):
        await asyncio.wait_for(changed.wait(), 5)
    assert [c.name for c in discovered["agency"]] == ["agency/105000000000001"]


async def test_check_online_wants_a_user_token_that_can_list_pages(
    sim: Simulator, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    import io

    from collectord.auth.online import check_online
    from collectord.simulator.base import TokenInfo

    world = sim.world
    no_list = "DEMO-TOKEN-WITHOUT-PAGES-LIST-not-a-real-token"
    scopes = tuple(s for s in SCOPES if s != "pages_show_list")
    world.add_token(TokenInfo(no_list, "USER", world.app_id, world.user_id, scopes=scopes))
    tables = "".join(
        parent_table("facebook_page").replace("agency", name).replace("USER-TOKEN-TEXT", token)
        for name, token in (
            ("user", USER_TOKEN),
            ("page", world.first_page.token),
            ("nolist", no_list),
        )
    )
    out = io.StringIO()
    assert not await check_online(sim_config(tmp_path, plugins, sim, tables), plugins, out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('online: source "user": ok: a user access token')
    assert lines[1].endswith("a Page access token: discover needs a user or system-user token")
    assert lines[2].endswith("lacks permission(s): pages_show_list")
    assert all(token not in out.getvalue() for token in world.tokens)


def test_check_says_what_a_discovering_source_will_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collectord.cli import main

    path = tmp_path / "collector.toml"
    path.write_text(parent_table("facebook_page", 'exclude = ["Demo Bakery"]'))
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert 'discovers its objects at start and every 1d, one source "agency/<id>" each' in out
    assert "include: all; exclude: Demo Bakery" in out
    assert "USER-TOKEN-TEXT" not in out
