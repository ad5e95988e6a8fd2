"""The state file: what a restart restores, how a bad file is ignored, how saving behaves."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.model import MetricSpec, Sample, make_labels
from collectord.plugin.api import Disable, PollResult
from collectord.scheduling.scheduler import Poller, PollScheduler, SourceRuntime
from collectord.store import persist
from collectord.store.persist import (
    STATE_FILE,
    StateSaver,
    UnusableState,
    decode_state,
    encode_state,
    load_state,
    restore_state,
)
from collectord.store.store import Store

DAY = datetime(2026, 11, 23, 8, tzinfo=UTC)
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp()


def sample(value: float, *, metric: str = "fb_clicks", post: str = "p1", cadence: str = "fast",
           end_time: datetime | None = DAY, help: str = "Clicks on a post.") -> Sample:  # fmt: skip
    return Sample(
        metric=metric,
        graph_metric="post_clicks",
        value=value,
        labels=make_labels({"post_id": post, "period": "lifetime"}),
        object_id=post,
        cadence=cadence,  # type: ignore[arg-type]
        period="lifetime" if end_time else None,
        end_time=end_time,
        help=help,
    )


def filled_store() -> Store:
    """A store after a few polls: samples of both cadences, a failure, a disabled metric,
    the plugin's memory."""
    store = Store()
    store.register("acme", "facebook_post", ("fast", "daily"))
    store.register("other", "facebook_page", ("daily",))
    result = PollResult(
        samples=(sample(3.0), sample(math.nan, post="p2"), sample(7.0, post="p3", end_time=None)),
        disabled=(Disable("post_video_views", "(#100) retired", at=DAY),),
        memory={
            "paused_until": "2026-11-24T00:00:00+00:00",
            "final": {"p9": "2026-11-30"},
            "suspects": {"page_fans:age"},  # the insights helper keeps a set
        },
    )
    store.record_success("acme", "fast", result, duration=0.2, at=NOW - 60)
    store.record_success(
        "acme",
        "daily",
        [sample(40.0, metric="fb_reach", cadence="daily")],
        duration=1,
        at=NOW - 3600,
    )
    store.record_failure("acme", "daily", reason="server", message="(#2) down", duration=0.1)
    store.record_success("other", "daily", [], duration=0.1, at=NOW - 10)
    return store


def fresh_store() -> Store:
    store = Store()
    store.register("acme", "facebook_post", ("fast", "daily"))
    store.register("other", "facebook_page", ("daily",))
    return store


def same(a: Sample, b: Sample) -> bool:
    """Equal samples, NaN equal to NaN, help compared too (``Sample`` ignores it)."""
    nan = math.isnan(a.value) and math.isnan(b.value)
    rest = dataclasses.replace(a, value=0) == dataclasses.replace(b, value=0)
    return (nan or a.value == b.value) and a.help == b.help and rest


def test_a_restart_serves_the_same_samples_times_and_outcomes() -> None:
    before = filled_store()
    raw = encode_state(before.capture(), NOW)
    after = fresh_store()
    for src in decode_state(raw).sources:
        assert after.restore(src) is not None

    old, new = before.snapshot(), after.snapshot()
    for name in ("acme", "other"):
        assert len(old.samples[name]) == len(new.samples[name])
        assert all(same(a, b) for a, b in zip(old.samples[name], new.samples[name], strict=True))
    was, now = before.status("acme"), after.status("acme")
    for c in ("fast", "daily"):
        w, n = was.per_cadence[c], now.per_cadence[c]
        assert (n.ok, n.last_success, n.last_error, n.last_error_reason, n.newest_end_time) == (
            w.ok, w.last_success, w.last_error, w.last_error_reason, w.newest_end_time
        )  # fmt: skip
    assert now.disabled == {"post_video_views": "(#100) retired"}
    assert now.disabled_at == {"post_video_views": DAY}
    assert now.memory == was.memory
    assert after.ready  # restored cadences count as polled (/readyz)


def test_sources_gone_from_the_config_or_of_another_plugin_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    path.write_bytes(encode_state(filled_store().capture(), NOW))
    store = Store()
    store.register("acme", "facebook_post", ("fast",))  # its daily cadence is gone
    store.register("other", "instagram_user", ("daily",))  # now another plugin
    store.register("new", "facebook_page", ("daily",))
    with capture_logs() as logs:
        assert restore_state(store, path) == 3
    assert [s.value for s in store.snapshot().samples["acme"] if not math.isnan(s.value)] == [3, 7]
    assert store.snapshot().samples["other"] == ()
    assert store.status("other").per_cadence["daily"].ok is None
    assert store.status("new").per_cadence["daily"].ok is None
    done = [e for e in logs if e["event"] == "state restored"]
    assert [(e["sources"], e["dropped"]) for e in done] == [(1, 1)]


GOOD = encode_state(filled_store().capture(), NOW)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"{not json", "not JSON"),
        (GOOD[: len(GOOD) // 2], "not JSON"),  # a partial file
        (b"", "not JSON"),
        (b"\xff\xfe garbage", "not JSON"),
        (b"[1, 2]", "document"),
        (json.dumps({"version": 99, "sources": {}}).encode(), "version 99"),
        (json.dumps({"sources": {}}).encode(), "version None"),
        (GOOD.replace(b'"ok":true', b'"ok":"yes"', 1), "ok is not"),
        (GOOD.replace(b'"lifetime"', b"7", 1), "acme"),
        (GOOD.replace(b'"fast":', b'"hourly":', 1), "unknown cadence"),
        (b"[" * 100_000, "not JSON"),
        (GOOD.replace(b'"post_clicks",3.0', b'"post_clicks",1' + b"0" * 400, 1), "too large"),
    ],
)
def test_an_unusable_state_file_is_reported_once_and_ignored(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / STATE_FILE
    path.write_bytes(content)
    store = fresh_store()
    with capture_logs() as logs:
        assert restore_state(store, path) == 0
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1
    assert warnings[0]["path"] == str(path)
    assert problem in warnings[0]["error"]
    assert not store.ready
    assert store.snapshot().samples["acme"] == ()


def test_a_missing_state_file_is_a_first_run_without_warning(tmp_path: Path) -> None:
    with capture_logs() as logs:
        assert load_state(tmp_path / STATE_FILE) is None
    assert logs == []


def test_a_save_cut_short_leaves_the_old_file_and_its_temporary_is_cleared(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    path.write_bytes(GOOD)
    cut = tmp_path / f".{STATE_FILE}.abc123.tmp"  # what kill -9 during a save leaves
    cut.write_bytes(GOOD[:100])
    assert restore_state(fresh_store(), path) > 0
    assert not cut.exists()


def test_a_state_file_that_is_a_fifo_is_refused_without_hanging(tmp_path: Path) -> None:
    path = tmp_path / STATE_FILE
    os.mkfifo(path)
    with capture_logs() as logs:
        assert load_state(path) is None
    assert "not a regular file" in logs[0]["error"]


def test_decode_names_what_is_wrong() -> None:
    with pytest.raises(UnusableState, match="this collectord reads 1"):
        decode_state(b'{"version": 0}')


def test_plugin_memory_that_is_not_plain_data_is_left_out() -> None:
    store = fresh_store()
    store.record_success(
        "acme", "fast", PollResult(samples=(sample(1),), memory={"x": object()}), duration=0
    )
    with capture_logs() as logs:
        doc = json.loads(encode_state(store.capture(), NOW))
    assert doc["sources"]["acme"]["memory"] == {}
    assert [e["event"] for e in logs] == ["plugin memory not saved"]


# -- saving ---------------------------------------------------------------------------------


async def test_saves_follow_successful_polls_debounced_and_once_more_at_exit(
    tmp_path: Path,
) -> None:
    store = fresh_store()
    path = tmp_path / "state" / STATE_FILE
    async with StateSaver(store, path, every=3600) as saver:
        store.record_success("acme", "fast", [sample(1.0)], duration=0)
        async with asyncio.timeout(10):
            await saver.saved.wait()
        assert saver.saves == 1
        store.record_success("acme", "fast", [sample(2.0)], duration=0)
        store.record_success("acme", "fast", [sample(3.0)], duration=0)
        store.record_failure("acme", "daily", reason="server", message="x", duration=0)
        await asyncio.sleep(0)
        assert saver.saves == 1  # debounced: the next save waits for `every`
    assert saver.saves == 2  # at exit
    state = load_state(path)
    assert state is not None
    assert [s.value for s in state.sources[0].cadences["fast"].samples] == [3.0]
    assert state.sources[0].cadences["daily"].last_error_reason == "server"


async def test_nothing_changed_means_no_save_at_exit(tmp_path: Path) -> None:
    async with StateSaver(fresh_store(), tmp_path / STATE_FILE) as saver:
        pass
    assert saver.saves == 0
    assert not (tmp_path / STATE_FILE).exists()


async def test_an_unusable_state_dir_is_one_warning_per_episode(tmp_path: Path) -> None:
    # a file where state_dir should be (works as root too, unlike a chmod)
    store = fresh_store()
    state_dir = tmp_path / "state"
    state_dir.write_text("in the way")
    saver = StateSaver(store, state_dir / STATE_FILE)
    store.record_success("acme", "fast", [sample(1.0)], duration=0)
    with capture_logs() as logs:
        assert not await saver.save()
        assert not await saver.save()
        state_dir.unlink()
        assert await saver.save()
        assert await saver.save()
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("state file not saved", "warning"),
        ("state file saved again", "info"),
    ]
    assert load_state(state_dir / STATE_FILE) is not None


async def test_disk_full_keeps_the_previous_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = fresh_store()
    path = tmp_path / STATE_FILE
    store.record_success("acme", "fast", [sample(1.0)], duration=0)
    saver = StateSaver(store, path)
    assert await saver.save()
    old = path.read_bytes()

    def full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(persist, "atomic_write", full)
    store.record_success("acme", "fast", [sample(2.0)], duration=0)
    with capture_logs() as logs:
        assert not await saver.save()
    assert "No space left" in logs[0]["error"]
    assert path.read_bytes() == old
    assert [os.path.basename(p) for p in os.listdir(tmp_path)] == [STATE_FILE]


async def test_state_file_is_private_whatever_the_umask_and_never_a_symlink_target(
    tmp_path: Path,
) -> None:
    store = fresh_store()
    store.record_success("acme", "fast", [sample(1.0)], duration=0)
    state_dir = tmp_path / "state"
    old = os.umask(0)
    try:
        assert await StateSaver(store, state_dir / STATE_FILE).save()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / STATE_FILE).stat().st_mode) == 0o600

    target = tmp_path / "elsewhere"
    target.write_text("keep me")
    (state_dir / STATE_FILE).unlink()
    (state_dir / STATE_FILE).symlink_to(target)
    with capture_logs() as logs:
        assert not await StateSaver(store, state_dir / STATE_FILE).save()
    assert target.read_text() == "keep me"
    assert "symbolic link" in logs[0]["error"]


# -- the first poll after a restart ---------------------------------------------------------


def scheduled(last_success: float | None, ok: bool | None) -> dict[str, datetime]:
    """When the scheduler puts the first poll of each cadence, the state restored with the
    given last poll of both cadences (interval 15 min fast, one day daily; no jitter)."""
    specs = (MetricSpec("f", "t_f", "fast", kind="field"), MetricSpec("d", "t_d", "daily"))
    cfg = SourceConfig(
        name="acme",
        plugin="p",
        access_token=None,
        metrics=None,
        schedule=ScheduleConfig(fast_interval=900, daily_interval=86400, jitter=0),
        graph=GraphConfig(),
        specs=specs,
    )
    store = Store()
    status = store.register("acme", "p", cfg.cadences())
    for cs in status.per_cadence.values():
        cs.ok, cs.last_success = ok, last_success
    rt = SourceRuntime(cfg, plugin=None, graph=None, status=status)  # type: ignore[arg-type]
    sched = PollScheduler(Poller(store), [rt], rng=lambda: 0.0)
    sched.scheduler.start = lambda *a, **k: None  # type: ignore[method-assign]  # no job runs
    sched.start()
    return {c: store.status("acme").per_cadence[c].next_run for c in ("fast", "daily")}  # type: ignore[misc]


def test_a_fresh_daily_job_is_not_polled_again_after_a_restart() -> None:
    now = datetime.now(UTC)
    last = (now - timedelta(hours=2)).timestamp()
    first = scheduled(last, ok=True)
    assert first["daily"] == datetime.fromtimestamp(last + 86400, UTC)
    assert first["fast"] - now < timedelta(seconds=5)  # stale: right away


def test_a_failed_last_poll_or_no_state_polls_right_away() -> None:
    now = datetime.now(UTC)
    for first in (
        scheduled((now - timedelta(hours=2)).timestamp(), ok=False),
        scheduled(None, None),
    ):
        assert all(when - now < timedelta(seconds=5) for when in first.values())


# -- whatever the file holds ----------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    cut=st.integers(min_value=0, max_value=len(GOOD)),
    flips=st.lists(
        st.tuples(st.integers(min_value=0, max_value=len(GOOD) - 1), st.integers(0, 255)),
        max_size=4,
    ),
)
def test_a_damaged_file_is_unusable_never_a_crash(cut: int, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(GOOD[:cut] if cut < len(GOOD) // 2 else GOOD)
    for at, byte in flips:
        if at < len(raw):
            raw[at] = byte
    with contextlib.suppress(UnusableState):
        decode_state(bytes(raw))


@settings(max_examples=300, deadline=None)
@given(
    path=st.lists(
        st.sampled_from(
            [
                "sources",
                "acme",
                "cadences",
                "fast",
                "samples",
                0,
                2,
                3,
                "memory",
                "disabled_at",
                "help",
                "saved_at",
                "ok",
            ]
        ),
        min_size=1,
        max_size=6,
    ),
    value=json_values,
)
def test_any_json_value_anywhere_is_unusable_never_a_crash(
    path: list[object], value: object
) -> None:
    doc = json.loads(GOOD)
    node = doc
    for step in path[:-1]:
        try:
            node = node[step]  # type: ignore[index]
        except (KeyError, IndexError, TypeError):
            return
    try:
        node[path[-1]] = value  # type: ignore[index]
    except (IndexError, TypeError):
        return
    with contextlib.suppress(UnusableState):
        decode_state(json.dumps(doc).encode())
    with contextlib.suppress(UnusableState):
        decode_state(json.dumps({"version": 1, "sources": {"x": value}}).encode())
