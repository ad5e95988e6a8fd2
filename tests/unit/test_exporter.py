"""The Prometheus collector: sample families and self-metrics built from the store."""

from __future__ import annotations

import platform
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from structlog.testing import capture_logs

from collectord.exporter.registry import HELP_SUFFIX, make_registry
from collectord.graph.stats import GraphStats
from collectord.model import ERROR_REASONS, Sample, TokenView, make_labels
from collectord.plugin.api import Disable, PollContext, PollResult, Skip
from collectord.sinks.stats import SinkStats
from collectord.store.store import DURATION_BUCKETS, Store

PAGE = {"source": "acme-page", "page_id": "123", "period": "day"}


def sample(
    metric: str = "facebook_page_views",
    value: float = 1.0,
    labels: dict[str, str] | None = None,
    *,
    end_time: datetime | None = None,
    help: str = "",
    cadence: str = "daily",
) -> Sample:
    labels = {"page_id": "123", "period": "day"} if labels is None else labels
    return Sample(
        metric=metric,
        graph_metric=metric,
        value=value,
        labels=make_labels(labels),
        object_id="123",
        cadence=cadence,  # type: ignore[arg-type]
        period=labels.get("period"),
        end_time=end_time,
        help=help,
    )


@pytest.fixture
def store() -> Store:
    s = Store()
    s.register("acme-page", "facebook_page", ("fast", "daily"))
    return s


@pytest.fixture
def graph_stats() -> GraphStats:
    return GraphStats()


@pytest.fixture
def sinks() -> list[SinkStats]:
    return [SinkStats("jsonl")]


@pytest.fixture
def registry(store: Store, graph_stats: GraphStats, sinks: list[SinkStats]) -> CollectorRegistry:
    return make_registry(store, graph_stats, sinks, version="1.2.3")


def family(registry: CollectorRegistry, name: str):
    found = [m for m in registry.collect() if m.name == name]
    assert len(found) == 1, f"{name}: {len(found)} families"
    return found[0]


def test_samples_become_gauges_with_source_label_first(store, registry):
    store.record_success(
        "acme-page",
        "daily",
        [
            sample(value=123.0),
            sample("facebook_page_post_engagements", 7.0, {"page_id": "123", "period": "week"}),
        ],
        duration=0.2,
    )
    assert registry.get_sample_value("facebook_page_views", PAGE) == 123.0
    assert (
        registry.get_sample_value("facebook_page_post_engagements", {**PAGE, "period": "week"})
        == 7.0
    )
    views = family(registry, "facebook_page_views")
    assert views.type == "gauge"
    assert list(views.samples[0].labels) == ["source", "page_id", "period"]


def test_help_text_is_catalogue_help_plus_suffix_on_one_line(store, registry):
    store.record_success(
        "acme-page",
        "daily",
        [
            sample(help="Page views\nacross all tabs"),
            sample("facebook_page_fans", 3.0),
        ],
        duration=0.1,
    )
    assert family(registry, "facebook_page_views").documentation == (
        f"Page views across all tabs. {HELP_SUFFIX}"
    )
    assert family(registry, "facebook_page_fans").documentation == (
        f"facebook_page_fans. {HELP_SUFFIX}"
    )


def test_new_poll_replaces_series_and_vanished_series_disappear(store, registry):
    post = {"page_id": "123", "post_id": "p1", "period": "lifetime"}
    store.record_success(
        "acme-page", "fast", [sample("facebook_post_clicks", 5, post)], duration=0.1
    )
    store.record_success(
        "acme-page", "fast", [sample("facebook_post_clicks", 9, post)], duration=0.1
    )
    assert registry.get_sample_value("facebook_post_clicks", {"source": "acme-page", **post}) == 9
    store.record_success("acme-page", "fast", [], duration=0.1)
    assert (
        registry.get_sample_value("facebook_post_clicks", {"source": "acme-page", **post}) is None
    )


def test_last_good_values_stay_after_a_failure(store, registry):
    store.record_success("acme-page", "daily", [sample(value=42.0)], duration=0.1, at=1000.0)
    store.record_failure(
        "acme-page", "daily", reason="throttled", message="rate limited", duration=2.0
    )
    assert registry.get_sample_value("facebook_page_views", PAGE) == 42.0
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    assert registry.get_sample_value("collectord_source_up", ids) == 0
    assert (
        registry.get_sample_value(
            "collectord_source_last_success_timestamp_seconds", {**ids, "cadence": "daily"}
        )
        == 1000.0
    )
    assert (
        registry.get_sample_value(
            "collectord_source_poll_errors_total", {**ids, "reason": "throttled"}
        )
        == 1
    )


def test_different_label_names_keep_first_shape_and_warn_once(store, registry):
    first = sample(labels={"page_id": "123", "period": "day"})
    other = sample(value=5.0, labels={"page_id": "123", "period": "day", "tab": "home"})
    store.record_success("acme-page", "daily", [first, other], duration=0.1)
    with capture_logs() as logs:
        list(registry.collect())
        list(registry.collect())
    assert registry.get_sample_value("facebook_page_views", PAGE) == 1.0
    assert registry.get_sample_value("facebook_page_views", {**PAGE, "tab": "home"}) is None
    warnings = [e for e in logs if e["event"] == "metric_label_names_differ"]
    assert len(warnings) == 1
    assert warnings[0]["log_level"] == "warning"
    assert warnings[0]["family"] == "facebook_page_views"


def test_duplicate_series_exposed_once_with_newest_end_time(store, registry):
    older = sample(value=10.0, end_time=datetime(2026, 11, 21, 8, tzinfo=UTC))
    newer = sample(value=20.0, end_time=datetime(2026, 11, 22, 8, tzinfo=UTC))
    store.record_success("acme-page", "daily", [newer, older, newer], duration=0.1)
    views = family(registry, "facebook_page_views")
    assert len(views.samples) == 1
    assert views.samples[0].value == 20.0
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    assert registry.get_sample_value("collectord_source_series", ids) == 1


def test_same_series_in_two_sources_stays_apart(store, registry):
    store.register("other-page", "facebook_page", ("daily",))
    store.record_success("acme-page", "daily", [sample(value=1.0)], duration=0.1)
    store.record_success("other-page", "daily", [sample(value=2.0)], duration=0.1)
    assert registry.get_sample_value("facebook_page_views", PAGE) == 1.0
    assert registry.get_sample_value("facebook_page_views", {**PAGE, "source": "other-page"}) == 2.0


def test_invalid_or_reserved_names_are_left_out(store, registry):
    store.record_success(
        "acme-page",
        "daily",
        [
            sample("facebook page views"),
            sample("collectord_source_up"),
            sample("facebook_page_ok", labels={"bad-label": "x"}),
            sample("facebook_page_fine", 4.0),
        ],
        duration=0.1,
    )
    with capture_logs() as logs:
        names = {m.name for m in registry.collect()}
    assert "facebook page views" not in names
    assert "facebook_page_ok" not in names
    assert registry.get_sample_value("facebook_page_fine", PAGE) == 4.0
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    assert registry.get_sample_value("collectord_source_up", ids) == 0  # ours, not the sample's
    assert registry.get_sample_value("collectord_source_series", ids) == 1
    assert {e["event"] for e in logs} == {
        "metric_family_name_invalid",
        "metric_label_names_invalid",
    }


def test_self_metrics_at_start(registry):
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    assert (
        registry.get_sample_value(
            "collectord_build_info", {"version": "1.2.3", "python": platform.python_version()}
        )
        == 1
    )
    assert registry.get_sample_value("collectord_source_up", ids) == 0
    assert registry.get_sample_value("collectord_source_series", ids) == 0
    for reason in ERROR_REASONS:
        assert (
            registry.get_sample_value(
                "collectord_source_poll_errors_total", {**ids, "reason": reason}
            )
            == 0
        ), reason
    for cadence in ("fast", "daily"):
        labels = {**ids, "cadence": cadence}
        assert (
            registry.get_sample_value("collectord_source_poll_duration_seconds_count", labels) == 0
        )
        assert (
            registry.get_sample_value("collectord_source_last_success_timestamp_seconds", labels)
            is None
        )
        assert (
            registry.get_sample_value("collectord_source_newest_end_time_seconds", labels) is None
        )
    assert registry.get_sample_value("collectord_sink_records_total", {"sink": "jsonl"}) == 0
    assert registry.get_sample_value("collectord_sink_errors_total", {"sink": "jsonl"}) == 0
    assert (
        registry.get_sample_value(
            "collectord_token_expiry_timestamp_seconds", {"source": "acme-page"}
        )
        is None
    )


def test_source_up_and_series_after_every_cadence_succeeded(store, registry):
    store.record_success("acme-page", "fast", [sample(cadence="fast")], duration=0.1)
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    assert registry.get_sample_value("collectord_source_up", ids) == 0
    store.record_success(
        "acme-page",
        "daily",
        [sample("facebook_page_fans"), sample("facebook_page_x")],
        duration=0.1,
    )
    assert registry.get_sample_value("collectord_source_up", ids) == 1
    assert registry.get_sample_value("collectord_source_series", ids) == 3


def test_poll_duration_histogram(store, registry):
    for seconds in (0.05, 0.3, 7.0):
        store.record_success("acme-page", "fast", [], duration=seconds)
    labels = {"source": "acme-page", "plugin": "facebook_page", "cadence": "fast"}
    name = "collectord_source_poll_duration_seconds"

    def bucket(le: str) -> float | None:
        return registry.get_sample_value(f"{name}_bucket", {**labels, "le": le})

    assert bucket("0.1") == 1
    assert bucket("0.5") == 2
    assert bucket("5.0") == 2
    assert bucket("10.0") == 3
    assert bucket("+Inf") == 3
    assert registry.get_sample_value(f"{name}_count", labels) == 3
    assert registry.get_sample_value(f"{name}_sum", labels) == pytest.approx(7.35)
    les = [s.labels["le"] for s in family(registry, name).samples if s.name.endswith("_bucket")]
    assert len(les) == 2 * (len(DURATION_BUCKETS) + 1)  # both cadences, +Inf included


def test_newest_end_time_per_cadence(store, registry):
    end = datetime(2026, 11, 23, 8, tzinfo=UTC)
    store.record_success("acme-page", "daily", [sample(end_time=end)], duration=0.1)
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    name = "collectord_source_newest_end_time_seconds"
    assert registry.get_sample_value(name, {**ids, "cadence": "daily"}) == end.timestamp()
    assert registry.get_sample_value(name, {**ids, "cadence": "fast"}) is None


def test_skipped_objects_and_unknown_reasons_are_counted(store, registry):
    skips = (Skip("1", "story_below_threshold"), Skip("2", "vanished"))
    store.record_success("acme-page", "fast", PollResult(skipped=skips), duration=0.1)
    store.record_failure("acme-page", "daily", reason="something_new", message="?", duration=0.1)
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    name = "collectord_source_poll_errors_total"
    assert registry.get_sample_value(name, {**ids, "reason": "skipped_object"}) == 2
    assert registry.get_sample_value(name, {**ids, "reason": "other"}) == 1
    assert registry.get_sample_value(name, {**ids, "reason": "something_new"}) is None


def test_disabled_metrics(store, registry):
    disabled = (Disable("page_fans", "retired"), Disable("page_impressions", "unsupported"))
    store.record_success("acme-page", "daily", PollResult(disabled=disabled), duration=0.1)
    name = "collectord_metric_disabled"
    assert (
        registry.get_sample_value(
            name, {"source": "acme-page", "metric": "page_fans", "reason": "retired"}
        )
        == 1
    )
    assert (
        registry.get_sample_value(
            name,
            {"source": "acme-page", "metric": "page_impressions", "reason": "unsupported"},
        )
        == 1
    )
    assert len(family(registry, name).samples) == 2


def test_a_metric_disabled_by_a_plugin_is_exported_and_counted_once(store, registry):
    for _poll in range(3):  # Meta rejects it on every poll until it is no longer asked
        ctx = PollContext(
            source="acme-page",
            plugin="facebook_page",
            cadence="daily",
            options={},
            graph=None,  # type: ignore[arg-type]
            catalogue=(),
            now=datetime(2026, 11, 23, tzinfo=UTC),
            disabled_before=dict(store.status("acme-page").disabled),
        )
        ctx.disable_metric("page_impressions", "invalid_metric")
        store.record_success("acme-page", "daily", ctx.result(), duration=0.1)
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    errors = "collectord_source_poll_errors_total"
    assert registry.get_sample_value(errors, {**ids, "reason": "invalid_metric"}) == 1
    assert (
        registry.get_sample_value(
            "collectord_metric_disabled",
            {"source": "acme-page", "metric": "page_impressions", "reason": "invalid_metric"},
        )
        == 1
    )


def test_graph_token_and_sink_metrics(store, graph_stats, sinks, registry):
    graph_stats.requests.update({"200": 118, "400": 2, "timeout": 1})
    graph_stats.usage[("app", "", "call_count")] = 0.12
    graph_stats.usage[("instagram", "1789", "total_time")] = 0.5
    store.set_token("acme-page", TokenView(valid=True, expires_at=1_800_000_000.0))
    sinks[0].records = 5012
    sinks[0].errors = 3
    assert registry.get_sample_value("collectord_graph_requests_total", {"code": "200"}) == 118
    assert registry.get_sample_value("collectord_graph_requests_total", {"code": "timeout"}) == 1
    assert (
        registry.get_sample_value(
            "collectord_graph_usage_ratio", {"scope": "app", "id": "", "kind": "call_count"}
        )
        == 0.12
    )
    assert (
        registry.get_sample_value(
            "collectord_graph_usage_ratio",
            {"scope": "instagram", "id": "1789", "kind": "total_time"},
        )
        == 0.5
    )
    assert (
        registry.get_sample_value(
            "collectord_token_expiry_timestamp_seconds", {"source": "acme-page"}
        )
        == 1_800_000_000.0
    )
    assert registry.get_sample_value("collectord_sink_records_total", {"sink": "jsonl"}) == 5012
    assert registry.get_sample_value("collectord_sink_errors_total", {"sink": "jsonl"}) == 3


def test_budget_and_api_version_metrics(graph_stats, registry):
    graph_stats.calls.update({"token:abc": 250})
    graph_stats.throttled_until["token:abc"] = 1_800_000_600.0
    graph_stats.api_versions[("v19.0", "v20.0")] = 1.0
    value = registry.get_sample_value
    assert value("collectord_graph_calls_total", {"budget": "token:abc"}) == 250
    assert value("collectord_graph_calls_total", {"budget": "app"}) == 0
    assert (
        value("collectord_graph_throttled_until_timestamp_seconds", {"budget": "token:abc"})
        == 1_800_000_600.0
    )
    assert value("collectord_graph_throttled_until_timestamp_seconds", {"budget": "app"}) == 0
    assert (
        value("collectord_graph_api_version_info", {"requested": "v19.0", "served": "v20.0"}) == 1
    )


def test_token_that_never_expires_is_zero(store, registry):
    store.set_token("acme-page", TokenView(valid=True, type="PAGE", expires_at=0.0))
    assert (
        registry.get_sample_value(
            "collectord_token_expiry_timestamp_seconds", {"source": "acme-page"}
        )
        == 0
    )


def test_token_metrics_follow_what_debug_token_said(store, registry):
    value = registry.get_sample_value
    src = {"source": "acme-page"}
    store.set_token(
        "acme-page",
        TokenView(
            valid=True,
            type="USER",
            expires_at=1_800_000_000.0,
            data_access_expires_at=1_790_000_000.0,
            missing_scopes=("instagram_basic", "read_insights"),
        ),
    )
    assert value("collectord_token_valid", src) == 1
    assert value("collectord_token_expiry_timestamp_seconds", src) == 1_800_000_000
    assert value("collectord_token_data_access_expiry_timestamp_seconds", src) == 1_790_000_000
    assert value("collectord_token_info", {**src, "type": "USER"}) == 1
    assert value("collectord_token_missing_scope", {**src, "scope": "read_insights"}) == 1
    assert value("collectord_token_missing_scope", {**src, "scope": "instagram_basic"}) == 1
    # an unreadable token: only its validity is known
    store.set_token("acme-page", TokenView(valid=False))
    assert value("collectord_token_valid", src) == 0
    assert value("collectord_token_expiry_timestamp_seconds", src) is None
    assert value("collectord_token_info", {**src, "type": "USER"}) is None
    assert value("collectord_token_missing_scope", {**src, "scope": "read_insights"}) is None


def test_no_token_metrics_for_a_token_that_was_not_checked(store, registry):
    store.set_token("acme-page", TokenView(note="set [graph] app_id and app_secret"))
    lines = generate_latest(registry).decode().splitlines()
    assert [line for line in lines if line.startswith("collectord_token_")] == []


def test_registry_has_process_metrics_and_registering_does_not_collect(
    store, graph_stats, sinks, monkeypatch
):
    calls = []
    monkeypatch.setattr(store, "snapshot", lambda: calls.append(1) or Store().snapshot())
    registry = make_registry(store, graph_stats, sinks, version="1.2.3")
    assert calls == []
    names = {m.name for m in registry.collect()}
    assert calls == [1]
    assert "python_info" in names
    if platform.system() == "Linux":
        assert "process_resident_memory_bytes" in names


def test_labels_in_another_order_are_one_series_exposed_in_a_stable_order(store, registry):
    first = sample(value=1.0, labels={"page_id": "123", "period": "day"})
    reordered = Sample(
        metric="facebook_page_views",
        graph_metric="facebook_page_views",
        value=2.0,
        labels=make_labels({"period": "day", "page_id": "123"}),
        object_id="123",
        cadence="fast",
        end_time=datetime(2026, 11, 23, 8, tzinfo=UTC),
    )
    store.record_success("acme-page", "daily", [first], duration=0.1)
    with capture_logs() as logs:
        store.record_success("acme-page", "fast", [reordered], duration=0.1)
        views = family(registry, "facebook_page_views")
    assert [(s.labels, s.value) for s in views.samples] == [(PAGE, 2.0)], "newest end_time wins"
    assert list(views.samples[0].labels) == ["source", "page_id", "period"]
    assert not [e for e in logs if e["event"] == "metric_label_names_differ"]
    ids = {"source": "acme-page", "plugin": "facebook_page"}
    assert registry.get_sample_value("collectord_source_series", ids) == 1


def test_sink_dropped_records_are_exported(sinks, registry):
    assert registry.get_sample_value("collectord_sink_dropped_total", {"sink": "jsonl"}) == 0
    sinks[0].dropped = 7
    assert registry.get_sample_value("collectord_sink_dropped_total", {"sink": "jsonl"}) == 7
