"""Memory of a daemon holding about 50,000 series through several polls (run by hand).

    .venv/bin/python tests/bench/bench_rss.py [--media N] [--polls N] [--interval S]

Starts the built-in simulator in this process (on loopback, values moving every second, so
every poll brings new values) with one Page of ``--posts`` posts and one Instagram account of
``--media`` media, and a real ``python -m collectord run`` process following all of them
(``instagram_media`` and ``facebook_post``, fast interval ``--interval``). After each
completed poll of both sources it scrapes ``/metrics`` (as Prometheus would) and reads the
daemon's ``VmRSS`` (now) and ``VmHWM`` (peak so far) from ``/proc/PID/status``. It does this
twice: without the JSONL sink and with it. Target: a peak under 150 MB with the sink.

Printed per run: series exported, RSS after each poll, the peak, and ratios that depend less
on the machine: peak bytes per series, and peak with the sink against peak without.
("RSS at start" is read at the first answer of ``/metrics``, while the first poll runs.)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from collectord.simulator import Simulator, World

MB = 1_000_000


@dataclass
class RssRun:
    sink: bool
    series: int = 0
    ready: int = 0  # bytes of RSS once ready, before its first poll ended
    rss_after_poll: list[int] = field(default_factory=list)  # bytes
    peak: int = 0  # bytes
    error: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status_bytes(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def config_text(sim: Simulator, port: int, tmp: Path, interval: int, sink: bool) -> str:
    world = sim.world
    page = world.first_page
    ig_user = world.instagram.user_ids[0]
    text = f"""
[collector]
listen = "127.0.0.1:{port}"
state_dir = "{(tmp / "state").as_posix()}"

[graph]
base_url = "{sim.url}"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"

[schedule]
fast_interval = "{interval}s"
daily_interval = "24h"
jitter = "0s"

[[source]]
name = "media"
plugin = "instagram_media"
access_token = "{world.demo_token("instagram_media")}"
ig_user_id = "{ig_user}"
max_age = "3650d"
max_media = {len(world.instagram.media(ig_user, world.clock()))}

[[source]]
name = "posts"
plugin = "facebook_post"
access_token = "{page.token}"
page_id = "{page.id}"
max_age = "3650d"
max_posts = {max(1, len(world.posts(page.id)))}
"""
    if sink:
        text += f'\n[sink.jsonl]\npath = "{(tmp / "samples.jsonl").as_posix()}"\n'
    return text


async def scrape(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, float]]:
    """Series on ``/metrics`` and the fast polls done per source."""
    async with session.get(url + "/metrics") as resp:
        text = await resp.text()
    series = 0
    polls: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("collectord_"):
                series += 1
            elif (
                sample.name == "collectord_source_poll_duration_seconds_count"
                and sample.labels.get("cadence") == "fast"
            ):
                polls[sample.labels["source"]] = sample.value
    return series, polls


async def run_daemon(sim: Simulator, args: argparse.Namespace, sink: bool) -> RssRun:
    run = RssRun(sink)
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="collectord-rss-") as tmp_name:
        tmp = Path(tmp_name)
        cfg = tmp / "collector.toml"
        cfg.write_text(config_text(sim, port, tmp, args.interval, sink))
        log = (tmp / "daemon.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "collectord",
            "run",
            "-c",
            str(cfg),
            "--log-level",
            "warning",
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                seen = 0.0
                async with asyncio.timeout(args.polls * args.interval * 4 + 120):
                    while len(run.rss_after_poll) < args.polls:
                        await asyncio.sleep(0.5)
                        if proc.returncode is not None:
                            raise RuntimeError("the daemon exited")
                        try:
                            series, polls = await scrape(session, url)
                        except aiohttp.ClientError:
                            continue
                        if not run.ready:
                            run.ready = status_bytes(proc.pid, "VmRSS")
                        done = min(polls.values(), default=0.0) if len(polls) == 2 else 0.0
                        if done > seen:
                            seen = done
                            run.series = series
                            run.rss_after_poll.append(status_bytes(proc.pid, "VmRSS"))
                run.peak = status_bytes(proc.pid, "VmHWM")
        except (RuntimeError, TimeoutError) as exc:
            run.error = f"{exc}: {(tmp / 'daemon.log').read_text()[-2000:]}"
        finally:
            if proc.returncode is None:
                proc.terminate()
                await proc.wait()
            log.close()
    return run


def format_runs(runs: Sequence[RssRun]) -> str:
    lines = []
    for run in runs:
        name = "with the JSONL sink" if run.sink else "without a sink"
        if run.error:
            lines.append(f"{name}: FAILED {run.error}")
            continue
        after = ", ".join(f"{b / MB:.0f}" for b in run.rss_after_poll)
        per_series = run.peak / run.series if run.series else 0
        lines.append(
            f"{name:<20} {run.series} series; RSS at start {run.ready / MB:.0f} MB, "
            f"after each poll (MB): {after}; "
            f"peak {run.peak / MB:.0f} MB ({per_series:.0f} bytes per series)"
        )
    if len(runs) == 2 and runs[0].peak and runs[1].peak:
        lines.append(f"peak with the sink / without: {runs[1].peak / runs[0].peak:.2f}")
    lines.append("target: peak under 150 MB with the sink")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[RssRun]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--media", type=int, default=4500)
    parser.add_argument("--posts", type=int, default=300)
    parser.add_argument("--polls", type=int, default=4)
    parser.add_argument("--interval", type=int, default=20, help="fast interval, seconds")
    args = parser.parse_args(argv)

    async def both() -> list[RssRun]:
        world = World(n_media=args.media, n_posts=args.posts, value_step=1.0, call_budget=10**9)
        sim = Simulator(world)
        await sim.start()
        try:
            return [await run_daemon(sim, args, False), await run_daemon(sim, args, True)]
        finally:
            await sim.stop()

    runs = asyncio.run(both())
    print(format_runs(runs))
    return runs


if __name__ == "__main__":
    sys.exit(0 if not any(run.error for run in main()) else 1)
