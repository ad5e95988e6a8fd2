"""The Graph client against mocked Graph API answers (aioresponses, no network)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import json
import re
from typing import Any
from urllib.parse import parse_qs

import aiohttp
import pytest
from aiohttp import test_utils, web
from aioresponses import CallbackResult, aioresponses
from clock_support import Clock
from graph_mocks import CompatResponse
from structlog.testing import capture_logs
from yarl import URL

from collectord.config.types import GraphConfig
from collectord.errors import (
    AuthError,
    BadResponseError,
    GraphError,
    GraphTimeoutError,
    InvalidRequestError,
    NetworkError,
    ObjectNotFoundError,
    Outcome,
    PermissionDeniedError,
    ReduceDataError,
    ServerError,
    ThrottledError,
    counting_problems,
)
from collectord.graph.client import GraphClient, appsecret_proof
from collectord.graph.stats import GraphStats
from collectord.secret import Secret

BASE = "https://graph.test"
TOKEN = "EAAPageToken0123456789abcdef"
OTHER_TOKEN = "EAAOtherToken9876543210"
APP_SECRET = "s3cr3t-app-secret-value"
NOW = 1_780_000_000.0


def pattern(path: str) -> re.Pattern[str]:
    """A URL pattern for ``/v26.0/{path}`` with any query string."""
    return re.compile(rf"^{re.escape(BASE)}/v26\.0/{re.escape(path)}(\?.*)?$")


ROOT = pattern("")


def envelope(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AK5w64sspf_nMUi",
            **extra,
        }
    }


class Sleeps:
    """An injectable sleep that records the delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Calls:
    """An aioresponses callback recording each request's URL and keyword arguments."""

    def __init__(self) -> None:
        self.seen: list[tuple[URL, dict[str, Any]]] = []

    def __call__(self, url: URL, **kwargs: Any) -> None:
        self.seen.append((url, kwargs))

    def query(self, index: int) -> dict[str, str]:
        return dict(self.seen[index][0].query)

    def form(self, index: int) -> dict[str, str]:
        return dict(self.seen[index][1]["data"])


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock[float]:
    return Clock(NOW)


@pytest.fixture
def make_client(session: aiohttp.ClientSession, sleeps: Sleeps, clock: Clock[float]) -> Any:
    def make(**kw: Any) -> GraphClient:
        config = GraphConfig(
            base_url=BASE,
            app_id=kw.pop("app_id", "4242"),
            app_secret=kw.pop("app_secret", Secret(APP_SECRET)),
            usage_ceiling=kw.pop("usage_ceiling", 0.75),
            max_concurrency=kw.pop("max_concurrency", 8),
            timeout=12.5,
        )
        kw.setdefault("rng", lambda: 0.5)
        return GraphClient(session, config, sleep=sleeps, clock=clock, **kw)

    return make


# -- URLs, token and appsecret_proof -------------------------------------------------------


async def test_get_sends_versioned_url_token_and_timed_proof(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    mocked.get(pattern("123/insights"), payload={"data": []}, callback=calls)
    graph = make_client().bind(TOKEN, source="acme")

    body = await graph.get("/123/insights", {"metric": ["page_views_total", "page_follows"]})

    assert body == {"data": []}
    url, kwargs = calls.seen[0]
    assert url.path == "/v26.0/123/insights"
    query = calls.query(0)
    assert query["metric"] == "page_views_total,page_follows"
    assert query["access_token"] == TOKEN
    assert query["appsecret_time"] == str(int(NOW))
    expected = hmac.new(
        APP_SECRET.encode(), f"{TOKEN}|{int(NOW)}".encode(), hashlib.sha256
    ).hexdigest()
    assert query["appsecret_proof"] == expected
    assert kwargs["timeout"].total == 12.5


async def test_proof_is_computed_per_request(
    mocked: aioresponses, make_client: Any, clock: Clock[float]
) -> None:
    calls = Calls()
    mocked.get(pattern("me"), payload={"id": "1"}, callback=calls, repeat=True)
    graph = make_client().bind(TOKEN)

    await graph.get("me")
    clock.now += 400  # a proof expires after 5 minutes
    await graph.get("me")

    assert calls.query(1)["appsecret_time"] == str(int(NOW + 400))
    assert calls.query(1)["appsecret_proof"] == appsecret_proof(TOKEN, APP_SECRET, NOW + 400)[0]
    assert calls.query(0)["appsecret_proof"] != calls.query(1)["appsecret_proof"]


async def test_no_proof_without_app_secret(mocked: aioresponses, make_client: Any) -> None:
    calls = Calls()
    mocked.get(pattern("me"), payload={"id": "1"}, callback=calls)

    await make_client(app_secret=None).bind(Secret(TOKEN)).get("me")

    assert calls.query(0) == {"access_token": TOKEN}


async def test_bind_uses_the_sources_graph_overrides(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    mocked.get(re.compile(r"^http://127\.0\.0\.1:9/v24\.0/me\?.*$"), payload={}, callback=calls)
    override = GraphConfig(base_url="http://127.0.0.1:9/", version="v24.0", timeout=3.0)
    graph = make_client().bind(TOKEN, graph=override)

    await graph.get("me")

    assert graph.version == "v24.0"
    assert calls.seen[0][1]["timeout"].total == 3.0
    assert "appsecret_proof" not in calls.query(0)  # the override has no app secret


async def test_get_rejects_a_body_that_is_not_an_object(
    mocked: aioresponses, make_client: Any
) -> None:
    mocked.get(pattern("me"), body="[1, 2]")
    with pytest.raises(BadResponseError):
        await make_client(max_retries=0).bind(TOKEN).get("me")


# -- paging ------------------------------------------------------------------------------


async def test_get_all_follows_cursors_and_empty_pages_with_our_token(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    leaked = f"{BASE}/v26.0/123/posts?access_token=NOT-OURS&limit=2"
    pages = [
        {"data": [{"id": "1"}, {"id": "2"}], "paging": {"cursors": {"after": "A"}, "next": leaked}},
        {"data": [], "paging": {"cursors": {"after": "B"}, "next": leaked + "&after=B"}},
        {"data": [{"id": "3"}], "paging": {"cursors": {"after": "C"}}},
    ]
    for page in pages:
        mocked.get(pattern("123/posts"), payload=page, callback=calls)

    items = await make_client().bind(TOKEN).get_all("123/posts", {"limit": 2})

    assert [i["id"] for i in items] == ["1", "2", "3"]
    assert len(calls.seen) == 3
    assert calls.query(1)["after"] == "A"
    assert calls.query(2)["after"] == "B"
    for i in range(3):
        assert calls.query(i)["access_token"] == TOKEN
        assert calls.query(i)["limit"] == "2"


async def test_get_all_follows_a_next_url_without_cursors(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    nxt = (
        f"{BASE}/v26.0/123/insights?metric=page_views_total&since=1700&until=1800"
        "&access_token=OLD-TOKEN&appsecret_proof=OLD-PROOF&appsecret_time=1"
    )
    mocked.get(pattern("123/insights"), payload={"data": [{"n": 1}], "paging": {"next": nxt}})
    mocked.get(pattern("123/insights"), payload={"data": [{"n": 2}]}, callback=calls)

    items = await make_client().bind(TOKEN).get_all("123/insights", {"metric": "x"})

    assert items == [{"n": 1}, {"n": 2}]
    query = calls.query(0)
    assert query["since"] == "1700"
    assert query["until"] == "1800"
    assert query["metric"] == "page_views_total"
    assert query["access_token"] == TOKEN
    assert query["appsecret_time"] == str(int(NOW))
    assert query["appsecret_proof"] == appsecret_proof(TOKEN, APP_SECRET, NOW)[0]


async def test_get_all_never_reuses_a_token_from_a_next_url(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    nxt = f"{BASE}/v26.0/1/insights?since=5&access_token=FOREIGN&appsecret_proof=P&appsecret_time=1"
    mocked.get(pattern("1/insights"), payload={"data": [], "paging": {"next": nxt}})
    mocked.get(pattern("1/insights"), payload={"data": []}, callback=calls)

    await make_client().bind(None).get_all("1/insights")

    assert calls.query(0) == {"since": "5"}


async def test_get_all_stops_at_the_page_cap_with_a_warning(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()

    def page(url: URL, **kwargs: Any) -> CallbackResult:
        calls(url, **kwargs)
        after = f"A{len(calls.seen)}"
        return CallbackResult(
            payload={"data": [{"id": "x"}], "paging": {"cursors": {"after": after}, "next": BASE}},
            response_class=CompatResponse,
        )

    mocked.get(pattern("123/posts"), callback=page, repeat=True)

    with capture_logs() as logs, counting_problems() as problems:
        items = await make_client().bind(TOKEN).get_all("123/posts", max_pages=3)

    assert len(items) == 3
    assert len(calls.seen) == 3
    assert problems == {"bad_response": 1}
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "graph paging: the list stopped at the page cap"
    ]


async def test_get_all_stops_a_paging_loop_with_a_warning(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    page = {"data": [{"id": "x"}], "paging": {"cursors": {"after": "A"}, "next": f"{BASE}/n"}}
    mocked.get(pattern("123/posts"), payload=page, callback=calls, repeat=True)

    with capture_logs() as logs, counting_problems() as problems:
        items = await make_client().bind(TOKEN).get_all("123/posts")

    assert len(calls.seen) == 2  # the first page, then the one "after A" that leads to itself
    assert len(items) == 2
    assert problems == {"bad_response": 1}
    assert "graph paging: the list pages in a loop; stopped" in [e["event"] for e in logs]


async def test_get_all_stops_at_max_items(mocked: aioresponses, make_client: Any) -> None:
    calls = Calls()
    page = {"data": [{"id": "a"}, {"id": "b"}], "paging": {"cursors": {"after": "A"}, "next": BASE}}
    mocked.get(pattern("123/posts"), payload=page, callback=calls, repeat=True)

    items = await make_client().bind(TOKEN).get_all("123/posts", max_items=3)

    assert len(items) == 3
    assert len(calls.seen) == 2


async def test_get_all_refuses_a_next_on_a_foreign_host(
    mocked: aioresponses, make_client: Any
) -> None:
    foreign = Calls()
    mocked.get(re.compile(r"^https://evil\.example/.*"), payload={"data": []}, callback=foreign)
    page = {
        "data": [{"id": "1"}],
        "paging": {"cursors": {"after": "A"}, "next": "https://evil.example/v26.0/123/posts"},
    }
    mocked.get(pattern("123/posts"), payload=page)

    with pytest.raises(BadResponseError, match="another host") as info:
        await make_client().bind(TOKEN).get_all("123/posts")

    assert foreign.seen == []
    assert TOKEN not in str(info.value)


# -- batches -----------------------------------------------------------------------------


def batch_answer(items: list[Any]) -> list[Any]:
    """A batch answer: ``(code, body)`` pairs become elements, ``None`` stays null."""
    return [None if i is None else {"code": i[0], "body": json.dumps(i[1])} for i in items]


def sent_batch(calls: Calls, index: int) -> list[str]:
    return [e["relative_url"] for e in json.loads(calls.form(index)["batch"])]


async def test_batch_returns_bodies_and_errors_and_retries_nulls(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    calls = Calls()
    first = batch_answer(
        [
            (200, {"data": [{"name": "reach"}]}),
            (400, envelope(100, "(#100) The value must be a valid insights metric")),
            None,
        ]
    )
    mocked.post(ROOT, payload=first, callback=calls)
    mocked.post(ROOT, payload=batch_answer([(200, {"id": "m3"})]), callback=calls)

    results = (
        await make_client()
        .bind(TOKEN)
        .batch(
            [
                ("m1/insights", {"metric": ["reach", "views"]}),
                ("m2/insights", {"metric": "impressions"}),
                ("m3", None),
            ]
        )
    )

    assert results[0] == {"data": [{"name": "reach"}]}
    assert isinstance(results[1], InvalidRequestError)
    assert results[1].code == 100
    assert results[2] == {"id": "m3"}
    assert sent_batch(calls, 0) == [
        "m1/insights?metric=reach%2Cviews",
        "m2/insights?metric=impressions",
        "m3",
    ]
    assert sent_batch(calls, 1) == ["m3"]
    form = calls.form(0)
    assert form["include_headers"] == "true"  # issue 8: per-element usage and regain times
    assert form["access_token"] == TOKEN
    assert form["appsecret_proof"] == appsecret_proof(TOKEN, APP_SECRET, NOW)[0]
    assert calls.seen[0][0].path == "/v26.0/"
    assert TOKEN not in str(calls.seen[0][0])  # the token goes in the body, not the URL
    assert sleeps.delays == [0.5]


async def test_batch_gives_up_on_elements_that_stay_null(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    calls = Calls()
    mocked.post(ROOT, payload=[{"code": 200, "body": "{}"}, None], callback=calls)
    mocked.post(ROOT, payload=[None], callback=calls, repeat=True)

    results = await make_client(max_retries=2).bind(TOKEN).batch([("a", None), ("b", None)])

    assert results[0] == {}
    assert isinstance(results[1], ServerError)
    assert len(calls.seen) == 3  # the first round and two retry rounds
    assert sleeps.delays == [0.5, 1.0]


async def test_batch_retries_transient_elements_but_not_others(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    first = batch_answer(
        [
            (500, envelope(2, "(#2) Service temporarily unavailable", is_transient=True)),
            (403, envelope(10, "(#10) Not enough viewers for the media to show insights")),
        ]
    )
    mocked.post(ROOT, payload=first, callback=calls)
    mocked.post(ROOT, payload=batch_answer([(200, {"id": "a"})]), callback=calls)

    results = await make_client().bind(TOKEN).batch([("a", None), ("b", None)])

    assert results[0] == {"id": "a"}
    assert isinstance(results[1], PermissionDeniedError)
    assert sent_batch(calls, 1) == ["a"]


async def test_batch_chunks_requests_by_fifty(mocked: aioresponses, make_client: Any) -> None:
    calls = Calls()

    def echo(url: URL, **kwargs: Any) -> CallbackResult:
        calls(url, **kwargs)
        sent = json.loads(kwargs["data"]["batch"])
        return CallbackResult(
            payload=[{"code": 200, "body": json.dumps({"id": e["relative_url"]})} for e in sent],
            response_class=CompatResponse,
        )

    mocked.post(ROOT, callback=echo, repeat=True)

    results = await make_client().bind(TOKEN).batch([(str(i), None) for i in range(120)])

    assert [len(sent_batch(calls, i)) for i in range(len(calls.seen))] == [50, 50, 20]
    assert [r["id"] for r in results if isinstance(r, dict)] == [str(i) for i in range(120)]


async def test_get_many_sends_one_call_as_a_get_and_returns_its_error(
    mocked: aioresponses, make_client: Any
) -> None:
    gone = envelope(100, "Unsupported get request.", error_subcode=33)
    mocked.get(pattern("a"), status=400, payload=gone)

    (answer,) = await make_client().bind(TOKEN).get_many([("a", None)])

    assert isinstance(answer, ObjectNotFoundError)
    assert answer.outcome is Outcome.OBJECT_GONE


async def test_get_many_sends_several_calls_as_one_batch(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    mocked.post(
        ROOT, payload=batch_answer([(200, {"id": "a"}), (200, {"id": "b"})]), callback=calls
    )

    answers = await make_client().bind(TOKEN).get_many([("a", None), ("b", {"fields": "id"})])

    assert answers == [{"id": "a"}, {"id": "b"}]
    assert sent_batch(calls, 0) == ["a", "b?fields=id"]


async def test_unknown_error_to_a_breakdown_means_unsupported_in_gets_and_batches(
    mocked: aioresponses, make_client: Any
) -> None:
    unknown = envelope(1, "An unknown error has occurred.")
    mocked.get(pattern("1/insights"), status=500, payload=unknown, repeat=True)
    mocked.post(ROOT, payload=batch_answer([(500, unknown), (500, unknown)]), repeat=True)
    graph = make_client(max_retries=1).bind(TOKEN)
    breakdown = {"metric": "reach", "breakdown": "follow_type"}

    with pytest.raises(ServerError) as info:
        await graph.get("1/insights", breakdown)
    assert info.value.outcome is Outcome.BREAKDOWN_UNSUPPORTED
    plain, split = await graph.batch(
        [("1/insights", {"metric": "reach"}), ("1/insights", breakdown)]
    )
    assert isinstance(plain, ServerError)
    assert plain.outcome is Outcome.SERVER, "without a breakdown it is Meta failing"
    assert isinstance(split, ServerError)
    assert split.outcome is Outcome.BREAKDOWN_UNSUPPORTED


async def test_batch_raises_when_the_whole_request_fails(
    mocked: aioresponses, make_client: Any
) -> None:
    body = envelope(190, "Error validating access token: Session has expired", error_subcode=463)
    mocked.post(ROOT, status=400, payload=body)

    with pytest.raises(AuthError):
        await make_client().bind(TOKEN).batch([("a", None)])


# -- retries -----------------------------------------------------------------------------


async def test_transient_errors_are_retried_with_full_jitter(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    outage = envelope(2, "An unexpected error has occurred.", is_transient=True)
    mocked.get(pattern("me"), status=500, payload=outage)
    mocked.get(pattern("me"), status=502, body="<html>Bad Gateway</html>")
    mocked.get(pattern("me"), payload={"id": "1"})
    client = make_client(backoff_base=2.0)

    assert await client.bind(TOKEN).get("me") == {"id": "1"}

    assert sleeps.delays == [1.0, 2.0]  # min(cap, 2 * 2**n) * 0.5
    assert client.stats.requests == {"500": 1, "502": 1, "200": 1}


async def test_transient_errors_give_up_after_max_retries(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    calls = Calls()
    body = envelope(1, "An unknown error has occurred.")
    mocked.get(pattern("me"), status=500, payload=body, callback=calls, repeat=True)
    client = make_client(max_retries=3, backoff_cap=1.5, rng=lambda: 1.0)

    with pytest.raises(ServerError) as info:
        await client.bind(TOKEN).get("me")

    assert info.value.code == 1
    assert len(calls.seen) == 4
    assert sleeps.delays == [1.0, 1.5, 1.5]


async def test_reduce_the_amount_of_data_is_not_retried_unchanged(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    calls = Calls()
    body = envelope(1, "Please reduce the amount of data you're asking for, then retry")
    mocked.get(pattern("me"), status=500, payload=body, callback=calls, repeat=True)

    with pytest.raises(ReduceDataError) as info:
        await make_client(max_retries=3).bind(TOKEN).get("me")

    assert info.value.outcome is Outcome.REDUCE_DATA
    assert len(calls.seen) == 1, "asking again for as much fails again"
    assert sleeps.delays == []


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (400, envelope(190, "Error validating access token", error_subcode=460), AuthError),
        (403, envelope(200, "(#200) Permissions error"), PermissionDeniedError),
        (
            400,
            envelope(100, "(#100) The value must be a valid insights metric"),
            InvalidRequestError,
        ),
        (
            400,
            envelope(100, "Object with ID '9' does not exist", error_subcode=33),
            ObjectNotFoundError,
        ),
        (
            403,
            envelope(4, "(#4) Application request limit reached", is_transient=True),
            ThrottledError,
        ),
        (400, envelope(80001, "(#80001) There have been too many calls"), ThrottledError),
    ],
)
async def test_errors_that_need_no_retry_are_raised_at_once(
    mocked: aioresponses,
    make_client: Any,
    sleeps: Sleeps,
    status: int,
    body: dict[str, Any],
    cls: type[GraphError],
) -> None:
    calls = Calls()
    mocked.get(pattern("me"), status=status, payload=body, callback=calls, repeat=True)

    with pytest.raises(cls):
        await make_client().bind(TOKEN).get("me")

    assert len(calls.seen) == 1
    assert sleeps.delays == []


async def test_timeouts_are_retried_then_raised_and_counted(
    mocked: aioresponses, make_client: Any
) -> None:
    mocked.get(pattern("me"), exception=TimeoutError(), repeat=True)
    client = make_client(max_retries=1)

    with pytest.raises(GraphTimeoutError, match=r"12\.5s"):
        await client.bind(TOKEN).get("me")

    assert client.stats.requests == {"timeout": 2}


async def test_connection_errors_become_scrubbed_network_errors(
    mocked: aioresponses, make_client: Any
) -> None:
    leak = aiohttp.ClientConnectionError(
        f"Cannot connect: GET {BASE}/v26.0/me?access_token={TOKEN}&appsecret_proof=abcdef12"
    )
    mocked.get(pattern("me"), exception=leak, repeat=True)
    client = make_client(max_retries=0)

    with pytest.raises(NetworkError) as info:
        await client.bind(TOKEN).get("me")

    text = str(info.value)
    assert "Cannot connect" in text
    assert TOKEN not in text
    assert "abcdef12" not in text
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    assert client.stats.requests == {"network": 1}


async def test_html_answers_are_bad_responses(mocked: aioresponses, make_client: Any) -> None:
    mocked.get(pattern("me"), status=200, body="<!DOCTYPE html><html></html>", repeat=True)

    with pytest.raises(BadResponseError):
        await make_client(max_retries=0).bind(TOKEN).get("me")


async def test_requests_are_counted_by_status(mocked: aioresponses, make_client: Any) -> None:
    mocked.get(pattern("a"), payload={})
    mocked.get(pattern("b"), payload={})
    mocked.get(pattern("c"), status=400, payload=envelope(100, "(#100) bad"))
    client = make_client()
    graph = client.bind(TOKEN)

    await graph.get("a")
    await graph.get("b")
    with pytest.raises(InvalidRequestError):
        await graph.get("c")

    assert client.stats.requests == {"200": 2, "400": 1}


# -- usage headers and the governor -------------------------------------------------------


async def test_usage_headers_fill_stats(mocked: aioresponses, make_client: Any) -> None:
    headers = {
        "X-App-Usage": '{"call_count": 28, "total_cputime": 25, "total_time": 5}',
        "X-Business-Use-Case-Usage": json.dumps(
            {"123": [{"type": "pages", "call_count": 97, "total_cputime": 23, "total_time": 24}]}
        ),
        "X-Page-Usage": '{"call_count": 85, "total_cputime": 56, "total_time": 60}',
    }
    mocked.get(pattern("me"), payload={}, headers=headers)
    stats = GraphStats()

    await make_client(stats=stats, usage_ceiling=1.0).bind(TOKEN).get("me")

    assert stats.usage[("app", "4242", "call_count")] == pytest.approx(0.28)
    assert stats.usage[("app", "4242", "total_time")] == pytest.approx(0.05)
    assert stats.usage[("pages", "123", "call_count")] == pytest.approx(0.97)
    assert stats.usage[("page", "", "total_time")] == pytest.approx(0.60)
    assert len(stats.usage) == 9


async def test_malformed_usage_header_is_ignored(mocked: aioresponses, make_client: Any) -> None:
    headers = {"X-App-Usage": "{not json", "X-Page-Usage": '{"call_count": 10}'}
    mocked.get(pattern("me"), payload={"id": "1"}, headers=headers)
    client = make_client()

    with capture_logs() as logs:
        assert await client.bind(TOKEN).get("me") == {"id": "1"}

    assert client.stats.usage == {("page", "", "call_count"): pytest.approx(0.10)}
    assert any(
        e["event"] == "malformed usage header ignored" and e["header"] == "X-App-Usage"
        for e in logs
    )


async def test_usage_above_the_ceiling_slows_requests_down(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    hot = {"X-App-Usage": '{"call_count": 90, "total_cputime": 10, "total_time": 10}'}
    full = {"X-App-Usage": '{"call_count": 100, "total_cputime": 10, "total_time": 10}'}
    mocked.get(pattern("a"), payload={}, headers=hot)
    mocked.get(pattern("b"), payload={}, headers=full)
    mocked.get(pattern("c"), payload={}, headers=full)
    graph = make_client(usage_ceiling=0.8).bind(TOKEN)

    with capture_logs() as logs:
        await graph.get("a")  # nothing known yet: no wait
        await graph.get("b")  # 90 % with a ceiling of 80 %: half-way to the cap
        await graph.get("c")  # 100 %: the full delay

    assert sleeps.delays == [pytest.approx(30.5), pytest.approx(60.0)]
    slowing = [e for e in logs if "slowing down" in e["event"]]
    assert len(slowing) == 1
    assert slowing[0]["log_level"] == "warning"


async def test_usage_under_the_ceiling_never_waits(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    cool = {"X-App-Usage": '{"call_count": 74, "total_cputime": 10, "total_time": 10}'}
    mocked.get(pattern("me"), payload={}, headers=cool, repeat=True)
    graph = make_client(usage_ceiling=0.75).bind(TOKEN)

    for _ in range(3):
        await graph.get("me")

    assert sleeps.delays == []


async def test_a_throttle_with_a_known_end_stops_calls_until_then(
    mocked: aioresponses, make_client: Any, clock: Clock[float]
) -> None:
    calls = Calls()
    buc = {"77": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 2}]}
    mocked.get(
        pattern("77"),
        status=400,
        payload=envelope(80001, "(#80001) There have been too many calls to this Page account."),
        headers={"X-Business-Use-Case-Usage": json.dumps(buc)},
        callback=calls,
    )
    mocked.get(pattern("77"), payload={"id": "77"}, callback=calls)
    mocked.get(pattern("other"), payload={"id": "other"}, callback=calls)
    client = make_client(usage_ceiling=1.0)
    graph = client.bind(TOKEN)

    with pytest.raises(ThrottledError) as first:
        await graph.get("77")
    assert first.value.retry_after == 120.0

    clock.now += 60
    with pytest.raises(ThrottledError) as second:
        await graph.get("77")
    assert second.value.retry_after == pytest.approx(60.0)
    assert len(calls.seen) == 1  # Meta was not called again

    # another token draws on another budget and is not held back
    assert await client.bind(OTHER_TOKEN).get("other") == {"id": "other"}

    clock.now += 61
    assert await graph.get("77") == {"id": "77"}


async def test_an_app_throttle_holds_back_every_token(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    body = envelope(4, "(#4) Application request limit reached", is_transient=True)
    mocked.get(
        pattern("me"), status=403, payload=body, headers={"Retry-After": "30"}, callback=calls
    )
    client = make_client()

    with pytest.raises(ThrottledError):
        await client.bind(TOKEN).get("me")
    with pytest.raises(ThrottledError):
        await client.bind(OTHER_TOKEN).get("me")

    assert len(calls.seen) == 1


async def test_requests_in_flight_are_capped(mocked: aioresponses, make_client: Any) -> None:
    gate = asyncio.Event()
    state = {"now": 0, "max": 0}

    async def slow(url: URL, **kwargs: Any) -> None:
        state["now"] += 1
        state["max"] = max(state["max"], state["now"])
        await gate.wait()
        state["now"] -= 1

    mocked.get(pattern("me"), payload={}, callback=slow, repeat=True)
    graph = make_client(max_concurrency=2).bind(TOKEN)
    tasks = [asyncio.create_task(graph.get("me")) for _ in range(5)]
    for _ in range(50):  # let every task run as far as it can
        await asyncio.sleep(0)

    assert state["now"] == 2
    gate.set()
    await asyncio.gather(*tasks)
    assert state["max"] == 2


async def test_a_source_keeps_to_its_own_max_concurrency(
    mocked: aioresponses, make_client: Any
) -> None:
    gate = asyncio.Event()
    in_flight = {"narrow": 0, "wide": 0}

    def slow(name: str) -> Any:
        async def callback(url: URL, **kwargs: Any) -> None:
            in_flight[name] += 1
            await gate.wait()

        return callback

    mocked.get(pattern("narrow"), payload={}, callback=slow("narrow"), repeat=True)
    mocked.get(pattern("wide"), payload={}, callback=slow("wide"), repeat=True)
    client = make_client(max_concurrency=4)
    narrow = client.bind(TOKEN, graph=dataclasses.replace(client.config, max_concurrency=1))
    wide = client.bind(OTHER_TOKEN)
    tasks = [asyncio.create_task(narrow.get("narrow")) for _ in range(3)]
    tasks += [asyncio.create_task(wide.get("wide")) for _ in range(5)]
    for _ in range(50):  # let every task run as far as it can
        await asyncio.sleep(0)

    # the narrow source has one request out; the process-wide cap of 4 holds the rest
    assert in_flight == {"narrow": 1, "wide": 3}
    gate.set()
    await asyncio.gather(*tasks)


async def test_a_source_keeps_to_its_own_usage_ceiling(
    mocked: aioresponses, make_client: Any, sleeps: Sleeps
) -> None:
    hot = {"X-Page-Usage": '{"call_count": 70, "total_cputime": 10, "total_time": 10}'}
    mocked.get(pattern("me"), payload={}, headers=hot, repeat=True)
    client = make_client(usage_ceiling=0.9)
    relaxed = client.bind(TOKEN)
    careful = client.bind(OTHER_TOKEN, graph=dataclasses.replace(client.config, usage_ceiling=0.5))

    await relaxed.get("me")
    await relaxed.get("me")  # 70 % is under its 90 %: no wait
    assert sleeps.delays == []
    await careful.get("me")
    await careful.get("me")  # 70 % is over its 50 %
    assert sleeps.delays == [pytest.approx(1.0 + 59.0 * 0.4)]


async def test_a_source_with_its_own_app_is_signed_and_inspected_with_it(
    mocked: aioresponses, make_client: Any
) -> None:
    calls = Calls()
    usage = {"X-App-Usage": '{"call_count": 12, "total_cputime": 1, "total_time": 1}'}
    mocked.get(pattern("me"), payload={}, headers=usage, callback=calls)
    data = {"type": "USER", "expires_at": 1_790_000_000, "is_valid": True}
    mocked.get(pattern("debug_token"), payload={"data": data}, callback=calls)
    client = make_client()
    other_app = dataclasses.replace(client.config, app_id="777", app_secret=Secret("other-secret"))

    await client.bind(TOKEN, graph=other_app).get("me")
    assert await client.debug_token(TOKEN, graph=other_app) == data

    assert calls.query(0)["appsecret_proof"] == appsecret_proof(TOKEN, "other-secret", NOW)[0]
    assert client.stats.usage[("app", "777", "call_count")] == pytest.approx(0.12)
    assert calls.query(1)["access_token"] == "777|other-secret"


# -- secrets -----------------------------------------------------------------------------


async def test_meta_messages_echoing_the_token_are_scrubbed(
    mocked: aioresponses, make_client: Any
) -> None:
    body = envelope(190, f"Invalid OAuth access token - Cannot parse access token: {TOKEN}")
    mocked.get(pattern("me"), status=400, payload=body)

    with pytest.raises(AuthError) as info:
        await make_client().bind(TOKEN).get("me")

    assert "Cannot parse access token" in str(info.value)
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value.args)


async def test_logs_never_carry_secrets(
    mocked: aioresponses, make_client: Any, clock: Clock[float]
) -> None:
    proof = appsecret_proof(TOKEN, APP_SECRET, NOW)[0]
    nxt = f"{BASE}/v26.0/1/posts?access_token={TOKEN}&appsecret_proof={proof}&after=A"
    mocked.get(pattern("1/posts"), payload={"data": [], "paging": {"next": nxt}})
    mocked.get(pattern("1/posts"), status=500, payload=envelope(2, "outage"))
    mocked.get(pattern("1/posts"), payload={"data": [{"id": "p"}]})
    mocked.get(pattern("debug_token"), payload={"data": {"is_valid": True}})
    mocked.get(pattern("me"), exception=aiohttp.ClientConnectionError(nxt), repeat=True)
    client = make_client(max_retries=1)
    graph = client.bind(TOKEN, source="acme")

    with capture_logs() as logs:
        assert await graph.get_all("1/posts") == [{"id": "p"}]
        await client.debug_token(OTHER_TOKEN)
        with pytest.raises(NetworkError):
            await graph.get("me")

    requests = [e for e in logs if e["event"] == "graph request"]
    assert len(requests) == 6
    assert {"method", "path", "status", "duration", "attempt"} <= requests[0].keys()
    text = repr(logs)
    for secret in (TOKEN, OTHER_TOKEN, APP_SECRET, proof):
        assert secret not in text


# -- debug_token -------------------------------------------------------------------------


async def test_debug_token_uses_the_app_token(mocked: aioresponses, make_client: Any) -> None:
    calls = Calls()
    data = {"type": "PAGE", "expires_at": 0, "is_valid": True}
    mocked.get(pattern("debug_token"), payload={"data": data}, callback=calls)

    assert await make_client().debug_token(Secret(TOKEN)) == data

    query = calls.query(0)
    assert query["input_token"] == TOKEN
    assert query["access_token"] == f"4242|{APP_SECRET}"
    app_token = f"4242|{APP_SECRET}"
    assert query["appsecret_proof"] == appsecret_proof(app_token, APP_SECRET, NOW)[0]


async def test_debug_token_needs_app_credentials(mocked: aioresponses, make_client: Any) -> None:
    calls = Calls()
    mocked.get(pattern("debug_token"), payload={"data": {}}, callback=calls)

    with pytest.raises(GraphError, match="app_id and app_secret"):
        await make_client(app_secret=None).debug_token(TOKEN)

    assert calls.seen == []


def test_appsecret_proof_matches_the_documented_form() -> None:
    proof, stamp = appsecret_proof("tok", "key", 1700000000.9)
    assert stamp == "1700000000"
    assert proof == hmac.new(b"key", b"tok|1700000000", hashlib.sha256).hexdigest()
    assert parse_qs(f"p={proof}")["p"] == [proof]  # plain hex, nothing to escape


# -- a real aiohttp round trip over loopback -----------------------------------------------


async def test_round_trip_through_a_loopback_server(sleeps: Sleeps, clock: Clock[float]) -> None:
    never = asyncio.Event()
    seen: dict[str, Any] = {}

    async def node(request: web.Request) -> web.Response:
        seen["query"] = dict(request.query)
        return web.json_response({"id": "me"}, headers={"X-App-Usage": '{"call_count": 3}'})

    async def batch(request: web.Request) -> web.Response:
        form = await request.post()
        seen["form"] = dict(form)
        sent = json.loads(str(form["batch"]))
        return web.json_response([{"code": 200, "body": json.dumps({"n": len(sent)})}])

    async def slow(request: web.Request) -> web.Response:
        await never.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/v26.0/me", node)
    app.router.add_post("/v26.0/", batch)
    app.router.add_get("/v26.0/slow", slow)
    async with (
        test_utils.TestServer(app, host="127.0.0.1") as server,
        aiohttp.ClientSession() as session,
    ):
        config = GraphConfig(
            base_url=str(server.make_url("")), app_secret=Secret(APP_SECRET), timeout=0.05
        )
        client = GraphClient(session, config, sleep=sleeps, clock=clock, max_retries=0)
        graph = client.bind(TOKEN)

        assert await graph.get("me", {"fields": ["id", "name"]}) == {"id": "me"}
        assert await graph.batch([("me", {"fields": "id"})]) == [{"n": 1}]
        with pytest.raises(GraphTimeoutError):
            await graph.get("slow")

    assert seen["query"]["fields"] == "id,name"
    assert seen["query"]["access_token"] == TOKEN
    assert seen["query"]["appsecret_proof"] == appsecret_proof(TOKEN, APP_SECRET, NOW)[0]
    assert seen["form"]["access_token"] == TOKEN
    assert seen["form"]["include_headers"] == "true"  # issue 8: per-element usage and regain times
    assert client.stats.requests == {"200": 2, "timeout": 1}
    assert client.stats.usage == {("app", "", "call_count"): pytest.approx(0.03)}
