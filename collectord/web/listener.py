"""A listener that holds against idle, slow and malformed clients.

aiohttp alone keeps a connection that never finishes its request for its keep-alive time
(about an hour), has no limit on connections, and logs every malformed request as an error
with a traceback. :class:`GuardedSite` serves the same application with:

- a **header timeout**: a request whose line and headers are not complete within
  :attr:`Limits.header_timeout` of its first byte (or of the connection opening) is cut;
- an **idle timeout** between keep-alive requests (aiohttp's ``keepalive_timeout``);
- **size limits** on the request line and each header, and on the number of headers;
- a **connection limit**: when :attr:`Limits.max_connections` are open, a new connection
  takes the place of the oldest one that has not sent a complete request (idle, slow or
  silent), so a probe that asks at once is answered even while an attacker holds every
  slot; only when every connection is busy answering is the new one closed;
- **quiet errors**: a malformed request gets a bare 400 and is logged as one warning per
  :attr:`Limits.log_interval` with the count since the last line, never a traceback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

from collectord.logs import get_logger

log = get_logger("collectord.web.listener")

_END_OF_HEADERS = b"\r\n\r\n"


@dataclass(frozen=True)
class Limits:
    """What one client may take from the listener. The defaults suit a Prometheus scrape
    (one small request every few seconds at most, answered at once)."""

    #: Seconds from a request's first byte (or a new connection) to the end of its headers.
    header_timeout: float = 10.0
    #: Seconds an idle keep-alive connection is kept between requests.
    idle_timeout: float = 60.0
    #: Connections open at once; beyond it the oldest incomplete one gives way.
    max_connections: int = 256
    #: Longest request line and longest header line, in bytes.
    max_line_size: int = 8190
    #: Most headers in one request.
    max_headers: int = 64
    #: Seconds between two log lines about malformed requests.
    log_interval: float = 60.0
    #: Largest body accepted (only ``POST /-/reload`` accepts one, and ignores it).
    max_body: int = 4096


def handler_limits(limits: Limits) -> dict[str, Any]:
    """The keyword arguments of aiohttp's connection handler that ``limits`` sets."""
    return {
        "keepalive_timeout": limits.idle_timeout,
        "max_line_size": limits.max_line_size,
        "max_field_size": limits.max_line_size,
        "max_headers": limits.max_headers,
        # An unread body (a POST /-/reload with one) is drained this long, then cut.
        "lingering_time": 1.0,
    }


class MalformedRequests:
    """Counts malformed requests and logs at most one warning per ``interval``."""

    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.total = 0
        self._unlogged = 0
        self._last_line: float | None = None

    def note(self, remote: str | None, error: str) -> None:
        self.total += 1
        self._unlogged += 1
        now = self.clock()
        if self._last_line is not None and now - self._last_line < self.interval:
            return
        log.warning(
            "malformed HTTP requests answered with 400",
            count=self._unlogged,
            last_from=remote or "unknown",
            last_error=" ".join(error.split())[:160],
            next_report_in=f"{self.interval:g}s at the earliest",
        )
        self._unlogged = 0
        self._last_line = now


class ConnectionGuard:
    """The connections of one listener, for the limit and the eviction order."""

    def __init__(self, limits: Limits, malformed: MalformedRequests) -> None:
        self.limits = limits
        self.malformed = malformed
        #: Open connections, oldest first (dicts keep insertion order).
        self.open: dict[GuardedHandler, None] = {}
        #: Connections let in, made to give way, and refused since start.
        self.admitted = 0
        self.evicted = 0
        self.refused = 0
        self._changed = asyncio.Event()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        """Return once ``condition()`` holds, checked after each connection let in or
        refused (for tests and diagnostics)."""
        while not condition():
            self._changed.clear()
            await self._changed.wait()

    def admit(self, handler: GuardedHandler) -> bool:
        """Make room for ``handler``; False when every slot is busy answering."""
        if len(self.open) >= self.limits.max_connections:
            victim = next((h for h in self.open if not h.busy), None)
            if victim is None:
                self.refused += 1
                self._changed.set()
                return False
            self.evicted += 1
            self.release(victim)
            victim.force_close()
        self.open[handler] = None
        self.admitted += 1
        self._changed.set()
        return True

    def release(self, handler: GuardedHandler) -> None:
        self.open.pop(handler, None)


class GuardedHandler(RequestHandler):
    """aiohttp's connection handler with the header timeout, the connection slot and the
    quiet handling of malformed requests."""

    def __init__(self, manager: Any, guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = guard
        #: Headers complete and the answer not yet sent: never evicted.
        self.busy = False
        self._tail = b""
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if not self._guard.admit(self):
            self.force_close()
            return
        self._start_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._guard.release(self)
        self._cancel_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.busy and data:
            if self._header_timer is None:
                self._start_header_timer()
            seen = self._tail + data
            if _END_OF_HEADERS in seen:
                self.busy = True
                self._tail = b""
                self._cancel_header_timer()
            else:
                self._tail = seen[-(len(_END_OF_HEADERS) - 1) :]
        super().data_received(data)

    def log_access(
        self, request: BaseRequest, response: StreamResponse, time: float | None
    ) -> None:
        """Called once each answer is sent: the connection waits for its next request."""
        self.busy = False
        super().log_access(request, response, time)

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> StreamResponse:
        if status >= 500:
            return super().handle_error(request, status, exc, message)
        self._guard.malformed.note(request.remote, str(exc or message or status))
        if request.writer.output_size > 0:
            raise ConnectionError("malformed request after an answer had started")
        resp = web.Response(status=status, text=f"{status} Bad Request\n")
        resp.force_close()
        return resp

    def _start_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self._loop.call_later(
            self._guard.limits.header_timeout, self._header_timeout
        )

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.busy:
            self.force_close()


class GuardedSite(web.TCPSite):
    """A :class:`aiohttp.web.TCPSite` whose connections are :class:`GuardedHandler`\\ s.

    It reuses TCPSite's settings (host, port, TLS context, backlog) as aiohttp 3 keeps
    them; the tests of the listener would fail first should a new aiohttp change them."""

    def __init__(
        self,
        runner: web.AppRunner,
        host: str,
        port: int,
        *,
        limits: Limits,
        handler_kwargs: dict[str, Any],
        **kw: Any,
    ) -> None:
        super().__init__(runner, host, port, **kw)
        self.guard = ConnectionGuard(limits, MalformedRequests(limits.log_interval))
        #: What the runner was given for its handlers (access log, ...), plus the limits.
        self._handler_kwargs = {**handler_kwargs, **handler_limits(limits)}

    def _protocol(self) -> GuardedHandler:
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")
        loop = asyncio.get_running_loop()
        return GuardedHandler(server, self.guard, loop=loop, **self._handler_kwargs)

    async def start(self) -> None:
        # BaseSite.start registers the site with its runner; TCPSite.start would then
        # create the server with aiohttp's own handler, which is what this one replaces.
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        timeout = self.guard.limits.header_timeout
        extra = {"ssl_handshake_timeout": timeout} if self._ssl_context is not None else {}
        self._server = await loop.create_server(
            self._protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            **extra,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
