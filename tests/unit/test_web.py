"""The HTTP server, started for real on loopback and queried with an aiohttp client."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from collectord import PollResult, Skip
from collectord.exporter.exposition import Exposition, make_exposition
from collectord.graph.stats import GraphStats
from collectord.model import Sample, make_labels
from collectord.plugin.api import Disable
from collectord.sinks.stats import SinkStats
from collectord.store.store import Store
from collectord.web.server import make_app, start_server, stop_server
from collectord.web.status_page import format_age, render_status_page


@dataclass
class Server:
    url: str
    store: Store
    alive: list[bool]
    session: aiohttp.ClientSession
    exposition: Exposition
    graph_stats: GraphStats

    async def get(self, path: str, **kwargs) -> tuple[int, str, aiohttp.ClientResponse]:
        async with self.session.get(self.url + path, **kwargs) as resp:
            return resp.status, await resp.text(), resp


def views(value: float) -> Sample:
    return Sample(
        metric="facebook_page_views",
        graph_metric="page_views_total",
        value=value,
        labels=make_labels({"page_id": "123", "period": "day"}),
        object_id="123",
        cadence="daily",
        period="day",
        end_time=datetime(2026, 11, 23, 8, tzinfo=UTC),
        help="Page views.",
    )


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    store = Store()
    store.register("acme-page", "facebook_page", ("fast", "daily"))
    store.register("acme-ig", "instagram_user", ("daily",))
    graph_stats = GraphStats()
    exposition = make_exposition(store, graph_stats, [SinkStats("jsonl")], version="9.8.7")
    alive = [True]
    app = make_app(
        exposition=exposition,
        store=store,
        version="9.8.7",
        alive=lambda: alive[0],
        graph_stats=graph_stats,
    )
    runner, port = await start_server(app, "127.0.0.1", 0)
    assert port != 0
    try:
        async with aiohttp.ClientSession() as session:
            yield Server(f"http://127.0.0.1:{port}", store, alive, session, exposition, graph_stats)
    finally:
        await stop_server(runner)


async def test_metrics_prometheus_text(server: Server):
    server.store.record_success("acme-page", "daily", [views(123.0)], duration=0.2)
    status, body, resp = await server.get("/metrics")
    assert status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    page_views = families["facebook_page_views"]
    assert page_views.type == "gauge"
    assert [(s.labels, s.value) for s in page_views.samples] == [
        ({"source": "acme-page", "page_id": "123", "period": "day"}, 123.0)
    ]
    assert families["collectord_source_poll_errors"].type == "counter"
    assert "collectord_build_info" in families


async def test_metrics_openmetrics_when_asked(server: Server):
    server.store.record_success("acme-page", "daily", [views(5.0)], duration=0.2)
    accept = "application/openmetrics-text; version=1.0.0,text/plain;version=0.0.4;q=0.5"
    status, body, resp = await server.get("/metrics", headers={"Accept": accept})
    assert status == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    assert body.endswith("# EOF\n")
    families = {f.name: f for f in parse_openmetrics(body)}
    assert families["facebook_page_views"].samples[0].value == 5.0
    errors = families["collectord_source_poll_errors"]
    assert {s.name for s in errors.samples} == {"collectord_source_poll_errors_total"}


async def test_metrics_gzip_when_accepted(server: Server):
    status, body, resp = await server.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert status == 200
    assert resp.headers.get("Content-Encoding") == "gzip"
    assert "collectord_build_info" in body  # the client decompressed it


async def test_samples_rendered_once_per_change_self_metrics_current(server: Server):
    server.store.record_success("acme-page", "daily", [views(1.0)], duration=0.2)
    exposition = server.exposition
    renders = exposition.renders
    bodies = [(await server.get("/metrics"))[1] for _ in range(3)]
    assert exposition.renders == renders + 1, "scrapes without a change reuse the rendering"
    assert all(
        'facebook_page_views{page_id="123",period="day",source="acme-page"} 1.0' in b
        for b in bodies
    )
    server.graph_stats.requests["200"] += 5
    body = (await server.get("/metrics"))[1]
    assert exposition.renders == renders + 1
    assert 'collectord_graph_requests_total{code="200"} 5.0' in body, "self-metrics are live"
    server.store.record_success("acme-page", "daily", [views(2.0)], duration=0.2)
    body = (await server.get("/metrics"))[1]
    assert exposition.renders == renders + 2
    assert 'facebook_page_views{page_id="123",period="day",source="acme-page"} 2.0' in body


async def test_concurrent_scrapes_of_a_change_share_one_rendering_off_the_loop(
    server: Server, monkeypatch: pytest.MonkeyPatch
):
    builder = server.exposition.insights.families
    threads: list[int] = []
    build = builder.build

    def recording_build(snapshot):  # type: ignore[no-untyped-def]
        threads.append(threading.get_ident())
        return build(snapshot)

    monkeypatch.setattr(builder, "build", recording_build)
    server.store.record_success("acme-page", "daily", [views(4.0)], duration=0.2)
    results = await asyncio.gather(*(server.get("/metrics") for _ in range(10)))
    assert all(status == 200 for status, _, _ in results)
    line = 'facebook_page_views{page_id="123",period="day",source="acme-page"} 4.0'
    assert all(line in body for _, body, _ in results)
    assert len(threads) == 1, "one rendering for ten scrapes"
    assert threads[0] != threading.get_ident(), "rendered in a worker thread"


async def test_a_cancelled_scrape_does_not_fail_the_others(
    server: Server, monkeypatch: pytest.MonkeyPatch
):
    builder = server.exposition.insights.families
    entered, release = threading.Event(), threading.Event()
    build = builder.build

    def slow_build(snapshot):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(10)
        return build(snapshot)

    monkeypatch.setattr(builder, "build", slow_build)
    server.store.record_success("acme-page", "daily", [views(6.0)], duration=0.2)
    first = asyncio.create_task(server.exposition.body(""))
    assert await asyncio.to_thread(entered.wait, 10)
    second = asyncio.create_task(server.exposition.body(""))
    await asyncio.sleep(0)  # let the second scrape wait for the same rendering
    first.cancel()
    release.set()
    body, _ = await second
    assert b'source="acme-page"} 6.0' in body
    with pytest.raises(asyncio.CancelledError):
        await first
    status, text, _ = await server.get("/metrics")
    assert status == 200
    assert 'source="acme-page"} 6.0' in text


async def test_gzip_and_plain_bodies_are_the_same_exposition(server: Server):
    server.store.record_success("acme-page", "daily", [views(3.0)], duration=0.2)
    server.graph_stats.requests["200"] += 1
    for accept in ("", "application/openmetrics-text; version=1.0.0"):
        headers = {"Accept": accept}
        async with server.session.get(
            server.url + "/metrics",
            headers={**headers, "Accept-Encoding": "gzip"},
            auto_decompress=False,
        ) as resp:
            raw = await resp.read()
        assert resp.headers["Content-Encoding"] == "gzip"
        zipped = gzip.decompress(raw).decode()
        plain = (await server.get("/metrics", headers={**headers, "Accept-Encoding": "identity"}))[
            1
        ]
        assert _without_process(zipped) == _without_process(plain)
        assert "facebook_page_views" in zipped
        assert "collectord_graph_requests" in zipped
        if accept:
            assert zipped.endswith("# EOF\n")
            assert zipped.count("# EOF") == 1


def _without_process(body: str) -> list[str]:
    """The exposition's lines but those of the process collector (CPU time moves)."""
    return [line for line in body.splitlines() if "process_" not in line]


async def test_head_requests_answer_without_body(server: Server):
    for path in ("/metrics", "/healthz", "/readyz", "/"):
        async with server.session.head(server.url + path) as resp:
            assert resp.status in (200, 503), path
            assert await resp.read() == b""


async def test_healthz_follows_alive(server: Server):
    assert (await server.get("/healthz"))[:2] == (200, "ok\n")
    server.alive[0] = False
    status, body, _ = await server.get("/healthz")
    assert status == 503
    assert "not alive" in body


async def test_readyz_flips_after_every_cadence_polled(server: Server):
    status, body, _ = await server.get("/readyz")
    assert (status, body) == (503, "not ready: 2 source(s) still on their first poll\n")
    server.store.record_success("acme-page", "fast", [], duration=0.1)
    server.store.record_failure(
        "acme-ig", "daily", reason="auth", message="token expired", duration=0.1
    )
    status, body, _ = await server.get("/readyz")
    assert (status, body) == (503, "not ready: 1 source(s) still on their first poll\n")
    server.store.record_failure(
        "acme-page", "daily", reason="timeout", message="timed out", duration=30.0
    )
    assert (await server.get("/readyz"))[:2] == (200, "ready\n")


async def test_status_page_shows_sources(server: Server):
    server.store.record_success("acme-page", "fast", [views(1.0)], duration=0.1)
    server.store.record_failure(
        "acme-page",
        "daily",
        reason="permission",
        message="(#10) Requires pages_read_engagement",
        duration=0.1,
    )
    server.store.record_success(
        "acme-page", "fast", PollResult(disabled=(Disable("page_fans", "retired"),)), duration=0.1
    )
    skips = tuple(
        Skip(str(i), why)
        for i, why in enumerate(("not_enough_viewers", "vanished", "not_enough_viewers"))
    )
    server.store.record_success(
        "acme-page", "fast", PollResult(samples=(views(1.0),), skipped=skips), duration=0.1
    )
    server.store.set_next_run("acme-page", "fast", datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))
    status, body, resp = await server.get("/")
    assert status == 200
    assert resp.content_type == "text/html"
    assert "collectord 9.8.7" in body
    assert "acme-page" in body
    assert "instagram_user" in body
    assert '<span class="failing">failing</span>' in body
    assert '<span class="pending">pending</span>' in body  # acme-ig
    assert "(#10) Requires pages_read_engagement <em>(permission)</em>" in body
    assert "page_fans: retired" in body
    assert "<div>not_enough_viewers: 2</div><div>vanished: 1</div>" in body
    assert "fast: 2030-01-02T03:04:05Z (in " in body
    for link in ("metrics", "healthz", "readyz"):
        assert f'href="{link}"' in body


async def test_status_page_escapes_error_messages(server: Server):
    server.store.record_failure(
        "acme-page",
        "daily",
        reason="bad_response",
        message='<script>alert("x")</script>',
        duration=0.1,
    )
    body = (await server.get("/"))[1]
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


async def test_unknown_path_is_404(server: Server):
    assert (await server.get("/nope"))[0] == 404
    assert (await server.get("/metrics/extra"))[0] == 404


async def test_start_server_reports_a_busy_port():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        app = make_app(
            exposition=make_exposition(Store(), GraphStats(), [], version="1"),
            store=Store(),
            version="1",
            alive=lambda: True,
        )
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await start_server(app, "127.0.0.1", port)


def test_render_status_page_ages_and_empty_store():
    store = Store()
    store.register("s", "facebook_page", ("daily",))
    store.record_success("s", "daily", [], duration=0.1, at=1_000_000.0)
    html = render_status_page(store.snapshot(), version="1", ready=True, now=1_000_125.0)
    assert "daily: 1970-01-12T13:46:40Z (2m 5s ago)" in html
    assert "Ready: yes" in html
    empty = render_status_page(Store().snapshot(), version="1", ready=True, now=0.0)
    assert "no sources configured" in empty


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(5, "5s"), (65, "1m 5s"), (3 * 3600 + 120, "3h 2m"), (2 * 86400 + 3600, "2d 1h")],
)
def test_format_age(seconds: float, text: str):
    assert format_age(seconds) == text


def test_status_page_never_shows_a_token_from_an_error():
    store = Store()
    store.register("s", "facebook_page", ("daily",))
    token = "EAAB" + "x" * 40
    store.record_failure(
        "s",
        "daily",
        reason="network",
        message=f"GET https://graph.example/v26.0/me?access_token={token} failed",
        duration=0.1,
    )
    html = render_status_page(store.snapshot(), version="1", ready=True, now=0.0)
    assert token not in html
    assert "GET https://graph.example/v26.0/me?access_token=" in html


def test_status_page_shows_each_budget_its_calls_block_and_usage():
    stats = GraphStats()
    stats.calls.update({"token:abc": 120})
    stats.throttled_until.update({"app": 0.0, "token:abc": 1_000_600.0})
    stats.usage[("pages", "105", "call_count")] = 0.93
    html = render_status_page(
        Store().snapshot(), version="1", ready=True, now=1_000_000.0, graph_stats=stats
    )
    assert "Rate-limit budgets" in html
    assert "<td>token:abc</td><td>120</td>" in html
    assert "blocked until 1970-01-12T13:56:40Z (in 10m 0s)" in html
    assert '<td>app</td><td>0</td><td><span class="ok">open</span>' in html
    assert "<td>pages</td><td>105</td><td>call_count</td><td>93%</td>" in html


async def test_status_page_over_http_lists_the_budgets(server: Server):
    server.graph_stats.calls["token:x"] += 3
    status, html, _ = await server.get("/")
    assert status == 200
    assert "<td>token:x</td><td>3</td>" in html
