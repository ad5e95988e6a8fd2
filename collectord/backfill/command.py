"""``collectord backfill``: Meta's daily history and/or JSONL records as one OpenMetrics file.

Exit status: 0 the file is written; 1 a source failed (its progress and every other
source's are kept: running the same command again resumes); 2 bad arguments or config;
130 interrupted by Ctrl-C (the progress is kept too).
Notes and progress go to stderr: a progress bar on a terminal, plain lines otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from collectord.backfill.points import Point, Points, make_point, read_jsonl, write_openmetrics
from collectord.backfill.state import Progress
from collectord.errors import ConfigError, GraphError
from collectord.files import atomic_write
from collectord.logs import get_logger
from collectord.model import MetricSpec, Sample, series_key
from collectord.plugin.api import PollContext, SourcePlugin
from collectord.plugin.kit import PACIFIC, days_between, windows

if TYPE_CHECKING:
    from collectord.config.types import Config
    from collectord.daemon import Collector, ConfigSource

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
#: Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: Days of one step of a source's history: a step is read, kept in ``state_dir`` and
#: shown as progress before the next one starts (the plugin splits it further into the
#: windows Meta allows in one query).
STEP_DAYS = 30
_AGO = re.compile(r"^(\d+)([dw])$")


class BadArguments(Exception):
    """Arguments that cannot work; the message says which and why."""


def add_backfill_parser(sub: Any, parents: Sequence[argparse.ArgumentParser]) -> None:
    """The ``backfill`` subcommand and its flags."""
    p = sub.add_parser(
        "backfill",
        parents=list(parents),
        help="write past daily values as OpenMetrics for promtool",
        description="Write Meta's daily history of the sources (and/or JSONL records) as "
        "one OpenMetrics file with timestamps, for `promtool tsdb create-blocks-from "
        "openmetrics`. Re-run the same command to resume after an interruption.",
    )
    p.add_argument("-c", "--config", metavar="FILE", help="config file (as for `run`)")
    p.add_argument("--demo", action="store_true", help="read the built-in Graph API simulator")
    p.add_argument(
        "--since", default="90d", help="first day: 90d, 12w or a date 2026-09-01 (default: 90d)"
    )
    p.add_argument("--until", default="now", help="end: now or a date 2026-12-01 (default: now)")
    p.add_argument(
        "--source", action="append", metavar="NAME", help="read only this source (repeatable)"
    )
    p.add_argument(
        "--from-jsonl",
        action="append",
        default=[],
        metavar="PATH",
        help="also take the records of this JSONL file (repeatable; rotated files too)",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="the OpenMetrics file to write")


def parse_moment(text: str, now: datetime, flag: str) -> datetime:
    """``now``, ``90d``/``12w`` before ``now``, a date (its UTC midnight) or a time."""
    text = text.strip()
    if text == "now":
        return now
    ago = _AGO.match(text)
    if ago:
        days = int(ago.group(1)) * (7 if ago.group(2) == "w" else 1)
        return now - timedelta(days=days)
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadArguments(
            f"{flag} {text}: expected now, a number of days or weeks (90d, 12w), "
            "or a date such as 2026-09-01"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def resolve_range(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    since = parse_moment(args.since, now, "--since")
    until = parse_moment(args.until, now, "--until")
    if until > now + timedelta(minutes=1):
        raise BadArguments(f"--until {args.until}: lies in the future")
    if since >= until:
        raise BadArguments(f"--since {args.since} must come before --until {args.until}")
    return since, until


def check_inputs(args: argparse.Namespace) -> None:
    for path in args.from_jsonl:
        if not Path(path).is_file():
            raise BadArguments(f"--from-jsonl {path}: no such file")
    out = Path(args.out)
    if out.is_dir():
        raise BadArguments(f"--out {args.out}: is a folder")
    if not out.parent.is_dir():
        raise BadArguments(f"--out {args.out}: the folder {str(out.parent)!r} does not exist")


def has_history(plugin: SourcePlugin) -> bool:
    return type(plugin).history is not SourcePlugin.history


def without_history(specs: Sequence[MetricSpec]) -> list[str]:
    """The metrics a history leaves out: fields, lifetime and demographic values."""
    return [
        s.graph_name
        for s in specs
        if s.kind == "field"
        or s.cadence != "daily"
        or (s.periods and "day" not in s.periods)
        or "demographic" in s.group
    ]


class Report:
    """Progress and notes on stderr: a bar on a terminal, plain lines otherwise."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.done = 0
        self.total = total
        self.bar: Any = None
        if total and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", file=self.stream, dynamic_ncols=True)

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(f"backfill: {text}", file=self.stream)
        else:
            self.stream.write(f"backfill: {text}\n")
            self.stream.flush()

    def step(self, what: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_description(what)
            self.bar.update(1)
        else:
            self.note(f"{what} ({self.done}/{self.total})")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def steps(since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The completed Meta days from the one ``since`` falls in to the last one ending by
    ``until``, in steps of :data:`STEP_DAYS` days (the last may be shorter)."""
    start = since.astimezone(PACIFIC).date()
    first = datetime(start.year, start.month, start.day, tzinfo=PACIFIC).astimezone(UTC)
    return [(w.since, w.until) for w in windows(days_between(first, until), STEP_DAYS)]


def sample_points(source: str, samples: Sequence[Sample]) -> list[Point]:
    """Points of a history's samples: the daemon's names and labels, at Meta's end_time."""
    out = []
    for s in samples:
        if s.end_time is None or not math.isfinite(s.value):
            continue
        name, labels = series_key(s.metric, s.labels)
        out.append(make_point(name, {"source": source, **dict(labels)}, s.end_time, s.value))
    return out


async def read_history(
    col: Collector, progress: Progress, report: Report, points: Points, now: datetime
) -> list[str]:
    """Read every source's history into ``points``, window by window, keeping each
    finished window in ``progress``; return the names of the sources that failed."""
    failed: list[str] = []
    log = get_logger("collectord.backfill")
    for rt in col.runtimes:
        src, plugin = rt.config, rt.plugin
        if not has_history(plugin):
            report.note(f"source {src.name} ({src.plugin}): no daily history; skipped")
            continue
        skipped = without_history(src.specs)
        if skipped:
            report.note(f"source {src.name}: no history for {', '.join(skipped)}; skipped")
        before = len(points)
        refused: dict[str, str] = {}  # metrics Meta rejected: not asked again in this run
        for start, end in steps(progress.since, progress.until):
            what = f"{src.name} {start:%Y-%m-%d}..{end:%Y-%m-%d}"
            kept = progress.load(src.name, start, report.note)
            if kept is not None:
                points.extend(kept)
                report.step(f"{what} (kept from the last run)")
                continue
            ctx = PollContext(
                source=src.name,
                plugin=plugin.name,
                cadence="daily",
                options=src.options,
                graph=rt.graph,
                catalogue=src.specs,
                now=now,
                disabled_before=dict(refused),
                disabled_at=dict.fromkeys(refused, now),
                log=log.bind(source=src.name),
            )
            try:
                got = sample_points(src.name, await plugin.history(ctx, start, end))
            except GraphError as exc:  # the Graph client scrubs tokens from its messages
                report.note(f"source {src.name} failed: {type(exc).__name__}: {exc}")
                failed.append(src.name)
                break
            except Exception as exc:  # a plugin's bug: that source fails, the others go on
                report.note(f"source {src.name} failed: {type(exc).__name__}")
                failed.append(src.name)
                break
            for name, reason in ctx.newly_disabled.items():
                report.note(f"source {src.name}: Meta refused {name} ({reason})")
                refused[name] = reason
            try:
                progress.save(src.name, start, got)
            except OSError as exc:
                report.note(f"cannot keep the progress in state_dir: {exc.strerror or exc}")
                failed.append(src.name)
                break
            points.extend(got)
            report.step(what)
        if len(points) == before and src.name not in failed:
            report.note(
                f"source {src.name}: Meta sent no values (a token without read_insights "
                "gets empty answers, docs/meta-facts.md 2.1; a small account gets none)"
            )
    return failed


def read_jsonl_inputs(paths: Sequence[str], report: Report) -> Points:
    """The records of every JSONL file, one per series and time: the one collected last."""
    found: list[tuple[float, Point]] = []
    for path in paths:
        read = read_jsonl(Path(path))
        if read.bad_lines:
            report.note(
                f"{path}: skipped {read.bad_lines} line(s) that are not records "
                f"(the first: line {read.first_bad})"
            )
        found += read.points
    points = Points()
    for _, point in sorted(found, key=lambda item: item[0]):  # stable: ties keep file order
        points.add(point)
    return points


def write_out(path: Path, points: Points) -> int:
    text = io.StringIO()
    count = write_openmetrics(points.sorted(), text)
    atomic_write(path, text.getvalue().encode())
    return count


def before_config(args: argparse.Namespace) -> int | None:
    """Before any config is read: 2 for bad arguments, the whole command for JSONL files
    alone (no ``-c``, no ``--demo``), else ``None`` (the config is needed)."""
    try:
        resolve_range(args, datetime.now(UTC))
        check_inputs(args)
    except BadArguments as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.from_jsonl and not (args.demo or args.config):
        return run_backfill(args, None, None, {})
    return None


def run_backfill(
    args: argparse.Namespace,
    config: Config | None,
    source: ConfigSource | None,
    plugins: Mapping[str, SourcePlugin],
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> int:
    """The whole command. ``config`` is ``None`` for JSONL files alone."""
    now = clock()
    try:
        since, until = resolve_range(args, now)
        check_inputs(args)
        if config is not None and args.source:
            unknown = sorted(set(args.source) - {s.name for s in config.sources})
            if unknown:
                raise BadArguments(f"--source {unknown[0]}: no such source in {config.path}")
    except BadArguments as exc:
        print(f"backfill: {exc}", file=sys.stderr)
        return EXIT_INVALID
    report = Report(0)
    try:
        points = read_jsonl_inputs(args.from_jsonl, report)
    except OSError as exc:
        print(f"backfill: cannot read a --from-jsonl file: {exc}", file=sys.stderr)
        return EXIT_INVALID
    progress = None
    if config is not None:
        identity = {
            "out": os.path.abspath(args.out),
            "since": args.since,
            "until": args.until,
            "sources": sorted(args.source or []),
            "config": os.path.abspath(args.config) if args.config else None,
            "demo": bool(args.demo),
            "jsonl": [os.path.abspath(p) for p in args.from_jsonl],
        }
        try:
            state_dir = config.collector.state_dir
            progress = Progress.open(state_dir, identity, since, until, report.note)
        except OSError as exc:
            print(f"backfill: state_dir unusable: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_INVALID
        if progress.resumed:
            report.note(
                f"resuming the backfill of {progress.since:%Y-%m-%d %H:%M}.."
                f"{progress.until:%Y-%m-%d %H:%M} UTC"
            )
        try:
            failed = asyncio.run(_graph(source, plugins, args, progress, points, now))
        except ConfigError as exc:
            for line in exc.problems:
                print(line, file=sys.stderr)
            return EXIT_INVALID
        except KeyboardInterrupt:  # the windows read so far are kept
            print("\nbackfill: interrupted: re-run the same command to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        if failed:
            print(
                f"backfill: {len(failed)} source(s) failed ({', '.join(failed)}); nothing "
                f"written to {args.out}: re-run the same command to resume",
                file=sys.stderr,
            )
            return EXIT_FAILED
    count = write_out(Path(args.out), points)
    if progress is not None:
        progress.finish()
    report.note(f"wrote {count} samples to {args.out}")
    return EXIT_OK


async def _graph(
    source: ConfigSource,
    plugins: Mapping[str, SourcePlugin],
    args: argparse.Namespace,
    progress: Progress,
    points: Points,
    now: datetime,
) -> list[str]:
    from collectord.daemon import Collector

    graph_points = Points()
    async with Collector(source, plugins, sinks_enabled=False, sources=args.source) as col:
        total = sum(
            len(steps(progress.since, progress.until))
            for rt in col.runtimes
            if has_history(rt.plugin)
        )
        report = Report(total)
        for src in col.config.sources:
            if src.discover:  # discovery ran on entering: its children are runtimes
                found = len(col.discovered.get(src.name, ()))
                report.note(f"source {src.name} discovers its objects: {found} found")
        try:
            failed = await read_history(col, progress, report, graph_points, now)
        finally:
            report.close()
    for point in graph_points.sorted():  # Meta's reading wins over a JSONL record
        points.add(point)
    return failed
