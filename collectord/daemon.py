"""Wiring: the parts of a running collectord, started and torn down in one order.

Every resource with a lifetime is entered on one ``AsyncExitStack`` in start order, and
torn down in reverse whatever fails: whatever the config came with (the demo's simulator),
the one ``ClientSession``, the sinks, discovery (:class:`Collector`, for ``run`` and
``once``), then for ``run`` the HTTP server, the schedule, the token checks and renewals.
SIGHUP reloads.

From SIGTERM/SIGINT to exit takes at most :data:`SHUTDOWN_BOUND` seconds, the one
constant the systemd unit, the Kubernetes manifests and the docs size their stop timeouts
by. The first signal fixes a deadline (a second one changes nothing): the token checks
stop at once, running polls get :data:`SHUTDOWN_GRACE` (less if the deadline is nearer),
the rest of the teardown :data:`TEARDOWN_RESERVE`, and the whole teardown runs under one
timeout that ends :data:`EXIT_MARGIN` before the bound, leaving that margin to the
interpreter's own exit. As a last resort (a loop blocked by a plugin), the ``run`` command
arms a timer thread that ends the process :data:`HARD_EXIT_MARGIN` before the bound.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

from collectord import __version__
from collectord.auth.renew import RenewedTokens, daemon_renewer
from collectord.config.types import Config, SourceConfig
from collectord.discovery import Discoverer
from collectord.errors import ConfigError
from collectord.exporter.exposition import make_exposition
from collectord.exporter.registry import ReloadStats
from collectord.files import ensure_dir
from collectord.graph.client import GraphClient
from collectord.graph.stats import GraphStats
from collectord.graph.tokens import TokenWatcher, object_of
from collectord.logs import get_logger
from collectord.plugin.api import SourcePlugin
from collectord.reload import Reloader
from collectord.scheduling.scheduler import CANCEL_WAIT, Poller, PollScheduler, SourceRuntime
from collectord.sharding import Shard, configured_shard, shard_of
from collectord.sinks.background import BackgroundSink
from collectord.sinks.jsonl import JsonlSink
from collectord.sinks.stats import SinkStats
from collectord.store.persist import STATE_FILE, StateSaver, restore_state
from collectord.store.store import SourceStatus, Store
from collectord.web.server import SHUTDOWN_TIMEOUT, make_app, serving
from collectord.web.webhooks import webhook_listener

#: Seconds from SIGTERM/SIGINT to exit, at most (a supervisor's stop timeout must exceed it).
SHUTDOWN_BOUND = 10.0
#: Seconds between the end of the teardown's timeout and the bound, for the interpreter's
#: exit (threads joined, buffers flushed).
EXIT_MARGIN = 1.5
#: Seconds before the bound at which a process still alive is ended (``run`` only).
HARD_EXIT_MARGIN = 0.5
#: Seconds the sinks get to write what is queued at shutdown.
SINK_CLOSE_TIMEOUT = 1.0
#: Seconds kept for the teardown after the polls' grace: polls cancelled after it get
#: ``CANCEL_WAIT``, requests to the HTTP server in flight ``SHUTDOWN_TIMEOUT``, the sinks
#: ``SINK_CLOSE_TIMEOUT``, and half a second is left for the rest (token checks, the
#: session, the simulator).
TEARDOWN_RESERVE = CANCEL_WAIT + SHUTDOWN_TIMEOUT + SINK_CLOSE_TIMEOUT + 0.5
#: Seconds running polls get to finish at shutdown before they are cancelled.
SHUTDOWN_GRACE = SHUTDOWN_BOUND - EXIT_MARGIN - TEARDOWN_RESERVE

#: What the daemon is given: a config, or a context that yields one and holds what the
#: config depends on while entered (``--demo``: the simulator, see :mod:`collectord.demo`).
ConfigSource = Config | AbstractAsyncContextManager[Config]

log = get_logger("collectord")


def _make_state_dir(config: Config) -> None:
    """Create ``state_dir``; one config problem line when it cannot be (a file in the way, no
    permission: a read-only config folder in a container)."""
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
        #: Each discovering source's children, by its name (none before a run succeeded).
        self.discovered: dict[str, tuple[SourceConfig, ...]] = {}
        self.discoverer = Discoverer(plugins, self.discovered)  # keeps `discovered` current
        #: Whether this process polls the source of this name (sharding: one of N replicas).
        self.owns: Callable[[str], bool] = lambda name: True
        self.shard = Shard()  # [collector] shard or --shard, resolved on entering
        self.tokens: RenewedTokens | None = None  # renew_token: the renewed tokens, preferred
        self.stack = AsyncExitStack()

    @property
    def config(self) -> Config:
        """The config in use (once entered, the one the config source yielded)."""
        if isinstance(self._source, Config):
            return self._source
        raise RuntimeError("the collector is not entered yet")

    def use_config(self, config: Config) -> None:
        """Make ``config`` the one in use (a reload applied it; the runtimes follow)."""
        self._source = config

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
        self.shard = configured_shard(config.collector.shard)
        self.owns = self.shard.owns
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
        self.tokens = RenewedTokens(config.collector.state_dir)
        await self.discoverer.first(self.client, self.configured(config), self.only)
        for src in self.wanted(config).values():
            self.runtimes.append(self.runtime(src))

    def configured(self, config: Config) -> list[SourceConfig]:
        """``config``'s sources, each with its renewed token where it has one
        (``renew_token``): what discovery and the running sources start from."""
        tokens = self.tokens
        return [tokens.apply(s) if tokens else s for s in config.sources]

    def wanted(self, config: Config) -> dict[str, SourceConfig]:
        """The sources this process runs for ``config``, by name, in config order: each
        discovering source replaced by the children found for it, then only those this
        process owns (its shard) and, with ``--source``, those named (a child is named by
        its own name or its parent's)."""
        out: dict[str, SourceConfig] = {}
        for src in self.configured(config):
            for one in self.discovered.get(src.name, ()) if src.discover else (src,):
                if self.only is not None and not ({one.name, src.name} & self.only):
                    continue
                if self.owns(one.name):
                    out[one.name] = one
        return out

    def webhook_owners(self, object_id: str) -> set[int]:
        """The shards whose replicas poll a source reading the Page or Instagram account
        ``object_id``: configured sources and every discovering source's children, as
        every replica sees them (a webhook delivery goes on to them)."""
        out: set[int] = set()
        for src in self.config.sources:
            for one in self.discovered.get(src.name, ()) if src.discover else (src,):
                target = object_of(one)
                if target is not None and target[1] == object_id:
                    out.add(shard_of(one.name, self.shard.total))
        return out

    def runtime(self, src: SourceConfig, status: SourceStatus | None = None) -> SourceRuntime:
        """The runtime of ``src``: a new status in the store, or ``status`` kept (a reload
        changed the source but not its plugin and cadences)."""
        assert self.client is not None
        if status is None:
            status = self.store.register(src.name, src.plugin, src.cadences())
        api = (plugin := self.plugins[src.plugin]).api_for(src.options)
        graph = self.client.bind(src.access_token, graph=src.graph, source=src.name, api=api)
        return SourceRuntime(src, plugin, graph, status)


class Shutdown:
    """The stop request: the first SIGTERM/SIGINT fixes the deadline; later ones are
    logged and change nothing. With ``hard_exit`` a watchdog thread, started beforehand,
    ends the process :data:`HARD_EXIT_MARGIN` before the bound if it is still alive then
    (the handler only sets an event: starting a thread there could deadlock on a lock the
    interrupted code holds).

    :meth:`signalled` is a plain signal handler, not the loop's: it runs between two
    bytecodes of the main thread even while a plugin blocks the event loop, so the
    deadline and the watchdog hold whatever the loop is doing.
    """

    def __init__(self, *, hard_exit: bool = False) -> None:
        self.requested = asyncio.Event()
        self.deadline: float | None = None
        self._loop = asyncio.get_running_loop()
        self._armed = threading.Event()
        if hard_exit:
            threading.Thread(target=self._watchdog, name="shutdown watchdog", daemon=True).start()

    def _watchdog(self) -> None:
        self._armed.wait()
        time.sleep(SHUTDOWN_BOUND - HARD_EXIT_MARGIN)
        _hard_exit()

    def signalled(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.deadline is None:
            # the loop's clock is the monotonic clock: the deadline counts from the signal
            self.deadline = time.monotonic() + SHUTDOWN_BOUND
            self._armed.set()
            self._loop.call_soon_threadsafe(self._stop, name)
        else:
            self._loop.call_soon_threadsafe(self._again, name)

    def _again(self, name: str) -> None:
        log.info("already shutting down", signal=name)

    def _stop(self, name: str) -> None:
        self.requested.set()
        log.info("shutting down", signal=name, within=SHUTDOWN_BOUND)

    def fix_deadline(self) -> float:
        """The deadline (fixed now when no signal came: an error ends the daemon)."""
        if self.deadline is None:
            self.deadline = self._loop.time() + SHUTDOWN_BOUND
        return self.deadline

    def grace(self) -> float:
        """What running polls get: ``SHUTDOWN_GRACE``, less when the deadline is nearer."""
        left = self.fix_deadline() - EXIT_MARGIN - TEARDOWN_RESERVE - self._loop.time()
        return max(0.0, min(SHUTDOWN_GRACE, left))


def _hard_exit() -> None:
    """The last resort, from the watchdog thread: the teardown did not end in time. The
    last log lines get a moment (the main thread could hold the log's lock), then the
    process ends whatever they did."""

    def last_words() -> None:
        log.error("shutdown overran its bound, exiting now", bound=SHUTDOWN_BOUND)
        log.info("stopped", forced=True)
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()

    words = threading.Thread(target=last_words, daemon=True)
    words.start()
    words.join(HARD_EXIT_MARGIN / 2)
    os._exit(0)


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def run(
    config: ConfigSource,
    plugins: Mapping[str, SourcePlugin],
    *,
    about: Sequence[Mapping[str, Any]] = (),
    loader: Callable[[], Config] | None = None,
    hard_exit: bool = False,
) -> int:
    """The daemon: poll on schedule and serve HTTP until SIGTERM or SIGINT; 0 when clean.
    ``about`` describes the loaded plugins for the status page
    (:func:`collectord.plugin.manager.describe_plugin`). ``loader`` reads the config again
    for a reload (SIGHUP); without it (``--demo``) a reload is refused. ``hard_exit`` arms
    the last-resort exit at shutdown (the ``run`` command; never inside a test process).
    """
    loop = asyncio.get_running_loop()
    shutdown = Shutdown(hard_exit=hard_exit)
    reloader: Reloader | None = None
    early_hup: list[bool] = []

    def on_hup() -> None:
        if reloader is None:
            early_hup[:] = [True]  # reloaded once started
        else:
            reloader.on_sighup()

    previous = {sig: signal.signal(sig, shutdown.signalled) for sig in _STOP_SIGNALS}
    loop.add_signal_handler(signal.SIGHUP, on_hup)
    try:
        col = Collector(config, plugins)
        await col.__aenter__()
        code = 1
        try:
            # the last samples are served from the state file before the server answers
            state_dir = col.config.collector.state_dir
            await col.stack.enter_async_context(keep_state(col.store, state_dir))
            scheduler = PollScheduler(col.poller, col.runtimes)
            reloader = Reloader(col, scheduler, loader, ReloadStats(True, time.time()))
            col.stack.push_async_callback(reloader.close)
            code = await _serve(col, scheduler, reloader, shutdown, about)
            if early_hup and code == 0:
                reloader.on_sighup()
            if code == 0:
                await shutdown.requested.wait()
        finally:
            await _teardown(col, shutdown)
    finally:
        loop.remove_signal_handler(signal.SIGHUP)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if hard_exit:  # the process ends now: a late signal must not kill it midway
            for sig in (*_STOP_SIGNALS, signal.SIGHUP):
                signal.signal(sig, signal.SIG_IGN)
    log.info("stopped")
    return code


async def _serve(
    col: Collector,
    scheduler: PollScheduler,
    reloader: Reloader,
    shutdown: Shutdown,
    about: Sequence[Mapping[str, Any]],
) -> int:
    """Start the HTTP server, the schedule and the token checks; 1 if it cannot listen."""
    exposition = make_exposition(col.store, col.graph_stats, col.sink_stats, version=__version__)
    exposition.insights.shard = col.shard.label
    exposition.insights.reload = reloader.stats
    app = make_app(
        exposition=exposition,
        store=col.store,
        version=__version__,
        alive=lambda: scheduler.scheduler.running,
        plugins=about,
        graph_stats=col.graph_stats,
        web_config=col.config.collector.web,
        reload=reloader.reload,
    )
    host, port = col.config.collector.listen_host, col.config.collector.listen_port
    try:
        await col.stack.enter_async_context(webhook_listener(app, exposition, col))
        port = await col.stack.enter_async_context(serving(app, host, port))
    except OSError as exc:
        log.error(
            "cannot listen",
            listen=f"{host}:{port}",
            error=str(exc),
            hint="another program may hold the port: pick another address with "
            "--listen HOST:PORT, $COLLECTORD_LISTEN or [collector] listen",
        )
        return 1
    await col.stack.enter_async_context(scheduler.running(shutdown.grace))
    await col.stack.enter_async_context(col.discoverer.running(reloader.apply_wanted))
    watcher = await col.stack.enter_async_context(TokenWatcher(col.client, col.runtimes, col.store))
    reloader.watcher = watcher
    await col.stack.enter_async_context(daemon_renewer(col, reloader))
    log.info(
        "collectord started",
        version=__version__,
        listen=f"http://{f'[{host}]' if ':' in host else host}:{port}/metrics",
        sources=len(col.runtimes),
        shard=col.shard.label,
    )
    return 0


async def _teardown(col: Collector, shutdown: Shutdown) -> None:
    """Leave every resource in reverse start order, all of it before the deadline less
    :data:`EXIT_MARGIN` (what runs past it is cancelled)."""
    deadline = shutdown.fix_deadline() - EXIT_MARGIN
    try:
        async with asyncio.timeout_at(deadline):
            await col.stack.aclose()
    except TimeoutError:
        log.warning("teardown cut short at the shutdown bound", bound=SHUTDOWN_BOUND)


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
    return all(results) and not col.discoverer.failed, col  # a failed discovery fails too
