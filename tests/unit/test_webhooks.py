"""The ``[webhooks]`` listener (docs/meta-facts.md 6.8): the config table, the signature
and handshake checks, and a real collectord HTTP server taking Meta's deliveries into the
store and the sinks, or refusing them with nothing recorded."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import socket
import ssl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from collectord_plugins.instagram_media import InstagramMedia
from prometheus_client.parser import text_string_to_metric_families
from web_support import HASH, TLS

from collectord import ConfigError, Sample
from collectord.cli import main
from collectord.config.loader import load_document
from collectord.config.types import Config
from collectord.config.web import WebConfig
from collectord.exporter.exposition import make_exposition
from collectord.exporter.registry import WebhookStats
from collectord.graph.stats import GraphStats
from collectord.reload import needs_restart
from collectord.scheduling.poller import Poller, SourceRuntime
from collectord.sharding import Shard
from collectord.simulator import World
from collectord.simulator.webhooks import signed, story_insights_delivery, story_insights_value
from collectord.sinks.stats import SinkStats
from collectord.store.store import Store
from collectord.web.server import make_app, start_server, stop_server
from collectord.web.status_page import render_status_page
from collectord.web.webhooks import (
    MAX_BODY,
    MalformedDelivery,
    WebhookHandler,
    challenge_answer,
    parse_delivery,
    signature_ok,
    webhook_listener,
)

SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "meatyhamhock"
IG = "17841400000000001"
STORY = "17900000000000007"
PLUGIN = InstagramMedia()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sig(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def delivery(value: dict[str, Any], *, account: str = IG, field: str = "story_insights") -> bytes:
    change = {"field": field, "value": value}
    entry = {"id": account, "time": 1547687043, "changes": [change]}
    return json.dumps({"object": "instagram", "entry": [entry]}).encode()


STORY_VALUE = {
    "media_id": STORY,
    "impressions": 28,
    "reach": 17,
    "taps_forward": 12,
    "taps_back": 6,
    "exits": 5,
    "replies": -1,
}


# -- the checks ---------------------------------------------------------------------------


def test_signature_is_the_hmac_of_the_raw_body_with_the_app_secret() -> None:
    body = delivery(STORY_VALUE)
    assert signature_ok(SECRET, body, sig(body))
    assert signature_ok(SECRET, body, sig(body).upper().replace("SHA256=", "sha256="))
    assert not signature_ok(SECRET, body, sig(body, "another-secret"))
    assert not signature_ok(SECRET, body + b" ", sig(body))  # re-serialised: not the same
    assert not signature_ok(SECRET, body, sig(body).removeprefix("sha256="))
    assert not signature_ok(SECRET, body, None)
    assert not signature_ok(SECRET, body, "")
    assert not signature_ok(SECRET, body, "sha256=é")


def test_handshake_answers_the_challenge_only_for_the_verify_token() -> None:
    good = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "1158201444"}
    assert challenge_answer(good, TOKEN) == "1158201444"
    assert challenge_answer({**good, "hub.verify_token": "guess"}, TOKEN) is None
    assert challenge_answer({**good, "hub.mode": "unsubscribe"}, TOKEN) is None
    assert challenge_answer({k: v for k, v in good.items() if k != "hub.challenge"}, TOKEN) is None
    assert challenge_answer({**good, "hub.challenge": "<script>"}, TOKEN) is None
    assert challenge_answer({"hub.mode": "subscribe", "hub.challenge": "1"}, TOKEN) is None


def test_deliveries_are_parsed_change_by_change() -> None:
    (change,) = parse_delivery(delivery(STORY_VALUE))
    assert (change.object, change.entry_id, change.field) == ("instagram", IG, "story_insights")
    assert change.value == STORY_VALUE
    # Meta's Instagram example wraps the delivery in a list; numeric ids are taken too
    wrapped = json.dumps([{"object": "instagram", "entry": [{"id": int(IG), "changes": []}]}])
    assert parse_delivery(wrapped.encode()) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b"[1]",
        b'{"object": "instagram"}',
        b'{"object": "instagram", "entry": [{"changes": []}]}',
        b'{"object": "instagram", "entry": [{"id": "x1", "changes": []}]}',
        b'{"object": "instagram", "entry": [{"id": "1", "changes": {}}]}',
        b'{"object": "instagram", "entry": [{"id": "1", "changes": [{"field": "a"}]}]}',
        b"[" * 100_000,
    ],
)
def test_malformed_deliveries_are_named_without_quoting_the_body(body: bytes) -> None:
    with pytest.raises(MalformedDelivery) as info:
        parse_delivery(body)
    assert "x1" not in str(info.value)


# -- the config table ---------------------------------------------------------------------


def load(tmp_path: Path, webhooks: dict[str, Any], graph: dict[str, Any] | None = None) -> Config:
    doc = {"graph": {"app_secret": SECRET} if graph is None else graph, "webhooks": webhooks}
    return load_document(doc, tmp_path / "collector.toml", {"instagram_media": PLUGIN}, environ={})


def problems(tmp_path: Path, webhooks: Any, graph: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, webhooks, graph)
    return [p.split(": ", 1)[1] for p in info.value.problems]


def test_webhooks_table_defaults_and_token_from_a_file(tmp_path: Path) -> None:
    hooks = load(tmp_path, {"verify_token": TOKEN}).webhooks
    assert hooks is not None
    assert (hooks.path, hooks.listen, hooks.verify_token.reveal()) == (
        "/webhooks/meta",
        None,
        TOKEN,
    )
    assert TOKEN not in repr(hooks)
    (tmp_path / "token").write_text(TOKEN + "\n")
    hooks = load(
        tmp_path, {"verify_token_file": "token", "listen": "0.0.0.0:9465", "path": "/hooks/ig"}
    ).webhooks
    assert hooks is not None
    assert (hooks.path, hooks.listen, hooks.verify_token.reveal()) == (
        "/hooks/ig",
        ("0.0.0.0", 9465),
        TOKEN,
    )
    assert hooks.shared_with("127.0.0.1", 9464) is False
    assert hooks.shared_with("0.0.0.0", 9465) is True
    assert load(tmp_path, {"verify_token": TOKEN}).webhooks.shared_with("127.0.0.1", 9464)  # type: ignore[union-attr]


def test_webhooks_table_problems(tmp_path: Path) -> None:
    assert problems(tmp_path, {}) == ["[webhooks]: verify_token: missing required key"]
    said = problems(tmp_path, {"verify_token": TOKEN}, graph={})
    assert said == [
        "[webhooks]: needs [graph] app_secret: Meta signs every delivery with the app secret, "
        "and a delivery whose signature cannot be checked is refused"
    ]
    said = problems(tmp_path, {"verify_token": "a b", "path": "/metrics", "listen": "x", "pth": 1})
    assert len(said) == 4
    assert said[0].startswith("[webhooks]: listen: expected HOST:PORT")
    assert (
        said[1]
        == "[webhooks]: path: /metrics is one of collectord's own endpoints: pick another path"
    )
    assert said[2].startswith("[webhooks]: verify_token: expected 1 to 256 printable")
    assert "a b" not in said[2]
    assert said[3].startswith("[webhooks]: pth: unknown key (did you mean 'path'")
    (bad,) = problems(tmp_path, {"verify_token": TOKEN, "path": "hooks?x=1"})
    assert bad.startswith('[webhooks]: path: expected a URL path such as "/webhooks/meta"')
    assert problems(tmp_path, "on") == ["[webhooks]: expected a table, got a string"]


def test_forward_url_takes_the_shard_index_and_is_checked(tmp_path: Path) -> None:
    url = "http://collectord-{shard}.collectord:9464/webhooks/meta"
    hooks = load(tmp_path, {"verify_token": TOKEN, "forward_url": url}).webhooks
    assert hooks is not None
    assert hooks.forward_to(2) == "http://collectord-2.collectord:9464/webhooks/meta"
    assert load(tmp_path, {"verify_token": TOKEN}).webhooks.forward_to(2) is None  # type: ignore[union-attr]
    for wrong in (
        "http://collectord-0.collectord:9464/webhooks/meta",  # no {shard}
        "http://c-{shard}.x/{shard}",  # twice
        "ftp://c-{shard}.x/hooks",
        "http://c-{shard}.x:port/hooks",
        "http://c-{shard}.x/{other}",
        "/webhooks/{shard}",
    ):
        (said,) = problems(tmp_path, {"verify_token": TOKEN, "forward_url": wrong})
        assert said.startswith(
            '[webhooks]: forward_url: expected an http:// or https:// URL with "{shard}"'
        ), wrong
    (said,) = problems(
        tmp_path, {"verify_token": TOKEN, "forward_url": "https://u:hunter2@c-{shard}.x/hooks"}
    )
    assert said.startswith("[webhooks]: forward_url: no user or password in the URL")
    assert "hunter2" not in said


async def test_a_delivery_passed_on_by_a_replica_goes_no_further(tmp_path: Path) -> None:
    """A delivery another replica passed on is recorded where a source takes it and never
    passed on again: two replicas that each think the other polls the account cannot
    bounce it between them."""
    async with serving(tmp_path, shard=Shard(0, 2), owners={IG: {1}}) as zero:
        hooks = {"forward_url": zero.hook_url + "?to={shard}"}
        async with serving(tmp_path, webhooks=hooks, shard=Shard(1, 2), owners={IG: {0}}) as one:
            one.col.runtimes.clear()  # shard 1 polls nothing
            body = delivery(STORY_VALUE)
            passed = {"X-Collectord-Forwarded": "0"}
            assert (await one.post(body, sig(body), **passed))[0] == 200
            _, text = await one.metrics()
            assert 'collectord_webhook_requests_total{outcome="accepted"} 1.0' in text
            assert 'collectord_webhook_changes_total{outcome="unknown_account"} 0.0' in text
            assert 'collectord_webhook_changes_total{outcome="forwarded"} 0.0' in text
            _, text = await zero.metrics()
            assert 'collectord_webhook_requests_total{outcome="accepted"} 0.0' in text

            assert zero.story_series() == {}

            # ...while one from Meta goes on to shard 0, whose source records it
            assert (await one.post(body, sig(body)))[0] == 200
            assert zero.story_series()
            _, text = await one.metrics()
            assert 'collectord_webhook_changes_total{outcome="forwarded"} 1.0' in text


# -- the plugin's samples -----------------------------------------------------------------


def test_story_samples_have_the_names_labels_and_period_of_a_poll() -> None:
    catalogue = [s for s in PLUGIN.catalogue if s.default]
    options = {"ig_user_id": IG, "include_stories": True}
    samples = PLUGIN.webhook_samples(
        "story_insights", IG, STORY_VALUE, options=options, catalogue=catalogue
    )
    assert samples is not None
    labels = {"ig_user_id": IG, "media_id": STORY}
    by = "instagram_story_navigation_by_story_navigation_action_type"
    assert {(s.metric, tuple(sorted(s.label_dict.items())), s.value) for s in samples} == {
        ("instagram_story_reach", tuple(sorted(labels.items())), 17.0),
        (
            by,
            tuple(sorted({**labels, "story_navigation_action_type": "tap_forward"}.items())),
            12.0,
        ),
        (by, tuple(sorted({**labels, "story_navigation_action_type": "tap_back"}.items())), 6.0),
        (by, tuple(sorted({**labels, "story_navigation_action_type": "tap_exit"}.items())), 5.0),
    }  # replies -1 (under 5) and the retired impressions are left out
    assert {(s.object_id, s.cadence, s.period, s.end_time) for s in samples} == {
        (STORY, "fast", "lifetime", None)
    }
    # another account, another field, stories turned off: not this source's
    for field_name, account, opts in (
        ("story_insights", "17841400000000002", options),
        ("comments", IG, options),
        ("story_insights", IG, {**options, "include_stories": False}),
    ):
        assert (
            PLUGIN.webhook_samples(
                field_name, account, STORY_VALUE, options=opts, catalogue=catalogue
            )
            is None
        )
    # a source whose metrics leave out navigation gets reach only
    reach_only = [s for s in catalogue if s.graph_name == "reach" and "STORY" in s.group]
    got = PLUGIN.webhook_samples(
        "story_insights", IG, STORY_VALUE, options=options, catalogue=reach_only
    )
    assert [s.metric for s in got or []] == ["instagram_story_reach"]


async def test_story_samples_equal_those_a_poll_of_the_story_gives() -> None:
    from test_plugin_instagram_media import IG as ACCOUNT
    from test_plugin_instagram_media import NOW, FakeInstagram, Media, story_id
    from test_plugin_instagram_media import Poller as MediaPoller

    story = story_id(1)
    graph = FakeInstagram(stories=[Media(story, NOW - timedelta(hours=3), "STORY")])
    polled = {
        (s.metric, s.labels): s for s in await MediaPoller(graph).poll() if s.object_id == story
    }
    plain = {s.graph_metric: s.value for s in polled.values() if "_by_" not in s.metric}
    rows = {s.label_dict.get("story_navigation_action_type"): s.value for s in polled.values()}
    value = {
        "media_id": story,
        "reach": plain["reach"],
        "replies": plain["replies"],
        "taps_forward": rows["tap_forward"],
        "taps_back": rows["tap_back"],
        "exits": rows["tap_exit"],
    }
    catalogue = [s for s in PLUGIN.catalogue if s.default]
    options = {"ig_user_id": ACCOUNT}
    got = PLUGIN.webhook_samples(
        "story_insights", ACCOUNT, value, options=options, catalogue=catalogue
    )
    assert got is not None
    assert len(got) == 5  # reach, replies and three navigation rows
    for sample in got:
        assert polled[(sample.metric, sample.labels)] == sample
        assert polled[(sample.metric, sample.labels)].help == sample.help


# -- a real server ------------------------------------------------------------------------


@dataclass
class ListSink:
    writes: list[tuple[str, str, list[Sample]]] = field(default_factory=list)

    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int:
        self.writes.append((source, plugin, list(samples)))
        return len(samples)


@dataclass
class FakeCollector:
    config: Config
    runtimes: list[SourceRuntime]
    poller: Poller
    store: Store
    sink: ListSink
    shard: Shard = field(default_factory=Shard)
    #: Sharding: the shards polling each account (a real daemon hashes source names).
    owners: dict[str, set[int]] = field(default_factory=dict)

    def webhook_owners(self, object_id: str) -> set[int]:
        return self.owners.get(object_id, set())


@dataclass
class Served:
    col: FakeCollector
    metrics_url: str
    hook_url: str
    session: aiohttp.ClientSession
    handler: WebhookHandler
    hook_port: int

    async def post(
        self, body: bytes, signature: str | None = None, **headers: str
    ) -> tuple[int, str]:
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        async with self.session.post(self.hook_url, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def metrics(self, **kw: Any) -> tuple[int, str]:
        async with self.session.get(self.metrics_url + "/metrics", **kw) as resp:
            return resp.status, await resp.text()

    def story_series(self) -> dict[str, float]:
        snap = self.col.store.snapshot()
        return {
            s.metric + json.dumps(s.label_dict, sort_keys=True): s.value
            for samples in snap.samples.values()
            for s in samples
            if s.object_id == STORY
        }


@asynccontextmanager
async def serving(
    tmp_path: Path,
    *,
    webhooks: dict[str, Any] | None = None,
    web_config: WebConfig | None = None,
    shard: Shard | None = None,
    owners: dict[str, set[int]] | None = None,
) -> AsyncIterator[Served]:
    hooks = {"verify_token": TOKEN, **(webhooks or {})}
    source = {"name": "acme-ig", "plugin": "instagram_media", "access_token": "t", "ig_user_id": IG}
    doc = {
        "collector": {"listen": "127.0.0.1:9464"},
        "graph": {"app_secret": SECRET},
        "source": [source],
        "webhooks": hooks,
    }
    config = load_document(doc, tmp_path / "c.toml", {"instagram_media": PLUGIN}, environ={})
    store = Store()
    src = config.sources[0]
    status = store.register(src.name, src.plugin, src.cadences())
    sink = ListSink()
    poller = Poller(store, [sink])
    rt = SourceRuntime(src, PLUGIN, graph=None, status=status)  # type: ignore[arg-type]
    col = FakeCollector(config, [rt], poller, store, sink, shard or Shard(), owners or {})
    exposition = make_exposition(store, GraphStats(), [SinkStats("jsonl")], version="1")
    app = make_app(
        exposition=exposition, store=store, version="1", alive=lambda: True, web_config=web_config
    )
    async with webhook_listener(app, exposition, col) as handler:  # type: ignore[arg-type]
        runner, port = await start_server(app, "127.0.0.1", 0)
        hook_port = port
        listen = config.webhooks.listen if config.webhooks else None
        if listen is not None:
            hook_port = listen[1]
        tls = web_config is not None and web_config.tls
        scheme = "https" if tls else "http"
        trust = ssl.create_default_context(cafile=str(TLS / "ca.crt")) if tls else None
        try:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as session:
                yield Served(
                    col,
                    f"{scheme}://127.0.0.1:{port}",
                    f"{scheme}://127.0.0.1:{hook_port}{config.webhooks.path if config.webhooks else ''}",
                    session,
                    handler,  # type: ignore[arg-type]
                    hook_port,
                )
        finally:
            await stop_server(runner)


async def test_handshake_on_the_metrics_server(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        params = {"hub.mode": "subscribe", "hub.verify_token": TOKEN, "hub.challenge": "42"}
        async with served.session.get(served.hook_url, params=params) as resp:
            assert (resp.status, await resp.text()) == (200, "42")
            assert resp.content_type == "text/plain"
        params["hub.verify_token"] = "wrong"
        async with served.session.get(served.hook_url, params=params) as resp:
            assert resp.status == 403
            assert "42" not in await resp.text()


async def test_a_signed_delivery_is_recorded_in_the_store_and_the_sinks(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        body = delivery(STORY_VALUE)
        assert await served.post(body, sig(body)) == (200, "ok\n")
        by = "instagram_story_navigation_by_story_navigation_action_type"
        assert served.story_series() == {
            "instagram_story_reach" + json.dumps({"ig_user_id": IG, "media_id": STORY}): 17.0,
            **{
                by
                + json.dumps(
                    {"ig_user_id": IG, "media_id": STORY, "story_navigation_action_type": row},
                    sort_keys=True,
                ): v
                for row, v in (("tap_forward", 12.0), ("tap_back", 6.0), ("tap_exit", 5.0))
            },
        }
        ((source, plugin, samples),) = served.col.sink.writes
        assert (source, plugin, len(samples)) == ("acme-ig", "instagram_media", 4)
        _, text = await served.metrics()
        exposed = {
            (m.name, m.labels.get("source"), m.labels.get("media_id")): m.value
            for fam in text_string_to_metric_families(text)
            for m in fam.samples
        }
        assert exposed[("instagram_story_reach", "acme-ig", STORY)] == 17.0
        assert 'collectord_webhook_requests_total{outcome="accepted"} 1.0' in text
        assert 'collectord_webhook_changes_total{outcome="recorded"} 1.0' in text
        # the source's poll status is untouched: a delivery is not a poll
        assert served.col.store.status("acme-ig").per_cadence["fast"].ok is None


@pytest.mark.parametrize(
    ("signature", "body", "status", "outcome"),
    [
        (None, delivery(STORY_VALUE), 403, "bad_signature"),
        (
            sig(delivery(STORY_VALUE), "not-the-app-secret"),
            delivery(STORY_VALUE),
            403,
            "bad_signature",
        ),
        ("sha256=" + "0" * 64, delivery(STORY_VALUE), 403, "bad_signature"),
        (sig(b"{not json"), b"{not json", 400, "malformed"),
        (sig(b'{"object": "instagram"}'), b'{"object": "instagram"}', 400, "malformed"),
    ],
)
async def test_refused_deliveries_record_nothing(
    tmp_path: Path, signature: str | None, body: bytes, status: int, outcome: str
) -> None:
    async with serving(tmp_path) as served:
        got, _ = await served.post(body, signature)
        assert got == status
        assert served.story_series() == {}
        assert served.col.sink.writes == []
        _, text = await served.metrics()
        assert f'collectord_webhook_requests_total{{outcome="{outcome}"}} 1.0' in text
        assert 'collectord_webhook_requests_total{outcome="accepted"} 0.0' in text


async def test_a_body_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        body = b" " * (MAX_BODY + 1)
        status, _ = await served.post(body, sig(body))
        assert status == 413

        # chunked, without a Content-Length: cut when the limit is passed
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(MAX_BODY // 65536 + 2):
                yield b" " * 65536

        headers = {"X-Hub-Signature-256": sig(b"")}
        async with served.session.post(served.hook_url, data=chunks(), headers=headers) as resp:
            assert resp.status == 413
        _, text = await served.metrics()
        assert 'collectord_webhook_requests_total{outcome="too_large"} 2.0' in text


async def test_changes_no_source_takes_are_counted_and_ignored(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        other = delivery(STORY_VALUE, account="17841400000000009")
        assert (await served.post(other, sig(other)))[0] == 200
        comment = delivery({"id": "1", "text": "hi"}, field="comments")
        assert (await served.post(comment, sig(comment)))[0] == 200
        assert served.story_series() == {}
        _, text = await served.metrics()
        assert 'collectord_webhook_changes_total{outcome="unknown_account"} 1.0' in text
        assert 'collectord_webhook_changes_total{outcome="unknown_field"} 1.0' in text


async def test_the_status_page_shows_the_webhook_counts(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        body = delivery(STORY_VALUE)
        assert (await served.post(body, sig(body)))[0] == 200
        assert (await served.post(body, "sha256=" + "0" * 64))[0] == 403
        async with served.session.get(served.metrics_url + "/") as resp:
            page = await resp.text()
    assert "<h2>Webhooks</h2>" in page
    assert "accepted 1, bad_signature 1, malformed 0, too_large 0, too_slow 0" in page
    assert "recorded 1, unknown_account 0, unknown_field 0" in page


def test_the_status_page_has_no_webhooks_section_without_the_table() -> None:
    page = render_status_page(Store().snapshot(), version="1", ready=True, now=0.0,
                              webhooks=WebhookStats())  # fmt: skip
    assert "Webhooks" not in page


async def test_basic_auth_guards_metrics_but_not_the_signed_webhook_path(tmp_path: Path) -> None:
    web_config = WebConfig(basic_auth_users={"prometheus": HASH})
    async with serving(tmp_path, web_config=web_config) as served:
        assert (await served.metrics())[0] == 401
        body = delivery(STORY_VALUE)
        assert (await served.post(body, sig(body)))[0] == 200
        assert (await served.post(body, sig(body, "x")))[0] == 403
        basic = "Basic " + base64.b64encode(b"prometheus:s3cret").decode()
        assert (await served.metrics(headers={"Authorization": basic}))[0] == 200


async def test_a_listener_of_its_own(tmp_path: Path) -> None:
    unused_tcp_port = free_port()
    hooks = {"listen": f"127.0.0.1:{unused_tcp_port}", "path": "/hooks/ig"}
    async with serving(tmp_path, webhooks=hooks) as served:
        assert served.hook_url == f"http://127.0.0.1:{unused_tcp_port}/hooks/ig"
        body = delivery(STORY_VALUE)
        assert (await served.post(body, sig(body)))[0] == 200
        assert served.story_series()
        # the metrics server does not serve the path, and the webhook listener nothing else
        async with served.session.post(served.metrics_url + "/hooks/ig", data=body) as resp:
            assert resp.status in (404, 405, 413)
        async with served.session.get(f"http://127.0.0.1:{unused_tcp_port}/metrics") as resp:
            assert resp.status == 404


# -- the simulator's deliveries ----------------------------------------------------------


def test_the_simulator_signs_a_story_s_final_values_as_meta_does() -> None:
    now = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
    world = World(clock=lambda: now)
    ig = world.instagram.user_ids[0]
    story = world.instagram.add_story(ig, now - timedelta(hours=25))
    payload = story_insights_delivery(world, story)
    body, headers = signed(payload, world.app_secret)
    assert signature_ok(world.app_secret, body, headers["X-Hub-Signature-256"])
    assert not signature_ok(SECRET, body, headers["X-Hub-Signature-256"])
    (change,) = parse_delivery(body)
    assert (change.object, change.entry_id, change.field) == ("instagram", ig, "story_insights")
    node = world.instagram.resolve(story, now)
    final = world.instagram.media_values(node, now - timedelta(hours=1))  # at expiry
    assert change.value["media_id"] == story
    assert change.value["reach"] == final["reach"] >= 5
    assert change.value["taps_forward"] == final["navigation_by"]["tap_forward"]
    assert payload["entry"][0]["time"] == int(now.timestamp())  # an hour after expiry
    # a story seen by fewer than 5 accounts: Meta sends -1
    quiet = world.instagram.add_story(ig, now - timedelta(hours=25), quiet=True)
    assert story_insights_value(world, quiet)["reach"] == -1


def test_check_says_where_the_webhook_path_is_served(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEBHOOK_VERIFY_TOKEN", TOKEN)
    path = tmp_path / "collector.toml"
    base = f'[graph]\napp_secret = "{SECRET}"\n\n[webhooks]\nverify_token = "${{WEBHOOK_VERIFY_TOKEN}}"\n'
    path.write_text(base)
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert (
        "webhooks: /webhooks/meta on the metrics listener (signed deliveries; no basic auth)" in out
    )
    path.write_text(base + 'listen = "[::]:9465"\n')
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "webhooks: /webhooks/meta on [::]:9465" in out
    assert TOKEN not in out
    assert SECRET not in out


def test_a_reload_applies_the_secrets_and_needs_a_restart_for_the_listener(tmp_path: Path) -> None:
    old = load(tmp_path, {"verify_token": TOKEN})
    assert needs_restart(old, load(tmp_path, {"verify_token": "another-token"})) == []
    moved = load(tmp_path, {"verify_token": TOKEN, "listen": "0.0.0.0:9465", "path": "/h"})
    assert needs_restart(old, moved) == ["[webhooks] listen", "[webhooks] path"]
    without = load_document(
        {"graph": {"app_secret": SECRET}}, tmp_path / "c.toml", {"instagram_media": PLUGIN}
    )
    assert needs_restart(old, without) == ["[webhooks]"]
    assert needs_restart(without, old) == ["[webhooks]"]


async def test_a_listener_of_its_own_speaks_tls_like_the_metrics_endpoint(tmp_path: Path) -> None:
    web_config = WebConfig(tls_cert_file=TLS / "server.crt", tls_key_file=TLS / "server.key")
    port = free_port()
    hooks = {"listen": f"127.0.0.1:{port}"}
    async with serving(tmp_path, webhooks=hooks, web_config=web_config) as served:
        assert served.hook_url.startswith(f"https://127.0.0.1:{port}/")
        body = delivery(STORY_VALUE)
        assert (await served.post(body, sig(body)))[0] == 200
        assert served.story_series()
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.post(f"http://127.0.0.1:{port}/webhooks/meta", data=body)


async def test_a_body_that_never_ends_is_cut_at_the_timeout(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        handler = served.handler
        handler.body_timeout = 0.2
        reader, writer = await asyncio.open_connection("127.0.0.1", served.hook_port)
        writer.write(b'POST /webhooks/meta HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"obj')
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408")
        assert served.story_series() == {}
        _, text = await served.metrics()
        assert 'collectord_webhook_requests_total{outcome="too_slow"} 1.0' in text


async def test_a_taken_webhook_address_is_named_in_the_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(
            OSError, match=rf"\[webhooks\] listen: cannot listen on 127.0.0.1:{port}"
        ):
            async with serving(tmp_path, webhooks={"listen": f"127.0.0.1:{port}"}):
                pass
