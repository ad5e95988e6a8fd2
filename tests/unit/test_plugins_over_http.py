"""Plugin edge cases through the real Graph client, against Meta's answers mocked with
aioresponses: the error envelopes travel the whole way (HTTP, batch element decoding,
classification, the insights fetcher, the plugin, the poller)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from graph_mocks import BASE, Answer, MetaDouble, Mocked, envelope

from collectord.config.loader import load_config
from collectord.graph.client import GraphClient
from collectord.graph.stats import GraphStats
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.scheduling.scheduler import Poller, SourceRuntime
from collectord.store.store import Store

NOW = datetime.now(UTC).replace(microsecond=0)
PAGE = "1234567890"
IG = "17841400000000001"
#: App Insights metrics are off by default (Meta shut the edge down in 2021): listed here.
APP_METRICS = '["daily_active_users", "weekly_active_users", "api_calls", "api_errors"]'


def fb_time(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S+0000")


async def poll(
    session: aiohttp.ClientSession, tmp_path: Path, source_toml: str, cadence: str
) -> tuple[bool, Store, SourceRuntime]:
    """Load a one-source config, then poll it once at ``cadence`` as the daemon does."""
    cfg = tmp_path / "collector.toml"
    cfg.write_text(f'[graph]\nbase_url = "{BASE}"\n\n[[source]]\nname = "s"\n{source_toml}')
    config = load_config(cfg, plugin_map(load_source_plugins()))
    (src,) = config.sources
    client = GraphClient(session, config.graph, stats=GraphStats(), sleep=_no_sleep)
    store = Store()
    status = store.register(src.name, src.plugin, src.cadences())
    plugins = plugin_map(load_source_plugins())
    rt = SourceRuntime(src, plugins[src.plugin], client.bind(src.access_token), status)
    ok = await Poller(store).poll(rt, cadence)  # type: ignore[arg-type]
    return ok, store, rt


async def _no_sleep(_: float) -> None:
    return None


def names(store: Store) -> set[str]:
    return {s.metric for s in store.samples("s")}


async def test_page_retired_metric_found_by_splitting_and_disabled(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    def meta(path: str, params: dict[str, str]) -> Answer:
        metrics = params["metric"].split(",")
        if "page_impressions" in metrics:
            return 400, envelope(100, "(#100) The value must be a valid insights metric")
        end = fb_time(NOW.replace(hour=8, minute=0, second=0))
        return 200, {
            "data": [
                {"name": m, "period": "day", "values": [{"value": 7, "end_time": end}]}
                for m in metrics
            ]
        }

    double = MetaDouble(mocked, meta)
    ok, store, rt = await poll(
        session,
        tmp_path,
        'plugin = "facebook_page"\naccess_token = "t"\n'
        f'page_id = "{PAGE}"\n'
        'metrics = ["page_views_total", "page_impressions", "page_total_actions"]\n',
        "daily",
    )
    assert ok
    assert rt.status.disabled == {"page_impressions": "invalid_metric"}
    # issue 8: every Page insight is daily (a day query answers completed days only)
    assert names(store) == {"facebook_page_total_actions", "facebook_page_views"}
    assert all(s.value == 7 for s in store.samples("s"))
    before = len(double.calls)
    assert await Poller(store).poll(rt, "daily")
    assert len(double.calls) - before == 1, "the culprit is not asked for again"


async def test_media_object_errors_in_a_batch_are_skipped_not_failures(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    media = [
        {"id": "m_ok", "media_type": "IMAGE", "media_product_type": "FEED"},
        {"id": "m_old", "media_type": "IMAGE", "media_product_type": "FEED"},
        {"id": "m_gone", "media_type": "VIDEO", "media_product_type": "REELS"},
    ]
    for i, m in enumerate(media):
        m.update(timestamp=fb_time(NOW - timedelta(hours=i + 1)), like_count=3, comments_count=1)

    def meta(path: str, params: dict[str, str]) -> Answer:
        if path == f"{IG}/media":
            return 200, {"data": media, "paging": {"cursors": {"after": "x"}}}
        if path == f"{IG}/stories":
            return 200, {"data": [{"id": "st_few", "timestamp": fb_time(NOW)}]}
        obj = path.split("/")[0]
        if obj == "m_old":
            return 400, envelope(
                100,
                "Invalid parameter",
                error_subcode=2108006,
                error_user_title="Media posted before business account conversion",
                is_transient=False,
            )
        if obj == "m_gone":
            return 400, envelope(100, "Unsupported get request.", error_subcode=33)
        if obj == "st_few":
            return 400, envelope(10, "(#10) Not enough viewers for the media to show insights")
        return 200, {
            "data": [
                {"name": m, "period": "lifetime", "values": [{"value": 5}]}
                for m in params["metric"].split(",")
            ]
        }

    MetaDouble(mocked, meta)
    ok, store, rt = await poll(
        session,
        tmp_path,
        f'plugin = "instagram_media"\naccess_token = "t"\nig_user_id = "{IG}"\n',
        "fast",
    )
    assert ok
    assert rt.status.errors["skipped_object"] == 3
    assert rt.status.disabled == {}, "object errors never disable a metric"
    media_ids = {
        s.label_dict.get("media_id") for s in store.samples("s") if s.graph_metric == "reach"
    }
    assert media_ids == {"m_ok"}
    likes = {s.label_dict["media_id"] for s in store.samples("s") if s.graph_metric == "like_count"}
    assert likes == {"m_ok", "m_old", "m_gone"}, "fields come from the list"


async def test_throttled_batch_element_fails_the_poll(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    def meta(path: str, params: dict[str, str]) -> Answer:
        if path == f"{IG}/media":
            return 200, {
                "data": [
                    {
                        "id": "m1",
                        "media_type": "IMAGE",
                        "media_product_type": "FEED",
                        "timestamp": fb_time(NOW),
                    }
                ]
            }
        if path == f"{IG}/stories":
            return 200, {"data": []}
        return 400, envelope(
            80002, "(#80002) There have been too many calls to this Instagram account."
        )

    MetaDouble(mocked, meta)
    ok, _store, rt = await poll(
        session,
        tmp_path,
        f'plugin = "instagram_media"\naccess_token = "t"\nig_user_id = "{IG}"\n',
        "fast",
    )
    assert not ok
    assert rt.status.per_cadence["fast"].last_error_reason == "throttled"
    assert rt.status.errors["throttled"] == 1


async def test_app_retired_edge_disables_each_metric_once_and_fields_flow(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    def meta(path: str, params: dict[str, str]) -> Answer:
        if path == "4321":
            return 200, {"id": "4321", "daily_active_users": "120", "weekly_active_users": "700"}
        return 400, envelope(100, "(#100) The metric is no longer supported")

    double = MetaDouble(mocked, meta)
    toml = (
        'plugin = "facebook_app"\naccess_token = "4321|secret"\napp_id = "4321"\n'
        f"metrics = {APP_METRICS}\n"
    )
    ok, store, rt = await poll(session, tmp_path, toml, "daily")
    assert ok, "a retired edge is not a failed poll"
    assert rt.status.disabled
    assert set(rt.status.disabled.values()) == {"unsupported"}
    calls = len(double.calls)
    assert await Poller(store).poll(rt, "daily")
    assert len(double.calls) == calls, "no error storm: nothing is asked for again"
    assert await Poller(store).poll(rt, "fast")
    assert {s.metric: s.value for s in store.samples("s")} == {
        "facebook_app_daily_active_users": 120.0,
        "facebook_app_weekly_active_users": 700.0,
    }


async def test_token_never_reaches_the_error_or_the_status(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    token = "EAAGm0PX4ZCpsBAKZCZCZBZBsecrettoken0123"

    def meta(path: str, params: dict[str, str]) -> Answer:
        return 400, envelope(
            190, f"Error validating access token: token {token} has expired", error_subcode=463
        )

    MetaDouble(mocked, meta)
    ok, _store, rt = await poll(
        session,
        tmp_path,
        f'plugin = "facebook_page"\naccess_token = "{token}"\npage_id = "{PAGE}"\n',
        "fast",
    )
    assert not ok
    error = rt.status.per_cadence["fast"].last_error or ""
    assert rt.status.per_cadence["fast"].last_error_reason == "auth"
    assert "expired" in error
    assert token not in error


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (
            3000,
            "(#3000) Reading insights of a Page, business, app, domain or event source group "
            "not owned by the querying user or application",
        ),
        (3003, "(#3003) Requires app admin privileges"),
    ],
)
async def test_app_insights_denied_fails_the_poll_as_permission(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path, code: int, message: str
) -> None:
    def meta(path: str, params: dict[str, str]) -> Answer:
        return 400, envelope(code, message)

    double = MetaDouble(mocked, meta)
    toml = (
        'plugin = "facebook_app"\naccess_token = "4321|secret"\napp_id = "4321"\n'
        f"metrics = {APP_METRICS}\n"
    )
    ok, _store, rt = await poll(session, tmp_path, toml, "daily")
    assert not ok
    assert rt.status.per_cadence["daily"].last_error_reason == "permission"
    assert rt.status.disabled == {}, "a denial is not a retired metric"
    insight_calls = [p for p, _ in double.calls if "/app_insights/" in p]
    assert len(insight_calls) == len(set(insight_calls)), "not retried"


def _media_account(media: list[dict[str, str]], refuse_shares: set[str]) -> Callable[..., Answer]:
    """Meta for one IG account: ``refuse_shares`` media answer shares as unsupported."""

    def meta(path: str, params: dict[str, str]) -> Answer:
        if path == f"{IG}/media":
            return 200, {"data": media}
        if path == f"{IG}/stories":
            return 200, {"data": [{"id": "st1", "timestamp": fb_time(NOW - timedelta(hours=3))}]}
        obj = path.split("/")[0]
        names = params["metric"].split(",")
        if obj in refuse_shares and "shares" in names:
            return 400, envelope(
                100, "(#100) The metric shares is not supported for this media type"
            )
        data = [{"name": m, "period": "lifetime", "values": [{"value": 5}]} for m in names]
        if params.get("breakdown"):
            data[0]["total_value"] = {
                "value": 5,
                "breakdowns": [
                    {
                        "dimension_keys": [params["breakdown"]],
                        "results": [{"dimension_values": ["tap_forward"], "value": 5}],
                    }
                ],
            }
        return 200, {"data": data}

    return meta


def _media(media_id: str, product: str, kind: str, hours: int) -> dict[str, str]:
    return {
        "id": media_id,
        "media_product_type": product,
        "media_type": kind,
        "timestamp": fb_time(NOW - timedelta(hours=hours)),
    }


async def test_media_shares_refused_for_a_feed_image_in_a_batch_is_scoped(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    media = [
        _media("img", "FEED", "IMAGE", 1),
        _media("album", "FEED", "CAROUSEL_ALBUM", 2),
        _media("reel", "REELS", "VIDEO", 3),
    ]
    double = MetaDouble(mocked, _media_account(media, {"img"}))
    toml = f'plugin = "instagram_media"\naccess_token = "t"\nig_user_id = "{IG}"\n'
    ok, store, rt = await poll(session, tmp_path, toml, "fast")
    assert ok
    assert rt.status.disabled == {"FEED/IMAGE/shares@img": "unsupported"}  # that media only
    img = {s.graph_metric for s in store.samples("s") if s.object_id == "img"}
    assert {"views", "reach", "saved"} <= img
    assert "shares" not in img

    double.calls.clear()
    assert await Poller(store).poll(rt, "fast")
    shares_asked = {
        path.split("/")[0]
        for path, p in double.calls
        if path.endswith("/insights") and "shares" in p["metric"].split(",")
    }
    assert shares_asked == {"album", "reel", "st1"}
    shares = {s.object_id for s in store.samples("s") if s.graph_metric == "shares"}
    assert shares == {"album", "reel", "st1"}


async def test_requested_story_poll_keeps_the_media_on_metrics_without_listing_them(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    media = [_media("img", "FEED", "IMAGE", 1), _media("reel", "REELS", "VIDEO", 2)]
    double = MetaDouble(mocked, _media_account(media, set()))
    toml = f'plugin = "instagram_media"\naccess_token = "t"\nig_user_id = "{IG}"\n'
    ok, store, rt = await poll(session, tmp_path, toml, "fast")
    assert ok
    before = {(s.metric, s.object_id, s.value) for s in store.samples("s")}
    assert {o for _, o, _ in before} == {"img", "reel", "st1"}

    double.calls.clear()
    http = double.http
    assert await Poller(store).poll(rt, "fast", requested=True)
    assert double.http - http == 2, "the stories list and one batch of story insights"
    assert {path for path, _ in double.calls if not path.endswith("/insights")} == {f"{IG}/stories"}
    assert {path.split("/")[0] for path, _ in double.calls if path.endswith("/insights")} == {"st1"}
    after = {(s.metric, s.object_id, s.value) for s in store.samples("s")}
    assert after == before, "/metrics keeps the media's series"
