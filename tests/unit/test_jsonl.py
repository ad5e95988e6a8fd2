"""The JSONL sink: record contract, change-only across restarts and crashes, rotation, errors."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from collectord.config.types import JsonlSinkConfig
from collectord.model import Sample, make_labels
from collectord.sinks import jsonl_index
from collectord.sinks.background import BackgroundSink
from collectord.sinks.jsonl import INDEX_FILE, JsonlSink, encode_record, make_record, record_line
from collectord.sinks.stats import SinkStats

COLLECTED = datetime(2026, 11, 23, 18, 0, 3, 120456, tzinfo=UTC)
DAY = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def page_views(value: float = 123, end_time: datetime | None = DAY, page: str = "1234567890"):
    return Sample(
        metric="facebook_page_views",
        graph_metric="page_views_total",
        value=value,
        labels=make_labels({"page_id": page, "period": "day"}),
        object_id=page,
        cadence="daily",
        period="day",
        end_time=end_time,
    )


def followers(value: float = 10) -> Sample:
    return Sample(
        metric="facebook_page_followers",
        graph_metric="followers_count",
        value=value,
        labels=make_labels({"page_id": "1234567890"}),
        object_id="1234567890",
        cadence="fast",
    )


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path / "out" / "samples.jsonl"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


def make_sink(path: Path, state_dir: Path, **kw: int) -> JsonlSink:
    sink = JsonlSink(JsonlSinkConfig(path=path, **kw), state_dir)
    sink.open()
    return sink


def read_records(path: Path) -> list[dict]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    return [json.loads(line) for line in raw.decode("utf-8").splitlines()]


def write(sink: JsonlSink, *samples: Sample, when: datetime = COLLECTED) -> int:
    return sink.write("acme-page", "facebook_page", list(samples), when)


# -- record contract ----------------------------------------------------------------------


def test_record_is_the_documented_line(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    assert write(sink, page_views(123)) == 1
    sink.close()

    line = data_path.read_text(encoding="utf-8")
    assert line == (
        '{"collected_at":"2026-11-23T18:00:03.120Z","source":"acme-page",'
        '"plugin":"facebook_page","metric":"facebook_page_views",'
        '"graph_metric":"page_views_total","object_id":"1234567890","period":"day",'
        '"end_time":"2026-11-23T08:00:00Z","value":123.0,'
        '"labels":{"source":"acme-page","page_id":"1234567890","period":"day"}}\n'
    )
    assert record_line("acme-page", "facebook_page", page_views(123), COLLECTED) == line
    record = json.loads(line)
    assert list(record) == [
        "collected_at",
        "source",
        "plugin",
        "metric",
        "graph_metric",
        "object_id",
        "period",
        "end_time",
        "value",
        "labels",
    ]
    assert isinstance(record["value"], float)
    assert sink.stats.name == "jsonl"
    assert sink.stats.records == 1


def test_field_without_period_or_end_time_has_nulls(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(10))
    (record,) = read_records(data_path)
    assert record["period"] is None
    assert record["end_time"] is None
    assert record["value"] == 10.0
    assert record["labels"] == {"source": "acme-page", "page_id": "1234567890"}


def test_times_are_converted_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    sample = page_views(end_time=datetime(2026, 11, 23, 10, 0, tzinfo=plus_two))
    record = make_record("s", "p", sample, datetime(2026, 11, 23, 20, 0, 3, 5000, tzinfo=plus_two))
    assert record["collected_at"] == "2026-11-23T18:00:03.005Z"
    assert record["end_time"] == "2026-11-23T08:00:00Z"


def test_non_ascii_is_kept_and_non_finite_value_is_null() -> None:
    sample = Sample(
        metric="instagram_user_follower_demographics_by_city",
        graph_metric="follower_demographics",
        value=float("nan"),
        labels=make_labels({"city": "São Paulo, Brazil"}),
        object_id="1",
        cadence="daily",
    )
    line = encode_record(make_record("s", "p", sample, COLLECTED))
    assert "São Paulo" in line
    assert json.loads(line)["value"] is None


# -- change-only ----------------------------------------------------------------------------


def test_same_value_twice_writes_one_record(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    assert write(sink, page_views(5), followers(1)) == 2
    assert write(sink, page_views(5), followers(1), when=COLLECTED + timedelta(minutes=15)) == 0
    assert len(read_records(data_path)) == 2
    assert sink.stats.records == 2


def test_new_end_time_or_changed_value_writes_a_record(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, page_views(5, DAY), followers(1))
    assert write(sink, page_views(5, DAY + timedelta(days=1)), followers(1)) == 1
    assert write(sink, page_views(5, DAY + timedelta(days=1)), followers(2)) == 1
    assert write(sink, followers(1)) == 1  # back to an older value is a change too
    records = read_records(data_path)
    assert [(r["metric"], r["end_time"], r["value"]) for r in records] == [
        ("facebook_page_views", "2026-11-23T08:00:00Z", 5.0),
        ("facebook_page_followers", None, 1.0),
        ("facebook_page_views", "2026-11-24T08:00:00Z", 5.0),
        ("facebook_page_followers", None, 2.0),
        ("facebook_page_followers", None, 1.0),
    ]


def test_several_days_of_one_series_are_each_recorded_once(
    data_path: Path, state_dir: Path
) -> None:
    """Meta answers a daily metric's last two days in one call; polling again repeats them."""
    yesterday, today = page_views(5, DAY - timedelta(days=1)), page_views(7, DAY)
    sink = make_sink(data_path, state_dir)
    assert write(sink, yesterday, today) == 2
    assert write(sink, yesterday, today) == 0
    sink.close()
    again = make_sink(data_path, state_dir)
    assert write(again, yesterday, today) == 0
    # Meta revises yesterday: that one value is recorded again
    assert write(again, page_views(6, DAY - timedelta(days=1)), today) == 1
    assert [(r["end_time"], r["value"]) for r in read_records(data_path)] == [
        ("2026-11-22T08:00:00Z", 5.0),
        ("2026-11-23T08:00:00Z", 7.0),
        ("2026-11-22T08:00:00Z", 6.0),
    ]


def test_index_keeps_only_the_newest_days_of_a_series(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    for day in range(20):
        write(sink, page_views(1, DAY + timedelta(days=day)))
    sink.close()
    index = json.loads((state_dir / INDEX_FILE).read_text())
    (days,) = index["series"].values()
    assert len(days) == 8
    assert max(days) == "2026-12-12T08:00:00Z"


def test_series_are_told_apart_by_labels_and_source(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    assert write(sink, page_views(5, page="1"), page_views(5, page="2")) == 2
    assert sink.write("other-page", "facebook_page", [page_views(5, page="1")], COLLECTED) == 1


# -- restart and crash ----------------------------------------------------------------------


def test_unchanged_values_are_not_rewritten_after_restart(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, page_views(5), followers(1))
    sink.close()

    again = make_sink(data_path, state_dir)
    assert write(again, page_views(5), followers(1)) == 0
    assert write(again, page_views(5), followers(2)) == 1
    assert len(read_records(data_path)) == 3


def test_kill_between_append_and_index_save_duplicates_nothing(
    data_path: Path, state_dir: Path
) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, page_views(5), followers(1))
    saved_index = (state_dir / INDEX_FILE).read_bytes()
    write(sink, page_views(6), followers(2))
    # kill -9 after the append, before the index was saved: the old index is on disk.
    (state_dir / INDEX_FILE).write_bytes(saved_index)

    again = make_sink(data_path, state_dir)
    assert write(again, page_views(6), followers(2)) == 0
    assert len(read_records(data_path)) == 4


def test_records_appended_after_the_index_offset_are_replayed(
    data_path: Path, state_dir: Path
) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1))
    sink.close()
    line = encode_record(make_record("acme-page", "facebook_page", page_views(7), COLLECTED))
    with data_path.open("a", encoding="utf-8") as f:
        f.write(line + "\n")

    again = make_sink(data_path, state_dir)
    assert write(again, page_views(7), followers(1)) == 0


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_lost_index_is_rebuilt_from_the_data_file(
    data_path: Path, state_dir: Path, damage: str
) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, page_views(5), followers(1))
    sink.close()
    index = state_dir / INDEX_FILE
    if damage == "missing":
        index.unlink()
    else:
        index.write_text('{"version": 1, "series": {', encoding="utf-8")

    with capture_logs() as logs:
        again = make_sink(data_path, state_dir)
    assert any(e["log_level"] == "warning" and "index" in e["event"] for e in logs)
    assert write(again, page_views(5), followers(1)) == 0


def test_replaced_data_file_is_replayed_whole(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1))
    sink.close()
    # Someone moved the file away and wrote a new one holding a newer value.
    data_path.rename(data_path.with_name("elsewhere.jsonl"))
    line = encode_record(make_record("acme-page", "facebook_page", followers(2), COLLECTED))
    data_path.write_text(line + "\n", encoding="utf-8")

    again = make_sink(data_path, state_dir)
    assert write(again, followers(2)) == 0
    assert write(again, followers(1)) == 1


def test_torn_last_line_is_moved_aside_and_rewritten(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1))
    saved_index = (state_dir / INDEX_FILE).read_bytes()
    sink.close()
    # Crash mid-write: half a record at the end, the index never saw it.
    line = encode_record(make_record("acme-page", "facebook_page", page_views(9), COLLECTED))
    with data_path.open("a", encoding="utf-8") as f:
        f.write(line[:40])
    (state_dir / INDEX_FILE).write_bytes(saved_index)

    with capture_logs() as logs:
        again = make_sink(data_path, state_dir)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["jsonl torn line repaired"]
    assert len(read_records(data_path)) == 1  # every line parses
    (partial,) = data_path.parent.glob("samples.jsonl.partial-*")
    assert partial.read_text(encoding="utf-8") == line[:40]

    assert write(again, page_views(9), followers(1)) == 1
    assert [r["metric"] for r in read_records(data_path)] == [
        "facebook_page_followers",
        "facebook_page_views",
    ]


# -- rotation -------------------------------------------------------------------------------


def line_size(sample: Sample | None = None) -> int:
    record = make_record("acme-page", "facebook_page", sample or followers(1), COLLECTED)
    return len(encode_record(record)) + 1


def test_rotation_keeps_backups_and_drops_the_oldest(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir, max_bytes=2 * line_size(), backups=2)
    for value in range(1, 9):  # 8 one-line batches, two lines per file
        assert write(sink, followers(value)) == 1

    def values(path: Path) -> list[float]:
        return [r["value"] for r in read_records(path)]

    assert values(data_path) == [7.0, 8.0]
    assert values(data_path.with_name("samples.jsonl.1")) == [5.0, 6.0]
    assert values(data_path.with_name("samples.jsonl.2")) == [3.0, 4.0]
    assert not data_path.with_name("samples.jsonl.3").exists()
    assert all(p.stat().st_size <= 2 * line_size() for p in data_path.parent.iterdir())


def test_rotation_keeps_a_batch_together(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir, max_bytes=3 * line_size(), backups=1)
    write(sink, followers(1), page_views(1, page="a"))
    write(sink, followers(2), page_views(1, page="b"))  # would not fit: goes to a new file
    assert len(read_records(data_path.with_name("samples.jsonl.1"))) == 2
    assert len(read_records(data_path)) == 2


def test_batch_larger_than_max_bytes_is_split_at_lines(data_path: Path, state_dir: Path) -> None:
    size = line_size(page_views(1, page="0"))
    sink = make_sink(data_path, state_dir, max_bytes=2 * size, backups=3)
    batch = [page_views(1, page=str(n)) for n in range(5)]
    assert write(sink, *batch) == 5
    files = [data_path.with_name(f"samples.jsonl.{n}") for n in (2, 1)] + [data_path]
    assert [[r["object_id"] for r in read_records(p)] for p in files] == [
        ["0", "1"],
        ["2", "3"],
        ["4"],
    ]


def test_zero_backups_keeps_only_the_current_file(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir, max_bytes=line_size(), backups=0)
    write(sink, followers(1))
    write(sink, followers(2))
    assert [r["value"] for r in read_records(data_path)] == [2.0]
    assert sorted(p.name for p in data_path.parent.iterdir()) == ["samples.jsonl"]


def test_restart_after_rotation_does_not_rewrite(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir, max_bytes=line_size(), backups=1)
    write(sink, followers(1))
    write(sink, page_views(3))  # rotates: followers now only in the backup
    sink.close()
    again = make_sink(data_path, state_dir, max_bytes=line_size(), backups=1)
    assert write(again, followers(1), page_views(3)) == 0


def test_kill_after_rotation_before_index_save_duplicates_nothing(
    data_path: Path, state_dir: Path
) -> None:
    sink = make_sink(data_path, state_dir, max_bytes=line_size(), backups=1)
    write(sink, followers(1))
    saved_index = (state_dir / INDEX_FILE).read_bytes()
    write(sink, followers(2))  # rotates, then appends to a new file
    (state_dir / INDEX_FILE).write_bytes(saved_index)

    again = make_sink(data_path, state_dir, max_bytes=line_size(), backups=1)
    assert write(again, followers(2)) == 0


# -- write errors -------------------------------------------------------------------------


def test_write_error_is_counted_and_records_are_written_on_recovery(
    data_path: Path, state_dir: Path
) -> None:
    data_path.mkdir(parents=True)  # PATH is a directory: every append fails
    with capture_logs() as logs:
        sink = make_sink(data_path, state_dir)
        assert write(sink, page_views(5), followers(1)) == 0
        assert write(sink, page_views(5), followers(1)) == 0
        assert sink.stats.errors == 4
        assert sink.stats.records == 0

        data_path.rmdir()
        assert write(sink, page_views(5), followers(1)) == 2
        assert write(sink, page_views(5), followers(1)) == 0
    events = [e["event"] for e in logs]
    assert events.count("jsonl write failed") == 1
    assert events.count("jsonl write recovered") == 1
    assert sink.stats.records == 2
    assert len(read_records(data_path)) == 2


def test_disk_full_mid_write_leaves_no_partial_line(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1))
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if len(data) > 1:
            return real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    assert write(sink, followers(2), page_views(3)) == 0
    assert sink.stats.errors == 2
    assert [r["value"] for r in read_records(data_path)] == [1.0]

    monkeypatch.undo()
    assert write(sink, followers(2), page_views(3)) == 2
    assert [r["value"] for r in read_records(data_path)] == [1.0, 2.0, 3.0]


def test_missing_directory_is_created_and_blocked_one_is_an_error(
    tmp_path: Path, state_dir: Path
) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("", encoding="utf-8")
    sink = make_sink(blocker / "samples.jsonl", state_dir)
    assert write(sink, followers(1)) == 0
    assert sink.stats.errors == 1

    blocker.unlink()
    assert write(sink, followers(1)) == 1
    assert len(read_records(blocker / "samples.jsonl")) == 1


def test_data_directory_removed_while_running_is_recreated(
    data_path: Path, state_dir: Path
) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1))
    shutil.rmtree(data_path.parent)
    assert write(sink, followers(2)) == 1
    assert [r["value"] for r in read_records(data_path)] == [2.0]


# -- index: identity, compaction, forgetting --------------------------------------------------


def test_labels_in_another_order_are_one_series(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    assert write(sink, page_views(5)) == 1
    reordered = dataclasses.replace(page_views(5), labels=tuple(reversed(page_views(5).labels)))
    assert write(sink, reordered) == 0
    assert write(sink, dataclasses.replace(reordered, value=6)) == 1
    assert len(read_records(data_path)) == 2


def test_index_is_compacted_when_the_log_outgrows_it_not_after_every_batch(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl_index, "MIN_COMPACT_BYTES", 0)
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1), page_views(1))
    assert sink.index.saves == 1, "saved after the first batch"
    saved = (state_dir / INDEX_FILE).read_bytes()
    write(sink, followers(2))  # one line: smaller than the index
    assert sink.index.saves == 1
    assert (state_dir / INDEX_FILE).read_bytes() == saved
    write(sink, followers(3), page_views(3))  # the log now outgrows the index
    assert sink.index.saves == 2
    write(sink, followers(4))
    # kill -9 here: the saved index is older than the data file; the log is replayed
    again = make_sink(data_path, state_dir)
    assert write(again, followers(4), page_views(3)) == 0
    assert [r["value"] for r in read_records(data_path)] == [1.0, 1.0, 2.0, 3.0, 3.0, 4.0]


def test_series_unseen_for_two_weeks_are_forgotten(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1), page_views(5))
    later = COLLECTED + timedelta(days=10)
    assert write(sink, followers(1), when=later) == 0  # still sent: still known
    much_later = COLLECTED + timedelta(days=15)
    assert write(sink, followers(2), when=much_later) == 1
    sink.close()
    index = json.loads((state_dir / INDEX_FILE).read_text())
    assert len(index["series"]) == 1, "page views were not seen for 15 days"
    again = make_sink(data_path, state_dir)
    assert write(again, page_views(5), when=much_later) == 1, "it came back: written again"
    assert write(again, followers(2), when=much_later) == 0


def test_index_of_the_previous_version_is_read(data_path: Path, state_dir: Path) -> None:
    sink = make_sink(data_path, state_dir)
    write(sink, followers(1))
    sink.close()
    index = json.loads((state_dir / INDEX_FILE).read_text())
    index["version"] = 2
    del index["seen"]
    (state_dir / INDEX_FILE).write_text(json.dumps(index), encoding="utf-8")
    with capture_logs() as logs:
        again = make_sink(data_path, state_dir)
    assert not [e for e in logs if e["log_level"] == "warning"]
    assert write(again, followers(1)) == 0


# -- the writer thread ------------------------------------------------------------------------


class GatedSink:
    """A synchronous sink that waits for a gate before each write; records its threads."""

    def __init__(self) -> None:
        self.stats = SinkStats("gated")
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.batches: list[int] = []
        self.threads: set[int] = set()
        self.opened = self.closed = False

    def open(self) -> None:
        self.opened = True

    def write(self, source, plugin, samples, collected_at) -> int:  # type: ignore[no-untyped-def]
        self.threads.add(threading.get_ident())
        self.entered.set()
        self.gate.wait()
        self.batches.append(len(samples))
        return len(samples)

    def close(self) -> None:
        self.closed = True


def test_background_sink_writes_in_its_thread_and_flushes_on_close(
    data_path: Path, state_dir: Path
) -> None:
    inner = JsonlSink(JsonlSinkConfig(path=data_path), state_dir)
    sink = BackgroundSink(inner)
    sink.start()
    assert sink.write("acme-page", "facebook_page", [page_views(5), followers(1)], COLLECTED) == 2
    assert sink.flush(5)
    assert [r["value"] for r in read_records(data_path)] == [5.0, 1.0]
    assert sink.write("acme-page", "facebook_page", [followers(2)], COLLECTED) == 1
    sink.close()
    assert [r["value"] for r in read_records(data_path)] == [5.0, 1.0, 2.0]
    assert sink.stats.records == 3
    assert sink.stats.dropped == 0
    assert (state_dir / INDEX_FILE).is_file()


def test_full_queue_drops_and_counts_the_batch() -> None:
    inner = GatedSink()
    sink = BackgroundSink(inner, max_batches=1)
    sink.start()
    with capture_logs() as logs:
        assert sink.write("s", "p", [followers(1)], COLLECTED) == 1  # taken by the thread
        assert inner.entered.wait(5), "the writer thread holds the first batch"
        assert sink.write("s", "p", [followers(2)], COLLECTED) == 1  # queued
        assert sink.write("s", "p", [followers(3), page_views(1)], COLLECTED) == 0
        assert sink.write("s", "p", [followers(4)], COLLECTED) == 0
    assert sink.stats.dropped == 3
    assert [e["event"] for e in logs] == ["sink queue full, batch dropped"]
    assert not sink.flush(0.01), "the first batch is still being written"
    inner.gate.set()
    assert sink.flush(5)
    assert inner.batches == [1, 1]
    sink.close()
    assert inner.closed
    assert threading.get_ident() not in inner.threads


def test_close_waits_a_bounded_time_for_a_stuck_sink() -> None:
    inner = GatedSink()
    sink = BackgroundSink(inner, close_timeout=0.05)
    sink.start()
    sink.write("s", "p", [followers(1)], COLLECTED)
    with capture_logs() as logs:
        sink.close()
    assert [e["event"] for e in logs] == ["sink not flushed at shutdown"]
    assert not inner.closed
    inner.gate.set()
