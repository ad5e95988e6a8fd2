"""``--demo``: collectord against the built-in Graph API simulator, built in this one place.

:class:`Demo` makes an ordinary :class:`~collectord.config.types.Config` from the user's
config file (or, when there is none, from :data:`BUILT_IN_CONFIG`) that points every source
at a simulator: its URL, its app, its tokens, and ids it knows in place of the ones it does
not (the plugins' options of type ``id``, by name). A ``${VAR}`` that is not set is no
error: the simulator replaces that value, or the key is left out as if not set. The first
polls come within :data:`DEMO_MAX_JITTER` seconds, and state and samples go to
``{state_dir}/demo/`` (the JSONL file keeps its name), never into a real run's files.

The daemon gets :meth:`Demo.running`: entered first on its stack, it starts the simulator,
yields the config, and stops the simulator last. Nothing else in collectord knows about
the demo.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import tomllib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from collectord.config.loader import load_document, read_document
from collectord.config.reader import substitute
from collectord.config.types import Config, ScheduleConfig, SourceConfig
from collectord.graph.api import FACEBOOK, pointed_at
from collectord.logs import get_logger
from collectord.model import Option
from collectord.plugin.api import SourcePlugin
from collectord.simulator import Simulator
from collectord.simulator.world import World

#: The first polls are spread over at most this many seconds, so that a newcomer sees
#: metrics at once.
DEMO_MAX_JITTER: Final = 2.0
#: State and samples go to this folder of the state_dir.
DEMO_STATE: Final = "demo"
#: Seconds the simulator gets to stop within the daemon's shutdown bound (an answer it is
#: delaying, a fault injected through ``/_sim/faults``, would hold it up to a minute).
SIMULATOR_STOP: Final = 0.5
#: How the built-in config is named in messages (relative paths start at the working folder).
BUILT_IN_PATH: Final = Path("(built-in demo config)")
#: The config used when there is no config file: every built-in plugin on the simulator.
BUILT_IN_CONFIG: Final = """
[collector]
listen = "127.0.0.1:9464"
state_dir = ".collectord"

[[source]]
name = "demo-page"
plugin = "facebook_page"
page_id = "{page_id}"

[[source]]
name = "demo-posts"
plugin = "facebook_post"
page_id = "{page_id}"

[[source]]
name = "demo-instagram"
plugin = "instagram_user"
ig_user_id = "{ig_user_id}"

[[source]]
name = "demo-instagram-media"
plugin = "instagram_media"
ig_user_id = "{ig_user_id}"

[[source]]
name = "demo-app"
plugin = "facebook_app"
app_id = "{app_id}"

[sink.jsonl]
path = "samples.jsonl"
"""
#: Stands for the simulator's URL until it listens (:meth:`Demo.running` puts the real one).
_NOT_YET_LISTENING: Final = "http://127.0.0.1"
#: What an ``id`` or a required ``str`` option set by a variable that is not set gets when
#: the simulator has nothing better.
_STAND_IN_ID: Final = "0"
_STAND_IN_TEXT: Final = "demo"
#: ``[graph]`` keys the simulator provides.
_GRAPH_KEYS: Final = ("base_url", "app_id", "app_secret")

log = get_logger("collectord.demo")


def config_file(path: Path, *, chosen: bool) -> Path | None:
    """The config file ``--demo`` reads: ``path``, unless it is the default
    ``./collector.toml`` (not ``chosen`` with ``-c`` or ``$COLLECTORD_CONFIG``) and does not
    exist; then ``None``, for :data:`BUILT_IN_CONFIG`."""
    return path if chosen or path.exists() else None


class Demo:
    """A simulator and the config pointing at it. Raises
    :class:`~collectord.errors.ConfigError` like :func:`~collectord.config.load_config`."""

    def __init__(
        self,
        path: Path | None,
        plugins: Mapping[str, SourcePlugin],
        *,
        environ: Mapping[str, str],
        simulator: Simulator | None = None,
        document: Mapping[str, Any] | None = None,
    ) -> None:
        self.simulator = simulator if simulator is not None else Simulator()
        world = self.simulator.world
        if path is None:
            data = tomllib.loads(BUILT_IN_CONFIG.format(**world.demo_ids()))
            path = BUILT_IN_PATH
        else:  # ``document``: the file already read (once: it may be a pipe)
            data = read_document(path) if document is None else document
        pointed = point_at_simulator(data, world, plugins, environ)
        self.plugins = plugins
        self.config = keep_apart(load_document(pointed, path, plugins, environ=environ))

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Config]:
        """The simulator, listening while entered; yields the config with its URL."""
        url = await self.simulator.start()
        try:
            log.info("demo simulator started", url=url)
            config = with_base_url(self.config, url, self.plugins)
            if config.jsonl is not None:
                log.info("demo samples are written apart", jsonl=str(config.jsonl.path))
            yield config
        finally:
            try:
                async with asyncio.timeout(SIMULATOR_STOP):
                    await self.simulator.stop()
            except TimeoutError:
                log.info("demo simulator stopped; answers it was delaying are dropped")


def point_at_simulator(
    data: Mapping[str, Any],
    world: World,
    plugins: Mapping[str, SourcePlugin],
    environ: Mapping[str, str],
) -> dict[str, Any]:
    """A copy of the TOML document whose ``[graph]`` is the simulator's, whose sources have
    the simulator's tokens and ids it knows, and where any other value using a variable
    that is not set is left out."""
    doc = copy.deepcopy(dict(data))
    graph = doc.setdefault("graph", {})
    if isinstance(graph, dict):
        _set(graph, "base_url", _NOT_YET_LISTENING)
        _set(graph, "app_id", world.app_id)
        _set(graph, "app_secret", world.app_secret)
    sources = doc.get("source")
    for source in sources if isinstance(sources, list) else ():
        if not isinstance(source, dict):
            continue
        plugin_name = source.get("plugin")
        if not isinstance(plugin_name, str):
            continue
        instagram_login = source.get("login") == "instagram"  # the IG-Login demo token
        token = world.ig_login_token if instagram_login else world.demo_token(plugin_name)
        _set(source, "access_token", token)
        if isinstance(source.get("graph"), dict):
            for key in _GRAPH_KEYS:  # the [graph] above holds the simulator's
                _pop(source["graph"], key)
        plugin = plugins.get(plugin_name)
        for option in plugin.options if plugin is not None else ():
            _demo_option(source, option, world, environ)
    _drop_unset(doc, environ)
    return doc


def _demo_option(
    source: dict[str, Any], option: Option, world: World, environ: Mapping[str, str]
) -> None:
    """An option of type ``id`` gets the simulator's id of that name unless the simulator
    knows the one given; a required string set by a variable that is not set gets a
    stand-in (other such values are left out later, and the plugin's default applies)."""
    value = source.get(option.name)
    resolved = substitute(value, environ) if isinstance(value, str) else value
    unset = isinstance(value, str) and resolved is None
    if option.type == "id":
        try:
            known = world.known_ids(option.name)
        except ValueError:  # an id the simulator has no objects for
            if unset:
                _set(source, option.name, _STAND_IN_ID)
            return
        if resolved not in known:
            _set(source, option.name, world.demo_ids()[option.name])
    elif unset and option.type == "str" and option.required:
        _set(source, option.name, _STAND_IN_TEXT)


def _drop_unset(table: dict[str, Any], environ: Mapping[str, str]) -> None:
    """Leave out, in ``table`` and the tables in it, each value that uses a variable that
    is not set (as if the key were not there)."""
    for key, value in list(table.items()):
        if isinstance(value, dict):
            _drop_unset(value, environ)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _drop_unset(item, environ)
            if any(isinstance(i, str) and substitute(i, environ) is None for i in value):
                del table[key]
        elif isinstance(value, str) and substitute(value, environ) is None:
            del table[key]


def _set(table: dict[str, Any], key: str, value: str) -> None:
    """``key = value`` as a literal (no ``${VAR}``), in place of ``key`` or ``key_file``."""
    _pop(table, key)
    table[key] = value.replace("$", "$$")


def _pop(table: dict[str, Any], key: str) -> None:
    table.pop(key, None)
    table.pop(f"{key}_file", None)


def keep_apart(config: Config) -> Config:
    """State and samples under ``{state_dir}/demo/``; every jitter at most
    :data:`DEMO_MAX_JITTER`."""
    state_dir = config.collector.state_dir / DEMO_STATE
    jsonl = config.jsonl
    if jsonl is not None:
        jsonl = dataclasses.replace(jsonl, path=state_dir / jsonl.path.name)
    sources = tuple(
        dataclasses.replace(src, schedule=_short_jitter(src.schedule)) for src in config.sources
    )
    return dataclasses.replace(
        config,
        collector=dataclasses.replace(config.collector, state_dir=state_dir),
        schedule=_short_jitter(config.schedule),
        sources=sources,
        jsonl=jsonl,
    )


def with_base_url(
    config: Config, url: str, plugins: Mapping[str, SourcePlugin] | None = None
) -> Config:
    """``config`` with every source asking ``url``, whatever API its plugin declares: a
    source speaking an API of another host (graph.instagram.com) asks the simulator's
    copy of it, ``{url}/{host}``."""
    sources = tuple(
        dataclasses.replace(src, graph=pointed_at(src.graph, base_url=_on(url, src, plugins)))
        for src in config.sources
    )
    graph = dataclasses.replace(config.graph, base_url=url)
    return dataclasses.replace(config, graph=graph, sources=sources)


def _short_jitter(schedule: ScheduleConfig) -> ScheduleConfig:
    return dataclasses.replace(schedule, jitter=min(schedule.jitter, DEMO_MAX_JITTER))


def _on(url: str, src: SourceConfig, plugins: Mapping[str, SourcePlugin] | None) -> str:
    """Where on the simulator ``src`` asks: ``url``, or ``{url}/{host}`` for an API that is
    not on graph.facebook.com (the simulator serves graph.instagram.com there)."""
    plugin = plugins.get(src.plugin) if plugins is not None else None
    if plugin is None:
        return url
    host = urlsplit(plugin.api_for(src.options).base_url).hostname
    return url if host == urlsplit(FACEBOOK.base_url).hostname else f"{url}/{host}"
