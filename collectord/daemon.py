"""Wiring: the parts of a running collectord, started and torn down in one order.

Every resource with a lifetime is entered on one ``AsyncExitStack`` in start order, and
torn down in reverse whatever fails: whatever the config came with (the demo's simulator),
the one aiohttp ``ClientSession``, the sinks (:class:`Collector`, shared by ``run`` and
``once``), then for ``run`` the HTTP server, the scheduler and the token checks.

From SIGTERM/SIGINT to exit takes at most :data:`SHUTDOWN_BOUND` seconds: the token
checks stop at once, running polls get :data:`SHUTDOWN_GRACE`, and the rest of the
teardown has :data:`TEARDOWN_RESERVE`.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
from aiohttp import web

from collectord import __version__
from collectord.config.types import Config, SourceConfig
from collectord.errors import ConfigError
from collectord.exporter.exposition import make_exposition
from collectord.files import ensure_dir
from collectord.graph.client import GraphClient
from collectord.graph.stats import GraphStats
from collectord.graph.tokens import TokenWatcher
from collectord.logs import get_logger
from collectord.plugin.api import SourcePlugin
from collectord.scheduling.scheduler import CANCEL_WAIT, Poller, PollScheduler, SourceRuntime
from collectord.sinks.background import BackgroundSink
from collectord.sinks.jsonl import JsonlSink
from collectord.sinks.stats import SinkStats
from collectord.store.persist import STATE_FILE, StateSaver, restore_state
from collectord.store.store import Store
from collectord.web.server import SHUTDOWN_TIMEOUT, make_app, start_server, stop_server

#: Seconds from SIGTERM/SIGINT to exit, at most (a supervisor's stop timeout must exceed it).
SHUTDOWN_BOUND = 10.0
#: Seconds the sinks get to write what is queued at shutdown.
SINK_CLOSE_TIMEOUT = 1.0
#: Seconds kept for the teardown after the polls' grace: polls cancelled after it get
#: ``CANCEL_WAIT``, requests to the HTTP server in flight ``SHUTDOWN_TIMEOUT``, the sinks
#: ``SINK_CLOSE_TIMEOUT``, and one second is left for the rest (token checks, the session,
#: the simulator).
TEARDOWN_RESERVE = CANCEL_WAIT + SHUTDOWN_TIMEOUT + SINK_CLOSE_TIMEOUT + 1.0
#: Seconds running polls get to finish at shutdown before they are cancelled.
SHUTDOWN_GRACE = SHUTDOWN_BOUND - TEARDOWN_RESERVE

#: What the daemon is given: a config, or a context that yields one and holds what the
#: config depends on while entered (``--demo``: the simulator, see :mod:`collectord.demo`).
ConfigSource = Config | AbstractAsyncContextManager[Config]

log = get_logger("collectord")


def _make_state_dir(config: Config) -> None:
    """Create ``state_dir``; one config problem line when it cannot be (a file in the way,
    no permission: the usual case of a read-only config folder in a container)."""
    path = config.collector.state_dir
    try:
        ensure_dir(path)  # 0700 whatever the umask; never a symlink
    except OSError as exc:
        why = exc.strerror or str(exc)
        raise ConfigError(
            [f"{config.path}: [collector]: state_dir: cannot create {str(path)!r}: {why}"]
        ) from None


def keep_state(store: Store, state_dir: Path) -> StateSaver:
    """Restore the store from ``state_dir/state.json`` (before the HTTP server answers)
    and return the saver that keeps the file current while entered (see
    :mod:`collectord.store.persist`). No state_dir is a warning, not an error."""
    try:
        ensure_dir(state_dir)
    except OSError as exc:
        log.warning("state_dir unusable", path=str(state_dir), error=exc.strerror or str(exc))
    path = state_dir / STATE_FILE
    restore_state(store, path)
    return StateSaver(store, path)


class Collector:
    """Everything but the HTTP server and the scheduler: usable by ``run`` and ``once``.

    ``stack`` holds every resource in start order; ``run`` enters its own on it too, so
    that leaving the collector tears all of them down in reverse.
    """

    def __init__(
        self,
        config: ConfigSource,
        plugins: Mapping[str, SourcePlugin],
        *,
        sinks_enabled: bool = True,
        sources: Iterable[str] | None = None,
    ) -> None:
        self._source = config
        self.plugins = plugins
        self.sinks_enabled = sinks_enabled
        self.only = set(sources) if sources is not None else None
        self.store = Store()
        self.graph_stats = GraphStats()
        self.sink_stats: list[SinkStats] = []
        self.runtimes: list[SourceRuntime] = []
        self.client: GraphClient | None = None
        self.stack = AsyncExitStack()

    @property
    def config(self) -> Config:
        """The config in use (once entered, the one the config source yielded)."""
        if isinstance(self._source, Config):
            return self._source
        raise RuntimeError("the collector is not entered yet")

    async def __aenter__(self) -> Collector:
        try:
            await self._setup()
        except BaseException:
            await self.stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stack.aclose()

    async def _setup(self) -> None:
        if not isinstance(self._source, Config):
            self._source = await self.stack.enter_async_context(self._source)
        config = self.config
        session = await self.stack.enter_async_context(
            aiohttp.ClientSession(headers={"User-Agent": f"collectord/{__version__}"})
        )
        self.client = GraphClient(
            session, config.graph, stats=self.graph_stats, log=get_logger("collectord.graph.client")
        )
        sinks = []
        if self.sinks_enabled and config.jsonl is not None:
            _make_state_dir(config)
            sink = BackgroundSink(
                JsonlSink(
                    config.jsonl,
                    config.collector.state_dir,
                    log=get_logger("collectord.sinks.jsonl"),
                ),
                close_timeout=SINK_CLOSE_TIMEOUT,
            )
            sink.start()
            self.stack.callback(sink.close)
            sinks.append(sink)
            self.sink_stats.append(sink.stats)
        self.poller = Poller(self.store, sinks)
        for src in config.sources:
            if self.only is None or src.name in self.only:
                self.runtimes.append(self._runtime(src))

    def _runtime(self, src: SourceConfig) -> SourceRuntime:
        assert self.client is not None
        status = self.store.register(src.name, src.plugin, src.cadences())
        plugin = self.plugins[src.plugin]
        graph = self.client.bind(src.access_token, graph=src.graph, source=src.name, api=plugin.api)
        return SourceRuntime(src, plugin, graph, status)


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """The HTTP server, listening while entered; yields the bound port."""
    runner, bound = await start_server(app, host, port)
    try:
        yield bound
    finally:
        await stop_server(runner)


@asynccontextmanager
async def scheduling(scheduler: PollScheduler, grace: float) -> AsyncIterator[PollScheduler]:
    """The poll schedule, running while entered; leaving gives running polls ``grace``."""
    scheduler.start()
    try:
        yield scheduler
    finally:
        await scheduler.shutdown(grace)


async def run(
    config: ConfigSource,
    plugins: Mapping[str, SourcePlugin],
    *,
    about: Sequence[Mapping[str, Any]] = (),
) -> int:
    """The daemon: poll on schedule and serve HTTP until SIGTERM or SIGINT; 0 when clean.
    ``about`` describes the loaded plugins for the status page
    (:func:`collectord.plugin.manager.describe_plugin`)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with Collector(config, plugins) as col:
            state_dir = col.config.collector.state_dir
            await col.stack.enter_async_context(keep_state(col.store, state_dir))
            scheduler = PollScheduler(col.poller, col.runtimes)
            exposition = make_exposition(
                col.store, col.graph_stats, col.sink_stats, version=__version__
            )
            app = make_app(
                exposition=exposition,
                store=col.store,
                version=__version__,
                alive=lambda: scheduler.scheduler.running,
                plugins=about,
                graph_stats=col.graph_stats,
                web_config=col.config.collector.web,
            )
            host, port = col.config.collector.listen_host, col.config.collector.listen_port
            try:
                port = await col.stack.enter_async_context(serving(app, host, port))
            except OSError as exc:
                log.error("cannot listen", listen=f"{host}:{port}", error=str(exc))
                return 1
            await col.stack.enter_async_context(scheduling(scheduler, SHUTDOWN_GRACE))
            await col.stack.enter_async_context(TokenWatcher(col.client, col.runtimes, col.store))
            log.info(
                "collectord started",
                version=__version__,
                listen=f"http://{_url_host(host)}:{port}/metrics",
                sources=len(col.runtimes),
            )
            await stop.wait()
            log.info("shutting down", within=SHUTDOWN_BOUND)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def once(
    config: ConfigSource,
    plugins: Mapping[str, SourcePlugin],
    *,
    sources: Iterable[str] | None = None,
) -> tuple[bool, Collector]:
    """Poll the chosen sources once at every cadence; return (all succeeded, collector).

    Sinks are not written: ``once`` is for looking, its output goes to stdout.
    """
    col = Collector(config, plugins, sinks_enabled=False, sources=sources)
    async with col:
        results = await asyncio.gather(
            *(col.poller.poll(rt, c) for rt in col.runtimes for c in rt.config.cadences())
        )
    return all(results), col
