"""A real collectord HTTP server on loopback for the listener, TLS and auth tests, and raw
socket clients that behave the way well-mannered and hostile clients do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from collectord.config.web import WebConfig
from collectord.exporter.exposition import make_exposition
from collectord.graph.stats import GraphStats
from collectord.sinks.stats import SinkStats
from collectord.store.store import Store
from collectord.web.listener import ConnectionGuard, GuardedSite, Limits
from collectord.web.server import Reload, make_app, start_server, stop_server

TLS = Path(__file__).resolve().parents[1] / "data" / "tls"
#: bcrypt (cost 4, fast) of the password "s3cret".
HASH = "$2b$04$727DLNLHKB0Y8jSl0zmCRe7X6gktlrvteuuiRhfL8EssHT9v1na/."
#: Generous: these tests assert that answers come, never how fast.
PATIENCE = 30.0


@dataclass
class Running:
    port: int
    store: Store
    guard: ConnectionGuard
    app: Any

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"


@asynccontextmanager
async def serve(
    *,
    web_config: WebConfig | None = None,
    limits: Limits | None = None,
    reload: Reload | None = None,
) -> AsyncIterator[Running]:
    store = Store()
    store.register("acme-page", "facebook_page", ("fast",))
    exposition = make_exposition(store, GraphStats(), [SinkStats("jsonl")], version="1.2.3")
    app = make_app(
        exposition=exposition,
        store=store,
        version="1.2.3",
        alive=lambda: True,
        web_config=web_config,
        reload=reload,
        limits=limits,
    )
    runner, port = await start_server(app, "127.0.0.1", 0)
    site = next(s for s in runner.sites if isinstance(s, GuardedSite))
    try:
        yield Running(port, store, site.guard, app)
    finally:
        await stop_server(runner)


async def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` on a fresh connection, return everything until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), PATIENCE)
    finally:
        writer.close()


async def get(port: int, path: str, headers: str = "") -> tuple[int, bytes]:
    """A plain GET (``Connection: close``): status and body."""
    raw = await exchange(
        port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode()
    )
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Wait (patiently) until the server closes the connection; True when it did."""
    try:
        await asyncio.wait_for(reader.read(), PATIENCE)
    except ConnectionError:
        return True
    except TimeoutError:
        return False
    return True
