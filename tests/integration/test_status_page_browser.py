"""The status page in a real browser: Debian's headless ``chromium`` loads ``/`` from a
running daemon and we read, over the DevTools protocol, the page as the browser built it
and every console message, exception and log entry it raised.

One source fails with an error message carrying markup and a script (injected through the
simulator): the page must show it as text, the script must not run, and nothing may be
logged to the console. Skipped without chromium, except in CI (``CI`` or
``COLLECTORD_REQUIRE_TOOLS`` set), where a missing browser is a failure: ``.ci/run``
installs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectord.simulator import Simulator
from collectord.simulator import errors as sim_errors

pytestmark = pytest.mark.integration

#: Generous: the browser starts in a second or two, but the machine may be busy.
PATIENCE = 60.0
#: What Meta "says" when the failing source polls: markup, a script, entities, quotes.
HOSTILE = (
    "Error validating access token: <script>window.__pwned = 1; console.error('pwned')"
    '</script><img src=x onerror="window.__pwned = 2"> & \'more\' "quoted"'
)
SCRIPT_AS_TEXT = "<script>window.__pwned = 1; console.error('pwned')</script>"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") or os.environ.get("COLLECTORD_REQUIRE_TOOLS"):
            pytest.fail("chromium is missing; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


class DevTools:
    """A minimal Chrome DevTools protocol client over one page session."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session_id: str = "") -> None:
        self.ws = ws
        self.session_id = session_id
        self.events: list[dict[str, Any]] = []
        self._next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        msg: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self.session_id:
            msg["sessionId"] = self.session_id
        await self.ws.send_str(json.dumps(msg))
        while True:
            reply = await self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise AssertionError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def wait_event(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event["method"] == method:
                return event
        while True:
            event = await self._receive()
            if event.get("method") == method:
                return event

    async def _receive(self) -> dict[str, Any]:
        msg = await self.ws.receive()
        if msg.type != aiohttp.WSMsgType.TEXT:
            raise AssertionError(f"DevTools connection ended: {msg.type}")
        data = json.loads(msg.data)
        if "method" in data:
            self.events.append(data)
        return data


@asynccontextmanager
async def browser(tmp_path: Path) -> AsyncIterator[DevTools]:
    """Headless chromium with the DevTools protocol on a loopback port; a page session."""
    proc = await asyncio.create_subprocess_exec(
        chromium(),
        "--headless",
        "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
        "--disable-gpu",
        "--no-first-run",
        "--disable-extensions",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "about:blank",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(PATIENCE):
            while True:
                line = (await proc.stderr.readline()).decode(errors="replace")
                if not line:
                    raise AssertionError("chromium exited before opening DevTools")
                found = re.search(r"DevTools listening on (ws://\S+)", line)
                if found:
                    break
        # keep draining stderr so chromium never blocks on a full pipe
        drain = asyncio.create_task(proc.stderr.read())
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(found.group(1), max_msg_size=0) as ws,
        ):
            root = DevTools(ws)
            target = await root.call("Target.createTarget", url="about:blank")
            attached = await root.call(
                "Target.attachToTarget", targetId=target["targetId"], flatten=True
            )
            page = DevTools(ws, attached["sessionId"])
            for domain in ("Page", "Runtime", "Log"):
                await page.call(f"{domain}.enable")
            yield page
        drain.cancel()
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def problems_logged(events: list[dict[str, Any]]) -> list[str]:
    """Console calls, uncaught exceptions and browser log entries worth a look."""
    out = []
    for e in events:
        params = e.get("params", {})
        if e["method"] == "Runtime.consoleAPICalled":
            out.append(f"console.{params['type']}: {params.get('args')}")
        elif e["method"] == "Runtime.exceptionThrown":
            out.append(f"exception: {params['exceptionDetails']}")
        elif e["method"] == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
            out.append(f"log: {params['entry']}")
    return out


async def test_the_status_page_renders_every_source_escaped_without_console_errors(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chromium()  # skip (or fail in CI) before starting anything
    world = simulator.world
    user = world.instagram.user_ids[0]
    sources = f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"

[[source]]
name = "acme-ig"
plugin = "instagram_user"
access_token = "{world.demo_token("instagram_user")}"
ig_user_id = "{user}"
"""
    # Meta's message for an expired token, as a hostile or broken Graph could send it;
    # only the Instagram account's calls get it.
    monkeypatch.setitem(sim_errors.TOKEN_SUBCODE_MESSAGES, 463, HOSTILE)
    simulator.faults.token_error(subcode=463, path=user)
    daemon = await start_daemon(make_config(simulator, sources))
    await daemon.wait_ready()

    async with browser(tmp_path) as page:
        await page.call("Page.navigate", url=daemon.url + "/")
        await asyncio.wait_for(page.wait_event("Page.loadEventFired"), PATIENCE)
        # the sources table is the first (the Tokens table also has a row per source)
        result = await page.call(
            "Runtime.evaluate",
            expression="""JSON.stringify({
                pwned: window.__pwned === undefined ? null : window.__pwned,
                scripts: document.scripts.length,
                images: document.images.length,
                rows: Array.from(document.querySelector("table").querySelectorAll("tbody tr"))
                    .map(tr => Array.from(tr.cells).map(td => td.innerText)),
                headers: Array.from(document.querySelector("table").querySelectorAll("thead th"))
                    .map(th => th.innerText),
            })""",
            returnByValue=True,
        )
        seen = json.loads(result["result"]["value"])
        logged = problems_logged(page.events)

    assert seen["pwned"] is None, "a script from Meta's error message ran"
    assert seen["scripts"] == 0
    assert seen["images"] == 0
    header = seen["headers"]
    for column in ("source", "state", "last success", "last error", "next run"):
        assert column in header
    rows = {row[0]: dict(zip(header, row, strict=False)) for row in seen["rows"] if row}
    assert {"acme-page", "acme-ig"} <= set(rows)
    ok, failing = rows["acme-page"], rows["acme-ig"]
    assert ok["state"] == "ok"
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ok["last success"])
    assert re.search(r"\d{4}-\d\d-\d\dT", ok["next run"])
    assert ok["last error"] == "—"
    assert failing["state"].startswith("needs_reauth")  # the token expired
    assert "getting-tokens.md" in failing["state"]
    assert failing["last success"] == "never"
    assert re.search(r"\d{4}-\d\d-\d\dT", failing["next run"])
    # the markup arrives as the very text Meta sent, not as elements
    assert SCRIPT_AS_TEXT in failing["last error"]
    assert "onerror=" in failing["last error"]
    assert not logged, logged
    assert await daemon.stop() == 0
