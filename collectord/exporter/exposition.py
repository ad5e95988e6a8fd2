"""``/metrics`` bodies rendered once per change, off the event loop.

The plugins' samples change only when the store changes (a poll landed), so their part of
the exposition is rendered once per store version and per format (Prometheus text,
OpenMetrics, each with prometheus-client's own ``generate_latest``), in a worker thread,
and reused by every scrape until the next change. Concurrent scrapes of a new version
share one rendering.

Self-metrics change on their own (Graph request counters, sink counters, process CPU), so
they are not cached: their families (a few per source) are collected on the loop at every
scrape, where the live counters are written, and rendered in the worker thread with the
process and platform collectors. The body is the cached sample part followed by that
small part (the OpenMetrics sample part without its ``# EOF``).

Compression: for gzip, the cached part is compressed once into a ``zlib`` stream flushed
with ``Z_SYNC_FLUSH``; each scrape copies the compressor (``compressobj.copy()``) and
compresses only the small part, which yields one valid gzip member.
"""

from __future__ import annotations

import asyncio
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder

from collectord.exporter.families import SampleFamilies
from collectord.exporter.registry import InsightsCollector
from collectord.graph.stats import GraphStats
from collectord.sinks.stats import SinkStats
from collectord.store.store import Snapshot, Store

Encoder = Callable[[Any], bytes]
_EOF = b"# EOF\n"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class _Families:
    """Already collected families, in the shape ``generate_latest`` reads (``collect()``)."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = tuple(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def _failed(future: asyncio.Future[Any]) -> bool:
    """True when ``future`` ended without a result (the next scrape renders again)."""
    return future.done() and (future.cancelled() or future.exception() is not None)


def is_openmetrics(content_type: str) -> bool:
    return content_type.startswith("application/openmetrics-text")


class _Rendered:
    """The sample part of one store version, rendered per format on first use."""

    def __init__(self, version: int, built: SampleFamilies) -> None:
        self.version = version
        self.built = built
        self._lock = threading.Lock()
        self._bodies: dict[str, bytes] = {}
        self._gzip: dict[str, tuple[bytes, Any]] = {}

    def body(self, encoder: Encoder, content_type: str) -> bytes:
        with self._lock:
            body = self._bodies.get(content_type)
            if body is None:
                body = encoder(_Families(self.built.families))
                if is_openmetrics(content_type) and body.endswith(_EOF):
                    body = body[: -len(_EOF)]
                self._bodies[content_type] = body
            return body

    def gzip(self, encoder: Encoder, content_type: str) -> tuple[bytes, Any]:
        """The compressed sample part and the compressor to continue from (copy it)."""
        body = self.body(encoder, content_type)
        with self._lock:
            cached = self._gzip.get(content_type)
            if cached is None:
                comp = zlib.compressobj(6, zlib.DEFLATED, _GZIP_WBITS)
                cached = (comp.compress(body) + comp.flush(zlib.Z_SYNC_FLUSH), comp)
                self._gzip[content_type] = cached
            return cached


class Exposition:
    """The ``/metrics`` body for an Accept header, from a cache renewed when the store
    changes (see module doc). :attr:`registry` is the same data as one registry (for tests
    and ``get_sample_value``)."""

    def __init__(
        self,
        store: Store,
        insights: InsightsCollector,
        process: CollectorRegistry,
        registry: CollectorRegistry,
    ) -> None:
        self._store = store
        self.insights = insights
        self._process = process
        self.registry = registry
        self._pending: tuple[int, asyncio.Future[_Rendered]] | None = None
        #: Sample-part renderings so far (one per store version that was scraped).
        self.renders = 0

    def _build(self, snapshot: Snapshot) -> _Rendered:
        self.renders += 1
        return _Rendered(snapshot.version, self.insights.families.build(snapshot))

    async def _rendered(self, snapshot: Snapshot) -> _Rendered:
        """The sample part of ``snapshot``: rendered once, shared by concurrent scrapes (a
        scrape that is cancelled does not cancel the rendering the others wait for)."""
        pending = self._pending
        if pending is None or pending[0] != snapshot.version or _failed(pending[1]):
            loop = asyncio.get_running_loop()
            future = loop.run_in_executor(None, self._build, snapshot)
            pending = self._pending = (snapshot.version, future)
        return await asyncio.shield(pending[1])

    async def body(self, accept: str, *, gzip: bool = False) -> tuple[bytes, str]:
        """``(body, content type)`` for a scrape sending ``accept``; gzip-compressed if asked."""
        encoder, content_type = choose_encoder(accept)
        snapshot = self._store.snapshot()
        rendered = await self._rendered(snapshot)
        live = list(self.insights.self_families(snapshot, rendered.built.series_per_source))
        loop = asyncio.get_running_loop()
        body = await loop.run_in_executor(
            None, self._finish, rendered, live, encoder, content_type, gzip
        )
        return body, content_type

    def _finish(
        self,
        rendered: _Rendered,
        live: Sequence[Metric],
        encoder: Encoder,
        content_type: str,
        gzip: bool,
    ) -> bytes:
        tail = encoder(_Families([*live, *self._process.collect()]))
        if not gzip:
            return rendered.body(encoder, content_type) + tail
        head, comp = rendered.gzip(encoder, content_type)
        rest = comp.copy()
        return head + rest.compress(tail) + rest.flush()


def make_exposition(
    store: Store,
    graph_stats: GraphStats,
    sinks: Sequence[SinkStats],
    *,
    version: str,
) -> Exposition:
    """The exposition the daemon serves: samples, self-metrics, process and platform."""
    insights = InsightsCollector(store, graph_stats, sinks, version=version)
    process = CollectorRegistry(auto_describe=False)
    ProcessCollector(registry=process)
    PlatformCollector(registry=process)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(insights)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return Exposition(store, insights, process, registry)
