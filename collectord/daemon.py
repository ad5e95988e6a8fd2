"""Wiring: the parts of a running collectord, built and torn down in order.

:class:`Collector` is an async context manager holding every resource with a lifetime (the
demo simulator, the one aiohttp ``ClientSession``, the sinks), each entered on one
``AsyncExitStack`` so that teardown runs in reverse order whatever fails. ``run`` adds the
HTTP server and the scheduler and waits for SIGTERM/SIGINT; ``once`` polls and returns.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

import aiohttp

from collectord import __version__
from collectord.config.types import Config, ScheduleConfig, SourceConfig
from collectord.errors import ConfigError
from collectord.exporter.exposition import make_exposition
from collectord.graph.api import pointed_at
from collectord.graph.client import GraphClient
from collectord.graph.stats import GraphStats
from collectord.graph.tokens import TokenWatcher
from collectord.logs import get_logger
from collectord.plugin.api import SourcePlugin
from collectord.scheduling.scheduler import Poller, PollScheduler, SourceRuntime
from collectord.secret import Secret
from collectord.sinks.background import BackgroundSink
from collectord.sinks.jsonl import JsonlSink
from collectord.sinks.stats import SinkStats
from collectord.store.store import Store
from collectord.web.server import make_app, start_server, stop_server

#: Seconds running polls get to finish at shutdown before they are cancelled.
SHUTDOWN_GRACE = 10.0

log = get_logger("collectord")

DEMO_ID_KEYS = ("page_id", "ig_user_id", "app_id")
#: Under --demo the first polls are spread over at most this many seconds, so that a
#: newcomer sees metrics at once.
DEMO_MAX_JITTER = 2.0
#: Under --demo, state and samples go to this folder of the state_dir.
DEMO_STATE = "demo"


def apply_demo(config: Config, world: Any, base_url: str) -> Config:
    """Point every source at the simulator: its URL, its tokens, ids it knows; keep the
    jitter short so the first values show up within seconds; and keep the demo's state and
    samples apart from real ones, in ``{state_dir}/demo/`` (the JSONL file keeps its name)."""
    ids = world.demo_ids()
    graph = dataclasses.replace(
        config.graph,
        base_url=base_url,
        app_id=world.app_id,
        app_secret=Secret(world.app_secret),
    )
    sources = []
    for src in config.sources:
        options = dict(src.options)
        for key in DEMO_ID_KEYS:
            if key in options and str(options[key]) not in world.known_ids(key):
                options[key] = ids[key]
        src_graph = pointed_at(
            src.graph, base_url=base_url, app_id=world.app_id, app_secret=Secret(world.app_secret)
        )
        sources.append(
            dataclasses.replace(
                src,
                access_token=Secret(world.demo_token(src.plugin)),
                options=options,
                graph=src_graph,
                schedule=_short_jitter(src.schedule),
            )
        )
    state_dir = config.collector.state_dir / DEMO_STATE
    jsonl = config.jsonl
    if jsonl is not None:
        jsonl = dataclasses.replace(jsonl, path=state_dir / jsonl.path.name)
    return dataclasses.replace(
        config,
        collector=dataclasses.replace(config.collector, state_dir=state_dir),
        graph=graph,
        schedule=_short_jitter(config.schedule),
        sources=tuple(sources),
        jsonl=jsonl,
    )


def _make_state_dir(config: Config) -> None:
    """Create ``state_dir``; one config problem line when it cannot be (a file in the way,
    no permission: the usual case of a read-only config folder in a container)."""
    path = config.collector.state_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(
            [f"{config.path}: [collector]: state_dir: cannot create {str(path)!r}: {why}"]
        ) from None


def _short_jitter(schedule: ScheduleConfig) -> ScheduleConfig:
    return dataclasses.replace(schedule, jitter=min(schedule.jitter, DEMO_MAX_JITTER))


class Collector:
    """Everything but the HTTP server and the scheduler: usable by ``run`` and ``once``."""

    def __init__(
        self,
        config: Config,
        plugins: Mapping[str, SourcePlugin],
        *,
        demo: bool = False,
        sinks_enabled: bool = True,
        sources: Iterable[str] | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        self.demo = demo
        self.sinks_enabled = sinks_enabled
        self.only = set(sources) if sources is not None else None
        self.store = Store()
        self.graph_stats = GraphStats()
        self.sink_stats: list[SinkStats] = []
        self.runtimes: list[SourceRuntime] = []
        self.simulator: Any = None
        self.client: GraphClient | None = None
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Collector:
        try:
            await self._setup()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _setup(self) -> None:
        if self.demo:
            from collectord.simulator import Simulator

            self.simulator = Simulator()
            base_url = await self.simulator.start()
            self._stack.push_async_callback(self.simulator.stop)
            self.config = apply_demo(self.config, self.simulator.world, base_url)
            log.info("demo simulator started", url=base_url)

        session = await self._stack.enter_async_context(
            aiohttp.ClientSession(headers={"User-Agent": f"collectord/{__version__}"})
        )
        self.client = GraphClient(
            session,
            self.config.graph,
            stats=self.graph_stats,
            log=get_logger("collectord.graph.client"),
        )
        sinks = []
        if self.sinks_enabled and self.config.jsonl is not None:
            _make_state_dir(self.config)
            if self.demo:
                log.info("demo samples are written apart", jsonl=str(self.config.jsonl.path))
            sink = BackgroundSink(
                JsonlSink(
                    self.config.jsonl,
                    self.config.collector.state_dir,
                    log=get_logger("collectord.sinks.jsonl"),
                )
            )
            sink.start()
            self._stack.callback(sink.close)
            sinks.append(sink)
            self.sink_stats.append(sink.stats)
        self.poller = Poller(self.store, sinks)

        for src in self.config.sources:
            if self.only is not None and src.name not in self.only:
                continue
            self.runtimes.append(self._runtime(src))

    def _runtime(self, src: SourceConfig) -> SourceRuntime:
        assert self.client is not None
        status = self.store.register(src.name, src.plugin, src.cadences())
        plugin = self.plugins[src.plugin]
        graph = self.client.bind(src.access_token, graph=src.graph, source=src.name, api=plugin.api)
        return SourceRuntime(src, plugin, graph, status)


async def run(config: Config, plugins: Mapping[str, SourcePlugin], *, demo: bool = False) -> int:
    """The daemon: poll on schedule and serve HTTP until SIGTERM or SIGINT; 0 when clean."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Collector(config, plugins, demo=demo) as col:
            scheduler = PollScheduler(col.poller, col.runtimes)
            exposition = make_exposition(
                col.store, col.graph_stats, col.sink_stats, version=__version__
            )
            app = make_app(
                exposition=exposition,
                store=col.store,
                version=__version__,
                alive=lambda: scheduler.scheduler.running,
            )
            host, port = col.config.collector.listen_host, col.config.collector.listen_port
            try:
                runner, port = await start_server(app, host, port)
            except OSError as exc:
                log.error("cannot listen", listen=f"{host}:{port}", error=str(exc))
                return 1
            tokens = TokenWatcher(col.client, col.runtimes, col.store)
            try:
                scheduler.start()
                tokens.start(scheduler.scheduler)
                log.info(
                    "collectord started",
                    version=__version__,
                    listen=f"http://{_url_host(host)}:{port}/metrics",
                    sources=len(col.runtimes),
                    demo=demo,
                )
                await stop.wait()
                log.info("shutting down")
                await scheduler.shutdown(SHUTDOWN_GRACE)
            finally:
                await stop_server(runner)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def once(
    config: Config,
    plugins: Mapping[str, SourcePlugin],
    *,
    demo: bool = False,
    sources: Iterable[str] | None = None,
) -> tuple[bool, Collector]:
    """Poll the chosen sources once at every cadence; return (all succeeded, collector).

    Sinks are not written: ``once`` is for looking, its output goes to stdout.
    """
    col = Collector(config, plugins, demo=demo, sinks_enabled=False, sources=sources)
    async with col:
        results = await asyncio.gather(
            *(col.poller.poll(rt, c) for rt in col.runtimes for c in rt.config.cadences())
        )
    return all(results), col
