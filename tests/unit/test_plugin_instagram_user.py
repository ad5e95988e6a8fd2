"""instagram_user: names, labels, values and the calls it makes, against a fake that answers
like Meta's ``/{ig-user-id}/insights`` (docs/meta-facts.md 5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collectord_plugins.instagram_user import InstagramUser
from config_support import metrics_rejected, metrics_said, write_source

from collectord import (
    GraphError,
    InvalidRequestError,
    Sample,
    ServerError,
)
from collectord.cli import main
from collectord.config.loader import load_config
from collectord.graph.answers import meta_error
from collectord.testing import FakeGraph, PluginHost

IG = "17841400000000001"
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)

# Meta's 2026 rules (docs/meta-facts.md 5.2): how each metric may be asked for, and breakdowns.
TOTAL_ONLY = {
    "views": {"media_product_type", "follower_type"},
    "accounts_engaged": set(),
    "total_interactions": {"media_product_type"},
    "likes": {"media_product_type"},
    "comments": {"media_product_type"},
    "saves": {"media_product_type"},
    "shares": {"media_product_type"},
    "replies": set(),
    "reposts": set(),
    "profile_links_taps": {"contact_button_type"},
    "follows_and_unfollows": {"follow_type"},
    "profile_views": set(),
}
BOTH = {"reach": {"media_product_type", "follow_type"}}
SERIES_ONLY = {"follower_count": "day", "online_followers": "lifetime"}
DEMOGRAPHIC = {"follower_demographics", "engaged_audience_demographics"}
GATED = {"follower_count", "online_followers", "follows_and_unfollows", *DEMOGRAPHIC}
BREAKDOWN_VALUES = {
    "media_product_type": ["POST", "REEL", "STORY"],
    "follow_type": ["FOLLOWER", "NON_FOLLOWER"],
    "contact_button_type": ["CALL", "EMAIL"],
    "follower_type": ["FOLLOWER", "NON_FOLLOWER"],
    "age": ["18-24", "25-34"],
    "gender": ["F", "M"],
    "city": ["Berlin, Berlin"],
    "country": ["DE", "US"],
}


def bad(message: str) -> InvalidRequestError:
    return meta_error(message, code=100)


class FakeInstagramUser(FakeGraph):
    """An IG account as Meta serves it: one wrong metric fails the whole call."""

    def __init__(self, *, followers: int = 12000) -> None:
        super().__init__()
        self.followers = followers

    # -- answers --------------------------------------------------------------------------
    def respond(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path == IG:
            names = params["fields"].split(",")
            counts = {"followers_count": self.followers, "follows_count": 381, "media_count": 77}
            return {n: counts[n] for n in names if n in counts} | {"id": IG}
        assert path == f"{IG}/insights", path
        return self.insights(params)

    def insights(self, p: dict[str, str]) -> dict[str, Any]:
        names = p["metric"].split(",")
        for n in names:
            known = n in TOTAL_ONLY or n in BOTH or n in SERIES_ONLY or n in DEMOGRAPHIC
            if not known:
                raise bad("(#100) metric[0] must be one of the following values: reach, ...")
        metric_type = p.get("metric_type")
        if metric_type == "total_value":
            if wrong := [n for n in names if n in SERIES_ONLY]:
                raise bad(f"(#100) The following metrics ({', '.join(wrong)}) should be ...")
        elif wrong := [n for n in names if n in TOTAL_ONLY or n in DEMOGRAPHIC]:
            raise bad(
                f"(#100) The following metrics ({', '.join(wrong)}) should be specified "
                "with parameter metric_type=total_value"
            )
        for n in names:
            period = SERIES_ONLY.get(n) or ("lifetime" if n in DEMOGRAPHIC else "day")
            if p.get("period") and p["period"] != period:
                raise bad(f"(#100) The metric {n} does not support the period {p['period']}")
        if "since" in p and int(p["until"]) - int(p["since"]) > 30 * 86400:
            raise bad("(#100) There cannot be more than 30 days between since and until")
        dims = p["breakdown"].split(",") if p.get("breakdown") else []
        if dims and metric_type == "total_value":
            for n in names:
                allowed = TOTAL_ONLY.get(n) or BOTH.get(n) or set()
                if n in DEMOGRAPHIC:
                    allowed = {"age", "gender", "city", "country"}
                if not set(dims) <= allowed:
                    raise meta_error("An unknown error has occurred.", code=1)
        data = []
        for n in names:
            if n in DEMOGRAPHIC and not (p.get("timeframe") and dims):
                raise bad("(#100) The parameter timeframe is required")
            if n in GATED and self.followers < 100:
                continue  # small accounts: no data
            data.append(self.entry(n, p, dims if metric_type == "total_value" else []))
        return {"data": data, "paging": {"previous": "https://x/p", "next": "https://x/n"}}

    def entry(self, name: str, p: dict[str, str], dims: list[str]) -> dict[str, Any]:
        if p.get("metric_type") != "total_value":
            ends = ["2026-11-22T08:00:00+0000", "2026-11-23T08:00:00+0000"]
            if name == "online_followers":
                vals: list[Any] = [{"0": 10 + i, "18": 200 + i} for i in range(2)]
            else:
                vals = [100 + i for i in range(2)]
            return {
                "name": name,
                "period": SERIES_ONLY.get(name, "day"),
                "values": [{"value": v, "end_time": e} for v, e in zip(vals, ends, strict=True)],
            }
        block: dict[str, Any] = {}
        keys, prefix = list(dims), []
        if name in DEMOGRAPHIC:
            keys, prefix = ["timeframe", *dims], [p["timeframe"].upper()]
        else:
            block["value"] = 500
        if dims:
            combos: list[list[str]] = [[]]
            for d in dims:
                combos = [[*c, v] for c in combos for v in BREAKDOWN_VALUES[d]]
            block["breakdowns"] = [
                {
                    "dimension_keys": keys,
                    "results": [
                        {"dimension_values": [*prefix, *c], "value": 10 * (i + 1)}
                        for i, c in enumerate(combos)
                    ],
                }
            ]
        period = "lifetime" if name in DEMOGRAPHIC else "day"
        return {"name": name, "period": period, "total_value": block}


PLUGIN = InstagramUser()


def new_status(metrics: Sequence[str] | None = None) -> PluginHost:
    """The source ``acme-ig`` as the host keeps it between polls."""
    return PluginHost(
        PLUGIN, {"ig_user_id": IG}, graph=FakeGraph(), metrics=metrics, source="acme-ig", now=NOW
    )


@dataclass
class Poll:
    """One poll to run: the source (as the host keeps it) and the cadence."""

    host: PluginHost
    cadence: str


def make_ctx(
    graph: FakeInstagramUser,
    cadence: str,
    *,
    metrics: Sequence[str] | None = None,
    status: PluginHost | None = None,
) -> Poll:
    """A poll of ``cadence`` against ``graph``; pass the same ``status`` to poll the same
    source again (with the metrics it was made with)."""
    assert status is None or metrics is None, "give the metrics to new_status"
    host = status or new_status(metrics)
    host.graph = graph
    return Poll(host, cadence)


async def collect(run: Poll) -> list[Sample]:
    result = await run.host.poll(run.cadence)  # type: ignore[arg-type]
    return list(result.samples)


def series(samples: Sequence[Sample], metric: str) -> list[Sample]:
    return [s for s in samples if s.metric == metric]


async def test_fast_poll_reads_the_counts_in_one_call() -> None:
    graph = FakeInstagramUser()
    samples = await collect(make_ctx(graph, "fast"))
    assert len(graph.http) == 1
    assert {s.metric: s.value for s in samples} == {
        "instagram_user_followers": 12000.0,
        "instagram_user_follows": 381.0,
        "instagram_user_media": 77.0,
    }
    assert all(s.label_dict == {"ig_user_id": IG} and s.cadence == "fast" for s in samples)


async def test_daily_poll_names_labels_and_values() -> None:
    graph = FakeInstagramUser()
    ctx = make_ctx(graph, "daily")
    samples = await collect(ctx)

    assert ctx.host.disabled == {}, "every default metric is asked for the way Meta wants"
    assert all(s.cadence == "daily" for s in samples)
    assert not series(samples, "instagram_user_followers"), "fields are fast only"

    # issue 8: a total_value is one completed Pacific day, dated by its end; the day before
    # is read again for Meta's revisions
    views = series(samples, "instagram_user_views")
    assert sorted(s.end_time for s in views) == [
        datetime(2026, 11, 22, 8, tzinfo=UTC),
        datetime(2026, 11, 23, 8, tzinfo=UTC),
    ]
    assert all(s.label_dict == {"ig_user_id": IG, "period": "day"} for s in views)
    assert all(s.value == 500.0 for s in views)
    by_type = series(samples, "instagram_user_views_by_media_product_type")
    newest = datetime(2026, 11, 23, 8, tzinfo=UTC)
    by_type = [s for s in by_type if s.end_time == newest]
    assert {s.label_dict["media_product_type"]: s.value for s in by_type} == {
        "POST": 10.0,
        "REEL": 20.0,
        "STORY": 30.0,
    }

    # reach: the plain family is the time series (with end_time), breakdowns apart
    reach = series(samples, "instagram_user_reach")
    assert [(s.value, s.end_time) for s in reach] == [
        (100.0, datetime(2026, 11, 22, 8, tzinfo=UTC)),
        (101.0, datetime(2026, 11, 23, 8, tzinfo=UTC)),
    ]
    assert all(s.label_dict == {"ig_user_id": IG, "period": "day"} for s in reach)
    follow = series(samples, "instagram_user_reach_by_follow_type")
    assert {s.label_dict["follow_type"] for s in follow} == {"FOLLOWER", "NON_FOLLOWER"}
    assert series(samples, "instagram_user_reach_by_media_product_type")
    taps = series(samples, "instagram_user_profile_links_taps_by_contact_button_type")
    assert {s.label_dict["contact_button_type"] for s in taps} == {"CALL", "EMAIL"}

    demo = series(samples, "instagram_user_follower_demographics_by_age_gender")
    assert len(demo) == 2 * 4, "both timeframes, every age x gender row"
    first = next(s for s in demo if s.label_dict["timeframe"] == "this_month")
    assert first.label_dict == {
        "ig_user_id": IG,
        "period": "lifetime",
        "timeframe": "this_month",
        "age": "18-24",
        "gender": "F",
    }
    assert {s.label_dict["timeframe"] for s in demo} == {"this_week", "this_month"}
    for dim in ("city", "country"):
        for name in ("follower_demographics", "engaged_audience_demographics"):
            assert series(samples, f"instagram_user_{name}_by_{dim}")
    assert not series(samples, "instagram_user_follower_demographics"), "no total family"

    online = series(samples, "instagram_user_online_followers")
    assert {
        (s.label_dict["hour"], s.value) for s in online if s.end_time == NOW.replace(hour=8)
    } == {
        ("0", 11.0),
        ("18", 201.0),
    }
    assert all(s.label_dict["period"] == "lifetime" for s in online)

    # a total never shares a family with its own breakdown
    for s in samples:
        assert not (set(s.label_dict) & {"media_product_type", "follow_type"}) or "_by_" in s.metric


async def test_daily_poll_calls_meta_as_it_demands() -> None:
    graph = FakeInstagramUser()
    await collect(make_ctx(graph, "daily"))
    assert len(graph.http) == 1, "every insights call of a daily poll fits one batch"
    for _path, params in graph.calls:
        if "breakdown" in params:
            assert "," not in params["metric"], "one metric per breakdown call"
            assert params["metric_type"] == "total_value"
        if "since" in params:
            assert int(params["until"]) - int(params["since"]) <= 30 * 86400
    demo_calls = [p for _, p in graph.calls if p["metric"] == "follower_demographics"]
    assert sorted((p["timeframe"], p["breakdown"]) for p in demo_calls) == [
        ("this_month", "age,gender"),
        ("this_month", "city"),
        ("this_month", "country"),
        ("this_week", "age,gender"),
        ("this_week", "city"),
        ("this_week", "country"),
    ]
    series_calls = [p for _, p in graph.calls if p.get("metric_type") == "time_series"]
    assert sorted(p["metric"] for p in series_calls) == ["online_followers", "reach"]


async def test_small_account_gets_no_data_and_no_error() -> None:
    graph = FakeInstagramUser(followers=60)
    ctx = make_ctx(graph, "daily")
    samples = await collect(ctx)
    assert ctx.host.disabled == {}
    assert ctx.host.errors == {}
    assert not [s for s in samples if "demographics" in s.metric]
    assert not series(samples, "instagram_user_online_followers")
    assert series(samples, "instagram_user_views"), "ungated metrics still flow"


async def test_retired_metric_is_disabled_and_the_rest_flow() -> None:
    graph = FakeInstagramUser()
    ctx = make_ctx(graph, "daily", metrics=["impressions", "views", "accounts_engaged"])
    samples = await collect(ctx)
    assert ctx.host.disabled == {"impressions": "invalid_metric"}
    assert {s.metric for s in samples} >= {
        "instagram_user_views",
        "instagram_user_accounts_engaged",
    }
    graph.calls.clear()
    await collect(ctx)
    assert all("impressions" not in p.get("metric", "") for _, p in graph.calls)


async def test_a_failing_account_fails_the_poll() -> None:
    class Gone(FakeInstagramUser):
        def respond(self, path: str, params: dict[str, str]) -> dict[str, Any]:
            raise meta_error("Unsupported get request.", code=100, subcode=33)

    with pytest.raises(GraphError):
        await collect(make_ctx(Gone(), "daily"))


def test_catalogue_cadences_and_validation() -> None:
    cadences = {s.graph_name: s.cadence for s in PLUGIN.catalogue}
    assert {n for n, c in cadences.items() if c == "fast"} == {
        "followers_count",
        "follows_count",
        "media_count",
    }
    retired = {"impressions", "audience_city", "audience_gender_age", "website_clicks"}
    assert not retired & set(cadences)
    assert {o.name: o.type for o in PLUGIN.options}["ig_user_id"] == "id"
    with pytest.warns(UserWarning, match="'some_new_metric' is not an Instagram account"):
        spec = PLUGIN.spec_for("some_new_metric")
    assert spec is not None
    assert spec.prom_name == "instagram_user_some_new_metric"


async def test_the_window_of_time_series_is_short() -> None:
    graph = FakeInstagramUser()
    await collect(make_ctx(graph, "daily"))
    windows = [int(p["until"]) - int(p["since"]) for _, p in graph.calls if "since" in p]
    assert windows
    assert max(windows) <= timedelta(days=30).total_seconds()


class RefusingInstagramUser(FakeInstagramUser):
    """Meta refusing some (metric, breakdown) pairs: with code 100 (``refused``) or with
    code 1 "An unknown error has occurred" (``unknown``); ``down`` answers every insights
    call with code 1."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.refused: set[tuple[str, str]] = set()
        self.unknown: set[tuple[str, str]] = set()
        self.down = False

    def insights(self, p: dict[str, str]) -> dict[str, Any]:
        pair = (p["metric"], p.get("breakdown", ""))
        if self.down or pair in self.unknown:
            raise meta_error("An unknown error has occurred.", code=1)
        if pair in self.refused:
            raise bad(f"(#100) The breakdown {pair[1]} is not supported for the metric {pair[0]}")
        return super().insights(p)

    def breakdown_calls(self, metric: str, breakdown: str) -> int:
        return sum(
            1
            for _, p in self.calls
            if p.get("metric") == metric and p.get("breakdown") == breakdown
        )


async def test_refused_breakdown_disables_the_breakdown_not_the_metric() -> None:
    graph = RefusingInstagramUser()
    graph.refused.add(("reach", "follow_type"))
    status = new_status()
    samples = await collect(make_ctx(graph, "daily", status=status))
    assert status.disabled == {"reach:follow_type": "unsupported"}
    assert len(series(samples, "instagram_user_reach")) == 2, "reach's time series flows"
    assert series(samples, "instagram_user_reach_by_media_product_type")
    assert not series(samples, "instagram_user_reach_by_follow_type")
    assert series(samples, "instagram_user_follows_and_unfollows_by_follow_type"), (
        "another metric's follow_type breakdown is its own"
    )

    graph.calls.clear()
    samples = await collect(make_ctx(graph, "daily", status=status))
    assert graph.breakdown_calls("reach", "follow_type") == 0, "not asked again"
    assert graph.breakdown_calls("reach", "media_product_type") == 2, "the last two days"
    assert any(p.get("metric") == "reach" and "breakdown" not in p for _, p in graph.calls)
    assert len(series(samples, "instagram_user_reach")) == 2


async def test_breakdown_with_unknown_error_in_two_polls_is_disabled() -> None:
    graph = RefusingInstagramUser()
    graph.unknown.add(("reach", "follow_type"))
    status = new_status()

    samples = await collect(make_ctx(graph, "daily", status=status))
    assert not series(samples, "instagram_user_reach_by_follow_type"), "left out of this poll"
    assert len(series(samples, "instagram_user_reach")) == 2
    assert series(samples, "instagram_user_views"), "the poll delivered the rest"
    assert status.disabled == {}

    samples = await collect(make_ctx(graph, "daily", status=status))
    assert status.disabled == {"reach:follow_type": "unsupported_breakdown"}
    assert len(series(samples, "instagram_user_reach")) == 2

    graph.calls.clear()
    samples = await collect(make_ctx(graph, "daily", status=status))
    assert graph.breakdown_calls("reach", "follow_type") == 0
    assert len(series(samples, "instagram_user_reach")) == 2, "the plain metric keeps coming"
    assert series(samples, "instagram_user_reach_by_media_product_type")


async def test_breakdown_with_unknown_error_once_is_kept() -> None:
    graph = RefusingInstagramUser()
    graph.unknown.add(("reach", "follow_type"))
    status = new_status()
    await collect(make_ctx(graph, "daily", status=status))
    graph.unknown.clear()
    samples = await collect(make_ctx(graph, "daily", status=status))
    assert status.disabled == {}
    follow = series(samples, "instagram_user_reach_by_follow_type")
    assert {s.label_dict["follow_type"] for s in follow} == {"FOLLOWER", "NON_FOLLOWER"}


async def test_unknown_error_on_every_call_fails_the_poll() -> None:
    graph = RefusingInstagramUser()
    graph.down = True
    # demographics only: every call of the poll is a breakdown call
    status = new_status(["follower_demographics"])
    for _ in range(2):
        with pytest.raises(ServerError):
            await collect(make_ctx(graph, "daily", status=status))
    assert status.disabled == {}, "Meta being down disables nothing"
    with pytest.raises(ServerError):
        await collect(make_ctx(graph, "daily"))


# -- names in `metrics`, through the config loader ------------------------------------


def write(tmp_path: Path, *metrics: str) -> Path:
    return write_source(tmp_path, "instagram_user", "ig_user_id", IG, metrics)


def rejected(tmp_path: Path, *metrics: str) -> list[str]:
    return metrics_rejected(tmp_path, PLUGIN, "ig_user_id", IG, metrics)


def said(tmp_path: Path, *metrics: str) -> tuple[list[str], list[str]]:
    """The metrics the source collects and the config warnings, as a user reads them."""
    return metrics_said(tmp_path, PLUGIN, "ig_user_id", IG, metrics)


REJECTED = "(Meta rejects it: it will be disabled)"


@pytest.mark.parametrize(
    ("name", "warning"),
    [
        (
            "impressions",
            f"'impressions' was retired by Meta in April 2025 (Graph API v22.0); use 'views' "
            f"{REJECTED}",
        ),
        (
            "audience_gender_age",
            "'audience_gender_age' was retired by Meta in December 2023 (Graph API v18.0); use "
            f"'follower_demographics' or 'engaged_audience_demographics' {REJECTED}",
        ),
        (
            "website_clicks",
            "'website_clicks' was retired by Meta as a time series in January 2025 (Graph API "
            "v21.0); use 'profile_links_taps' (its contact_button_type breakdown) (it is asked "
            "for as total_value; if Meta rejects that, it is disabled)",
        ),
    ],
)
def test_a_retired_name_warns_when_and_what_replaced_it_and_is_still_asked_for(
    tmp_path: Path, name: str, warning: str
) -> None:
    specs, warned = said(tmp_path, "views", name)
    assert specs == ["views", name]
    assert warned == [warning]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("instagram_user_view", "did you mean 'views'?"),
        ("instagram_user_reach_by_follow_typ", "did you mean 'reach'?"),
        (
            "instagram_user_impressions",
            "'impressions' was retired by Meta in April 2025 (Graph API v22.0); use 'views'",
        ),
    ],
)
def test_a_prometheus_name_is_an_error_naming_the_meta_name(
    tmp_path: Path, name: str, hint: str
) -> None:
    assert rejected(tmp_path, "views", name) == [
        f"unknown metric {name!r}: list metrics by their Graph API name ({hint})"
    ]


@pytest.mark.parametrize(
    ("name", "remark"),
    [
        ("viewz", "did you mean 'views'?"),
        ("navigation", "story metrics are read by the instagram_media plugin"),
        ("ig_reels_avg_watch_time", "media metrics are read by the instagram_media plugin"),
        ("brand_new", "Meta decides, and a name it rejects is disabled"),
    ],
)
def test_another_unknown_name_is_asked_for_as_total_value_with_a_warning(
    tmp_path: Path, name: str, remark: str
) -> None:
    config = load_config(write(tmp_path, name), {"instagram_user": PLUGIN}, environ={})
    (spec,) = config.sources[0].specs
    assert (spec.graph_name, spec.group, spec.cadence) == (name, ("total_value",), "daily")
    assert said(tmp_path, name)[1] == [
        f"{name!r} is not an Instagram account metric collectord knows; it is asked for as a "
        f"daily total_value metric ({remark})"
    ]


def test_every_catalogue_name_loads_without_a_warning(tmp_path: Path) -> None:
    names = [s.graph_name for s in PLUGIN.catalogue]
    assert said(tmp_path, *names) == (names, [])


def test_check_prints_the_warning_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", str(write(tmp_path, "views", "impressions"))]) == 0
    out = capsys.readouterr().out
    assert "warning: " in out
    assert "'impressions' was retired by Meta in April 2025 (Graph API v22.0)" in out


# -- issue 8: a breakdown or demographics call Meta refuses never costs the poll ---------


class DemographicsDenied(FakeInstagramUser):
    """Meta answering code 10 to one demographics breakdown (Meta gates them by
    permission and by audience size), and every other call as usual."""

    def insights(self, p: dict[str, str]) -> dict[str, Any]:
        if p["metric"] == "follower_demographics" and p.get("breakdown") == "city":
            raise meta_error("(#10) Application does not have permission for this action", code=10)
        return super().insights(p)


async def test_one_refused_demographics_call_keeps_the_polls_other_samples() -> None:
    status = new_status()
    samples = await collect(make_ctx(DemographicsDenied(), "daily", status=status))
    assert series(samples, "instagram_user_views"), "the account's values arrive"
    assert len(series(samples, "instagram_user_reach")) == 2
    demo = "instagram_user_follower_demographics_by_age_gender"
    assert series(samples, demo), "the other demographics calls arrive"
    assert not series(samples, "instagram_user_follower_demographics_by_city")
    assert status.skipped == {"permission": 2}, "one per timeframe, counted"
    assert status.errors["skipped_object"] == 2
    assert status.disabled == {}, "a permission answer is no reason to disable the metric"


async def test_the_accounts_own_insights_failing_still_fails_the_poll() -> None:
    class Denied(FakeInstagramUser):
        def insights(self, p: dict[str, str]) -> dict[str, Any]:
            if "breakdown" not in p and "timeframe" not in p:
                raise meta_error("(#10) Application does not have permission", code=10)
            return super().insights(p)

    with pytest.raises(GraphError):
        await collect(make_ctx(Denied(), "daily"))


def _ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


async def test_day_values_are_asked_for_completed_pacific_days() -> None:
    graph = FakeInstagramUser()
    await collect(make_ctx(graph, "daily"))  # NOW: 10:00 on 2026-11-23 in California
    day = {
        (int(p["since"]), int(p["until"]))
        for _, p in graph.calls
        if p.get("metric_type") == "total_value" and "timeframe" not in p
    }
    yesterday = (_ts(2026, 11, 22, 8), _ts(2026, 11, 23, 8))
    before = (_ts(2026, 11, 21, 8), _ts(2026, 11, 22, 8))
    assert day == {yesterday, before}, "whole Pacific days, never the running one"
    spans = {
        (int(p["since"]), int(p["until"]))
        for _, p in graph.calls
        if p.get("metric_type") == "time_series"
    }
    assert spans == {(before[0], yesterday[1])}
    demo = [p for _, p in graph.calls if "timeframe" in p]
    assert demo
    assert not any("since" in p for p in demo), "timeframe wins over since/until"
