"""``--demo`` builds an ordinary config pointing at the simulator: from the user's file
(unset variables and unknown ids replaced) or the built-in one, kept apart from real runs."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from test_config import EXAMPLE, PAGE_SOURCE, PLUGINS, UNSET_VARIABLES, FacebookPage

from collectord.config.loader import load_config
from collectord.demo import BUILT_IN_PATH, DEMO_MAX_JITTER, SIMULATOR_STOP, Demo, config_file
from collectord.errors import ConfigError
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.secret import Secret
from collectord.simulator import Simulator

SHIPPED = Path(__file__).resolve().parents[2] / "collector.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def test_unset_variables_are_replaced_by_the_simulators_values(tmp_path: Path) -> None:
    demo = Demo(write(tmp_path, UNSET_VARIABLES), PLUGINS, environ={})
    world = demo.simulator.world
    config = demo.config
    page, app = config.sources
    assert (config.graph.app_id, config.graph.app_secret) == (
        world.app_id,
        Secret(world.app_secret),
    )
    assert page.access_token == Secret(world.demo_token("fake_page"))
    assert app.access_token == Secret(world.demo_token("fake_app"))
    # required text options set by unset variables get a stand-in, not an error
    assert page.options["page_id"] == "demo"
    assert app.options["app_id"] == "demo"
    async with demo.running() as running:
        url = demo.simulator.url
        assert url is not None
        assert running.graph.base_url == url
        assert {src.graph.base_url for src in running.sources} == {url}
    async with aiohttp.ClientSession() as session:  # stopped with the context
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(url)


def test_demo_still_reports_other_problems(tmp_path: Path) -> None:
    path = write(tmp_path, PAGE_SOURCE + "max_posts = -1\nfoo = 1\n")
    with pytest.raises(ConfigError) as info:
        Demo(path, PLUGINS, environ={})
    assert len(info.value.problems) == 2


def test_the_design_example_gets_the_simulators_token(tmp_path: Path) -> None:
    demo = Demo(write(tmp_path, EXAMPLE), {"facebook_page": FacebookPage()}, environ={})
    (source,) = demo.config.sources
    assert source.access_token == Secret(demo.simulator.world.demo_token("facebook_page"))


def test_shipped_config_ids_tokens_state_and_jitter(tmp_path: Path) -> None:
    path = write(tmp_path, SHIPPED.read_text().replace('"1234567890"', '"1"'))
    plugins = plugin_map(load_source_plugins())
    sim = Simulator()
    demo = Demo(path, plugins, environ={"FB_APP_ID": "42"}, simulator=sim)
    world = sim.world
    ids = world.demo_ids()
    by_name = {src.name: src for src in demo.config.sources}
    # ids the simulator does not know (a literal, or a set variable) are replaced by its own
    assert by_name["acme-page"].options["page_id"] == ids["page_id"]
    assert by_name["acme-posts"].options["page_id"] == ids["page_id"]
    assert by_name["acme-app"].options["app_id"] == ids["app_id"]
    assert by_name["acme-instagram"].options["ig_user_id"] == ids["ig_user_id"]
    for src in demo.config.sources:
        assert src.access_token == Secret(world.demo_token(src.plugin))
        assert src.schedule.jitter <= DEMO_MAX_JITTER
    assert demo.config.schedule.jitter <= DEMO_MAX_JITTER
    # state and samples apart from a real run's
    real = load_config(path, plugins, environ={"FB_APP_ID": "1", "FB_APP_SECRET": "s"} | _tokens())
    assert demo.config.collector.state_dir == real.collector.state_dir / "demo"
    assert demo.config.jsonl is not None
    assert real.jsonl is not None
    assert demo.config.jsonl.path == tmp_path / ".collectord" / "demo" / "samples.jsonl"
    assert real.jsonl.path == tmp_path / "samples.jsonl"
    assert [s.schedule.interval("fast") for s in demo.config.sources] == [
        s.schedule.interval("fast") for s in real.sources
    ]


def _tokens() -> dict[str, str]:
    return {"ACME_PAGE_TOKEN": "t", "ACME_IG_TOKEN": "t"}


def test_without_a_config_file_the_built_in_config_has_every_built_in_plugin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    missing = tmp_path / "collector.toml"
    assert config_file(missing, chosen=False) is None
    assert config_file(missing, chosen=True) == missing  # -c FILE must exist: loading says so
    plugins = plugin_map(load_source_plugins())
    demo = Demo(None, plugins, environ={})
    assert demo.config.path == BUILT_IN_PATH
    assert sorted(src.plugin for src in demo.config.sources) == sorted(plugins)
    assert demo.config.collector.state_dir == tmp_path / ".collectord" / "demo"
    assert demo.config.warnings == ()


async def test_the_simulator_stops_within_its_share_of_the_shutdown_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo = Demo(None, plugin_map(load_source_plugins()), environ={})
    faults = demo.simulator.faults
    faults.delay(60, count=None)
    delaying = asyncio.Event()
    take = faults.take

    def taking(kind: str, paths: list[str]) -> Any:
        if kind == "delay":  # the request has arrived and is about to be delayed
            delaying.set()
        return take(kind, paths)

    monkeypatch.setattr(faults, "take", taking)
    loop = asyncio.get_running_loop()
    async with demo.running() as config, aiohttp.ClientSession() as session:
        request = asyncio.ensure_future(session.get(f"{config.graph.base_url}/v26.0/me"))
        await delaying.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        started = loop.time()
    assert loop.time() - started < SIMULATOR_STOP + 0.5
