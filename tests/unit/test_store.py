"""The store: one identity per series, partial results, frozen snapshots taken on change."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.graph.tokens import TokenWatcher
from collectord.model import Sample, TokenView, make_labels, sample_series, series_key
from collectord.plugin.api import Disable, PollResult
from collectord.scheduling.scheduler import SourceRuntime
from collectord.secret import Secret
from collectord.store.store import Store

DAY1 = datetime(2026, 11, 22, 8, tzinfo=UTC)
DAY2 = datetime(2026, 11, 23, 8, tzinfo=UTC)


def sample(
    post: str, value: float, *, end_time: datetime | None = DAY2, reverse: bool = False
) -> Sample:
    pairs = [("page_id", "1"), ("post_id", post), ("period", "lifetime")]
    return Sample(
        metric="facebook_post_clicks",
        graph_metric="post_clicks",
        value=value,
        labels=make_labels(reversed(pairs) if reverse else pairs),
        object_id=post,
        cadence="fast",
        period="lifetime",
        end_time=end_time,
    )


@pytest.fixture
def store() -> Store:
    s = Store()
    s.register("acme", "facebook_post", ("fast", "daily"))
    return s


def values(store: Store) -> dict[str, float]:
    return {s.label_dict["post_id"]: s.value for s in store.snapshot().samples["acme"]}


def test_series_key_ignores_label_order():
    assert sample_series(sample("p1", 1.0)) == sample_series(sample("p1", 2.0, reverse=True))
    assert sample_series(sample("p1", 1.0)) != sample_series(sample("p2", 1.0))
    assert series_key("m", [("b", "1"), ("a", "2")]) == ("m", (("a", "2"), ("b", "1")))
    assert series_key("m", [("a", "1")]) != series_key("n", [("a", "1")])


def test_labels_in_another_order_are_one_series_newest_end_time_wins(store):
    newer = sample("p1", 9.0, end_time=DAY2)
    older = sample("p1", 5.0, end_time=DAY1, reverse=True)
    store.record_success("acme", "fast", [newer, older], duration=0.1)
    assert values(store) == {"p1": 9.0}
    store.record_success("acme", "fast", [older, sample("p1", 7.0, reverse=True)], duration=0.1)
    assert values(store) == {"p1": 7.0}, "same end_time: the later sample wins"


def test_partial_result_refreshes_only_its_series(store):
    store.record_success(
        "acme", "fast", [sample("p1", 1.0), sample("p2", 2.0), sample("p3", 3.0)], duration=0.1
    )
    store.record_success(
        "acme",
        "fast",
        PollResult(samples=(sample("p2", 20.0, reverse=True),), partial=True),
        duration=0.1,
    )
    assert values(store) == {"p1": 1.0, "p2": 20.0, "p3": 3.0}
    store.record_success("acme", "fast", PollResult(samples=(sample("p2", 21.0),)), duration=0.1)
    assert values(store) == {"p2": 21.0}, "a full result replaces the cadence's series"


def test_partial_result_keeps_a_newer_value_than_it_brings(store):
    store.record_success("acme", "fast", [sample("p1", 1.0, end_time=DAY2)], duration=0.1)
    late = PollResult(samples=(sample("p1", 0.5, end_time=DAY1),), partial=True)
    store.record_success("acme", "fast", late, duration=0.1)
    assert values(store) == {"p1": 1.0}


def test_snapshot_is_reused_until_something_changes(store):
    first = store.snapshot()
    assert store.snapshot() is first
    store.record_success("acme", "fast", [sample("p1", 1.0)], duration=0.1)
    second = store.snapshot()
    assert second is not first
    assert second.version > first.version
    assert store.snapshot() is second
    store.record_failure("acme", "daily", reason="server", message="boom", duration=0.1)
    assert store.snapshot() is not second


def test_snapshot_is_frozen_and_does_not_follow_the_store(store):
    store.record_success("acme", "fast", [sample("p1", 1.0)], duration=0.1, at=100.0)
    snap = store.snapshot()
    (view,) = snap.sources
    with pytest.raises(dataclasses.FrozenInstanceError):
        view.token = None  # type: ignore[misc]
    with pytest.raises(TypeError):
        view.disabled["x"] = "y"  # type: ignore[index]
    with pytest.raises(TypeError):
        snap.samples["other"] = ()  # type: ignore[index]
    store.record_failure("acme", "fast", reason="auth", message="expired", duration=0.1)
    store.set_token("acme", TokenView(valid=True, expires_at=1_800_000_000.0))
    assert view.per_cadence["fast"].ok is True
    assert view.per_cadence["fast"].last_success == 100.0
    assert view.errors == {}
    assert view.token is None
    assert view.state(200.0) == "ok"
    (now,) = store.snapshot().sources
    assert now.state(200.0) == "failing"
    assert now.errors == {"auth": 1}
    assert now.token is not None
    assert now.token.expires_at == 1_800_000_000.0


def test_next_run_and_token_expiry_are_written_by_the_store(store):
    when = datetime(2030, 1, 2, tzinfo=UTC)
    before = store.snapshot()
    store.set_next_run("acme", "daily", when)
    after = store.snapshot()
    assert after is not before
    assert after.sources[0].per_cadence["daily"].next_run == when
    store.set_next_run("acme", "daily", when)
    assert store.snapshot() is after, "setting the same time again is no change"
    store.set_token("acme", TokenView(valid=True, expires_at=0.0))
    token = store.snapshot().sources[0].token
    assert token is not None
    assert token.expires_at == 0.0
    store.set_token("gone", TokenView(valid=False))  # a source removed meanwhile: ignored


async def test_token_watcher_reports_the_expiry_through_the_store(store):
    graph = GraphConfig(app_id="1", app_secret=Secret("app-secret"))
    cfg = SourceConfig(
        name="acme",
        plugin="facebook_post",
        access_token=Secret("EAAB-token"),
        metrics=None,
        schedule=ScheduleConfig(),
        graph=graph,
        specs=(),
    )
    rt = SourceRuntime(cfg, None, graph=None, status=store.status("acme"))  # type: ignore[arg-type]

    class Client:
        async def debug_token(self, token, *, graph, source):  # type: ignore[no-untyped-def]
            return {"is_valid": True, "expires_at": 1_800_000_000}

    before = store.snapshot()
    await TokenWatcher(Client(), [rt], store).check_all()
    after = store.snapshot()
    assert before.sources[0].token is None
    assert after.sources[0].token == TokenView(valid=True, expires_at=1_800_000_000.0)


def test_a_disabled_metric_keeps_its_date_and_a_re_enabled_one_is_dropped(store: Store) -> None:
    store.register("s", "p", ("daily",))
    store.record_success(
        "s", "daily", PollResult(disabled=(Disable("shares", "unsupported", DAY1),)), duration=0
    )
    status = store.status("s")
    assert status.disabled == {"shares": "unsupported"}
    assert status.disabled_at == {"shares": DAY1}
    # the re-probe a day later: Meta still rejects it, a new date, not counted again
    store.record_success(
        "s", "daily", PollResult(disabled=(Disable("shares", "unsupported", DAY2),)), duration=0
    )
    assert status.disabled_at == {"shares": DAY2}
    assert status.errors["invalid_metric"] == 1
    store.record_success("s", "daily", PollResult(reenabled=("shares",)), duration=0)
    assert status.disabled == {}
    assert status.disabled_at == {}
    snap = store.snapshot()
    assert dict(snap.sources[0].disabled) == {}
