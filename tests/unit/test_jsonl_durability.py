"""The JSONL sink under I/O faults: disk full and permission errors lose nothing but what
does not fit the hold, the fsync policy, private files that are never a symlink's target."""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from collectord import ConfigError
from collectord.config.loader import load_config
from collectord.config.types import JsonlSinkConfig
from collectord.model import Sample, make_labels
from collectord.sinks import jsonl
from collectord.sinks.background import BackgroundSink
from collectord.sinks.jsonl import INDEX_FILE, JsonlSink

COLLECTED = datetime(2026, 11, 23, 9, tzinfo=UTC)


def followers(value: float, page: str = "1") -> Sample:
    return Sample(
        metric="facebook_page_followers",
        graph_metric="followers_count",
        value=value,
        labels=make_labels({"page_id": page}),
        object_id=page,
        cadence="fast",
    )


def make_sink(path: Path, state_dir: Path, **kw: object) -> JsonlSink:
    sink = JsonlSink(JsonlSinkConfig(path=path, **kw), state_dir)  # type: ignore[arg-type]
    sink.open()
    return sink


def write(sink: JsonlSink, *samples: Sample, minutes: int = 0) -> int:
    return sink.write(
        "acme", "facebook_page", list(samples), COLLECTED + timedelta(minutes=minutes)
    )


def values(path: Path) -> list[float]:
    raw = path.read_bytes()
    assert raw == b"" or raw.endswith(b"\n")
    return [json.loads(line)["value"] for line in raw.splitlines()]


@pytest.fixture
def data_path(tmp_path: Path) -> Path:
    return tmp_path / "out" / "samples.jsonl"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"


class DiskFull:
    """``os.write`` raising ENOSPC while ``full`` is set (in-process: no root needed)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.full = True
        real = os.write

        def write(fd: int, data: bytes) -> int:
            if self.full:
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(fd, data)

        monkeypatch.setattr(os, "write", write)


def test_disk_full_holds_the_records_and_writes_them_in_order_once_there_is_room(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(data_path, state_dir)
    assert write(sink, followers(1)) == 1
    disk = DiskFull(monkeypatch)
    with capture_logs() as logs:
        assert write(sink, followers(2), followers(5, page="2"), minutes=1) == 0
        assert write(sink, followers(2), followers(5, page="2"), minutes=2) == 0  # no new record
        assert write(sink, followers(3), minutes=3) == 0  # a change while the disk is full
        assert sink.retry_delay() is not None
        disk.full = False
        assert write(sink, followers(3), followers(5, page="2"), minutes=4) == 3
        assert write(sink, followers(3), followers(5, page="2"), minutes=5) == 0
    assert values(data_path) == [1, 2, 5, 3]
    assert sink.stats.records == 4
    assert sink.stats.dropped == 0
    assert sink.stats.errors == 2 + 2 + 2  # the records each failed attempt tried to write
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("jsonl write failed", "warning"),
        ("jsonl write recovered", "info"),
    ]
    assert sink.retry_delay() is None


def test_retries_back_off_from_one_second_to_a_minute_and_reset_on_success(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(data_path, state_dir)
    disk = DiskFull(monkeypatch)
    assert sink.retry_delay() is None
    write(sink, followers(1))
    delays = [sink.retry_delay()]
    for _ in range(8):
        assert sink.retry() == 0
        delays.append(sink.retry_delay())
    assert delays == [2, 4, 8, 16, 32, 60, 60, 60, 60]
    disk.full = False
    assert sink.retry() == 1
    assert sink.retry_delay() is None
    disk.full = True
    write(sink, followers(2))
    assert sink.retry_delay() == 2


def test_what_does_not_fit_the_hold_is_dropped_counted_and_written_by_a_later_poll(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "HOLD_RECORDS", 2)
    sink = make_sink(data_path, state_dir)
    disk = DiskFull(monkeypatch)
    with capture_logs() as logs:
        write(sink, followers(1, "a"), followers(1, "b"), followers(1, "c"))
        write(sink, followers(1, "d"))
    assert sink.stats.dropped == 2
    assert [e["event"] for e in logs].count("jsonl records dropped, too many held") == 1
    disk.full = False
    assert write(sink, followers(1, "a"), followers(1, "c"), followers(1, "d")) == 4
    pages = [json.loads(line)["labels"]["page_id"] for line in data_path.read_text().splitlines()]
    assert pages == ["a", "b", "c", "d"]


def test_records_still_held_at_close_are_counted_as_dropped(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sink = make_sink(data_path, state_dir)
    DiskFull(monkeypatch)
    write(sink, followers(1), followers(2, "2"))
    with capture_logs() as logs:
        sink.close()
    assert sink.stats.dropped == 2
    assert "jsonl records not written at exit" in [e["event"] for e in logs]
    monkeypatch.undo()
    again = make_sink(data_path, state_dir)  # not in the index: the next poll writes them
    assert write(again, followers(1), followers(2, "2")) == 2


def test_permission_error_is_held_and_retried_like_disk_full(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import collectord.sinks.jsonl as module

    real = module.open_append
    denied = [True]

    def open_append(path: Path) -> int:
        if denied[0]:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(module, "open_append", open_append)
    sink = make_sink(data_path, state_dir)
    assert write(sink, followers(1)) == 0
    assert sink.stats.errors == 1
    denied[0] = False
    assert sink.retry() == 1
    assert values(data_path) == [1]


def test_a_device_as_path_is_refused_and_held_without_crash(state_dir: Path) -> None:
    # /dev/full: a write would fail with ENOSPC, a read never ends; refused before either
    with capture_logs() as logs:
        sink = make_sink(Path("/dev/full"), state_dir)
        assert write(sink, followers(1)) == 0
        assert write(sink, followers(2)) == 0
    assert sink.stats.errors == 2  # the held record, tried with each batch
    assert sink.retry_delay() is not None
    assert [e["event"] for e in logs] == ["jsonl replay failed", "jsonl write failed"]
    assert all("not a regular file" in e["error"] for e in logs)


class Retries(JsonlSink):
    """Tells the test each time the writer thread retried."""

    def __init__(self, *a: object, **k: object) -> None:
        super().__init__(*a, **k)  # type: ignore[arg-type]
        self.retried = threading.Event()

    def retry(self) -> int:
        written = super().retry()
        if written:
            self.retried.set()
        return written


def test_the_writer_thread_retries_held_records_without_a_new_batch(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonl, "RETRY_FIRST", 0.01)
    disk = DiskFull(monkeypatch)
    inner = Retries(JsonlSinkConfig(path=data_path), state_dir)
    sink = BackgroundSink(inner)
    sink.start()
    sink.write("acme", "facebook_page", [followers(7)], COLLECTED)
    assert sink.flush(5)
    assert inner.stats.errors >= 1
    disk.full = False
    assert inner.retried.wait(5)
    sink.close()
    assert values(data_path) == [7]


# -- fsync ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "syncs"), [("batch", 2), ("never", 0)])
def test_fsync_policy(
    data_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch, policy: str, syncs: int
) -> None:
    sink = make_sink(data_path, state_dir, fsync=policy)
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        if fd == sink._fd:
            synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write(sink, followers(1), followers(1, "2"))
    write(sink, followers(2), followers(2, "2"))
    write(sink, followers(2), followers(2, "2"))  # nothing new: nothing to sync
    assert len(synced) == syncs


def test_fsync_key_is_read_and_checked(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sink.jsonl]\npath = "x.jsonl"\n')
    assert load_config(cfg, {}, environ={}).jsonl.fsync == "batch"  # type: ignore[union-attr]
    cfg.write_text('[sink.jsonl]\npath = "x.jsonl"\nfsync = "never"\n')
    assert load_config(cfg, {}, environ={}).jsonl.fsync == "never"  # type: ignore[union-attr]
    cfg.write_text('[sink.jsonl]\npath = "x.jsonl"\nfsync = "always"\n')
    with pytest.raises(ConfigError, match=r"fsync: expected one of batch, never"):
        load_config(cfg, {}, environ={})


# -- private files, no symlinks -------------------------------------------------------------


def test_every_file_is_private_whatever_the_umask(data_path: Path, state_dir: Path) -> None:
    old = os.umask(0)
    try:
        sink = make_sink(data_path, state_dir, max_bytes=200, backups=2)
        for i in range(6):
            write(sink, followers(i), minutes=i)
        sink.close()
        with data_path.open("ab") as f:
            f.write(b'{"torn')
        make_sink(data_path, state_dir).close()
    finally:
        os.umask(old)
    files = sorted(p.name for p in data_path.parent.iterdir())
    assert "samples.jsonl.1" in files
    assert "samples.jsonl.2" in files
    assert any(name.startswith("samples.jsonl.partial-") for name in files)
    for p in [*data_path.parent.iterdir(), state_dir / INDEX_FILE]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for d in (data_path.parent, state_dir):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_a_symlink_planted_at_any_path_is_never_written_through(
    tmp_path: Path, data_path: Path, state_dir: Path
) -> None:
    target = tmp_path / "precious"
    target.write_text("keep\n")
    data_path.parent.mkdir()
    state_dir.mkdir()

    data_path.symlink_to(target)  # the data file
    sink = make_sink(data_path, state_dir)
    assert write(sink, followers(1)) == 0
    assert sink.stats.errors == 1
    data_path.unlink()
    assert sink.retry() == 1

    index = state_dir / INDEX_FILE
    index.unlink()
    index.symlink_to(target)  # the index
    assert write(sink, followers(5), minutes=9) == 1
    with capture_logs() as logs:
        sink.close()  # saves the index
    assert "jsonl index save failed" in [e["event"] for e in logs]
    index.unlink()

    backup = data_path.with_name("samples.jsonl.1")
    backup.symlink_to(target)  # a backup rotation will move a file onto
    small = make_sink(data_path, state_dir, max_bytes=10, backups=2)
    write(small, followers(2), minutes=1)
    write(small, followers(3), minutes=2)
    small.close()
    assert not backup.is_symlink()

    with data_path.open("ab") as f:
        f.write(b'{"torn')
    planted = data_path.with_name(f"samples.jsonl.partial-{COLLECTED:%Y%m%dT%H%M%SZ}")
    planted.symlink_to(target)  # where the torn tail would go
    JsonlSink(JsonlSinkConfig(path=data_path), state_dir, clock=lambda: COLLECTED).open()
    assert data_path.with_name(planted.name + "-1").read_bytes() == b'{"torn'
    assert not data_path.read_bytes().endswith(b'{"torn')

    assert target.read_text() == "keep\n"
