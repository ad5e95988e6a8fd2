"""collectord.testing: the plugin authors' manual example runs as written, the fake Graph
fails as Meta does, and the host keeps a source's state across polls as collectord does."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import collectord
import collectord.testing
from collectord import (
    AuthError,
    ConfigError,
    ObjectNotFoundError,
    Outcome,
    PermissionDeniedError,
    PollContext,
    PollResult,
    SourcePlugin,
    ThrottledError,
)
from collectord.graph.answers import classify_error
from collectord.plugin import hookspecs
from collectord.plugin.manager import load_source_plugins
from collectord.testing import FakeGraph, PluginHost

NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)


def literal_block(doc: str, after: str) -> str:
    """The indented literal block that follows the line ending with ``after``."""
    lines = doc.splitlines()
    start = next(i for i, line in enumerate(lines) if line.rstrip().endswith(after)) + 1
    block: list[str] = []
    for line in lines[start:]:
        if line.strip() and not line.startswith("    "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def manual_plugin_module() -> dict[str, Any]:
    """The minimal plugin of the plugin authors' manual, executed as a module."""
    namespace: dict[str, Any] = {"__name__": "weather_plugin"}
    source = literal_block(hookspecs.__doc__ or "", "Minimal plugin::")
    exec(compile(source, "<hookspecs example>", "exec"), namespace)  # noqa: S102
    return namespace


async def test_the_manuals_minimal_plugin_runs_as_written(tmp_path: Path) -> None:
    # loaded the way a user's plugin is: a file in a folder of [collector] plugin_dirs
    source = literal_block(hookspecs.__doc__ or "", "Minimal plugin::")
    (tmp_path / "weather.py").write_text(source, encoding="utf-8")
    weather = load_source_plugins([tmp_path])["weather"].plugin
    assert isinstance(weather, SourcePlugin)

    graph = FakeGraph({"me": {"temp": 21.5}})
    host = PluginHost(weather, graph=graph, now=NOW)
    result = await host.poll("fast")
    assert isinstance(result, PollResult)
    assert [(s.metric, s.value, s.label_dict) for s in result.samples] == [
        ("weather_temp", 21.5, {})
    ]
    assert graph.calls == [("me", {"fields": "temp"})]


async def test_the_testing_modules_example_runs_as_written() -> None:
    namespace = manual_plugin_module()
    source = literal_block(collectord.testing.__doc__ or "", "Example::")
    exec(compile(source, "<testing example>", "exec"), namespace)  # noqa: S102
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 1
    await tests[0]()


# -- the fake Graph --------------------------------------------------------------------


async def test_an_unanswered_path_is_what_meta_answers_for_a_missing_object() -> None:
    graph = FakeGraph()
    with pytest.raises(ObjectNotFoundError) as caught:
        await graph.get("123/insights", {"metric": "reach"})
    assert caught.value.outcome is Outcome.OBJECT_GONE
    assert graph.calls == [("123/insights", {"metric": "reach"})]


@pytest.mark.parametrize(
    ("code", "subcode", "message", "kind", "outcome"),
    [
        (190, 463, "Error validating access token", AuthError, Outcome.AUTH),
        (10, None, "(#10) Not enough viewers for the media", PermissionDeniedError, None),
        (100, 2108006, "Invalid parameter", collectord.InvalidRequestError, None),
        (80002, None, "There have been too many calls", ThrottledError, Outcome.THROTTLED),
    ],
)
async def test_a_failure_is_the_error_the_client_raises_for_that_envelope(
    code: int, subcode: int | None, message: str, kind: type, outcome: Outcome | None
) -> None:
    graph = FakeGraph()
    graph.fail("1/insights", message, code=code, subcode=subcode)
    with pytest.raises(kind) as caught:
        await graph.get("1/insights")
    envelope: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        envelope["error_subcode"] = subcode
    real = classify_error({"error": envelope}, 400)
    assert type(caught.value) is type(real)
    assert caught.value.outcome is real.outcome
    if outcome is not None:
        assert caught.value.outcome is outcome


async def test_answers_match_on_path_and_params_the_latest_first() -> None:
    graph = FakeGraph({"1": {"a": 1}})
    graph.answer("1", {"a": 2}, params={"fields": "a", "limit": 5})
    assert await graph.get("1", {"fields": "b"}) == {"a": 1}
    assert await graph.get("/1", {"fields": "a", "limit": 5}) == {"a": 2}
    graph.answer("1", {"a": 3})
    assert await graph.get("1", {"fields": "a", "limit": 5}) == {"a": 3}
    # parameters are recorded as the client sends them: strings
    assert graph.calls[1] == ("1", {"fields": "a", "limit": "5"})


async def test_an_answer_is_a_copy() -> None:
    graph = FakeGraph({"1": {"data": [1]}})
    (await graph.get("1"))["data"].append(2)
    assert await graph.get("1") == {"data": [1]}


async def test_get_all_follows_cursors_and_stops_at_max_items() -> None:
    graph = FakeGraph()
    graph.answer(
        "1/media", {"data": [{"id": "a"}], "paging": {"next": "n", "cursors": {"after": "x"}}}
    )
    graph.answer(
        "1/media",
        {"data": [], "paging": {"next": "n", "cursors": {"after": "y"}}},
        params={"after": "x"},
    )
    graph.answer(
        "1/media", {"data": [{"id": "b"}, {"id": "c"}], "paging": {}}, params={"after": "y"}
    )
    assert [i["id"] for i in await graph.get_all("1/media", {"limit": 1})] == ["a", "b", "c"]
    assert [m for m, _, _ in graph.http] == ["GET"] * 3, "the empty page was followed too"
    assert [i["id"] for i in await graph.get_all("1/media", max_items=2)] == ["a", "b"]


async def test_batch_answers_in_order_with_errors_in_place_50_per_request() -> None:
    graph = FakeGraph({"ok": {"data": []}})
    answers = await graph.batch([("ok", None), ("gone", {"metric": "x"}), *[("ok", None)] * 60])
    assert answers[0] == {"data": []}
    assert isinstance(answers[1], ObjectNotFoundError)
    assert len(answers) == 62
    assert [(m, len(p["batch"])) for m, _, p in graph.http] == [("POST", 50), ("POST", 12)]
    assert len(graph.calls) == 62, "Meta meters each element as one call"


# -- the host --------------------------------------------------------------------------


class Counting(SourcePlugin):
    """A plugin that exercises everything the host keeps: memory, skips, disabling,
    extra polls and partial results."""

    name = "counting"
    options = (
        collectord.Option("object_id", "id"),
        collectord.Option("window", "duration", default="2h"),
    )
    catalogue = (
        collectord.MetricSpec.field("counting", "a", "A."),
        collectord.MetricSpec.field("counting", "b", "B."),
        collectord.MetricSpec.field("counting", "c", "C.", default=False),
    )

    async def collect(self, ctx: PollContext) -> PollResult:
        polls = int(ctx.memory.get("polls", 0)) + 1
        ctx.memory["polls"] = polls
        node = await ctx.graph.get(str(ctx.options["object_id"]), {"fields": "a,b"})
        specs = {m.graph_name: m for m in ctx.metrics()}
        samples = [
            ctx.sample(spec, node[name] * polls, object_id="1", labels={"n": "x"})
            for name, spec in specs.items()
            if name in node
        ]
        if "b" in specs and "b" not in node:
            ctx.disable_metric("b", "invalid_metric")
        ctx.skip("gone", "vanished")
        if ctx.requested:
            return ctx.result([s for s in samples if s.graph_metric == "a"], partial=True)
        ctx.poll_again_at(ctx.now + timedelta(seconds=float(ctx.options["window"])))
        return ctx.result(samples)


async def test_options_are_read_like_a_source_table() -> None:
    host = PluginHost(Counting(), {"object_id": "42"}, graph=FakeGraph())
    assert host.options == {"object_id": "42", "window": 7200.0}
    assert [s.graph_name for s in host.specs] == ["a", "b"], "the default set"
    host = PluginHost(Counting(), {"object_id": "42"}, graph=FakeGraph(), metrics=["c"])
    assert [s.graph_name for s in host.specs] == ["c"]


@pytest.mark.parametrize(
    ("options", "metrics", "problem"),
    [
        ({}, None, "object_id: missing required key"),
        ({"object_id": "4x"}, None, "object_id"),
        (
            {"object_id": "42", "windoww": "1h"},
            None,
            "windoww: unknown key (did you mean 'window'?)",
        ),
        ({"object_id": "42", "window": 60}, None, "window: expected"),
        ({"object_id": "42"}, ["d"], "unknown metric 'd'"),
    ],
)
def test_a_bad_source_table_is_a_config_error(
    options: Mapping[str, Any], metrics: list[str] | None, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        PluginHost(Counting(), options, graph=FakeGraph(), metrics=metrics)
    assert any(problem in line for line in caught.value.problems), caught.value.problems


async def test_the_host_keeps_state_across_polls() -> None:
    graph = FakeGraph({"42": {"a": 1}})  # no "b": Meta left it out
    host = PluginHost(Counting(), {"object_id": "42"}, graph=graph, now=NOW)
    first = await host.poll("fast")
    assert host.memory == {"polls": 1}
    assert host.disabled == {"b": "invalid_metric"}
    assert host.skipped == {"vanished": 1}
    assert host.errors == {"skipped_object": 1, "invalid_metric": 1}
    assert host.poll_requests == [("fast", NOW + timedelta(hours=2))]
    assert first.samples == host.samples()

    ctx = host.context("fast")
    assert ctx.disabled_before == {"b": "invalid_metric"}, "a disabled metric stays disabled"
    assert [m.graph_name for m in ctx.metrics()] == ["a"]
    ctx.memory["polls"] = 99
    assert host.memory == {"polls": 1}, "a poll's memory is a private copy"

    await host.poll("fast", now=NOW + timedelta(minutes=1))
    assert host.memory == {"polls": 2}
    assert host.value("counting_a", n="x") == 2.0
    assert host.errors["invalid_metric"] == 1, "counted once"
    assert len(host.poll_requests) == 2


async def test_a_partial_result_keeps_the_other_series() -> None:
    graph = FakeGraph({"42": {"a": 1, "b": 10}})
    host = PluginHost(Counting(), {"object_id": "42"}, graph=graph, now=NOW)
    await host.poll("fast")
    assert host.value("counting_b") == 10.0
    await host.poll("fast", requested=True)
    assert host.value("counting_a") == 2.0, "refreshed"
    assert host.value("counting_b") == 10.0, "kept from the last full poll"
    await host.poll("fast")
    assert (host.value("counting_a"), host.value("counting_b")) == (3.0, 30.0)


async def test_a_failed_poll_is_counted_raised_and_keeps_the_last_samples() -> None:
    graph = FakeGraph({"42": {"a": 1, "b": 2}})
    host = PluginHost(Counting(), {"object_id": "42"}, graph=graph, now=NOW)
    await host.poll("fast")
    graph.fail("42", "Error validating access token", code=190)
    with pytest.raises(AuthError):
        await host.poll("fast")
    assert host.errors["auth"] == 1
    assert host.value("counting_a") == 1.0
    assert host.memory == {"polls": 1}, "a failed poll changes no memory"
    with pytest.raises(LookupError, match="0 series of counting_z"):
        host.value("counting_z")
