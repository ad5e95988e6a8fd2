"""Graph calls of one simulated day at the default cadences, against flat polling (by hand).

    .venv/bin/python tests/bench/bench_day.py [--posts N] [--media N] [--hours H]

Starts the built-in simulator on loopback with one Page of ``--posts`` posts linked to one
Instagram account of ``--media`` media (and its live stories) and drives a real
:class:`~collectord.daemon.Collector` through ``--hours`` simulated hours: the simulator's
world and the poller share a virtual clock that moves 15 minutes between fast polls, so the
day takes seconds. Each source is polled on its fast cadence every 15 minutes (96 times a
day) and on its daily cadence once, at the start, as the scheduler would; the sources'
own options (``tier_age`` and the like) keep their defaults, only the windows
(``max_age``, ``max_posts``, ``max_media``) are widened to follow every object.

The count is the simulator's request log: every Graph call, a batch element counting one,
as Meta's rate limits count them. Flat polling, the reference, is what a collector without
cadences would send: every metric of every object every 15 minutes, measured as the calls of
one fast and one daily poll of every source at the start, times the polls of the day.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench_cycle import IG_MEDIA_SOURCE, IG_USER_SOURCE, PAGE_SOURCE, POST_SOURCE, plan_window
from bench_cycle import config_text as cycle_config

from collectord.config.loader import load_config
from collectord.daemon import Collector
from collectord.model import Cadence
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.simulator import Simulator, World

START = datetime(2026, 7, 15, 7, 0, tzinfo=UTC)
FAST = timedelta(minutes=15)
SOURCES = (PAGE_SOURCE, POST_SOURCE, IG_USER_SOURCE, IG_MEDIA_SOURCE)


class Clock:
    """The virtual time shared by the simulator's world and the poller."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class DayReport:
    """Calls per source and cadence over the day, and the flat reference."""

    hours: float
    posts: int
    media: int
    fast_polls: int = 0
    calls: Counter[tuple[str, Cadence]] = field(default_factory=Counter)
    flat_cycle: Counter[tuple[str, Cadence]] = field(default_factory=Counter)
    failed: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def flat(self) -> int:
        return sum(self.flat_cycle.values()) * self.fast_polls

    @property
    def ratio(self) -> float:
        return self.total / self.flat if self.flat else 0.0


def day_config(world: World, base_url: str, state: Path, clock: Clock) -> str:
    """bench_cycle's sources without the app: the Page, its posts, the account, its media."""
    text = cycle_config(world, base_url, state, plan_window(world, clock()))
    return text.split('[[source]]\nname = "bench-app"')[0]


async def run_day(n_posts: int, n_media: int, hours: float) -> DayReport:
    clock = Clock()
    world = World(clock=clock, n_posts=n_posts, n_media=n_media, call_budget=10**9)
    sim = Simulator(world)
    plugins = plugin_map(load_source_plugins())
    base_url = await sim.start()
    report = DayReport(hours, n_posts, n_media)
    try:
        with tempfile.TemporaryDirectory(prefix="collectord-bench-") as tmp:
            path = Path(tmp) / "collector.toml"
            path.write_text(day_config(world, base_url, Path(tmp) / "state", clock))
            config = load_config(path, plugins, environ={})
            async with Collector(config, plugins, sinks_enabled=False) as col:
                col.poller.clock = clock
                runtimes = [rt for rt in col.runtimes if rt.name in SOURCES]
                started = time.perf_counter()
                end = START + timedelta(hours=hours)
                first = True
                while clock.now < end:
                    for rt in runtimes:
                        cadences: list[Cadence] = ["fast"]
                        if first and "daily" in rt.config.cadences():
                            cadences.append("daily")
                        for cadence in cadences:
                            sim.reset_stats()
                            if not await col.poller.poll(rt, cadence):
                                status = rt.status.per_cadence[cadence]
                                report.failed.append(
                                    f"{clock.now:%H:%M} {rt.name} {cadence}: "
                                    f"{status.last_error_reason}: {status.last_error}"
                                )
                            calls = sim.stats()["graph_calls"]
                            report.calls[(rt.name, cadence)] += calls
                            if first:
                                report.flat_cycle[(rt.name, cadence)] += calls
                    report.fast_polls += 1
                    first = False
                    clock.now += FAST
                report.wall_seconds = time.perf_counter() - started
    finally:
        await sim.stop()
    return report


def format_report(report: DayReport) -> str:
    rows = [("source", "cadence", "calls in the day", "flat (every 15 min)")]
    for (source, cadence), calls in sorted(report.calls.items()):
        flat = report.flat_cycle[(source, cadence)] * report.fast_polls
        rows.append((source, cadence, str(calls), str(flat)))
    rows.append(("total", "", str(report.total), str(report.flat)))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"1 Page with {report.posts} posts, 1 Instagram account with {report.media} media, "
        f"{report.hours:g} simulated hours ({report.fast_polls} fast polls per source)",
        "",
    ]
    for i, row in enumerate(rows):
        if i in (1, len(rows) - 1):
            lines.append("  ".join("-" * w for w in widths))
        lines.append(
            "  ".join(
                c.ljust(w) if j < 2 else c.rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    lines += [
        "",
        f"calls per day against flat polling: {report.ratio:.1%} (target: at most 20 %)",
        f"wall time: {report.wall_seconds:.1f}s (simulator in the same process)",
    ]
    lines += [f"FAILED {line}" for line in report.failed]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> DayReport:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--media", type=int, default=500)
    parser.add_argument("--hours", type=float, default=24.0)
    args = parser.parse_args(argv)
    report = asyncio.run(run_day(args.posts, args.media, args.hours))
    print(format_report(report))
    return report


if __name__ == "__main__":
    from collectord.logs import configure_logging

    configure_logging("warning")
    sys.exit(0 if not main().failed else 1)
