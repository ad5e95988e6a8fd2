"""The listener holds: idle and slow clients cannot starve the probes and scrapes, oversized
and malformed requests get a bare 400, and a flood of garbage leaves a few log lines.

Every client here is a real socket on loopback. Nothing asserts how fast an answer comes,
only that it comes (within a patient client timeout).
"""

from __future__ import annotations

import asyncio
import io
import json

from web_support import PATIENCE, closed_by_server, exchange, get, serve

from collectord.logs import configure_logging
from collectord.web.listener import Limits, MalformedRequests


async def test_healthz_and_metrics_answer_while_idle_and_slow_clients_hold_every_slot() -> None:
    limits = Limits(max_connections=16, header_timeout=PATIENCE * 4)
    async with serve(limits=limits) as srv:
        idle = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(40)]
        stop = asyncio.Event()

        async def slow_loris() -> None:
            # headers byte by byte, never finished
            try:
                _reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
                for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 10_000:
                    if stop.is_set():
                        break
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.01)  # the attacker's pace, not a synchronisation
                writer.close()
            except ConnectionError:
                pass  # evicted by the server: what it should do

        attackers = [asyncio.create_task(slow_loris()) for _ in range(20)]
        try:
            # every attacker is in before the probes come (a burst of new connections at the
            # same instant as a probe could push it out before its request is read)
            async with asyncio.timeout(PATIENCE):
                await srv.guard.wait_until(lambda: srv.guard.admitted + srv.guard.refused >= 60)
            for _ in range(5):
                async with asyncio.timeout(PATIENCE):
                    assert await get(srv.port, "/healthz") == (200, b"ok\n")
                    status, body = await get(srv.port, "/metrics")
                assert status == 200
                assert b"collectord_build_info" in body
            # the listener never held more than its limit; the idle ones made way
            assert len(srv.guard.open) <= limits.max_connections
            assert srv.guard.evicted > 0
        finally:
            stop.set()
            await asyncio.gather(*attackers)
            for _reader, writer in idle:
                writer.close()


async def test_a_request_that_never_finishes_its_headers_is_cut() -> None:
    async with serve(limits=Limits(header_timeout=0.2)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        assert await closed_by_server(reader)
        silent, silent_writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await closed_by_server(silent)  # a connection that says nothing at all
        writer.close()
        silent_writer.close()


async def test_an_idle_keep_alive_connection_is_closed() -> None:
    async with serve(limits=Limits(idle_timeout=0.2)) as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"ok\n"), PATIENCE)
        assert head.startswith(b"HTTP/1.1 200")
        assert await closed_by_server(reader)
        writer.close()


async def test_keep_alive_serves_several_requests_on_one_connection() -> None:
    async with serve() as srv:
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        for _ in range(3):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = await asyncio.wait_for(reader.readuntil(b"ok\n"), PATIENCE)
            assert answer.startswith(b"HTTP/1.1 200")
        writer.close()


async def test_oversized_requests_get_a_bare_400() -> None:
    async with serve(limits=Limits(max_line_size=1024, max_headers=8)) as srv:
        long_line = await exchange(srv.port, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n")
        assert long_line.startswith(b"HTTP/1.0 400")
        many = "".join(f"X-{i}: y\r\n" for i in range(20))
        too_many = await exchange(srv.port, f"GET / HTTP/1.1\r\nHost: x\r\n{many}\r\n".encode())
        assert too_many.startswith(b"HTTP/1.0 400")
        huge = b"X-Big: " + b"b" * 5000 + b"\r\n"
        big_header = await exchange(srv.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + huge + b"\r\n")
        assert big_header.startswith(b"HTTP/1.0 400")
        assert b"aaaa" not in long_line + too_many + big_header  # nothing echoed back


async def test_no_body_except_on_reload() -> None:
    async with serve() as srv:
        answer = await exchange(
            srv.port, b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        )
        assert answer.startswith(b"HTTP/1.1 413")
        huge = await exchange(
            srv.port, b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n"
        )
        assert huge.startswith(b"HTTP/1.1 413")


async def test_a_flood_of_garbage_gives_400s_and_a_few_log_lines_without_tracebacks() -> None:
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)  # the most talkative level there is
    garbage = [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # TLS spoken to plain HTTP
        b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ]
    async with serve() as srv:
        answers = await asyncio.gather(
            *(exchange(srv.port, garbage[i % len(garbage)]) for i in range(300))
        )
        assert await get(srv.port, "/healthz") == (200, b"ok\n")
    assert all(a.startswith(b"HTTP/1.0 400") for a in answers), {a[:20] for a in answers}
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    malformed = [line for line in lines if "malformed" in line.get("event", "")]
    assert len(malformed) == 1, malformed
    assert malformed[0]["level"] == "warning"
    assert all("Traceback" not in json.dumps(line) for line in lines)
    assert not [line for line in lines if line.get("level") in ("error", "critical")]


def test_malformed_requests_are_counted_and_reported_once_per_interval() -> None:
    now = [1000.0]
    counter = MalformedRequests(60.0, clock=lambda: now[0])
    out = io.StringIO()
    configure_logging("debug", "json", stream=out)
    for _ in range(50):
        counter.note("192.0.2.1", "Invalid method")
    now[0] += 59.0
    counter.note("192.0.2.1", "Invalid method")
    now[0] += 1.0
    counter.note("192.0.2.7", "Bad header")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["count"], x["last_from"]) for x in lines] == [(1, "192.0.2.1"), (51, "192.0.2.7")]
    assert counter.total == 52


async def test_when_every_slot_is_busy_answering_a_new_connection_is_closed() -> None:
    release, entered = asyncio.Event(), asyncio.Event()

    async def slow_reload() -> tuple[bool, str]:
        entered.set()
        await release.wait()
        return True, "reloaded"

    post = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with serve(limits=Limits(max_connections=1), reload=slow_reload) as srv:
        busy = asyncio.create_task(exchange(srv.port, post))
        await asyncio.wait_for(entered.wait(), PATIENCE)  # the one slot is busy answering
        reader, writer = await asyncio.open_connection("127.0.0.1", srv.port)
        assert await closed_by_server(reader)
        writer.close()
        assert srv.guard.refused == 1
        release.set()
        assert (await busy).endswith(b"reloaded\n")  # the busy one was never cut
