"""collectord's HTTP server: ``/metrics``, ``/healthz``, ``/readyz``, the status page ``/``
and ``POST /-/reload``.

:func:`make_app` builds the aiohttp application from the exposition and the store;
:func:`start_server` / :func:`stop_server` run it inside the daemon's event loop, on a
listener that holds against slow and malformed clients (:mod:`collectord.web.listener`),
over HTTPS when ``[collector.web]`` names a certificate (:mod:`collectord.web.tls`). With
``basic_auth_users`` every path but ``/healthz`` and ``/readyz`` asks for credentials
(:mod:`collectord.web.auth`). The read-only routes answer GET and HEAD; any other path is a
404. Only ``/-/reload`` accepts a request body (and ignores it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from collectord.config.web import TLSFileError, WebConfig
from collectord.exporter.exposition import Exposition
from collectord.logs import get_logger
from collectord.store.store import Store
from collectord.web.auth import BasicAuth
from collectord.web.listener import GuardedSite, Limits, handler_limits
from collectord.web.status_page import render_status_page
from collectord.web.tls import ReloadingTLS

log = get_logger("collectord.web.server")

EXPOSITION_KEY = web.AppKey("exposition", Exposition)
STORE_KEY = web.AppKey("store", Store)
VERSION_KEY = web.AppKey("version", str)
ALIVE_KEY: web.AppKey[Callable[[], bool]] = web.AppKey("alive")
PLUGINS_KEY: web.AppKey[Sequence[Mapping[str, Any]]] = web.AppKey("plugins")
#: The Graph client's counters (a GraphStats) for the status page's budgets, or None.
GRAPH_STATS_KEY: web.AppKey[Any] = web.AppKey("graph_stats")
#: Re-reads the config: (True, "reloaded") or (False, the first problem line).
Reload = Callable[[], Awaitable[tuple[bool, str]]]
RELOAD_KEY: web.AppKey[Reload | None] = web.AppKey("reload")
RELOAD_LOCK_KEY = web.AppKey("reload_lock", asyncio.Lock)
WEB_KEY: web.AppKey[WebConfig | None] = web.AppKey("web")
LIMITS_KEY = web.AppKey("limits", Limits)
AUTH_KEY = web.AppKey("auth", BasicAuth)
#: The ``[webhooks]`` path when this app serves it (:mod:`collectord.web.webhooks`).
WEBHOOK_PATH_KEY: web.AppKey[str] = web.AppKey("webhook_path")

#: Paths served without credentials (probes must not need a password).
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
RELOAD_PATH = "/-/reload"

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
        shard=request.app[EXPOSITION_KEY].insights.shard,
        ready=store.ready,
        now=time.time(),
        plugins=request.app[PLUGINS_KEY],
        graph_stats=request.app[GRAPH_STATS_KEY],
        webhooks=request.app[EXPOSITION_KEY].insights.webhooks,
    )
    return web.Response(text=html, content_type="text/html", charset="utf-8")


def is_loopback(remote: str | None) -> bool:
    """Whether a peer address is on this host (127.0.0.0/8, ::1, or ::ffff:127.x)."""
    try:
        addr = ipaddress.ip_address((remote or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped.is_loopback
    return addr.is_loopback


async def reload_config(request: web.Request) -> web.Response:
    """``POST /-/reload``: the same as SIGHUP, from this host only."""
    if not is_loopback(request.remote):
        return web.Response(status=403, text="reload is accepted from loopback only\n")
    reload = request.app[RELOAD_KEY]
    if reload is None:
        return web.Response(status=503, text="reload not available\n")
    async with request.app[RELOAD_LOCK_KEY]:
        try:
            ok, line = await reload()
        except Exception:
            log.exception("reload failed")
            return web.Response(status=500, text="reload failed; see the log\n")
    if ok:
        return web.Response(text=f"{line}\n")
    return web.Response(status=500, text=f"reload failed, still running the old config: {line}\n")


@web.middleware
async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
    """Bodies only on ``/-/reload`` (and small there); credentials everywhere but the probes
    and the webhook path (Meta signs its deliveries instead, and the path has its limit)."""
    if request.path == request.app.get(WEBHOOK_PATH_KEY):
        return await handler(request)
    limits = request.app[LIMITS_KEY]
    if request.body_exists and (
        request.path != RELOAD_PATH or (request.content_length or 0) > limits.max_body
    ):
        resp = web.Response(status=413, text="this path takes no request body\n")
        resp.force_close()
        return resp
    auth = request.app[AUTH_KEY]
    protected = auth and request.path not in OPEN_PATHS
    if protected and not await auth.allows(request.headers.get("Authorization")):
        return web.Response(
            status=401,
            text="401 Unauthorized\n",
            headers={"WWW-Authenticate": 'Basic realm="collectord", charset="UTF-8"'},
        )
    return await handler(request)


def make_app(
    *,
    exposition: Exposition,
    store: Store,
    version: str,
    alive: Callable[[], bool],
    plugins: Sequence[Mapping[str, Any]] = (),
    graph_stats: Any = None,
    web_config: WebConfig | None = None,
    reload: Reload | None = None,
    limits: Limits | None = None,
) -> web.Application:
    """The aiohttp application serving the exposition, the probes, the status page and the
    reload endpoint. ``web_config`` (``[collector.web]``) adds TLS and basic auth;
    ``reload`` is what ``POST /-/reload`` calls (None: it answers 503); ``limits`` bound
    what one client may take (:class:`~collectord.web.listener.Limits`)."""
    limits = limits or Limits()
    app = web.Application(middlewares=[guard], client_max_size=limits.max_body)
    app[WEB_KEY] = web_config
    app[LIMITS_KEY] = limits
    app[AUTH_KEY] = BasicAuth(web_config.basic_auth_users if web_config else {})
    app[RELOAD_KEY] = reload
    app[RELOAD_LOCK_KEY] = asyncio.Lock()
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
    app.router.add_post(RELOAD_PATH, reload_config)
    return app


@asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """The HTTP server, listening while entered; yields the bound port."""
    runner, bound = await start_server(app, host, port)
    try:
        yield bound
    finally:
        await stop_server(runner)


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
    web_config, limits = app[WEB_KEY], app[LIMITS_KEY]
    tls = None
    if web_config is not None and web_config.tls:
        try:
            tls = ReloadingTLS(web_config)
        except TLSFileError as exc:
            raise OSError(f"cannot serve HTTPS: [collector.web] {exc.key}: {exc}") from None
    kwargs: dict[str, Any] = {} if access_log else {"access_log": None}
    kwargs.update(handler_limits(limits))
    runner = web.AppRunner(app, shutdown_timeout=SHUTDOWN_TIMEOUT, **kwargs)
    await runner.setup()
    site = GuardedSite(
        runner,
        host,
        port,
        limits=limits,
        handler_kwargs=kwargs,
        ssl_context=tls.context if tls else None,
        backlog=min(limits.max_connections, 128),
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    on = web_config.describe() if web_config else "TLS off; basic auth off"
    log.info("http listening", host=host, port=site.port, protection=on)
    return runner, site.port


async def stop_server(runner: web.AppRunner) -> None:
    """Stop accepting connections, let requests in flight finish briefly, run app cleanup."""
    await runner.cleanup()
