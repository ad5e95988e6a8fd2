"""Hostile and unlucky Graph answers against the real client, over a loopback server:
bounded in size, classified, never a crash (issue 9, points 8 and 9)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import test_utils, web
from structlog.testing import capture_logs

from collectord.config.types import GraphConfig
from collectord.errors import (
    MAX_MESSAGE_CHARS,
    AnswerTooLargeError,
    BadResponseError,
    ThrottledError,
    counting_problems,
)
from collectord.graph.answers import classify_error, decode_answer
from collectord.graph.client import GraphClient
from collectord.graph.usage import MAX_REGAIN_SECONDS, regain_seconds
from collectord.model import MAX_LABEL_VALUE, make_labels, number

TOKEN = "EAAPageToken0123456789abcdef"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _no_sleep(_: float) -> None:
    return None


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[GraphClient, list[str]]]]]:
    """Start a loopback server answering every request with ``handler``; returns a
    client pointed at it (1 MiB answer cap) and the paths it was asked for."""
    servers: list[test_utils.TestServer] = []
    sessions: list[aiohttp.ClientSession] = []

    async def start(handler: Handler) -> tuple[GraphClient, list[str]]:
        seen: list[str] = []

        async def record(request: web.Request) -> web.StreamResponse:
            seen.append(request.path)
            return await handler(request)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", record)
        server = test_utils.TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        session = aiohttp.ClientSession()
        sessions.append(session)
        config = GraphConfig(base_url=str(server.make_url("")), timeout=10.0)
        client = GraphClient(session, config, sleep=_no_sleep, rng=lambda: 0.0)
        client.max_answer_bytes = 1024 * 1024
        return client, seen

    yield start
    for session in sessions:
        await session.close()
    for server in servers:
        await server.close()


async def endless(request: web.Request) -> web.StreamResponse:
    """A JSON answer that never ends (no Content-Length), as a broken proxy sends it."""
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    await resp.prepare(request)
    await resp.write(b'{"data": [')
    chunk = b'{"id": "1"},' * 5000
    try:
        while True:
            await resp.write(chunk)
    except (ConnectionError, asyncio.CancelledError):
        pass
    return resp


async def test_an_endless_answer_is_cut_at_the_cap_and_not_retried(serve: Any) -> None:
    client, seen = await serve(endless)
    graph = client.bind(TOKEN, source="page")

    with capture_logs() as logs, pytest.raises(AnswerTooLargeError) as info:
        await graph.get("123/insights", {"metric": "page_views_total"})

    assert info.value.reason == "bad_response"
    assert "GET /v26.0/123/insights" in str(info.value)
    assert "longer than 1048576 bytes" in str(info.value)
    assert len(seen) == 1  # the same answer would come again: not retried
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["graph answer too large"]
    assert TOKEN not in repr(logs) + str(info.value)


async def test_an_announced_huge_answer_is_refused_before_it_is_read(serve: Any) -> None:
    body = b'{"data": []}'.ljust(2 * 1024 * 1024)

    async def huge(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    client, _ = await serve(huge)
    with pytest.raises(AnswerTooLargeError, match="is 2097152 bytes, over 1048576"):
        await client.bind(TOKEN).get("me")


async def test_a_huge_batch_answer_is_a_bad_response(serve: Any) -> None:
    async def huge_batch(_: web.Request) -> web.Response:
        element = {"code": 200, "body": json.dumps({"data": [{"x": "y" * 1000}] * 1200})}
        return web.json_response([element, element])

    client, _ = await serve(huge_batch)
    with pytest.raises(AnswerTooLargeError, match=r"POST /v26\.0/"):
        await client.bind(TOKEN).batch([("1/insights", {"metric": "a"}), ("2/insights", None)])


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (b"", "application/json", "the answer is empty"),
        (b"<html><body>502 Bad Gateway</body></html>", "text/html", "text/html, not JSON"),
        (b'{"data": [1, 2', "application/json", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "application/json", "nested too deeply"),
        (b'{"data": "\xff\xfe"}', "application/json", "not JSON"),
        (b"<?xml version='1.0'?><a/>", "application/xml", "application/xml, not JSON"),
    ],
)
async def test_answers_that_are_not_json_are_bad_responses(
    serve: Any, body: bytes, content_type: str, words: str
) -> None:
    async def broken(_: web.Request) -> web.Response:
        return web.Response(body=body, headers={"Content-Type": content_type})

    client, seen = await serve(broken)
    with pytest.raises(BadResponseError, match=words) as info:
        await client.bind(TOKEN, source="page").get("123", {"fields": "followers_count"})

    assert info.value.reason == "bad_response"
    assert str(info.value).startswith("GET /v26.0/123: ")
    assert len(seen) == 1 + client.max_retries  # retried: a proxy's page passes


def test_a_value_past_float_range_costs_that_value_only() -> None:
    raw = b'{"data": [{"name": "a", "period": "day", "values": [{"value": 1' + b"0" * 400
    raw += b'}, {"value": 7}]}]}'
    with counting_problems() as problems:
        body = decode_answer(raw, 200)
        values = [number(v["value"]) for v in body["data"][0]["values"]]
    assert values == [None, 7.0]
    assert problems == {"bad_response": 1}


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), "NaN", "nan", "Infinity", "-Infinity", "1e400", float("inf")]
)
def test_numbers_no_float_holds_are_skipped_and_counted(value: Any) -> None:
    with counting_problems() as problems:
        assert number(value) is None
    assert problems == {"bad_response": 1}


@pytest.mark.parametrize("value", [True, False, None, [], {}, "n/a", "1" * 100])
def test_things_that_are_not_numbers_are_skipped_quietly(value: Any) -> None:
    with counting_problems() as problems:
        assert number(value) is None
    assert not problems


def test_a_regain_time_of_a_million_minutes_reads_as_the_maximum() -> None:
    for minutes in (1_000_000, 10**400, 1e308):
        header = '{"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": '
        header += f"{minutes}" + "}]}"
        assert regain_seconds({"X-Business-Use-Case-Usage": header}) == MAX_REGAIN_SECONDS


@pytest.mark.parametrize("raw", ["1000000000", "1e999", "inf", "Infinity"])
def test_a_retry_after_beyond_reason_is_clamped(raw: str) -> None:
    body = {"error": {"message": "(#4) Application request limit reached", "code": 4}}
    err = classify_error(body, 400, headers={"Retry-After": raw})
    assert isinstance(err, ThrottledError)
    assert err.retry_after == MAX_REGAIN_SECONDS


@pytest.mark.parametrize("raw", ["-5", "nan", "0", "soon"])
def test_a_retry_after_that_is_no_wait_is_ignored(raw: str) -> None:
    body = {"error": {"message": "(#4) Application request limit reached", "code": 4}}
    err = classify_error(body, 400, headers={"Retry-After": raw})
    assert isinstance(err, ThrottledError)
    assert err.retry_after is None


async def test_a_ten_megabyte_error_message_is_cut_and_scrubbed(serve: Any) -> None:
    message = f"(#100) Invalid parameter access_token={TOKEN} " + "x" * (10 * 1024 * 1024)

    async def wordy(_: web.Request) -> web.Response:
        return web.json_response({"error": {"message": message, "code": 100}}, status=400)

    client, _ = await serve(wordy)
    client.max_answer_bytes = 16 * 1024 * 1024
    with pytest.raises(Exception) as info:  # noqa: PT011 - the class is not the point here
        await client.bind(TOKEN).get("123/insights", {"metric": "x"})

    text = str(info.value)
    assert len(info.value.message) <= MAX_MESSAGE_CHARS + 40  # type: ignore[attr-defined]
    assert len(text) < 700
    assert "more characters" in text
    assert TOKEN not in text


def test_a_label_value_the_size_of_a_document_is_cut() -> None:
    labels = make_labels({"key": "k" * 100_000, "none": None, "n": 7})
    assert labels == (("key", "k" * MAX_LABEL_VALUE), ("none", ""), ("n", "7"))


@pytest.mark.parametrize("code", ["9" * 5000, "²", "-", " 4 ", "١٢"])
def test_codes_that_are_no_numbers_do_not_break_the_classification(code: str) -> None:
    err = classify_error({"error": {"message": "odd", "code": code}}, 400)
    assert err.code == (4 if code == " 4 " else None)
