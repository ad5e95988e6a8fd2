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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectord.simulator import Simulator, World
from collectord.simulator.base import quantize

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


@pytest.fixture
async def simulator(frozen_now: datetime) -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=lambda: frozen_now))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start ``collectord <args>`` with a config text; stopped (and killed) at teardown."""
    daemons: list[Daemon] = []
    session = aiohttp.ClientSession()

    async def start(config_text: str, *args: str, command: str = "run") -> Daemon:
        port = free_port()
        cfg = tmp_path / "collector.toml"
        cfg.write_text(config_text.replace("@PORT@", str(port)))
        log_path = tmp_path / f"collectord-{len(daemons)}.log"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
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
                cwd=tmp_path,
                env=env,
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
