"""A plugin declares the API it speaks (``SourcePlugin.api``): sources are bound with its
host, version, batching and proof, and the user's ``[graph]`` applies only to its own app.

Driven through the daemon's wiring (:class:`~collectord.daemon.Collector`) and the real
Graph client against mocked hosts (aioresponses, no network).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aioresponses import aioresponses
from graph_mocks import CompatResponse

from collectord import GraphApi, PollContext, SourcePlugin
from collectord.config.loader import load_config
from collectord.daemon import Collector
from collectord.graph.client import BoundGraph
from collectord.model import MetricSpec
from collectord.plugin.manager import load_source_plugins, plugin_map

FB = "https://graph.test"
IG = "https://graph.instagram.test"
APP_SECRET = "s3cr3t-app-secret-value"


class InstagramLogin(SourcePlugin):
    """A plugin of Instagram's own API: its host, its version, no batches, no proof."""

    name = "ig_login"
    api: ClassVar[GraphApi] = GraphApi(
        base_url=IG,
        version="v23.0",
        batching=False,
        appsecret_proof=False,
        app="instagram_login",
    )
    catalogue = (MetricSpec("reach", "ig_login_reach", "daily"),)

    async def collect(self, ctx: PollContext) -> Any:
        return ctx.result()


class NoProof(SourcePlugin):
    """A Facebook plugin whose calls must not carry appsecret_proof."""

    name = "no_proof"
    api: ClassVar[GraphApi] = GraphApi(appsecret_proof=False)
    catalogue = (MetricSpec("reach", "no_proof_reach", "daily"),)

    async def collect(self, ctx: PollContext) -> Any:
        return ctx.result()


def plugins() -> dict[str, SourcePlugin]:
    return {
        **plugin_map(load_source_plugins()),
        "ig_login": InstagramLogin(),
        "no_proof": NoProof(),
    }


GRAPH = f"""[graph]
base_url = "{FB}"
version = "v25.0"
app_id = "4242"
app_secret = "{APP_SECRET}"
"""


def source(name: str, plugin: str, extra: str = "") -> str:
    return (
        f'\n[[source]]\nname = "{name}"\nplugin = "{plugin}"\naccess_token = "EAAT-{name}"\n{extra}'
    )


class Seen:
    """Records every request aioresponses answers: method, URL and query."""

    def __init__(self, mocked: aioresponses) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        any_url = re.compile(r"^https://.*$")
        mocked.get(any_url, callback=self._answer("GET"), repeat=True)
        mocked.post(any_url, callback=self._answer("POST"), repeat=True)

    def _answer(self, method: str) -> Any:
        def answer(url: Any, **kwargs: Any) -> Any:
            from aioresponses import CallbackResult

            query = dict(url.query) if method == "GET" else dict(kwargs["data"])
            self.requests.append((method, str(url.with_query(None)), query))
            body: Any = {"id": "1"}
            if method == "POST":
                elements = json.loads(kwargs["data"]["batch"])
                body = [{"code": 200, "body": json.dumps({"id": "1"})} for _ in elements]
            return CallbackResult(payload=body, response_class=CompatResponse)

        return answer


async def bound(tmp_path: Path, text: str) -> tuple[Collector, dict[str, BoundGraph]]:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(text)
    loaded = plugins()
    config = load_config(cfg, loaded, environ={})
    col = Collector(config, loaded, sinks_enabled=False)
    await col.__aenter__()
    return col, {rt.config.name: rt.graph for rt in col.runtimes}  # type: ignore[misc]


@pytest.fixture
def seen(mocked: aioresponses) -> Seen:
    return Seen(mocked)


async def test_a_plugin_of_another_api_calls_its_own_host_without_proof_or_batches(
    tmp_path: Path, seen: Seen
) -> None:
    col, graphs = await bound(
        tmp_path,
        GRAPH + source("page", "facebook_page", 'page_id = "1"\n') + source("ig", "ig_login"),
    )
    try:
        await graphs["ig"].get("me", {"fields": "id"})
        await graphs["ig"].get_many([("1/insights", {"metric": "reach"}), ("2/insights", None)])
    finally:
        await col.__aexit__(None, None, None)

    assert [m for m, _, _ in seen.requests] == ["GET", "GET", "GET"], "no batch requests"
    urls = sorted(u for _, u, _ in seen.requests)
    assert urls == [f"{IG}/v23.0/1/insights", f"{IG}/v23.0/2/insights", f"{IG}/v23.0/me"]
    for _, _, query in seen.requests:
        assert query["access_token"] == "EAAT-ig"
        assert "appsecret_proof" not in query
        assert "appsecret_time" not in query


async def test_the_built_ins_keep_the_users_graph_settings_proof_and_batches(
    tmp_path: Path, seen: Seen
) -> None:
    col, graphs = await bound(
        tmp_path,
        GRAPH + source("page", "facebook_page", 'page_id = "1"\n') + source("ig", "ig_login"),
    )
    try:
        await graphs["page"].get("me")
        await graphs["page"].get_many([("1/insights", None), ("2/insights", None)])
    finally:
        await col.__aexit__(None, None, None)

    (get, post) = seen.requests
    assert get[:2] == ("GET", f"{FB}/v25.0/me")
    assert "appsecret_proof" in get[2]
    assert get[2]["access_token"] == "EAAT-page"
    assert post[:2] == ("POST", f"{FB}/v25.0/"), "several calls go as one batch request"
    assert len(json.loads(post[2]["batch"])) == 2
    assert "appsecret_proof" in post[2]


async def test_source_graph_overrides_apply_to_any_plugin(tmp_path: Path, seen: Seen) -> None:
    override = '[source.graph]\nbase_url = "https://proxy.test"\nversion = "v24.0"\n'
    col, graphs = await bound(tmp_path, GRAPH + source("ig", "ig_login", override))
    try:
        await graphs["ig"].get("me")
    finally:
        await col.__aexit__(None, None, None)

    ((method, url, query),) = seen.requests
    assert (method, url) == ("GET", "https://proxy.test/v24.0/me")
    assert "appsecret_proof" not in query, "the plugin declares no proof"


async def test_a_facebook_plugin_without_proof_sends_none(tmp_path: Path, seen: Seen) -> None:
    col, graphs = await bound(tmp_path, GRAPH + source("np", "no_proof"))
    try:
        await graphs["np"].get("me")
    finally:
        await col.__aexit__(None, None, None)

    ((_, url, query),) = seen.requests
    assert url == f"{FB}/v25.0/me", "the user's [graph] applies to a plugin of its app"
    assert query == {"access_token": "EAAT-np"}


async def test_without_graph_settings_a_plugin_gets_its_declaration(
    tmp_path: Path, seen: Seen
) -> None:
    col, graphs = await bound(
        tmp_path, source("page", "facebook_page", 'page_id = "1"\n') + source("ig", "ig_login")
    )
    try:
        await graphs["page"].get("me")
        await graphs["ig"].get("me")
    finally:
        await col.__aexit__(None, None, None)

    assert [u for _, u, _ in seen.requests] == [
        "https://graph.facebook.com/v26.0/me",
        f"{IG}/v23.0/me",
    ]


@pytest.mark.parametrize(
    ("kw", "problem"),
    [
        ({"base_url": "graph.example.com"}, "base_url"),
        ({"version": "26.0"}, "version"),
        ({"app": ""}, "app"),
    ],
)
def test_a_bad_declaration_is_a_clear_error(kw: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        GraphApi(**kw)  # type: ignore[arg-type]


async def test_an_instagram_source_with_instagram_login_speaks_graph_instagram_com(
    tmp_path: Path, seen: Seen
) -> None:
    login = 'ig_user_id = "17841400000000001"\nlogin = "instagram"\n'
    col, graphs = await bound(
        tmp_path,
        GRAPH + source("igl", "instagram_user", login) + source("igf", "instagram_media", login),
    )
    try:
        await graphs["igl"].get("me")
        await graphs["igf"].get_many([("1/insights", None), ("2/insights", None)])
    finally:
        await col.__aexit__(None, None, None)

    assert [m for m, _, _ in seen.requests] == ["GET", "GET", "GET"], "no batch requests"
    urls = sorted(u for _, u, _ in seen.requests)
    base = "https://graph.instagram.com/v26.0"  # [graph] version is the Facebook app's
    assert urls == [f"{base}/1/insights", f"{base}/2/insights", f"{base}/me"]
    for _, _, query in seen.requests:
        assert "appsecret_proof" not in query, "the Facebook app secret stays with Facebook"
