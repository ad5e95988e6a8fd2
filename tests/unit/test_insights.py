"""The shared insights fetcher: culprit isolation, object errors, parsing of Meta's shapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from graph_mocks import SourceState, StateContext, new_state

from collectord import (
    AuthError,
    GraphError,
    InsightRequest,
    MetricSpec,
    ObjectNotFoundError,
    PollContext,
    PollResult,
    ReduceDataError,
    Requests,
    Sample,
    ServerError,
    SourcePlugin,
    Tag,
    breakdown_key,
    fetch_insights,
    parse_entries,
    samples_from_values,
    scoped_key,
)
from collectord.graph.answers import meta_error
from collectord.graph.client import get_many
from collectord.testing import PluginHost


class MetaLikeGraph:
    """Answers insights calls like Meta: one invalid metric fails the whole call."""

    version = "v26.0"

    def __init__(self, invalid: set[str], gone: set[str] = frozenset(), auth_broken=False):
        self.invalid = invalid
        self.gone = gone
        self.auth_broken = auth_broken
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _answer(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((path, dict(params)))
        if self.auth_broken:
            raise meta_error("Error validating access token", code=190, subcode=463)
        obj = path.split("/")[0]
        if obj in self.gone:
            raise meta_error("Unsupported get request.", code=100, subcode=33)
        metrics = params["metric"].split(",")
        if any(m in self.invalid for m in metrics):
            raise meta_error("(#100) The value must be a valid insights metric", code=100)
        return {
            "data": [
                {
                    "name": m,
                    "period": "day",
                    "values": [{"value": 7, "end_time": "2026-11-22T08:00:00+0000"}],
                }
                for m in metrics
            ]
        }

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._answer(path, params or {})

    async def get_all(self, path, params=None, *, max_items=None, max_pages=100):
        raise NotImplementedError

    async def get_many(self, calls):  # type: ignore[no-untyped-def]
        return await get_many(self, calls)  # the Graph client's batching policy

    async def batch(
        self, requests: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[dict[str, Any] | GraphError]:
        out: list[dict[str, Any] | GraphError] = []
        for path, params in requests:
            try:
                out.append(self._answer(path, params or {}))
            except GraphError as err:
                out.append(err)
        return out


def make_ctx(graph: MetaLikeGraph, status: SourceState | None = None) -> PollContext:
    """A poll's context; pass the same ``status`` to poll the same source again."""
    if status is None:
        status = new_state("acme", "test", ("daily",))
    return StateContext(
        source="acme",
        plugin="test",
        cadence="daily",
        options={},
        graph=graph,
        catalogue=(),
        state=status,
        now=datetime.now(UTC),
    )


async def test_invalid_metric_is_isolated_and_disabled_while_others_flow() -> None:
    metrics = tuple(f"m{i}" for i in range(10))
    graph = MetaLikeGraph(invalid={"m6"})
    ctx = make_ctx(graph)
    result = await fetch_insights(ctx, [InsightRequest("123", metrics)])
    names = {e["name"] for e in result["123"]}
    assert names == set(metrics) - {"m6"}
    assert ctx.state.disabled == {"m6": "invalid_metric"}
    # the next poll asks only for the good metrics, in one call
    graph.calls.clear()
    await fetch_insights(ctx, [InsightRequest("123", metrics)])
    assert len(graph.calls) == 1
    assert "m6" not in graph.calls[0][1]["metric"].split(",")


async def test_two_culprits_in_a_batch_of_objects() -> None:
    graph = MetaLikeGraph(invalid={"a", "d"})
    ctx = make_ctx(graph)
    reqs = [InsightRequest(obj, ("a", "b", "c", "d")) for obj in ("1", "2", "3")]
    result = await fetch_insights(ctx, reqs)
    for obj in ("1", "2", "3"):
        assert sorted(e["name"] for e in result[obj]) == ["b", "c"]
    assert set(ctx.state.disabled) == {"a", "d"}


async def test_object_error_is_returned_not_raised_and_auth_error_raises() -> None:
    ctx = make_ctx(MetaLikeGraph(invalid=set(), gone={"2"}))
    result = await fetch_insights(ctx, [InsightRequest("1", ("a",)), InsightRequest("2", ("a",))])
    assert isinstance(result["2"], ObjectNotFoundError)
    assert result["1"][0]["name"] == "a"
    assert ctx.state.disabled == {}

    with pytest.raises(AuthError):
        await fetch_insights(
            make_ctx(MetaLikeGraph(set(), auth_broken=True)), [InsightRequest("1", ("a",))]
        )


def test_parse_all_shapes() -> None:
    entries = [
        {
            "name": "page_media_view",
            "period": "day",
            "values": [
                {"value": 25, "end_time": "2026-11-22T08:00:00+0000", "is_from_ads": "0"},
                {"value": 4, "end_time": "2026-11-22T08:00:00+0000", "is_from_ads": "1"},
            ],
        },
        {
            "name": "post_reactions_by_type_total",
            "period": "lifetime",
            "values": [{"value": {"like": 41, "love": 3}}],
        },
        {
            "name": "reach",
            "period": "day",
            "total_value": {
                "value": 224,
                "breakdowns": [
                    {
                        "dimension_keys": ["media_product_type"],
                        "results": [
                            {"dimension_values": ["POST"], "value": 124},
                            {"dimension_values": ["REEL"], "value": 100},
                        ],
                    }
                ],
            },
        },
        {
            "name": "navigation",
            "period": "lifetime",
            "values": [{"value": 25}],
            "total_value": {
                "value": 25,
                "breakdowns": [
                    {
                        "dimension_keys": ["story_navigation_action_type"],
                        "results": [{"dimension_values": ["tap_forward"], "value": 19}],
                    }
                ],
            },
        },
        {"name": "broken", "values": [{"value": "n/a"}]},
    ]
    values = list(parse_entries(entries))
    flat = [(v.name, v.dims, v.key, v.value) for v in values]
    assert ("page_media_view", (("is_from_ads", "0"),), None, 25.0) in flat
    assert ("post_reactions_by_type_total", (), "love", 3.0) in flat
    assert ("reach", (), None, 224.0) in flat
    assert ("reach", (("media_product_type", "REEL"),), None, 100.0) in flat
    # navigation's total appears once (from values), its breakdown row once
    assert [f for f in flat if f[0] == "navigation"] == [
        ("navigation", (), None, 25.0),
        ("navigation", (("story_navigation_action_type", "tap_forward"),), None, 19.0),
    ]
    assert not [f for f in flat if f[0] == "broken"], "a non-numeric value is not a zero"
    assert values[0].end_time == datetime(2026, 11, 22, 8, tzinfo=UTC)


def test_samples_named_and_labelled_per_design() -> None:
    ctx = make_ctx(MetaLikeGraph(set()))
    spec = MetricSpec("follower_demographics", "instagram_user_follower_demographics", "daily")
    entries = [
        {
            "name": "follower_demographics",
            "period": "lifetime",
            "total_value": {
                "breakdowns": [
                    {
                        "dimension_keys": ["timeframe", "age", "gender"],
                        "results": [{"dimension_values": ["this_month", "25-34", "F"], "value": 7}],
                    }
                ]
            },
        }
    ]
    (sample,) = samples_from_values(
        ctx, spec, parse_entries(entries), object_id="1784", labels={"ig_user_id": "1784"}
    )
    assert sample.metric == "instagram_user_follower_demographics_by_age_gender"
    assert sample.label_dict == {
        "ig_user_id": "1784",
        "period": "lifetime",
        "timeframe": "this_month",
        "age": "25-34",
        "gender": "F",
    }

    ms = MetricSpec(
        "post_video_avg_time_watched",
        "facebook_post_video_avg_time_watched_seconds",
        "fast",
        scale=0.001,
    )
    (s,) = samples_from_values(
        ctx,
        ms,
        parse_entries(
            [
                {
                    "name": "post_video_avg_time_watched",
                    "period": "lifetime",
                    "values": [{"value": 1500}],
                }
            ]
        ),
        object_id="1_2",
        labels={},
        with_period=False,
    )
    assert s.value == 1.5
    assert "period" not in s.label_dict


async def test_rejected_breakdown_does_not_cost_the_plain_metric() -> None:
    class NoBreakdowns(MetaLikeGraph):
        def _answer(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
            if "breakdown" in params:
                self.calls.append((path, dict(params)))
                raise meta_error("(#100) breakdown is not supported", code=100)
            return super()._answer(path, params)

    graph = NoBreakdowns(invalid=set())
    ctx = make_ctx(graph)
    key = breakdown_key("page_media_view", "is_from_ads")
    reqs = [
        InsightRequest("1", ("page_media_view",)),
        InsightRequest(
            "1", ("page_media_view",), {"breakdown": "is_from_ads"}, key="bd", disable_as=key
        ),
    ]
    result = await fetch_insights(ctx, reqs)
    assert [e["name"] for e in result["1"]] == ["page_media_view"]
    assert ctx.state.disabled == {key: "unsupported"}
    graph.calls.clear()
    await fetch_insights(ctx, reqs)
    assert len(graph.calls) == 1, "the disabled breakdown is not asked for again"


class KindAwareGraph(MetaLikeGraph):
    """Meta as it treats kinds of objects: ``rejects[object]`` are metrics refused for that
    object ("not supported for this media type"); a breakdown named in ``unknown`` answers
    code 1 "An unknown error has occurred"; ``down`` makes every call answer that way."""

    def __init__(
        self,
        rejects: Mapping[str, set[str]] | None = None,
        unknown: set[str] | None = None,
    ) -> None:
        super().__init__(invalid=set())
        self.rejects = dict(rejects or {})
        self.unknown = set(unknown or ())
        self.down = False

    def _answer(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
        obj = path.split("/")[0]
        metrics = params["metric"].split(",")
        if self.down or params.get("breakdown") in self.unknown:
            self.calls.append((path, dict(params)))
            raise meta_error("An unknown error has occurred.", code=1)
        refused = [m for m in metrics if m in self.rejects.get(obj, set())]
        if refused:
            self.calls.append((path, dict(params)))
            raise meta_error(
                f"(#100) The metric {refused[0]} is not supported for this media type", code=100
            )
        return super()._answer(path, params)

    def asked(self, obj: str, *, breakdown: str | None = None) -> list[set[str]]:
        """The metric lists asked of ``obj`` (plain calls, or those of one breakdown)."""
        return [
            set(p["metric"].split(","))
            for path, p in self.calls
            if path.split("/")[0] == obj and p.get("breakdown") == breakdown
        ]


def test_scoped_key_names_the_kind_of_object() -> None:
    assert scoped_key("", "shares") == "shares"
    assert scoped_key("FEED/IMAGE", "shares") == "FEED/IMAGE/shares"
    key = breakdown_key("navigation", "story_navigation_action_type")
    assert scoped_key("STORY", key) == "STORY/navigation:story_navigation_action_type"


def scoped_requests() -> list[InsightRequest]:
    metrics = ("reach", "shares", "saved")
    return [
        InsightRequest("img1", metrics, scope="FEED/IMAGE"),
        InsightRequest("img2", metrics, scope="FEED/IMAGE"),
        InsightRequest("reel1", metrics, scope="REELS/VIDEO"),
        InsightRequest("story1", ("reach", "shares"), scope="STORY"),
        InsightRequest("page", ("reach", "shares")),
    ]


async def test_rejection_in_a_scoped_request_disables_the_metric_for_that_scope_only() -> None:
    graph = KindAwareGraph(rejects={"img1": {"shares"}})
    status = new_state("acme", "test", ("daily",))
    result = await fetch_insights(make_ctx(graph, status), scoped_requests())
    assert status.disabled == {"FEED/IMAGE/shares": "unsupported"}
    assert sorted(e["name"] for e in result["img1"]) == ["reach", "saved"]
    assert sorted(e["name"] for e in result["img2"]) == ["reach", "saved", "shares"]
    assert sorted(e["name"] for e in result["story1"]) == ["reach", "shares"]

    graph.calls.clear()
    result = await fetch_insights(make_ctx(graph, status), scoped_requests())
    assert graph.asked("img1") == [{"reach", "saved"}], "one call, without the culprit"
    assert graph.asked("img2") == [{"reach", "saved"}], "the same kind stops asking"
    assert graph.asked("reel1") == [{"reach", "shares", "saved"}]
    assert graph.asked("story1") == [{"reach", "shares"}]
    assert graph.asked("page") == [{"reach", "shares"}], "an unscoped request keeps it too"
    assert status.disabled == {"FEED/IMAGE/shares": "unsupported"}


async def test_unscoped_rejection_is_disabled_under_the_bare_name() -> None:
    graph = KindAwareGraph(rejects={"page": {"shares"}})
    ctx = make_ctx(graph)
    await fetch_insights(ctx, [InsightRequest("page", ("reach", "shares"))])
    assert ctx.state.disabled == {"shares": "unsupported"}


def breakdown_requests(scope: str = "") -> list[InsightRequest]:
    """A plain request and one single-metric breakdown request of object ``1``."""
    key = scoped_key(scope, breakdown_key("reach", "follow_type"))
    return [
        InsightRequest("1", ("reach", "views"), scope=scope),
        InsightRequest(
            "1", ("reach",), {"breakdown": "follow_type"}, key="bd", disable_as=key, scope=scope
        ),
    ]


async def test_unknown_error_on_a_breakdown_is_left_out_then_disabled_on_the_second_poll() -> None:
    graph = KindAwareGraph(unknown={"follow_type"})
    status = new_state("acme", "test", ("daily",))

    first = await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert first["bd"] == [], "the breakdown is missing from this poll"
    assert sorted(e["name"] for e in first["1"]) == ["reach", "views"], "the rest came"
    assert status.disabled == {}, "one failure may be Meta's passing fault"

    second = await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert second["bd"] == []
    assert status.disabled == {"reach:follow_type": "unsupported_breakdown"}
    assert "reach" not in status.disabled, "the plain metric is not disabled"

    graph.calls.clear()
    third = await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert graph.asked("1", breakdown="follow_type") == [], "no longer asked for"
    assert sorted(e["name"] for e in third["1"]) == ["reach", "views"]


async def test_unknown_error_of_a_scoped_breakdown_is_disabled_in_its_scope() -> None:
    graph = KindAwareGraph(unknown={"follow_type"})
    status = new_state("acme", "test", ("daily",))
    for _ in range(2):
        await fetch_insights(make_ctx(graph, status), breakdown_requests("STORY"))
    assert status.disabled == {"STORY/reach:follow_type": "unsupported_breakdown"}


async def test_unknown_error_that_passes_disables_nothing() -> None:
    graph = KindAwareGraph(unknown={"follow_type"})
    status = new_state("acme", "test", ("daily",))
    await fetch_insights(make_ctx(graph, status), breakdown_requests())
    graph.unknown.clear()  # Meta recovered
    answered = await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert [e["name"] for e in answered["bd"]] == ["reach"]
    graph.unknown.add("follow_type")  # fails again once: the count started over
    await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert status.disabled == {}
    graph.calls.clear()
    await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert graph.asked("1", breakdown="follow_type") == [{"reach"}], "still asked for"
    # only now, failing in two polls in a row, is it disabled
    assert status.disabled == {"reach:follow_type": "unsupported_breakdown"}


async def test_unknown_error_with_nothing_answered_is_raised_and_counts_for_nothing() -> None:
    graph = KindAwareGraph(unknown={"follow_type"})
    status = new_state("acme", "test", ("daily",))
    only_breakdowns = breakdown_requests()[1:]
    for _ in range(2):
        with pytest.raises(ServerError) as caught:
            await fetch_insights(make_ctx(graph, status), only_breakdowns)
        assert caught.value.code == 1
    assert status.disabled == {}, "Meta failing is not the breakdown's fault"

    # the failed polls did not count: a partial failure now is the first one
    await fetch_insights(make_ctx(graph, status), breakdown_requests())
    assert status.disabled == {}


async def test_meta_down_for_every_request_is_raised() -> None:
    graph = KindAwareGraph()
    graph.down = True
    with pytest.raises(ServerError):
        await fetch_insights(make_ctx(graph), breakdown_requests())
    assert graph.calls, "it was asked"


async def test_too_much_data_is_asked_for_in_halves_and_nothing_is_disabled() -> None:
    class Picky(MetaLikeGraph):
        def _answer(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
            if len(params["metric"].split(",")) > 2:
                self.calls.append((path, dict(params)))
                raise meta_error(
                    "Please reduce the amount of data you're asking for, then retry your request",
                    code=1,
                    http_status=500,
                )
            return super()._answer(path, params)

    graph = Picky(invalid=set())
    ctx = make_ctx(graph)
    metrics = tuple(f"m{i}" for i in range(6))
    result = await fetch_insights(ctx, [InsightRequest("123", metrics)])
    assert sorted(e["name"] for e in result["123"]) == sorted(metrics)
    assert ctx.state.disabled == {}
    assert [len(p["metric"].split(",")) for _, p in graph.calls] == [6, 3, 3, 1, 2, 1, 2]


async def test_one_metric_that_is_still_too_much_is_raised() -> None:
    class Stingy(MetaLikeGraph):
        def _answer(self, path: str, params: Mapping[str, Any]) -> dict[str, Any]:
            raise meta_error("Please reduce the amount of data you're asking for", code=1)

    with pytest.raises(ReduceDataError):
        await fetch_insights(make_ctx(Stingy(invalid=set())), [InsightRequest("1", ("m",))])


def test_a_boolean_is_not_a_value() -> None:
    """One number parser for the fetcher and the plugins: ``true`` is skipped, not 1."""
    entries = [
        {
            "name": "reach",
            "period": "day",
            "values": [
                {"value": True, "end_time": "2026-11-22T08:00:00+0000"},
                {"value": 5, "end_time": "2026-11-23T08:00:00+0000"},
            ],
        }
    ]
    assert [v.value for v in parse_entries(entries)] == [5.0]


# -- issue 8: a rejection for some objects stays with them; every rejection is re-probed --


class Objects(SourcePlugin):
    """A source of many objects (posts, media), each asked for ``reach`` and ``shares``."""

    name = "objects"
    catalogue = tuple(
        MetricSpec.insight("objects", m, f"{m}.", cadence="daily") for m in ("reach", "shares")
    )

    def __init__(self, objects: Sequence[str]) -> None:
        self.objects = list(objects)

    async def collect(self, ctx: PollContext) -> PollResult:
        requests: Requests[Tag] = Requests()
        names = [m.graph_name for m in ctx.metrics(kind="insight")]
        for oid in self.objects:
            requests.add(Tag(oid), oid, names, scope="FEED", per_object=True)
        samples: list[Sample] = []
        for tag, answer in await requests.fetch(ctx):
            assert not isinstance(answer, GraphError)
            for entry in answer:
                spec = self.catalogue[0] if entry["name"] == "reach" else self.catalogue[1]
                samples.append(
                    ctx.sample(spec, 1, object_id=tag.object_id, labels={"o": tag.object_id})
                )
        return ctx.result(samples)


DAY0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def objects_host(graph: KindAwareGraph, objects: Sequence[str]) -> PluginHost:
    return PluginHost(Objects(objects), graph=graph, now=DAY0)  # type: ignore[arg-type]


def shares_of(host: PluginHost) -> set[str]:
    return {s.object_id for s in host.samples() if s.graph_metric == "shares"}


async def test_a_metric_rejected_for_one_object_is_disabled_for_that_object_only() -> None:
    graph = KindAwareGraph(rejects={"a": {"shares"}})
    host = objects_host(graph, ["a", "b", "c", "d"])
    await host.poll("daily")
    assert host.disabled == {"FEED/shares@a": "unsupported"}
    assert shares_of(host) == {"b", "c", "d"}

    graph.calls.clear()
    await host.poll("daily", now=DAY0 + timedelta(hours=1))
    assert graph.asked("a") == [{"reach"}], "one call, without the culprit"
    assert graph.asked("b") == [{"reach", "shares"}], "other objects keep it"
    assert shares_of(host) == {"b", "c", "d"}
    assert host.errors["invalid_metric"] == 1


async def test_a_metric_rejected_for_several_objects_is_disabled_for_the_kind() -> None:
    graph = KindAwareGraph(rejects={o: {"shares"} for o in "abc"})
    host = objects_host(graph, ["a", "b", "c", "d"])
    await host.poll("daily")
    assert host.disabled == {"FEED/shares": "unsupported"}, "three objects: the kind"
    graph.calls.clear()
    await host.poll("daily", now=DAY0 + timedelta(hours=1))
    assert graph.asked("d") == [{"reach"}], "the kind stops asking"


async def test_a_disabled_metric_is_re_probed_a_day_later_and_comes_back() -> None:
    graph = KindAwareGraph(rejects={o: {"shares"} for o in "abcd"})
    host = objects_host(graph, ["a", "b", "c", "d"])
    await host.poll("daily")
    assert host.disabled == {"FEED/shares": "unsupported"}

    graph.calls.clear()
    await host.poll("daily", now=DAY0 + timedelta(hours=23, minutes=59))
    assert all(asked == [{"reach"}] for asked in map(graph.asked, "abcd")), "not yet"

    graph.calls.clear()  # a day later Meta still rejects it: asked once, off for a day more
    await host.poll("daily", now=DAY0 + timedelta(days=1))
    assert "shares" in set().union(*graph.asked("a"))
    assert host.disabled == {"FEED/shares": "unsupported"}
    assert host.errors["invalid_metric"] == 1, "a rejection is counted once"
    assert host.disabled_at["FEED/shares"] == DAY0 + timedelta(days=1)

    graph.rejects = {}  # Meta restores it
    graph.calls.clear()
    await host.poll("daily", now=DAY0 + timedelta(days=1, hours=12))
    assert all(asked == [{"reach"}] for asked in map(graph.asked, "abcd")), "not yet"
    await host.poll("daily", now=DAY0 + timedelta(days=2))
    assert host.disabled == {}, "collectord_metric_disabled drops it"
    assert shares_of(host) == {"a", "b", "c", "d"}


async def test_an_object_scoped_rejection_is_forgotten_after_a_day() -> None:
    graph = KindAwareGraph(rejects={"a": {"shares"}})
    host = objects_host(graph, ["a", "b"])
    await host.poll("daily")
    assert host.disabled == {"FEED/shares@a": "unsupported"}
    graph.rejects = {}
    await host.poll("daily", now=DAY0 + timedelta(days=1))
    assert host.disabled == {}
    assert shares_of(host) == {"a", "b"}
