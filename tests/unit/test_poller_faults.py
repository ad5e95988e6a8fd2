"""What the poller makes of a plugin's misfortunes: its own object not found, SystemExit,
too many series, problems of an answer that still delivered (issue 9)."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Generator
from typing import Any

from structlog.testing import capture_logs

from collectord import MetricSpec, Option, PollContext, Sample, SourcePlugin
from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.errors import count_problem
from collectord.graph.answers import meta_error
from collectord.plugin.kit import MAX_SERIES_PER_METRIC
from collectord.scheduling.scheduler import Poller, SourceRuntime
from collectord.store.store import Store

SPEC = MetricSpec("views", "test_views", "fast")


class Tiny(SourcePlugin):
    """Runs the test's function as its poll."""

    name = "tiny"
    catalogue = (SPEC,)
    options = (Option("page_id", "id"),)

    def __init__(self, body: Callable[[PollContext], Any]) -> None:
        self.body = body

    async def collect(self, ctx: PollContext) -> Any:
        return self.body(ctx)


def runtime(store: Store, plugin: SourcePlugin, name: str = "src") -> SourceRuntime:
    cfg = SourceConfig(
        name=name,
        plugin=plugin.name,
        access_token=None,
        metrics=None,
        schedule=ScheduleConfig(fast_interval=900, daily_interval=86400, jitter=0),
        graph=GraphConfig(timeout=30.0),
        specs=plugin.catalogue,
        options={"page_id": "4242"},
    )
    status = store.register(name, plugin.name, cfg.cadences())
    return SourceRuntime(cfg, plugin, graph=None, status=status)  # type: ignore[arg-type]


def one(ctx: PollContext, value: float = 1.0) -> list[Sample]:
    return [ctx.sample(SPEC, value, object_id="4242", labels={"page_id": "4242"})]


async def test_a_plugin_calling_sys_exit_fails_its_poll_and_nothing_else() -> None:
    def leave(_: PollContext) -> Any:
        sys.exit(3)

    store = Store()
    bad = runtime(store, Tiny(leave), "bad")
    good = runtime(store, Tiny(one), "good")
    poller = Poller(store)

    with capture_logs() as logs:
        assert await poller.poll(bad, "fast") is False
        assert await poller.poll(good, "fast") is True

    status = store.status("bad")
    assert status.errors["other"] == 1
    assert status.per_cadence["fast"].last_error == "the plugin raised SystemExit(3)"
    failing = [e for e in logs if e["event"] == "source failing"]
    assert [(e["source"], e["reason"]) for e in failing] == [("bad", "other")]
    assert [s.value for s in store.samples("good")] == [1.0]


async def test_the_sources_own_object_not_found_is_not_found_naming_the_id() -> None:
    error = meta_error(
        "Unsupported get request. Object with ID '4242' does not exist, cannot be loaded "
        "due to missing permissions, or does not support this operation.",
        code=100,
        subcode=33,
    )

    def missing(_: PollContext) -> Any:
        raise error

    store = Store()
    rt = runtime(store, Tiny(missing))
    assert await Poller(store).poll(rt, "fast") is False

    status = store.status("src")
    assert status.errors["not_found"] == 1
    assert status.errors["skipped_object"] == 0
    cs = status.per_cadence["fast"]
    assert cs.last_error_reason == "not_found"
    assert cs.last_error is not None
    assert cs.last_error.startswith("the source's object (page_id=4242) does not exist")


async def test_a_metric_of_20000_keys_keeps_the_cap_and_says_so() -> None:
    def flood(ctx: PollContext) -> list[Sample]:
        return [
            ctx.sample(SPEC, 1.0, object_id="4242", labels={"key": str(i)}) for i in range(20_000)
        ] + [ctx.sample(SPEC, 2.0, object_id="other", labels={"key": "x"})]

    store = Store()
    rt = runtime(store, Tiny(flood))
    with capture_logs() as logs:
        assert await Poller(store).poll(rt, "fast") is True

    samples = store.samples("src")
    assert len(samples) == MAX_SERIES_PER_METRIC + 1  # the other object keeps its series
    assert store.status("src").errors["bad_response"] == 1
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["series over the cap dropped"]
    assert warnings[0]["dropped"] == 20_000 - MAX_SERIES_PER_METRIC


async def test_problems_of_a_poll_that_delivered_are_counted() -> None:
    def shaky(ctx: PollContext) -> list[Sample]:
        count_problem("bad_response")
        count_problem("bad_response")
        return one(ctx)

    store = Store()
    rt = runtime(store, Tiny(shaky))
    assert await Poller(store).poll(rt, "fast") is True

    status = store.status("src")
    assert status.errors["bad_response"] == 2
    assert status.per_cadence["fast"].ok is True
    assert [s.value for s in store.samples("src")] == [1.0]


async def test_an_exception_with_a_huge_message_is_cut() -> None:
    def wordy(_: PollContext) -> Any:
        raise ValueError("x" * 1_000_000)

    store = Store()
    rt = runtime(store, Tiny(wordy))
    with capture_logs():
        assert await Poller(store).poll(rt, "fast") is False
    last = store.status("src").per_cadence["fast"].last_error
    assert last is not None
    assert len(last) < 600


async def test_a_plugin_raising_generator_exit_fails_its_poll() -> None:
    def misuse(_: PollContext) -> Any:
        raise GeneratorExit

    store = Store()
    rt = runtime(store, Tiny(misuse))
    with capture_logs():
        assert await Poller(store).poll(rt, "fast") is False
    assert store.status("src").per_cadence["fast"].last_error == "the plugin raised GeneratorExit"


def test_closing_a_poll_that_never_finished_still_closes_it() -> None:
    from collectord.scheduling.poller import _contained

    @types.coroutine
    def suspend() -> Generator[str, None, None]:
        yield "suspended"

    async def forever() -> None:
        await suspend()

    coro = _contained(forever())
    assert coro.send(None) == "suspended"  # suspended inside the plugin
    coro.close()  # no RuntimeError("coroutine ignored GeneratorExit")
