"""The facebook_app plugin against a fake Graph API that serves the App Insights edge as
docs/meta-facts.md 4.1 documents it, and can answer as the retired edge does (docs/meta-facts.md 4)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from collectord_plugins.facebook_app import (
    CATALOGUE,
    FacebookApp,
    parse_app_rows,
    register_source_plugins,
)

from collectord import (
    PermissionDeniedError,
    Sample,
    Secret,
)
from collectord.graph.answers import meta_error
from collectord.testing import FakeGraph, PluginHost

APP = "4321"
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
DAY = timedelta(days=1)
PERIODS = {m.graph_name: m.periods for m in CATALOGUE if m.kind == "insight"}
FIELDS = {
    "daily_active_users": "1520",
    "weekly_active_users": "4010",
    "monthly_active_users": "9001",
}
#: App Insights metrics a source lists to read the edge (none is in the default set), with
#: the node fields.
EDGE_METRICS = (
    *("api_calls", "api_errors", "api_avg_request_time", "initial_permission_grants"),
    *("mobile_referral_installs", "total_referrals", "permission_revocations"),
    *(f"facebook_features_{k}_active_users" for k in ("daily", "weekly", "monthly")),
)
LISTED = (*FIELDS, *EDGE_METRICS)
RETIRED = {
    "invalid": meta_error("(#100) The value must be a valid insights metric", code=100),
    "unsupported": meta_error(
        "(#100) Unsupported get request. Object with ID '4321' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation",
        code=100,
        subcode=33,
    ),
}


def day_start(days_back: int) -> datetime:
    """Midnight US Pacific (winter), ``days_back`` days before NOW's day."""
    return datetime(2026, 11, 23, 8, 0, tzinfo=UTC) - days_back * DAY


class FakeApp(FakeGraph):
    """One app's node and App Insights edge, recording every HTTP request."""

    def __init__(
        self,
        *,
        retired: str | None = None,
        retired_metrics: Sequence[str] = (),
        bad_fields: Sequence[str] = (),
        denied: bool = False,
    ) -> None:
        super().__init__()
        self.retired = retired
        self.retired_metrics = set(retired_metrics)
        self.bad_fields = set(bad_fields)
        self.denied = denied

    def respond(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._answer(path, params)

    def insight_calls(self) -> list[tuple[str, dict[str, Any]]]:
        return [(p, dict(q)) for p, q in self.calls if "/app_insights/" in p]

    def _answer(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if path == APP:
            asked = params["fields"].split(",")
            bad = [f for f in asked if f in self.bad_fields or f not in FIELDS]
            if bad:
                raise meta_error(
                    f"(#100) Tried accessing nonexisting field ({bad[0]}) on node type "
                    "(Application)",
                    code=100,
                )
            return {"id": APP, **{f: FIELDS[f] for f in asked}}
        app, edge, metric = path.split("/")
        assert (app, edge) == (APP, "app_insights")
        if self.denied:
            raise meta_error("(#10) Requires app admin privileges", code=10)
        if self.retired or metric in self.retired_metrics:
            raise RETIRED[self.retired or "invalid"]
        period = params.get("period")
        if metric == "app_event":
            if not params.get("event_name"):
                raise meta_error("(#100) event_name is required", code=100)
        elif metric not in PERIODS or period not in PERIODS[metric]:
            raise meta_error("(#100) Invalid parameter", code=100)
        since = datetime.fromtimestamp(int(params["since"]), UTC)
        until = datetime.fromtimestamp(int(params["until"]), UTC)
        clients = [params["breakdowns[0]"]] if "breakdowns[0]" in params else []
        rows: list[dict[str, Any]] = []
        for back in (3, 2, 1):  # the last completed days inside since..until
            start = day_start(back)
            if not since <= start <= until:
                continue
            if clients:
                for client, share in (("android", 60), ("ios", 40)):
                    rows.append(
                        {
                            "time": start.strftime("%Y-%m-%dT%H:%M:%S+0000"),
                            "value": str(share * (4 - back)),
                            "breakdowns": {"client": client},
                        }
                    )
            else:
                value = 180 if metric == "api_avg_request_time" else 100 * (4 - back)
                rows.append({"time": start.strftime("%Y-%m-%dT%H:%M:%S+0000"), "value": str(value)})
        return {"data": rows}


def new_status(metrics: Sequence[str] | None = None, **options: Any) -> PluginHost:
    """The source ``acme-app`` as the host keeps it between polls."""
    opts = {"app_id": APP, "period": "daily", **options}
    return PluginHost(
        FacebookApp(), opts, graph=FakeApp(), metrics=metrics, source="acme-app", now=NOW
    )


async def poll(
    graph: FakeApp,
    cadence: str,
    *,
    status: PluginHost | None = None,
    metrics: Sequence[str] | None = None,
    **options: Any,
) -> list[Sample]:
    """One poll of ``cadence`` against ``graph``; pass the same ``status`` to poll the same
    source again (its options and metrics are those it was made with)."""
    host = status or new_status(metrics, **options)
    host.graph = graph
    result = await host.poll(cadence)  # type: ignore[arg-type]
    return list(result.samples)


def newest(samples: Sequence[Sample], metric: str, **labels: str) -> Sample:
    found = [
        s
        for s in samples
        if s.metric == metric and all(s.label_dict.get(k) == v for k, v in labels.items())
    ]
    assert found, (metric, labels)
    return max(found, key=lambda s: s.end_time or datetime.min.replace(tzinfo=UTC))


def test_default_token_is_the_app_token() -> None:
    plugin = FacebookApp()
    assert plugin.default_access_token("111", Secret("s3cret")) == "111|s3cret"
    assert plugin.default_access_token(None, Secret("s3cret")) is None
    assert plugin.default_access_token("111", None) is None


async def test_fast_poll_reads_active_users_fields_as_numbers() -> None:
    graph = FakeApp()
    samples = await poll(graph, "fast")
    assert len(graph.http) == 1
    assert graph.http[0][:2] == ("GET", APP)
    by_name = {s.metric: s for s in samples}
    assert set(by_name) == {
        "facebook_app_daily_active_users",
        "facebook_app_weekly_active_users",
        "facebook_app_monthly_active_users",
    }
    dau = by_name["facebook_app_daily_active_users"]
    assert (dau.value, dau.label_dict, dau.cadence) == (1520.0, {"app_id": APP}, "fast")


async def test_default_set_asks_the_retired_edge_nothing() -> None:
    """Meta shut App Insights down in 2021: by default a source reads the active-user
    fields only, and its daily poll makes no call that would fail."""
    assert not [m for m in CATALOGUE if m.default and m.kind == "insight"]
    graph = FakeApp(retired="invalid")
    status = new_status()
    assert await poll(graph, "daily", status=status) == []
    assert graph.insight_calls() == []
    assert status.disabled == {}, "no 'metric disabled' warning on start"
    assert len(await poll(FakeApp(), "fast", status=status)) == 3


async def test_daily_poll_asks_each_metric_in_the_path_in_one_batch() -> None:
    graph = FakeApp()
    samples = await poll(graph, "daily", metrics=LISTED)
    defaults = [m for m in CATALOGUE if m.graph_name in EDGE_METRICS]
    assert [m for m, _, _ in graph.http] == ["POST"]  # 10 metrics, one HTTP request
    calls = graph.insight_calls()
    assert sorted(p for p, _ in calls) == sorted(
        f"{APP}/app_insights/{m.graph_name}" for m in defaults
    )
    params = calls[0][1]
    assert params["period"] == "daily"
    assert int(params["until"]) - int(params["since"]) == 3 * 86400
    assert "aggregateBy" not in params
    assert not [k for k in params if k.startswith("breakdowns")]

    calls_sample = newest(samples, "facebook_app_api_calls")
    assert calls_sample.label_dict == {"app_id": APP, "period": "daily"}
    assert calls_sample.value == 300.0
    assert calls_sample.end_time == day_start(1) + DAY  # `time` starts the day
    assert calls_sample.cadence == "daily"
    assert newest(samples, "facebook_app_api_avg_request_time_seconds").value == 0.18
    assert {s.metric for s in samples} == {m.prom_name for m in defaults}


async def test_breakdowns_become_labels_of_a_by_family() -> None:
    graph = FakeApp()
    samples = await poll(
        graph, "daily", metrics=LISTED, breakdowns=("client",), aggregate_by="COUNT"
    )
    params = graph.insight_calls()[0][1]
    assert (params["breakdowns[0]"], params["aggregateBy"]) == ("client", "COUNT")
    android = newest(samples, "facebook_app_api_calls_by_client", client="android")
    assert android.value == 180.0
    assert android.label_dict == {"app_id": APP, "period": "daily", "client": "android"}
    assert not [s for s in samples if s.metric == "facebook_app_api_calls"]


async def test_retired_edge_disables_each_metric_once_without_failing() -> None:
    status = new_status(LISTED)
    graph = FakeApp(retired="invalid")
    assert await poll(graph, "daily", status=status) == []
    assert status.disabled == dict.fromkeys(EDGE_METRICS, "invalid_metric")
    assert len(graph.http) == 1  # one batch found them all

    graph = FakeApp(retired="invalid")
    assert await poll(graph, "daily", status=status) == []
    assert graph.http == [], "a disabled metric is not requested again"
    # the fields still flow on the fast cadence
    assert len(await poll(FakeApp(), "fast", status=status)) == 3


async def test_unsupported_operation_answer_disables_as_unsupported() -> None:
    status = new_status(metrics=["api_calls"])
    await poll(FakeApp(retired="unsupported"), "daily", status=status)
    assert status.disabled == {"api_calls": "unsupported"}


async def test_one_retired_metric_leaves_the_others_flowing() -> None:
    status = new_status(LISTED)
    graph = FakeApp(retired_metrics=["api_errors"])
    samples = await poll(graph, "daily", status=status)
    assert status.disabled == {"api_errors": "invalid_metric"}
    assert newest(samples, "facebook_app_api_calls").value == 300.0
    assert not [s for s in samples if s.metric == "facebook_app_api_errors"]


async def test_permission_error_fails_the_poll() -> None:
    status = new_status(LISTED)
    with pytest.raises(PermissionDeniedError):
        await poll(FakeApp(denied=True), "daily", status=status)
    assert status.disabled == {}


async def test_a_rejected_field_is_disabled_and_the_others_read() -> None:
    status = new_status()
    samples = await poll(FakeApp(bad_fields=["weekly_active_users"]), "fast", status=status)
    assert status.disabled == {"weekly_active_users": "unsupported"}
    assert {s.metric for s in samples} == {
        "facebook_app_daily_active_users",
        "facebook_app_monthly_active_users",
    }


async def test_app_events_by_name() -> None:
    plugin = FacebookApp()
    assert plugin.spec_for("app_event") is None
    graph = FakeApp()
    samples = await poll(graph, "daily", metrics=["app_event:fb_mobile_purchase"])
    ((path, params),) = graph.insight_calls()
    assert path == f"{APP}/app_insights/app_event"
    assert params["event_name"] == "fb_mobile_purchase"
    assert newest(samples, "facebook_app_app_event_fb_mobile_purchase").value == 300.0


def test_validate_cross_checks() -> None:
    plugin = FacebookApp()
    ok = {"app_id": APP, "period": "daily", "breakdowns": (), "aggregate_by": None}
    assert plugin.validate(ok) == []
    assert {o.name: o.type for o in plugin.options}["app_id"] == "id"
    assert plugin.validate({**ok, "aggregate_by": "TOPK"})
    assert plugin.validate({**ok, "breakdowns": ("acquisition_source_l1",)})
    assert (
        plugin.validate({**ok, "breakdowns": ("acquisition_source_l1",), "aggregate_by": "COUNT"})
        == []
    )
    assert plugin.validate({**ok, "breakdowns": ("age",)})
    opts = {o.name: o for o in plugin.options}
    assert opts["period"].default == "daily"
    assert "lifetime" in opts["period"].choices
    assert "client" in opts["breakdowns"].choices
    assert "DAU" in opts["aggregate_by"].choices
    assert [type(p) for p in register_source_plugins()] == [FacebookApp]


def test_parse_rows_in_both_shapes() -> None:
    rows = list(
        parse_app_rows(
            [
                {"time": "2026-11-22T08:00:00+0000", "value": "12"},
                {"time": "2026-11-22T08:00:00+0000", "value": {"GET": 3, "POST": "n/a"}},
                {"time": "2026-11-22T08:00:00+0000", "value": "n/a"},
                {
                    "name": "api_calls",
                    "period": "daily",
                    "values": [{"value": 5, "end_time": None}],
                },
            ],
            "weekly",
        )
    )
    assert [(r.value, r.key, r.dims) for r in rows] == [
        (12.0, None, ()),
        (3.0, "GET", ()),
        (5.0, None, ()),
    ]
    # a weekly value is a rolling window ending with the day its `time` starts
    assert rows[0].end_time == datetime(2026, 11, 23, 8, tzinfo=UTC)
    (hourly,) = parse_app_rows([{"time": "2026-12-01T08:00:00+0000", "value": 1}], "hourly")
    assert hourly.end_time == datetime(2026, 12, 1, 9, tzinfo=UTC)
    (lifetime,) = parse_app_rows([{"time": "2026-12-01T08:00:00+0000", "value": 1}], "lifetime")
    assert lifetime.end_time is None


class EventPickyApp(FakeApp):
    """Meta refusing some custom app events by name: ``invalid`` ones with code 100, and
    ``gone`` ones as the retired edge does (100/33)."""

    def __init__(self, *, invalid: Sequence[str] = (), gone: Sequence[str] = ()) -> None:
        super().__init__()
        self.invalid_events = set(invalid)
        self.gone_events = set(gone)

    def _answer(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        event = params.get("event_name")
        if path.endswith("/app_event") and event in self.invalid_events:
            raise meta_error(f"(#100) Invalid event_name: {event}", code=100)
        if path.endswith("/app_event") and event in self.gone_events:
            raise RETIRED["unsupported"]
        return super()._answer(path, params)


def asked_events(graph: FakeApp) -> list[str]:
    return sorted(q["event_name"] for p, q in graph.insight_calls() if p.endswith("/app_event"))


@pytest.mark.parametrize("refusal", ["invalid", "gone"])
async def test_a_refused_app_event_does_not_stop_the_other_events(refusal: str) -> None:
    events = ["app_event:foo", "app_event:bar"]
    status = new_status(metrics=events)
    graph = EventPickyApp(**{refusal: ["foo"]})
    samples = await poll(graph, "daily", status=status)
    assert set(status.disabled) == {"app_event:foo"}, "one event at a time"
    assert "app_event" not in status.disabled
    assert newest(samples, "facebook_app_app_event_bar").value == 300.0
    assert not [s for s in samples if s.metric == "facebook_app_app_event_foo"]

    graph = EventPickyApp(**{refusal: ["foo"]})
    samples = await poll(graph, "daily", status=status)
    assert asked_events(graph) == ["bar"], "the refused event is not asked again"
    assert newest(samples, "facebook_app_app_event_bar").value == 300.0


async def test_weekly_period_disables_catalogue_metrics_without_weekly_without_asking() -> None:
    metrics = ["api_calls", "total_referrals", "facebook_login_total_users", "app_event:bar"]
    status = new_status(metrics, period="weekly")
    graph = FakeApp()
    samples = await poll(graph, "daily", status=status)
    assert status.disabled == {
        "api_calls": "unsupported_period",
        "total_referrals": "unsupported_period",
        "facebook_login_total_users": "unsupported_period",
    }
    calls = graph.insight_calls()
    assert [p for p, _ in calls] == [f"{APP}/app_insights/app_event"], "Meta was not asked"
    assert calls[0][1]["period"] == "weekly"
    bar = newest(samples, "facebook_app_app_event_bar")
    assert bar.label_dict == {"app_id": APP, "period": "weekly"}

    graph = FakeApp()
    await poll(graph, "daily", status=status)
    assert [p for p, _ in graph.insight_calls()] == [f"{APP}/app_insights/app_event"]
    assert len(status.disabled) == 3


async def test_weekly_period_with_only_catalogue_metrics_sends_nothing() -> None:
    status = new_status(period="weekly")
    graph = FakeApp()
    assert await poll(graph, "daily", status=status) == []
    defaults = {m.graph_name for m in CATALOGUE if m.default and m.kind == "insight"}
    assert not any("weekly" in PERIODS[n] for n in defaults)
    assert status.disabled == dict.fromkeys(defaults, "unsupported_period")
    assert graph.http == [], "no request to Meta at all"


async def test_a_metric_unknown_to_the_catalogue_is_asked_in_any_period() -> None:
    status = new_status(["brand_new_metric"], period="weekly")
    graph = FakeApp()
    await poll(graph, "daily", status=status)
    ((path, params),) = graph.insight_calls()
    assert (path, params["period"]) == (f"{APP}/app_insights/brand_new_metric", "weekly")
    assert status.disabled == {"brand_new_metric": "invalid_metric"}, "Meta decided"
