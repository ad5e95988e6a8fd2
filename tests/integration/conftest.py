"""Integration harness: the real ``collectord`` process against the simulator on loopback.

The simulator runs inside the test's event loop with a frozen clock, so the values it
served can be recomputed exactly from its :class:`World`; the daemon is a separate process
started with ``python -m collectord``, talked to over HTTP only.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectord.simulator import Simulator, World
from collectord.simulator.base import quantize
from collectord.simulator.router import CallResult

#: How long a daemon may take to become ready before a test gives up.
READY_TIMEOUT = 20.0


async def wait_until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Re-check ``check`` every 0.1 s until it is true, failing after ``within`` seconds.

    For state inside another process (the daemon, Prometheus), which sends no event.
    """
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - the state lives in another process
            await asyncio.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Scrape:
    """One scrape of ``/metrics``: ``value(name, **labels)`` finds a sample."""

    samples: list[tuple[str, dict[str, str], float]]

    def value(self, name: str, **labels: str) -> float | None:
        for n, lab, v in self.samples:
            if n == name and all(lab.get(k) == val for k, val in labels.items()):
                return v
        return None

    def names(self) -> set[str]:
        return {n for n, _, _ in self.samples}

    def series(self, name: str) -> list[dict[str, str]]:
        return [lab for n, lab, _ in self.samples if n == name]

    def matching(self, name: str, **labels: str) -> list[tuple[dict[str, str], float]]:
        """Every sample of ``name`` whose labels include ``labels``: (labels, value)."""
        return [
            (lab, v)
            for n, lab, v in self.samples
            if n == name and all(lab.get(k) == val for k, val in labels.items())
        ]

    def with_label(self, key: str, value: str) -> set[str]:
        """Names of the families that have a sample with label ``key=value``."""
        return {n for n, lab, _ in self.samples if lab.get(key) == value}


@dataclass
class Daemon:
    """A ``collectord`` child process and its HTTP address."""

    proc: asyncio.subprocess.Process
    port: int
    log_path: Path
    session: aiohttp.ClientSession
    stopped: bool = field(default=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as resp:
            return resp.status, await resp.text()

    async def wait_ready(self, within: float = READY_TIMEOUT) -> None:
        """Wait until ``/readyz`` answers 200."""

        async def ready() -> bool:
            if self.proc.returncode is not None:
                raise AssertionError(f"collectord exited early:\n{self.logs()}")
            try:
                return (await self.get("/readyz"))[0] == 200
            except aiohttp.ClientError:
                return False

        await wait_until(ready, within)

    async def wait_for_value(
        self, name: str, value: float | None = None, within: float = 15.0, **labels: str
    ) -> Scrape:
        """Scrape until series ``name{labels}`` exists (and equals ``value`` if given)."""
        found: list[Scrape] = []

        async def check() -> bool:
            scrape = await self.scrape()
            found[:] = [scrape]
            got = scrape.value(name, **labels)
            return got is not None and (value is None or got == value)

        await wait_until(check, within)
        return found[0]

    async def wait_for(self, predicate: Callable[[Scrape], bool], within: float = 15.0) -> Scrape:
        """Scrape until ``predicate(scrape)`` holds; returns that scrape (for a series
        that must appear, disappear or reach a count)."""
        found: list[Scrape] = []

        async def check() -> bool:
            scrape = await self.scrape()
            found[:] = [scrape]
            return predicate(scrape)

        await wait_until(check, within)
        return found[0]

    async def scrape(self) -> Scrape:
        status, text = await self.get("/metrics")
        assert status == 200
        samples = [
            (s.name, dict(s.labels), s.value)
            for fam in text_string_to_metric_families(text)
            for s in fam.samples
        ]
        return Scrape(samples)

    async def stop(self, sig: int = signal.SIGTERM, within: float = 20.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        self.stopped = True
        return await asyncio.wait_for(self.proc.wait(), within)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.logs().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out


@pytest.fixture
def frozen_now() -> datetime:
    """Now, quantized: the simulator's frozen clock (appsecret_time stays real)."""
    return quantize(datetime.now(UTC), 60)


@asynccontextmanager
async def running(world: World) -> AsyncIterator[Simulator]:
    """A simulator of ``world`` serving on loopback while entered."""
    sim = Simulator(world)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def simulator(frozen_now: datetime) -> AsyncIterator[Simulator]:
    async with running(World(clock=lambda: frozen_now)) as sim:
        yield sim


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``start(config_text, *args, command="run", home=None, port=0, env=None)``: start
    ``collectord <command> -c FILE <args>`` in ``home`` (default ``tmp_path``: config, log
    and relative paths there), listening on ``port`` (``@PORT@`` in the text; default a
    free one), with ``env`` added to the environment; stopped (and killed) at teardown."""
    daemons: list[Daemon] = []
    session = aiohttp.ClientSession()

    async def start(
        config_text: str,
        *args: str,
        command: str = "run",
        home: Path | None = None,
        port: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> Daemon:
        home = home or tmp_path
        port = port or free_port()
        cfg = home / "collector.toml"
        cfg.write_text(config_text.replace("@PORT@", str(port)))
        log_path = home / f"collectord-{len(daemons)}.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "collectord",
                command,
                "-c",
                str(cfg),
                "--log-format",
                "json",
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=home,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            )
        daemon = Daemon(proc, port, log_path, session)
        daemons.append(daemon)
        return daemon

    try:
        yield start
    finally:
        for d in daemons:
            if d.proc.returncode is None:
                d.proc.kill()
                await d.proc.wait()
        await session.close()


@pytest.fixture
async def live_simulator() -> AsyncIterator[Simulator]:
    """A simulator whose clock is real time (for stories that expire during a test); its
    values move every second (``value_step=1``), so objects come and go on time."""
    async with running(World(value_step=1.0)) as sim:
        yield sim


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., str]:
    """``make_config(sim, sources, fast="1h", daily="1h")``: a config for ``start_daemon``
    with ``[collector]``, ``[graph]`` (the simulator, its app), ``[schedule]`` (no jitter),
    the ``[[source]]`` tables in ``sources`` and the JSONL sink at ``tmp_path/samples.jsonl``."""

    def make(sim: Simulator, sources: str, *, fast: str = "1h", daily: str = "1h") -> str:
        world = sim.world
        return f"""
[collector]
listen = "127.0.0.1:@PORT@"
state_dir = "state"

[graph]
base_url = "{sim.url}"
version = "v26.0"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"
timeout = "5s"

[schedule]
fast_interval = "{fast}"
daily_interval = "{daily}"
jitter = "0s"

{sources}

[sink.jsonl]
path = "{tmp_path / "samples.jsonl"}"
"""

    return make


@dataclass
class TappedCall:
    """One Graph call the simulator answered (a batch element counts as one call)."""

    method: str
    path: str
    params: dict[str, str]
    status: int
    body: Any


@dataclass
class RouterTap:
    """Every Graph call a simulator answers, in order, with its answer.

    ``after(call)``, when set, runs right after each call was answered and before the
    answer is sent: a test can change the world between two calls of one poll.
    """

    calls: list[TappedCall] = field(default_factory=list)
    after: Callable[[TappedCall], None] | None = None

    def matching(self, path_part: str) -> list[TappedCall]:
        return [c for c in self.calls if path_part in c.path]


@pytest.fixture
def tap(monkeypatch: pytest.MonkeyPatch) -> Callable[[Simulator], RouterTap]:
    """``tap(sim)`` starts recording the calls ``sim`` answers (until the test ends)."""

    def install(sim: Simulator) -> RouterTap:
        recorder = RouterTap()
        original = sim.router.call

        def call(method: str, path: str, params: dict[str, str], **kw: Any) -> CallResult:
            result = original(method, path, params, **kw)
            entry = TappedCall(method, path, dict(params), result.status, result.body)
            recorder.calls.append(entry)
            if recorder.after is not None:
                recorder.after(entry)
            return result

        monkeypatch.setattr(sim.router, "call", call)
        return recorder

    return install


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSONL sink file (each line must be one JSON object)."""
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def jsonl_records(tmp_path: Path) -> Callable[[], list[dict[str, Any]]]:
    """``jsonl_records()``: the records written so far to ``tmp_path/samples.jsonl``."""
    return lambda: read_jsonl(tmp_path / "samples.jsonl")
