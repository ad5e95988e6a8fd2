"""One full cycle of 5,000 Instagram media with 100 ms added to every HTTP request (by hand).

    .venv/bin/python tests/bench/bench_latency.py [--media N] [--accounts K] [--latency S]

Starts the built-in simulator on loopback and makes it answer every HTTP request
``--latency`` seconds late (a ``delay`` fault without a count: a batch of 50 waits once,
as one round trip to Meta does). Then a real :class:`~collectord.daemon.Collector` with
``max_concurrency = 8`` polls every cadence of ``instagram_media`` sources, twice:

- spread: ``--accounts`` sources of ``media / accounts`` media each, polled at once (as the
  scheduler starts sources due together). The simulator links one Instagram account to
  its Page, so the sources follow that account's newest media; each is its own source with
  its own list and batches, which is what the cycle's cost depends on;
- one account: one source of ``--media`` media.

Printed: wall time of each cycle, HTTP requests and Graph calls, and the ratios that do not
depend on the machine: round trips per cycle against the latency floor (requests / 8 in
flight x latency), the pages of the media list (100 media each, Meta's largest page, read
one after another: a floor of their own), and one account against spread. Target: at most 5 s for both.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectord.config.loader import load_config
from collectord.daemon import Collector
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.simulator import Simulator, World

CONCURRENCY = 8


@dataclass(frozen=True)
class CycleRun:
    label: str
    sources: int
    media_per_source: int
    wall_seconds: float
    http_requests: int
    graph_calls: int
    list_pages: int  # requests for a page of the media list (one after another per source)
    failed: tuple[str, ...]

    def floor_seconds(self, latency: float) -> float:
        """The least time the requests need with 8 in flight at ``latency`` each."""
        return -(-self.http_requests // CONCURRENCY) * latency


def config_text(world: World, base_url: str, state: Path, sources: int, per_source: int) -> str:
    token = world.demo_token("instagram_media")
    ig_user_id = world.instagram.user_ids[0]
    head = f"""
[collector]
state_dir = "{state.as_posix()}"

[graph]
base_url = "{base_url}"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"
max_concurrency = {CONCURRENCY}
"""
    tables = [
        f"""
[[source]]
name = "media-{n}"
plugin = "instagram_media"
access_token = "{token}"
ig_user_id = "{ig_user_id}"
max_age = "{_days(world)}d"
max_media = {per_source}
"""
        for n in range(sources)
    ]
    return head + "".join(tables)


def _days(world: World) -> int:
    now = world.clock()
    media = world.instagram.media(world.instagram.user_ids[0], now)
    oldest = min((m["created_at"] for m in media), default=now)
    return (now - oldest).days + 2


async def run_cycle(
    label: str, n_media: int, sources: int, latency: float, now: datetime
) -> CycleRun:
    per_source = n_media // sources
    world = World(clock=lambda: now, n_media=n_media, call_budget=10**9)
    sim = Simulator(world)
    plugins = plugin_map(load_source_plugins())
    base_url = await sim.start()
    try:
        with tempfile.TemporaryDirectory(prefix="collectord-bench-") as tmp:
            path = Path(tmp) / "collector.toml"
            text = config_text(world, base_url, Path(tmp) / "state", sources, per_source)
            path.write_text(text)
            config = load_config(path, plugins, environ={})
            async with Collector(config, plugins, sinks_enabled=False) as col:
                sim.faults.delay(latency, count=None)
                sim.reset_stats()
                polls = [(rt, cadence) for rt in col.runtimes for cadence in rt.config.cadences()]
                started = time.perf_counter()
                results = await asyncio.gather(*(col.poller.poll(rt, c) for rt, c in polls))
                wall = time.perf_counter() - started
                failed = tuple(
                    f"{rt.name} {c}: {rt.status.per_cadence[c].last_error}"
                    for (rt, c), ok in zip(polls, results, strict=True)
                    if not ok
                )
    finally:
        await sim.stop()
    stats = sim.stats()
    list_pages = sum(1 for r in sim.requests if r.batch_size is None and r.path.endswith("/media"))
    return CycleRun(
        label,
        sources,
        per_source,
        wall,
        stats["http_requests"],
        stats["graph_calls"],
        list_pages,
        failed,
    )


def format_runs(runs: Sequence[CycleRun], latency: float) -> str:
    lines = [
        f"one cycle of instagram_media, {latency * 1000:.0f} ms per HTTP request, "
        f"max_concurrency {CONCURRENCY}",
        "",
    ]
    for run in runs:
        floor = run.floor_seconds(latency)
        lines.append(
            f"{run.label:<12} {run.sources:>2} x {run.media_per_source:>5} media: "
            f"{run.wall_seconds:6.2f}s  ({run.http_requests} HTTP requests, "
            f"{run.graph_calls} Graph calls; latency floor {floor:.2f}s, "
            f"wall / floor {run.wall_seconds / floor if floor else 0:.2f}, "
            f"round trips in sequence {run.wall_seconds / latency:.0f})"
        )
        chain = run.list_pages / run.sources
        lines.append(
            f"{'':<12} {run.list_pages} list pages, {chain:.0f} one after another per source: "
            f"{chain * latency:.2f}s of the cycle before any insight can be asked for the last"
        )
        lines.extend(f"  FAILED {f}" for f in run.failed)
    if len(runs) == 2 and runs[0].wall_seconds:
        lines.append("")
        lines.append(
            f"one account / spread: {runs[1].wall_seconds / runs[0].wall_seconds:.2f} "
            "(1.0: a source's batches overlap as well as separate sources do)"
        )
    lines.append("target: at most 5 s for both")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[CycleRun]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=5000)
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds per request")
    args = parser.parse_args(argv)
    now = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=1)

    async def both() -> list[CycleRun]:
        spread = await run_cycle("spread", args.media, args.accounts, args.latency, now)
        single = await run_cycle("one account", args.media, 1, args.latency, now)
        return [spread, single]

    runs = asyncio.run(both())
    print(format_runs(runs, args.latency))
    return runs


if __name__ == "__main__":
    from collectord.logs import configure_logging

    configure_logging("warning")
    sys.exit(0 if not any(run.failed for run in main()) else 1)
