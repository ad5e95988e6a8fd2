"""Running a how-to document's commands as a reader would, against ``collectord simulate``.

The convention (used by docs/getting-tokens.md and docs/walkthrough.md): a line
``<!-- guide-step: NAME -->`` right before a fenced block marks that block as a step. Shell
blocks (```` ```sh ````) are run with bash, in the document's order, each in a fresh bash
that starts with the variables the previous steps exported (so ``set -a; . secrets.env``
in one step serves the next ones), in one working folder. Other blocks (```` ```toml ````)
are files the reader writes; the test decides where.

The reader's own values (the App ID, the Graph API address, a Page's id, ports) are
replaced by the simulator's through :class:`Substitutions`: a short list of literal rules,
each of which must apply at least once, so that a guide edit that drops a placeholder
fails the test instead of silently running something else.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from conftest import wait_until

STEP_MARK = re.compile(r"^(\s*)<!-- guide-step: ([a-z0-9-]+) -->\s*$")
FENCE_OPEN = re.compile(r"^(\s*)```(\w+)\s*$")
#: What every simulator token and secret contains (collectord/simulator/world.py).
SIMULATOR_SECRET_MARKS = ("not-a-real-token", "not-a-real-secret")


@dataclass(frozen=True)
class Step:
    name: str
    lang: str
    text: str


def steps_of(markdown: str) -> list[Step]:
    """The marked blocks of ``markdown``, in order (a mark not followed by a fence fails)."""
    lines = markdown.splitlines()
    steps: list[Step] = []
    for i, line in enumerate(lines):
        mark = STEP_MARK.match(line)
        if not mark:
            continue
        fence = FENCE_OPEN.match(lines[i + 1]) if i + 1 < len(lines) else None
        assert fence, f"guide-step {mark[2]}: the next line must open a fenced block"
        indent, body = fence[1], []
        for inner in lines[i + 2 :]:
            if inner.strip() == "```":
                break
            body.append(inner)
        else:
            raise AssertionError(f"guide-step {mark[2]}: the fenced block is never closed")
        assert all(not b.strip() or b.startswith(indent) for b in body), mark[2]
        steps.append(Step(mark[2], fence[2], textwrap.dedent("\n".join(body)) + "\n"))
    return steps


@dataclass
class Substitutions:
    """Literal rules (a regular expression and its replacement) applied to every step."""

    rules: list[tuple[str, str]]
    used: dict[str, int] = field(default_factory=dict)

    def apply(self, text: str) -> str:
        for pattern, replacement in self.rules:
            text, n = re.subn(pattern, lambda _m, r=replacement: r, text)
            self.used[pattern] = self.used.get(pattern, 0) + n
        return text

    def assert_all_used(self) -> None:
        unused = [p for p, _ in self.rules if not self.used.get(p)]
        assert not unused, f"placeholders the document no longer has: {unused}"


@dataclass
class Ran:
    returncode: int
    out: str
    err: str


class Shell:
    """Runs steps with bash in ``cwd``; every output it captured is kept in ``outputs``."""

    def __init__(self, cwd: Path, env_file: Path) -> None:
        self.cwd = cwd
        self.env_file = env_file  # outside cwd: the exported variables hold tokens
        self.outputs: list[str] = []
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.base_env = {k: v for k, v in os.environ.items() if not k.startswith("COLLECTORD_")} | {
            "PATH": path,
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def _script(self, text: str) -> str:
        env = str(self.env_file)
        return (
            "set -e -o pipefail\n"
            f"if [ -f '{env}' ]; then . '{env}'; fi\n"
            f"trap 'export -p > \"{env}\"' EXIT\n" + text
        )

    async def start(self, text: str, stdin: bool = False) -> asyncio.subprocess.Process:
        """Start a step in its own process group (so that :meth:`stop` reaches the
        command bash runs, not bash only)."""
        return await asyncio.create_subprocess_exec(
            "bash", "-c", self._script(text),
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=self.cwd,
            env=self.base_env,
            start_new_session=True,
        )  # fmt: skip

    async def finish(
        self, proc: asyncio.subprocess.Process, stdin: str | None = None, within: float = 90
    ) -> Ran:
        out, err = await asyncio.wait_for(
            proc.communicate(stdin.encode() if stdin is not None else None), within
        )
        ran = Ran(proc.returncode or 0, out.decode(), err.decode())
        self.outputs += [ran.out, ran.err]
        return ran

    async def run(self, text: str, stdin: str | None = None, within: float = 90) -> Ran:
        proc = await self.start(text, stdin=stdin is not None)
        return await self.finish(proc, stdin, within)

    def assert_no_secret_shown(self, *secrets: str) -> None:
        text = "\n".join(self.outputs)
        for mark in (*SIMULATOR_SECRET_MARKS, *secrets):
            assert mark not in text, "a token or secret appeared in a step's output"


@dataclass
class SimulatorProcess:
    """``collectord simulate`` as a process, and what it printed about itself."""

    proc: asyncio.subprocess.Process
    url: str
    app_id: str
    app_secret: str
    ids: dict[str, str]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(self.proc.wait(), 15)


async def start_simulator(port: int) -> SimulatorProcess:
    """Start ``collectord simulate`` and read its URL, app and ids from what it prints."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collectord", "simulate", "--listen", f"127.0.0.1:{port}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    found: dict[str, str] = {}
    ids: dict[str, str] = {}
    async with asyncio.timeout(30):
        while "app_secret" not in found:
            line = (await proc.stdout.readline()).decode()
            assert line, "collectord simulate ended before printing its config lines"
            if line.strip().startswith("ids: "):
                ids = json.loads(line.strip()[len("ids: ") :])
            key = re.match(r'^(base_url|app_id|app_secret) = "(.*)"$', line.strip())
            if key:
                found[key[1]] = key[2]
    return SimulatorProcess(proc, found["base_url"], found["app_id"], found["app_secret"], ids)


def need_curl() -> None:
    """Skip without ``curl``, except under ``.ci/run`` (which installs it)."""
    if shutil.which("curl") is None:
        if os.environ.get("COLLECTORD_REQUIRE_TOOLS") == "1":
            pytest.fail("curl is missing (.ci/run installs it)")
        pytest.skip("curl is not installed")


async def login_with_browser(shell: Shell, text: str, browser: aiohttp.ClientSession) -> Ran:
    """Run an ``auth login`` step; ``browser`` follows the login URL it prints, through
    the simulator's dialog, back to the command's callback. The step's output, whole."""
    proc = await shell.start(text)
    assert proc.stdout is not None
    printed: list[str] = []
    async with asyncio.timeout(30):
        while not (printed and printed[-1].startswith("http")):
            line = (await proc.stdout.readline()).decode()
            assert line, "auth login ended without printing a login URL"
            printed.append(line.strip())
    async with browser.get(printed[-1]) as resp:
        assert resp.status == 200
        assert resp.url.host == "127.0.0.1"
        assert "received the login" in await resp.text()
    ran = await shell.finish(proc)
    shell.outputs.append("\n".join(printed))
    return Ran(ran.returncode, "\n".join(printed) + "\n" + ran.out, ran.err)


async def wait_ready(
    browser: aiohttp.ClientSession, port: int, proc: asyncio.subprocess.Process
) -> None:
    """Wait until the daemon a step started answers 200 on ``/readyz``."""

    async def ready() -> bool:
        assert proc.returncode is None, "the daemon ended early"
        try:
            async with browser.get(f"http://127.0.0.1:{port}/readyz") as resp:
                return resp.status == 200
        except aiohttp.ClientError:
            return False

    await wait_until(ready, 40)


async def stop(shell: Shell, proc: asyncio.subprocess.Process, sig: int) -> Ran:
    """Send ``sig`` to a started step's process group (Ctrl-C is SIGINT) and wait."""
    if proc.returncode is None:
        os.killpg(proc.pid, sig)
    return await shell.finish(proc, within=30)
