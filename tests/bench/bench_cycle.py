"""What one full collection cycle costs in Graph API requests (run by hand, prints a table).

    .venv/bin/python tests/bench/bench_cycle.py [--posts N] [--media N] [--stories N]

Starts the built-in simulator on loopback with one Page of ``--posts`` posts, linked to one
Instagram account with ``--media`` media (and its live stories), then polls every cadence of
every built-in plugin once, one poll after another, the way the daemon does (a
:class:`~collectord.daemon.Collector` from a config file read by ``load_config``: the real
plugins, the real ``GraphClient`` over one aiohttp session). The windows (``max_age``,
``max_posts``, ``max_media``) are set so that every post and every media is followed.

Per poll it prints what the simulator's request log saw: HTTP requests (a batch of 50 is
one) and Graph calls (a batch of 50 is 50, as Meta's rate limits count them), next to the
naive count, what a client without batches or field expansion would send: one request per
Graph call, plus one per object whose insights rode along on a list or node request.
Wall time and peak RSS (simulator included: it runs in the same process) are printed for
information only.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectord.config.loader import load_config
from collectord.daemon import Collector
from collectord.model import Cadence, Sample
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.scheduling.scheduler import SourceRuntime
from collectord.simulator import Simulator, World

PAGE_SOURCE = "bench-page"
POST_SOURCE = "bench-posts"
IG_USER_SOURCE = "bench-instagram"
IG_MEDIA_SOURCE = "bench-instagram-media"
APP_SOURCE = "bench-app"


@dataclass(frozen=True)
class PollRow:
    """What one poll of one source at one cadence cost."""

    source: str
    plugin: str
    cadence: Cadence
    objects: int
    http_requests: int
    graph_calls: int
    naive_requests: int
    ok: bool
    error: str | None = None


@dataclass(frozen=True)
class Window:
    """The world polled and the windows the sources were given."""

    posts: int
    media: int
    stories: int
    max_age_days: int


@dataclass
class CycleReport:
    """Every poll of one cycle, with its totals, wall time and peak RSS."""

    window: Window
    rows: list[PollRow] = field(default_factory=list)
    wall_seconds: float = 0.0
    peak_rss_kib: int = 0

    @property
    def all_ok(self) -> bool:
        return all(row.ok for row in self.rows)

    @property
    def http_requests(self) -> int:
        return sum(row.http_requests for row in self.rows)

    @property
    def graph_calls(self) -> int:
        return sum(row.graph_calls for row in self.rows)

    @property
    def naive_requests(self) -> int:
        return sum(row.naive_requests for row in self.rows)

    @property
    def objects(self) -> int:
        return sum(row.objects for row in self.rows)


class ExpansionCounter:
    """Wraps the simulator's router to count objects answered with an ``insights`` edge
    inside (field expansion): a naive client would have sent one more request for each."""

    def __init__(self, router: Any) -> None:
        self._router = router
        self.expanded = 0

    def call(self, *args: Any, **kwargs: Any) -> Any:
        result = self._router.call(*args, **kwargs)
        self.expanded += _expanded_objects(result.body)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._router, name)


def _expanded_objects(body: Any) -> int:
    if not isinstance(body, dict):
        return 0
    items = body.get("data") if isinstance(body.get("data"), list) else [body]
    return sum(1 for item in items if isinstance(item, dict) and "insights" in item)


class SampleRecorder:
    """A sink that keeps the samples of the last poll (to count the objects it covered)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []

    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int:
        self.samples = list(samples)
        return 0


def plan_window(world: World, now: datetime) -> Window:
    """A window holding every post and every media of ``world`` (one day to spare)."""
    posts = world.posts(world.first_page.id)
    ig_user_id = world.instagram.user_ids[0]
    media = world.instagram.media(ig_user_id, now)
    stories = world.instagram.stories(ig_user_id, now)
    oldest = min([p.created_time for p in posts] + [m["created_at"] for m in media], default=now)
    days = (now - oldest).days + 2
    return Window(posts=len(posts), media=len(media), stories=len(stories), max_age_days=days)


def config_text(world: World, base_url: str, state_dir: Path, window: Window) -> str:
    """A collector.toml with one source of each built-in plugin, pointed at the simulator."""
    page = world.first_page
    ig_user_id = world.instagram.user_ids[0]
    user_token = world.demo_token("instagram_media")
    return f"""
[collector]
state_dir = "{state_dir.as_posix()}"

[graph]
base_url = "{base_url}"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"

[[source]]
name = "{PAGE_SOURCE}"
plugin = "facebook_page"
access_token = "{page.token}"
page_id = "{page.id}"

[[source]]
name = "{POST_SOURCE}"
plugin = "facebook_post"
access_token = "{page.token}"
page_id = "{page.id}"
max_age = "{window.max_age_days}d"
max_posts = {max(window.posts, 1)}

[[source]]
name = "{IG_USER_SOURCE}"
plugin = "instagram_user"
access_token = "{user_token}"
ig_user_id = "{ig_user_id}"

[[source]]
name = "{IG_MEDIA_SOURCE}"
plugin = "instagram_media"
access_token = "{user_token}"
ig_user_id = "{ig_user_id}"
max_age = "{window.max_age_days}d"
max_media = {max(window.media, 1)}
include_stories = true

[[source]]
name = "{APP_SOURCE}"
plugin = "facebook_app"
app_id = "{world.app_id}"
period = "daily"
"""


async def run_cycle(n_posts: int, n_media: int, n_stories: int) -> CycleReport:
    """Poll every cadence of every source once against a fresh simulator; count each poll."""
    world = World(n_posts=n_posts, n_media=n_media, n_stories=n_stories)
    sim = Simulator(world)
    counter = ExpansionCounter(sim.router)
    sim.router = counter  # type: ignore[assignment]
    plugins = plugin_map(load_source_plugins())
    base_url = await sim.start()
    try:
        with tempfile.TemporaryDirectory(prefix="collectord-bench-") as tmp:
            window = plan_window(world, datetime.now(UTC))
            path = Path(tmp) / "collector.toml"
            path.write_text(config_text(world, base_url, Path(tmp) / "state", window))
            config = load_config(path, plugins, environ={})
            report = CycleReport(window)
            recorder = SampleRecorder()
            async with Collector(config, plugins, sinks_enabled=False) as col:
                col.poller.sinks.append(recorder)
                started = time.perf_counter()
                for rt in col.runtimes:
                    for cadence in rt.config.cadences():
                        row = await _measured_poll(col, rt, cadence, sim, counter, recorder)
                        report.rows.append(row)
                report.wall_seconds = time.perf_counter() - started
    finally:
        await sim.stop()
    report.peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return report


async def _measured_poll(
    col: Collector,
    rt: SourceRuntime,
    cadence: Cadence,
    sim: Simulator,
    counter: ExpansionCounter,
    recorder: SampleRecorder,
) -> PollRow:
    """Poll once with fresh counters; what the simulator saw, and the objects sampled."""
    recorder.samples = []
    sim.reset_stats()
    counter.expanded = 0
    ok = await col.poller.poll(rt, cadence)
    stats = sim.stats()
    status = rt.status.per_cadence[cadence]
    return PollRow(
        source=rt.name,
        plugin=rt.plugin.name,
        cadence=cadence,
        objects=len({s.object_id for s in recorder.samples}),
        http_requests=stats["http_requests"],
        graph_calls=stats["graph_calls"],
        naive_requests=stats["graph_calls"] + counter.expanded,
        ok=ok,
        error=None if ok else f"{status.last_error_reason}: {status.last_error}",
    )


_HEADERS = ("source", "plugin", "cadence", "objects", "HTTP requests", "Graph calls", "naive HTTP")


def format_report(report: CycleReport) -> str:
    """The table, totals, wall time and peak RSS as printed."""
    w = report.window
    rows: list[tuple[str, ...]] = [_HEADERS]
    for r in report.rows:
        rows.append(
            (
                r.source,
                r.plugin,
                r.cadence,
                str(r.objects),
                str(r.http_requests),
                str(r.graph_calls),
                str(r.naive_requests),
            )
        )
    rows.append(
        (
            "total",
            "",
            "",
            str(report.objects),
            str(report.http_requests),
            str(report.graph_calls),
            str(report.naive_requests),
        )
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.ljust(width) if i < 3 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    rule = "  ".join("-" * width for width in widths)
    out = [
        f"1 Page with {w.posts} posts, 1 Instagram account with {w.media} media and "
        f"{w.stories} live stories (max_age {w.max_age_days}d, max_posts {w.posts}, "
        f"max_media {w.media})",
        "",
        line(rows[0]),
        rule,
        *(line(row) for row in rows[1:-1]),
        rule,
        line(rows[-1]),
        "",
        f"wall time of the cycle: {report.wall_seconds:.2f}s (simulator in the same process)",
        f"peak RSS: {report.peak_rss_kib / 1024:.0f} MiB (simulator included)",
    ]
    failed = [r for r in report.rows if not r.ok]
    out.extend(f"FAILED {r.source} {r.cadence}: {r.error}" for r in failed)
    return "\n".join(out)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Count the Graph API requests of one full collection cycle."
    )
    parser.add_argument("--posts", type=int, default=300, help="posts of the Page (300)")
    parser.add_argument("--media", type=int, default=500, help="Instagram media (500)")
    parser.add_argument(
        "--stories", type=int, default=4, help="Instagram stories posted per 24 hours (4)"
    )
    args = parser.parse_args(argv)
    for name in ("posts", "media", "stories"):
        if getattr(args, name) < 0:
            parser.error(f"--{name} must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> CycleReport:
    """Run one cycle with the sizes in ``argv``, print the table and return the report."""
    args = parse_args(argv)
    report = asyncio.run(run_cycle(args.posts, args.media, args.stories))
    print(format_report(report))
    return report


if __name__ == "__main__":
    from collectord.logs import configure_logging

    configure_logging("warning")
    sys.exit(0 if main().all_ok else 1)
