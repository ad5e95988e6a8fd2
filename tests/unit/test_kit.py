"""The plugin kit: metric specs that know Meta's units, one number parser, typed request
tags, breakdown rows, and skipping objects (failing the poll when every one is denied)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collectord import (
    InsightValue,
    MetricSpec,
    Outcome,
    PermissionDeniedError,
    PollContext,
    Requests,
    Tag,
    breakdown_rows,
    completed_days,
    disable_reason,
    field_samples,
    insight_samples,
    is_metric_error,
    number,
    skip_failed,
)
from collectord.graph.answers import meta_error
from collectord.plugin.kit import UsPacific
from collectord.testing import FakeGraph

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def make_ctx(graph: Any = None, disabled: dict[str, str] | None = None) -> PollContext:
    return PollContext(
        source="s",
        plugin="p",
        cadence="daily",
        options={},
        graph=graph or FakeGraph(),
        catalogue=(),
        now=NOW,
        disabled_before=disabled or {},
    )


# -- numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (7, 7.0),
        (0.25, 0.25),
        ("1520", 1520.0),
        ("-3.5", -3.5),
        (True, None),
        (False, None),
        ("n/a", None),
        ("", None),
        (None, None),
        ({"a": 1}, None),
        ([1], None),
    ],
)
def test_one_number_parser_and_a_boolean_is_not_a_number(raw: Any, expected: float | None) -> None:
    assert number(raw) == expected


def test_a_boolean_field_gives_no_sample() -> None:
    spec = MetricSpec.field("x", "flag", "A flag.")
    count = MetricSpec.field("x", "count", "A count.")
    node = {"flag": True, "count": "12"}
    samples = field_samples(make_ctx(), [spec, count], node, object_id="1", labels={"id": "1"})
    assert [(s.metric, s.value) for s in samples] == [("x_count", 12.0)]


# -- specs -------------------------------------------------------------------------------


def test_an_insight_in_milliseconds_is_exported_in_seconds() -> None:
    spec = MetricSpec.insight(
        "facebook_post",
        "post_video_avg_time_watched",
        "h",
        cadence="daily",
        strip="post_",
        unit="ms",
    )
    assert spec.prom_name == "facebook_post_video_avg_time_watched_seconds"
    assert (spec.unit, spec.scale) == ("seconds", 0.001)
    sample = make_ctx().sample(spec, 7500, object_id="1", labels={})
    assert sample.value == 7.5


def test_an_insight_keeps_its_unit_and_name_otherwise() -> None:
    spec = MetricSpec.insight(
        "facebook_page",
        "page_views_total",
        "h",
        cadence="fast",
        periods=("day",),
        strip="page_",
        unit="currency",
        default=False,
        group=("g",),
        breakdowns=("is_from_ads",),
    )
    assert spec.prom_name == "facebook_page_views"
    assert (spec.unit, spec.scale, spec.periods, spec.default) == ("currency", 1.0, ("day",), False)
    assert (spec.group, spec.breakdowns, spec.kind) == (("g",), ("is_from_ads",), "insight")


def test_seconds_are_not_suffixed_twice() -> None:
    spec = MetricSpec.insight("x", "watch_seconds", "h", cadence="daily", unit="ms")
    assert spec.prom_name == "x_watch_seconds"
    field = MetricSpec.field("x", "length", "h", unit="ms")
    assert (field.prom_name, field.scale, field.kind) == ("x_length_seconds", 0.001, "field")


def test_a_bad_cadence_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="cadence must be one of"):
        MetricSpec.insight("x", "m", "h", cadence="hourly")  # type: ignore[arg-type]


# -- breakdown rows and samples -------------------------------------------------------------


VALUES = [
    InsightValue("reach", "day", None, 10.0),
    InsightValue("reach", "day", None, 6.0, (("follow_type", "FOLLOWER"),)),
    InsightValue("reach", "week", None, 70.0),
    InsightValue("views", "day", None, 3.0, key="love"),
    InsightValue("other", "day", None, 1.0),
]


def test_breakdown_rows_or_plain_values_only() -> None:
    assert [v.value for v in breakdown_rows(VALUES, breakdown=True)] == [6.0]
    assert [v.value for v in breakdown_rows(VALUES, breakdown=False)] == [10.0, 70.0, 3.0, 1.0]


def test_insight_samples_group_per_metric_and_keep_the_listed_periods() -> None:
    specs = {
        "reach": MetricSpec.insight("x", "reach", "h", cadence="daily", periods=("day",)),
        "views": MetricSpec.insight("x", "views", "h", cadence="daily"),
    }
    ctx = make_ctx()
    plain = insight_samples(
        ctx,
        specs,
        VALUES,
        breakdown=False,
        object_id="1",
        labels={"id": "1"},
        dict_labels={"views": "reaction_type"},
        spec_periods=True,
    )
    assert [(s.metric, s.label_dict, s.value) for s in plain] == [
        ("x_reach", {"id": "1", "period": "day"}, 10.0),
        ("x_views", {"id": "1", "period": "day", "reaction_type": "love"}, 3.0),
    ]
    rows = insight_samples(
        ctx, specs, VALUES, breakdown=True, object_id="1", labels={"id": "1"}, with_period=False
    )
    assert [(s.metric, s.label_dict) for s in rows] == [
        ("x_reach_by_follow_type", {"id": "1", "follow_type": "FOLLOWER"})
    ]


# -- typed request tags ------------------------------------------------------------------


def insights(metrics: str, value: int = 1) -> dict[str, Any]:
    return {
        "data": [
            {"name": m, "period": "day", "values": [{"value": value}]} for m in metrics.split(",")
        ]
    }


async def test_answers_come_back_with_their_tags_in_order() -> None:
    graph = FakeGraph()
    graph.answer("1/insights", insights("reach,views"))
    graph.answer("1/insights", insights("reach", 2), params={"breakdown": "follow_type"})
    graph.answer("2/insights", insights("reach", 3))
    requests: Requests[Tag] = Requests()
    requests.add(Tag("1"), "1", ["reach", "views"])
    requests.add_breakdown(Tag("1", "follow_type"), "1", "reach", "follow_type")
    requests.add(Tag("2"), "2", ["reach"])
    requests.add(Tag("3"), "3", ["reach"])
    answers = await requests.fetch(make_ctx(graph))
    assert [tag for tag, _ in answers] == [Tag("1"), Tag("1", "follow_type"), Tag("2"), Tag("3")]
    plain, by_follow_type = answers[0][1], answers[1][1]
    assert isinstance(plain, list)
    assert isinstance(by_follow_type, list)
    assert [e["name"] for e in plain] == ["reach", "views"]
    assert by_follow_type[0]["values"] == [{"value": 2}]
    gone = answers[3][1]
    assert not isinstance(gone, list)
    assert gone.outcome is Outcome.OBJECT_GONE
    assert len(graph.http) == 1, "one batch request"


async def test_a_refused_breakdown_is_disabled_alone_within_its_scope() -> None:
    graph = FakeGraph()
    graph.answer("1/insights", insights("reach"))
    graph.fail(
        "1/insights",
        "(#100) The breakdown follow_type is not supported",
        code=100,
        params={"breakdown": "follow_type"},
    )
    requests: Requests[Tag] = Requests()
    requests.add(Tag("1"), "1", ["reach"], scope="STORY")
    requests.add_breakdown(Tag("1", "follow_type"), "1", "reach", "follow_type", scope="STORY")
    ctx = make_ctx(graph)
    answers = dict(await requests.fetch(ctx))
    assert ctx.newly_disabled == {"STORY/reach:follow_type": "unsupported"}
    assert answers[Tag("1", "follow_type")] == []
    plain = answers[Tag("1")]
    assert isinstance(plain, list)
    assert [e["name"] for e in plain] == ["reach"]

    graph.calls.clear()
    again: Requests[Tag] = Requests()
    again.add_breakdown(Tag("1", "follow_type"), "1", "reach", "follow_type", scope="STORY")
    await again.fetch(make_ctx(graph, disabled=dict(ctx.newly_disabled)))
    assert graph.calls == [], "not asked again"


async def test_split_sends_the_first_requests_apart() -> None:
    graph = FakeGraph({"1/insights": insights("reach"), "2/insights": insights("reach")})
    requests: Requests[str] = Requests()
    requests.add("one", "1", ["reach"])
    requests.add("two", "2", ["reach"])
    head, tail = requests.split(1)
    assert (len(head), len(tail)) == (1, 1)
    assert [t for t, _ in await head.fetch(make_ctx(graph))] == ["one"]
    assert [t for t, _ in await tail.fetch(make_ctx(graph))] == ["two"]
    assert [m for m, _, _ in graph.http] == ["GET", "GET"]
    assert await Requests[str]().fetch(make_ctx(graph)) == []


# -- errors ------------------------------------------------------------------------------


def test_metric_errors_and_their_disable_reasons() -> None:
    unknown = meta_error("(#100) The value must be a valid insights metric", code=100)
    unsupported = meta_error("(#100) Tried accessing nonexisting field (x)", code=100)
    gone = meta_error("Unsupported get request.", code=100, subcode=33)
    assert is_metric_error(unknown)
    assert is_metric_error(unsupported)
    assert not is_metric_error(gone)
    assert (disable_reason(unknown), disable_reason(unsupported)) == (
        "invalid_metric",
        "unsupported",
    )


DENIED = meta_error("(#10) Application does not have permission for this action", code=10)
GONE = meta_error("Unsupported get request.", code=100, subcode=33)
QUIET = meta_error("(#10) Not enough viewers for the media to show insights", code=10)
EARLY = meta_error("Invalid parameter", code=100, subcode=2108006)
OTHER = meta_error("(#2500) Cannot query users by their username", code=2500)


def test_failed_objects_are_skipped_with_their_reasons() -> None:
    ctx = make_ctx()
    failed = {"a": GONE, "b": QUIET, "c": EARLY, "d": DENIED, "e": OTHER}
    reasons = skip_failed(ctx, failed, ["a", "b", "c", "d", "e", "f"])
    assert reasons == {
        "a": "vanished",
        "b": "not_enough_viewers",
        "c": "pre_conversion",
        "d": "permission",
        "e": "invalid_metric",
    }
    assert [(s.object_id, s.reason) for s in ctx.skipped] == list(reasons.items())
    ctx = make_ctx()
    assert skip_failed(ctx, {"e": OTHER}, 2, default="unsupported") == {"e": "unsupported"}


def test_every_object_denied_fails_the_poll() -> None:
    ctx = make_ctx()
    with pytest.raises(PermissionDeniedError):
        skip_failed(ctx, {"a": DENIED, "b": DENIED}, ["a", "b", "a"])
    assert ctx.skipped == ()
    # one object readable, or one failing otherwise: the token is fine, the objects are not
    assert skip_failed(make_ctx(), {"a": DENIED}, ["a", "b"]) == {"a": "permission"}
    assert skip_failed(make_ctx(), {"a": DENIED, "b": GONE}, 2) == {
        "a": "permission",
        "b": "vanished",
    }
    assert skip_failed(make_ctx(), {}, 0) == {}


def test_completed_days_are_pacific_days_newest_first() -> None:
    # 22:00 on 2026-06-30 in California (PDT): the running day is not one of them
    days = completed_days(datetime(2026, 7, 1, 5, tzinfo=UTC), 2)
    assert [(d.since, d.until) for d in days] == [
        (datetime(2026, 6, 29, 7, tzinfo=UTC), datetime(2026, 6, 30, 7, tzinfo=UTC)),
        (datetime(2026, 6, 28, 7, tzinfo=UTC), datetime(2026, 6, 29, 7, tzinfo=UTC)),
    ]
    assert days[0].params() == {
        "since": str(int(datetime(2026, 6, 29, 7, tzinfo=UTC).timestamp())),
        "until": str(int(datetime(2026, 6, 30, 7, tzinfo=UTC).timestamp())),
    }
    # the day the clocks go back (2026-11-01) has 25 hours
    (fall,) = completed_days(datetime(2026, 11, 2, 12, tzinfo=UTC), 1)
    assert fall.until - fall.since == timedelta(hours=25)


def test_the_stand_in_pacific_zone_agrees_with_the_database() -> None:
    db, rules = ZoneInfo("America/Los_Angeles"), UsPacific()
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for hour in range(0, 2 * 366 * 24, 1):
        t = start + timedelta(hours=hour)
        assert t.astimezone(rules).replace(tzinfo=None) == t.astimezone(db).replace(tzinfo=None)
    for day in range(0, 2 * 366):
        d = (start + timedelta(days=day)).date()
        local = datetime(d.year, d.month, d.day, tzinfo=rules)
        assert local.astimezone(UTC) == datetime(d.year, d.month, d.day, tzinfo=db).astimezone(UTC)
