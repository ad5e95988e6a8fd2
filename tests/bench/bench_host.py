"""What the host's data flow costs the event loop (run by hand, prints figures and ratios).

    .venv/bin/python tests/bench/bench_host.py [--repeat N]

Four measurements, side by side in one run (everything on loopback, in one process):

(a) event-loop time of one poll: a source's 5,000-sample result recorded (store and JSONL
    sink) beside 55,000 other series (60,000 in all);
(b) ``/metrics`` at 50,000 series: first and repeated scrape, against the same series in
    plain prometheus-client ``Gauge`` objects served by prometheus-client's own HTTP server;
(c) ``/healthz`` latency while ten ``/metrics`` scrapes run at once (just after a change);
(d) the JSONL sink at 30,000 and 60,000 series: event-loop time and bytes written (data and
    index, from ``/proc/self/io``) for a poll that changes 1 % of the values.

Figures are printed, never asserted: they depend on the machine. The script also runs
against the code before the host refactor (it adapts to the older API), to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from collectord.config.types import JsonlSinkConfig
from collectord.graph.stats import GraphStats
from collectord.model import Sample, make_labels
from collectord.sinks.jsonl import JsonlSink
from collectord.sinks.stats import SinkStats
from collectord.store.store import Store
from collectord.web.server import make_app, start_server, stop_server

try:  # after the refactor
    from collectord.exporter.exposition import make_exposition
    from collectord.sinks.background import BackgroundSink
except ImportError:  # before it
    make_exposition = None  # type: ignore[assignment]
    BackgroundSink = None  # type: ignore[assignment,misc]

END = datetime(2026, 11, 23, 8, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 18, tzinfo=UTC)
PER_SOURCE = 5000


def samples(
    source: int, count: int, value: float = 1.0, changed: int | None = None
) -> list[Sample]:
    """``count`` post samples of one source: ``value + n``, or only for the first
    ``changed`` of them (the others keep ``1 + n``)."""
    return [
        Sample(
            metric="facebook_post_clicks",
            graph_metric="post_clicks",
            value=(value if changed is None or n < changed else 1.0) + n,
            labels=make_labels(
                {"page_id": str(source), "post_id": f"{source}_{n}", "period": "lifetime"}
            ),
            object_id=f"{source}_{n}",
            cadence="fast",
            period="lifetime",
            end_time=END,
            help="Clicks on the post.",
        )
        for n in range(count)
    ]


def filled_store(series: int) -> Store:
    store = Store()
    for s in range(series // PER_SOURCE):
        store.register(f"src{s}", "facebook_post", ("fast",))
        store.record_success(f"src{s}", "fast", samples(s, PER_SOURCE), duration=0.1)
    return store


def wchar() -> int:
    """Bytes this process passed to write() so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


# -- (a) one poll -----------------------------------------------------------------------------


def bench_poll(repeat: int, tmp: Path) -> float:
    store = filled_store(60_000)
    sink: Any = JsonlSink(JsonlSinkConfig(path=tmp / "a.jsonl"), tmp / "a-state")
    sink.open()
    for s in range(12):
        sink.write(f"src{s}", "facebook_post", samples(s, PER_SOURCE), NOW)
    if BackgroundSink is not None:
        sink = BackgroundSink(sink)
        sink.start()
    times = []
    for i in range(repeat):
        batch = samples(0, PER_SOURCE, value=float(i + 2))
        started = time.perf_counter()
        store.record_success("src0", "fast", batch, duration=0.1)
        sink.write("src0", "facebook_post", batch, NOW + timedelta(minutes=i + 1))
        store.snapshot()  # what the next scrape takes on the loop
        times.append(time.perf_counter() - started)
        if BackgroundSink is not None:
            sink.flush(60)  # polls are minutes apart: the writer is idle at the next one
    sink.close()
    result = statistics.median(times)
    print(
        f"(a) poll of 5,000 samples beside 55,000 series, loop time: {ms(result)}"
        f" (min {ms(min(times)).strip()})"
    )
    return result


# -- (b), (c) scrapes -------------------------------------------------------------------------


async def serve(store: Store) -> tuple[Any, int]:
    if make_exposition is not None:
        exposition = make_exposition(store, GraphStats(), [SinkStats("jsonl")], version="b")
        app = make_app(exposition=exposition, store=store, version="b", alive=lambda: True)
    else:
        from collectord.exporter.registry import make_registry

        registry = make_registry(store, GraphStats(), [SinkStats("jsonl")], version="b")
        app = make_app(registry=registry, store=store, version="b", alive=lambda: True)  # type: ignore[call-arg]
    return await start_server(app, "127.0.0.1", 0)


def plain_prometheus(series: int) -> int:
    """The same series as plain Gauges, served by prometheus-client's own HTTP server."""
    registry = CollectorRegistry()
    gauge = Gauge(
        "facebook_post_clicks",
        "Clicks on the post.",
        ("source", "page_id", "post_id", "period"),
        registry=registry,
    )
    for s in range(series // PER_SOURCE):
        for sample in samples(s, PER_SOURCE):
            gauge.labels(f"src{s}", *(v for _, v in sample.labels)).set(sample.value)
    server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    return server.server_port


async def timed_get(session: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with session.get(url) as resp:
        await resp.read()
    return time.perf_counter() - started


async def bench_scrapes(repeat: int) -> tuple[float, float, float, float]:
    store = filled_store(50_000)
    runner, port = await serve(store)
    plain_port = await asyncio.to_thread(plain_prometheus, 50_000)
    ours, plain = f"http://127.0.0.1:{port}/metrics", f"http://127.0.0.1:{plain_port}/metrics"
    async with aiohttp.ClientSession() as session:
        first = await timed_get(session, ours)
        again = statistics.median([await timed_get(session, ours) for _ in range(repeat)])
        plain_t = statistics.median([await timed_get(session, plain) for _ in range(repeat)])
        print(f"(b) /metrics, 50,000 series: first scrape      {ms(first)}")
        print(f"    /metrics, 50,000 series: repeated scrape   {ms(again)}")
        print(f"    prometheus-client Gauges + its own server {ms(plain_t)}")
        print(
            f"    ratios: first/plain {first / plain_t:.2f}x, repeated/plain {again / plain_t:.3f}x"
        )
        healthz = await bench_healthz(session, store, port)
    await stop_server(runner)
    return first, again, plain_t, healthz


async def bench_healthz(session: aiohttp.ClientSession, store: Store, port: int) -> float:
    """Worst /healthz latency while ten scrapes of a just-changed store run at once."""
    base = f"http://127.0.0.1:{port}"
    store.record_success("src0", "fast", samples(0, PER_SOURCE, value=9.0), duration=0.1)
    scrapes = [asyncio.create_task(timed_get(session, base + "/metrics")) for _ in range(10)]
    latencies = []
    while not all(t.done() for t in scrapes):
        latencies.append(await timed_get(session, base + "/healthz"))
    await asyncio.gather(*scrapes)
    idle = statistics.median([await timed_get(session, base + "/healthz") for _ in range(20)])
    worst = max(latencies) if latencies else 0.0
    print(
        f"(c) /healthz during 10 concurrent scrapes: worst {ms(worst)}, "
        f"median {ms(statistics.median(latencies) if latencies else 0.0)} "
        f"({len(latencies)} probes); idle {ms(idle)}"
    )
    return worst


# -- (d) the JSONL sink -------------------------------------------------------------------------


def bench_jsonl(series: int, repeat: int, tmp: Path) -> tuple[float, float]:
    root = tmp / f"d{series}"
    sink: Any = JsonlSink(JsonlSinkConfig(path=root / "samples.jsonl"), root / "state")
    if BackgroundSink is not None:
        sink = BackgroundSink(sink)
        sink.start()
    else:
        sink.open()
    for s in range(series // PER_SOURCE):
        sink.write(f"src{s}", "facebook_post", samples(s, PER_SOURCE), NOW)
    changed = PER_SOURCE // 100
    loop_times, sizes = [], []
    for i in range(repeat):
        if BackgroundSink is not None:
            sink.flush(60)
        polls = [
            (s, samples(s, PER_SOURCE, value=float(i + 2), changed=changed))
            for s in range(series // PER_SOURCE)
        ]
        when = NOW + timedelta(minutes=i + 1)
        before = wchar()
        started = time.perf_counter()
        for s, batch in polls:
            sink.write(f"src{s}", "facebook_post", batch, when)
        loop_times.append(time.perf_counter() - started)
        if BackgroundSink is not None:
            sink.flush(60)
        sizes.append(wchar() - before)
    sink.close()
    loop_t, size = statistics.median(loop_times), statistics.median(sizes)
    print(
        f"(d) JSONL, {series:,} series, 1% changed: loop time {ms(loop_t)}, "
        f"written {size / 1e6:6.2f} MB per poll (mean {statistics.mean(sizes) / 1e6:.2f} MB)"
    )
    return loop_t, size


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    version = "after" if make_exposition is not None else "before"
    print(f"host data flow ({version} the refactor), median of {args.repeat}")
    with tempfile.TemporaryDirectory(prefix="collectord-bench-") as name:
        tmp = Path(name)
        bench_poll(args.repeat, tmp)
        run(bench_scrapes(args.repeat))
        for series in (30_000, 60_000):
            bench_jsonl(series, args.repeat, tmp)


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    from collectord.logs import configure_logging

    configure_logging("warning")
    assert threading.current_thread() is threading.main_thread()
    main()
