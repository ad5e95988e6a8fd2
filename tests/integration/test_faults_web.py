"""Faults on the HTTP side of a real daemon: slow and idle clients, a flood of garbage, and
the protected endpoints (HTTPS, basic auth) configured through ``[collector.web]``.

For each: the daemon stays up, ``/healthz`` and ``/metrics`` keep answering (asserted to
come, within a patient timeout, never timed), the source stays correct, and the log stays
small and free of tracebacks.
"""

from __future__ import annotations

import asyncio
import base64
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

TLS = Path(__file__).resolve().parents[1] / "data" / "tls"
#: bcrypt (cost 4) of "s3cret".
HASH = "$2b$04$727DLNLHKB0Y8jSl0zmCRe7X6gktlrvteuuiRhfL8EssHT9v1na/."
PATIENCE = 30.0


def page_source(sim: Simulator) -> str:
    world = sim.world
    return f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
"""


async def raw_get(port: int, path: str, headers: str = "") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{headers}\r\n".encode()
        )
        return await asyncio.wait_for(reader.read(), PATIENCE)
    finally:
        writer.close()


async def test_slow_idle_and_garbage_clients_do_not_starve_probes_or_flood_the_log(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    daemon = await start_daemon(make_config(simulator, page_source(simulator)))
    await daemon.wait_ready()
    followers = (await daemon.scrape()).value("facebook_page_followers")
    assert followers is not None

    # more idle connections than the listener keeps (256), as one attacker could open
    idle = [await asyncio.open_connection("127.0.0.1", daemon.port) for _ in range(400)]
    stop = asyncio.Event()

    async def slow_loris() -> None:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
            for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"z" * 100_000:
                if stop.is_set():
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.02)  # the attacker's pace
            writer.close()
        except ConnectionError:
            pass  # cut by the daemon

    async def garbage(n: int) -> None:
        for i in range(n):
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
                writer.write(b"\x16\x03\x01 not http at all %d\r\n\r\n" % i)
                await writer.drain()
                await asyncio.wait_for(_reader.read(), PATIENCE)
                writer.close()
            except ConnectionError:
                pass

    attackers = [asyncio.create_task(slow_loris()) for _ in range(30)]
    flood = [asyncio.create_task(garbage(50)) for _ in range(4)]
    try:
        for _ in range(5):
            async with asyncio.timeout(PATIENCE):
                assert (await raw_get(daemon.port, "/healthz")).startswith(b"HTTP/1.1 200")
                scrape = await daemon.scrape()
            assert scrape.value("facebook_page_followers") == followers
        await asyncio.gather(*flood)
    finally:
        stop.set()
        await asyncio.gather(*attackers, *flood, return_exceptions=True)
        for _reader, writer in idle:
            writer.close()
    assert (await daemon.get("/healthz"))[0] == 200
    assert await daemon.stop() == 0
    logs = daemon.logs()
    assert "Traceback" not in logs
    assert len(logs.splitlines()) < 40, logs[-5000:]
    events = [e for e in daemon.log_events() if "malformed" in e.get("event", "")]
    assert 1 <= len(events) <= 2


async def test_https_and_basic_auth_from_the_config(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    for name in ("server.crt", "server.key"):
        shutil.copy(TLS / name, tmp_path / name)
    config = make_config(simulator, page_source(simulator)).replace(
        'state_dir = "state"\n',
        'state_dir = "state"\n\n[collector.web]\ntls_cert_file = "server.crt"\n'
        f'tls_key_file = "server.key"\nbasic_auth_users = {{ prometheus = "{HASH}" }}\n',
    )
    daemon = await start_daemon(config)
    ctx = ssl.create_default_context(cafile=str(TLS / "ca.crt"))
    base = f"https://127.0.0.1:{daemon.port}"
    good = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"prometheus:guess").decode()}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PATIENCE)) as s:

        async def ready() -> bool:
            try:
                async with s.get(f"{base}/readyz", ssl=ctx) as r:
                    return r.status == 200
            except aiohttp.ClientError:
                if daemon.proc.returncode is not None:
                    raise AssertionError(daemon.logs()) from None
                return False

        async with asyncio.timeout(PATIENCE):
            while not await ready():  # noqa: ASYNC110 - the state lives in another process
                await asyncio.sleep(0.1)
        async with s.get(f"{base}/metrics", ssl=ctx, headers=bad) as r:
            assert r.status == 401
        async with s.get(f"{base}/metrics", ssl=ctx) as r:
            assert r.status == 401
        async with s.get(f"{base}/metrics", ssl=ctx, headers=good) as r:
            assert r.status == 200
            assert "facebook_page_followers" in await r.text()
        async with s.get(f"{base}/healthz", ssl=ctx) as r:
            assert r.status == 200
    assert await daemon.stop() == 0
    logs = daemon.logs()
    assert HASH not in logs
    assert "s3cret" not in logs
