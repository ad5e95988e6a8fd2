"""collectord's HTTP server: ``/metrics``, ``/healthz``, ``/readyz`` and the status page ``/``.

:func:`make_app` builds the aiohttp application from the exposition and the store;
:func:`start_server` / :func:`stop_server` run it inside the daemon's event loop. Every
route answers GET and HEAD; any other path is a 404.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from collectord.exporter.exposition import Exposition
from collectord.logs import get_logger
from collectord.store.store import Store
from collectord.web.status_page import render_status_page

log = get_logger("collectord.web.server")

EXPOSITION_KEY = web.AppKey("exposition", Exposition)
STORE_KEY = web.AppKey("store", Store)
VERSION_KEY = web.AppKey("version", str)
ALIVE_KEY: web.AppKey[Callable[[], bool]] = web.AppKey("alive")
PLUGINS_KEY: web.AppKey[Sequence[Mapping[str, Any]]] = web.AppKey("plugins")
#: The Graph client's counters (a GraphStats) for the status page's budgets, or None.
GRAPH_STATS_KEY: web.AppKey[Any] = web.AppKey("graph_stats")

#: Seconds the server waits for requests in flight when it stops.
SHUTDOWN_TIMEOUT = 2.0


async def metrics(request: web.Request) -> web.Response:
    """The samples and self-metrics in Prometheus text format, or OpenMetrics when the
    Accept header asks; gzip-compressed when Accept-Encoding allows it. Rendered off the
    event loop and cached between store changes (:mod:`collectord.exporter.exposition`)."""
    gzip = accepts_gzip(request.headers.get("Accept-Encoding", ""))
    try:
        body, content_type = await request.app[EXPOSITION_KEY].body(
            request.headers.get("Accept", ""), gzip=gzip
        )
    except Exception:
        log.exception("metrics collection failed")
        return web.Response(status=500, text="error collecting metrics; see the log\n")
    headers = {"Content-Type": content_type, "Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


def accepts_gzip(accept_encoding: str) -> bool:
    """True when an ``Accept-Encoding`` header allows gzip (``gzip`` or ``*``, q > 0)."""
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = params.strip()
        if q.startswith("q="):
            try:
                return float(q[2:]) > 0
            except ValueError:
                return False
        return True
    return False


async def healthz(request: web.Request) -> web.Response:
    """200 while the event loop and scheduler are alive, else 503."""
    if request.app[ALIVE_KEY]():
        return web.Response(text="ok\n")
    return web.Response(status=503, text="not alive: the scheduler has stopped\n")


async def readyz(request: web.Request) -> web.Response:
    """503 until every source finished its first poll of every cadence, then 200."""
    store = request.app[STORE_KEY]
    if store.ready:
        return web.Response(text="ready\n")
    pending = sum(1 for s in store.sources if not s.first_polls_done)
    return web.Response(
        status=503, text=f"not ready: {pending} source(s) still on their first poll\n"
    )


async def status_page(request: web.Request) -> web.Response:
    """The HTML overview of every source."""
    store = request.app[STORE_KEY]
    html = render_status_page(
        store.snapshot(),
        version=request.app[VERSION_KEY],
        ready=store.ready,
        now=time.time(),
        plugins=request.app[PLUGINS_KEY],
        graph_stats=request.app[GRAPH_STATS_KEY],
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def make_app(
    *,
    exposition: Exposition,
    store: Store,
    version: str,
    alive: Callable[[], bool],
    plugins: Sequence[Mapping[str, Any]] = (),
    graph_stats: Any = None,
) -> web.Application:
    """The aiohttp application serving the exposition, the probes and the status page."""
    app = web.Application()
    app[EXPOSITION_KEY] = exposition
    app[STORE_KEY] = store
    app[VERSION_KEY] = version
    app[ALIVE_KEY] = alive
    app[PLUGINS_KEY] = plugins
    app[GRAPH_STATS_KEY] = graph_stats
    # add_get also answers HEAD (aiohttp drops the body).
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", status_page)
    return app


async def start_server(
    app: web.Application,
    host: str,
    port: int,
    *,
    access_log: bool = False,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on ``host:port``; returns the runner and the bound port.

    ``port`` 0 picks a free port (give an IP address as ``host`` then: a name that resolves
    to several addresses gets one port per address). Raises :class:`OSError` naming the
    address when it cannot be bound. Per-request access logs are off unless asked for.
    """
    kwargs = {} if access_log else {"access_log": None}
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, **kwargs)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    log.info("http listening", host=host, port=site.port)
    return runner, site.port


async def stop_server(runner: web.AppRunner) -> None:
    """Stop accepting connections, let requests in flight finish briefly, run app cleanup."""
    await runner.cleanup()
