"""The JSONL sink: one JSON record per new value of a series, appended to a rotating file.

The record and its guarantees are a contract (README "JSONL sink"):

- one compact JSON object per ``\\n``-terminated UTF-8 line, keys in a fixed order;
- change-only: a series (metric + labels) gets a record only when its ``end_time`` or its
  value differs from the last one written, also across a restart, even after ``kill -9``;
- no torn line: each batch is one ``write()`` of whole lines to an ``O_APPEND`` descriptor;
  a partial tail left by a crash is moved to ``PATH.partial-<time>`` at start-up;
- rotation keeps ``backups`` older files as ``PATH.1``, ``PATH.2``, ...;
- nothing lost to a passing I/O error (disk full, permission): unwritten records are held
  (at most :data:`HOLD_RECORDS`; beyond, dropped and counted) and retried first, with the
  next batch or after a backoff (1 s doubling to 60 s, :meth:`JsonlSink.retry_delay`);
- ``fsync = "batch"`` (default) syncs the file after each batch, ``"never"`` leaves it to
  the OS; all files are 0600, never written through a symlink (:mod:`collectord.files`).

How change-only survives a crash: the in-memory index (series key -> last
``(end_time, value)``, see :mod:`collectord.sinks.jsonl_index`) is saved atomically to
``state_dir/jsonl-index.json`` together with the data file's identity and the byte offset it
had reached: after the first batch, then whenever the records appended since outgrow it
(compaction), at rotation and at close. At start-up the records appended after that offset
(or the whole current file, when it was rotated or replaced) are replayed into the index,
so a crash between an append and the next save duplicates nothing. Backups are never read.
Series no poll returned for two weeks are forgotten at compaction.

The sink is synchronous and does file I/O: the daemon runs it in a writer thread
(:class:`collectord.sinks.background.BackgroundSink`), never on the event loop.

A value that is not finite (NaN, infinity) has no JSON number; it is written as ``null``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import structlog

from collectord.config.types import JsonlSinkConfig
from collectord.files import open_append
from collectord.model import Sample
from collectord.sinks.jsonl_file import repair_torn_tail, replay_records, within_bytes
from collectord.sinks.jsonl_index import (
    INDEX_FILE,
    SavedIndex,
    SeriesIndex,
    SeriesState,
    UnusableIndex,
    decode_index,
    index_key,
    remember,
)
from collectord.sinks.jsonl_record import (
    build_record,
    encode_record,
    format_collected_at,
    format_end_time,
    json_value,
    make_record,
    record_line,
    to_utc,
    utcnow,
)
from collectord.sinks.stats import SinkStats

__all__ = ["INDEX_FILE", "JsonlSink", "encode_record", "index_key", "make_record", "record_line"]

#: Records encoded, then written, at a time: bounds what a poll of many new values holds.
WRITE_CHUNK = 2_000

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: Records held for a retry at most; newer ones beyond are dropped (and counted).
HOLD_RECORDS = 100_000
RETRY_FIRST, RETRY_MAX = 1.0, 60.0  # seconds before retrying held records: doubled, capped
_Line = tuple[str, SeriesState, bytes]


class JsonlSink:
    """Appends a record for every sample whose series got a new value (see module doc).

    ``write()`` never raises for I/O problems: records it could not write are counted in
    ``stats.errors`` and held for the next attempt (see the module doc); the failure is
    logged once when it starts and once when it ends. All methods are
    synchronous, do file I/O and are meant to be called from one thread (not the event
    loop's: see :class:`collectord.sinks.background.BackgroundSink`).
    """

    def __init__(
        self,
        config: JsonlSinkConfig,
        state_dir: Path,
        *,
        log: Any = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.path = Path(config.path)
        self.index_path = Path(state_dir) / INDEX_FILE
        self.stats = SinkStats("jsonl")
        self._log = log if log is not None else structlog.get_logger("collectord.sinks.jsonl")
        self._clock = clock
        self._index = SeriesIndex()
        self._saved = False  # saved since opened
        self._latest = 0.0  # newest collected_at seen, unix time
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = 0  # bytes in the open file
        self._opened = False
        self._failing = False
        self._failed_records = 0
        self._index_failing = False
        self._dirty = False
        #: Records built but not written yet (an I/O error), oldest first, and the state
        #: each of their series will have once they are.
        self._held: deque[_Line] = deque()
        self._held_state: dict[str, SeriesState] = {}
        self._retry = RETRY_FIRST
        self._dropping = False

    # -- lifecycle ------------------------------------------------------------------------

    def open(self) -> None:
        """Load the index, repair a torn last line, replay records the index has not seen."""
        if self._opened:
            return
        self._opened = True
        saved = self._load_index()
        replayed = 0
        try:
            self._repair_tail()
            start = 0
            if saved is not None:
                self._index.series, self._index.seen = saved.series, saved.seen
                start = self._replay_start(saved.file, saved.offset)
            replayed = self._replay(start)
        except OSError as exc:
            self._log.warning("jsonl replay failed", path=str(self.path), error=str(exc))
        try:
            self._ensure_file()
        except OSError as exc:
            self._on_failure(exc, 0)
        if replayed:
            self._save_index()

    @property
    def index(self) -> SeriesIndex:
        """The series index (read it; for statistics and tests)."""
        return self._index

    def close(self) -> None:
        """Write what is held (one last try), save (compact) the index if it changed and
        close the data file. Records still held are counted as dropped."""
        self.retry()
        if self._held:
            self.stats.dropped += len(self._held)
            self._log.warning("jsonl records not written at exit", records=len(self._held))
            self._held.clear()
            self._held_state.clear()
        if self._dirty:
            self._save_index()
        self._close_fd()
        self._opened = False

    def __enter__(self) -> JsonlSink:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing --------------------------------------------------------------------------

    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int:
        """Append a record for each sample whose series got a new value, after the records
        held from failed attempts; return how many were written."""
        if not self._opened:
            self.open()
        stamp = format_collected_at(collected_at)
        seen_at = to_utc(collected_at).timestamp()
        self._latest = max(self._latest, seen_at)
        seen = self._index.seen
        series = self._index.series
        held = self._held_state
        pending: dict[str, SeriesState] = {}
        lines: list[_Line] = []
        written = self.retry()  # the held records first, making room for the new ones
        failing = bool(self._held)  # a write failed: no second attempt in this call
        end_times: dict[datetime | None, str | None] = {None: None}
        for sample in samples:
            if sample.end_time not in end_times:
                end_times[sample.end_time] = format_end_time(sample.end_time)
            end_time = end_times[sample.end_time]
            key = index_key(sample.metric, (("source", source), *sample.labels))
            seen[key] = seen_at
            value = json_value(sample.value)
            known = pending.get(key) or held.get(key) or series.get(key)
            if known is not None and end_time in known and known[end_time] == value:
                continue
            state = pending[key] = remember(known, end_time, value)
            record = build_record(source, plugin, sample, stamp, end_time)
            lines.append((key, state, (encode_record(record) + "\n").encode("utf-8")))
            if len(lines) >= WRITE_CHUNK:  # a poll of 50,000 new values is not held
                written += self._queue(lines, failing)  # encoded all at once
                failing = failing or bool(self._held)
                lines = []
        return written + self._queue(lines, failing)

    def _queue(self, lines: list[_Line], failing: bool) -> int:
        """Hold ``lines`` behind the held records and, unless a write failed in this call,
        write them; how many were written."""
        self._hold(lines)
        return 0 if failing else self.retry()

    def _hold(self, lines: list[_Line]) -> None:
        """Queue ``lines`` behind the held ones; drop (and count) what does not fit (one
        warning until the held records are all written)."""
        room = max(HOLD_RECORDS - len(self._held), 0)
        if len(lines) > room:
            self.stats.dropped += len(lines) - room
            if not self._dropping:
                self._dropping = True
                self._log.warning("jsonl records dropped, too many held", held=len(self._held))
            lines = lines[:room]
        for key, state, _ in lines:
            self._held_state[key] = state
        self._held.extend(lines)

    def retry_delay(self) -> float | None:
        """Seconds to wait before :meth:`retry` when records are held, else ``None``."""
        return self._retry if self._held else None

    def retry(self) -> int:
        """Write the held records (one ``write()`` per chunk); return how many were."""
        if not self._held:
            return 0
        series = self._index.series
        written = 0
        for chunk in within_bytes(list(self._held), self.config.max_bytes):
            try:
                self._append(b"".join(line for _, _, line in chunk))
            except OSError as exc:
                self._close_fd()  # reopen (and repair) on the next attempt
                self._on_failure(exc, len(self._held))
                self._retry = min(self._retry * 2, RETRY_MAX)
                break
            for key, state, _ in chunk:
                series[key] = state
                self._held.popleft()
            written += len(chunk)
            self._dirty = True
        if written:
            self.stats.records += written
            if not self._saved or self._index.should_compact():
                self._save_index()
        if not self._held:
            self._held_state.clear()
            self._retry, self._dropping = RETRY_FIRST, False
            self._on_success()
        return written

    def _append(self, data: bytes) -> None:
        """Append whole lines in one write, rotating first if they would not fit."""
        self._ensure_file()
        if self._size > 0 and self._size + len(data) > self.config.max_bytes:
            self._rotate()
            self._ensure_file()
        assert self._fd is not None
        start = self._size
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                if n <= 0:
                    raise OSError(errno.EIO, "short write", str(self.path))
                view = view[n:]
        except OSError:
            try:  # take a partial write back so no torn line stays in the file
                os.ftruncate(self._fd, start)
            except OSError:
                self._close_fd()  # the repair at the next open removes it
            raise
        self._index.log_bytes += len(data)
        self._size = start + len(data)
        if self.config.fsync == "batch":
            # The lines are in the file either way: a failed sync is not a failed write
            # (writing them again would duplicate them).
            with contextlib.suppress(OSError):
                os.fsync(self._fd)

    def _ensure_file(self) -> None:
        """Hold an append descriptor on the file now at PATH (reopen if moved or removed)."""
        if self._fd is not None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                st = None
            if st is not None and (st.st_dev, st.st_ino) == self._ident:
                self._size = os.fstat(self._fd).st_size
                return
            self._close_fd()
        self._repair_tail()
        fd = open_append(self.path)  # 0600, folders 0700, no symlink
        st = os.fstat(fd)
        self._fd, self._ident, self._size = fd, (st.st_dev, st.st_ino), st.st_size

    def _close_fd(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def _rotate(self) -> None:
        """PATH -> PATH.1 -> ... -> PATH.<backups>; the oldest is dropped."""
        # The index covers the whole file being rotated away: tell a restart to replay the
        # new file from its start, whatever its inode turns out to be.
        self._save_index(whole_file=True)
        self._close_fd()
        self._ident, self._size = None, 0
        backups = max(self.config.backups, 0)
        if backups == 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        else:
            extra = backups + 1
            while self._backup(extra).is_file():  # left over from a larger `backups`
                self._backup(extra).unlink()
                extra += 1
            for n in range(backups - 1, 0, -1):
                if self._backup(n).exists():
                    os.replace(self._backup(n), self._backup(n + 1))
            os.replace(self.path, self._backup(1))
        self._log.info("jsonl rotated", path=str(self.path), backups=backups)

    def _on_failure(self, exc: OSError, records: int) -> None:
        self.stats.errors += records
        self._failed_records += records
        if not self._failing:
            self._failing = True
            self._log.warning(
                "jsonl write failed", path=str(self.path), error=str(exc), records=records
            )

    def _on_success(self) -> None:
        if self._failing:
            self._failing = False
            self._log.info(
                "jsonl write recovered", path=str(self.path), failed_records=self._failed_records
            )
            self._failed_records = 0

    # -- crash safety ---------------------------------------------------------------------

    def _repair_tail(self) -> None:
        """Move a partial last line (a crash mid-write) to PATH.partial-<time>, cut it off."""
        repaired = repair_torn_tail(self.path, self._partial_path)
        if repaired is not None:
            partial, size = repaired
            self._log.warning(
                "jsonl torn line repaired", path=str(self.path), saved_to=str(partial), bytes=size
            )

    def _partial_path(self) -> Path:
        base = f"{self.path.name}.partial-{to_utc(self._clock()):%Y%m%dT%H%M%SZ}"
        candidate, n = self.path.with_name(base), 1
        while os.path.lexists(candidate):  # a planted symlink too
            candidate, n = self.path.with_name(f"{base}-{n}"), n + 1
        return candidate

    def _replay_start(self, ident: tuple[int, int] | None, offset: int) -> int:
        """Where the records the index has not seen begin in the current file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return 0
        same = ident is not None and ident == (st.st_dev, st.st_ino) and st.st_size >= offset
        return offset if same else 0

    def _replay(self, offset: int) -> int:
        """Feed the records from ``offset`` to the end of the data file into the index."""
        count, bad, latest = replay_records(self.path, offset, self._index, index_key)
        self._latest = max(self._latest, latest)
        if bad:
            self._log.warning("jsonl unreadable lines", path=str(self.path), lines=bad)
        return count

    def _load_index(self) -> SavedIndex | None:
        """The saved index, file identity and offset; ``None`` when it must be rebuilt."""
        try:
            raw = self.index_path.read_bytes()
        except FileNotFoundError:
            if self.path.is_file() and self.path.stat().st_size > 0:
                self._log.warning(
                    "jsonl index missing", index=str(self.index_path), path=str(self.path)
                )
            return None
        except OSError as exc:
            self._log.warning("jsonl index unreadable", index=str(self.index_path), error=str(exc))
            return None
        try:
            saved = decode_index(raw, default_seen=to_utc(self._clock()).timestamp())
        except UnusableIndex as exc:
            self._log.warning("jsonl index corrupt", index=str(self.index_path), error=str(exc))
            return None
        if saved.path != os.path.abspath(self.path):
            self._log.info("jsonl index is of another file", index=str(self.index_path))
            return None
        self._latest = max(saved.seen.values(), default=0.0)
        return saved

    def _save_index(self, *, whole_file: bool = False) -> None:
        """Compact: forget series unseen for long, write the index atomically (log once if
        that fails)."""
        self._index.forget_unseen(self._latest)
        data = self._index.encode(
            os.path.abspath(self.path),
            None if whole_file or self._ident is None else self._ident,
            0 if whole_file else self._size,
        )
        try:
            self._index.save(self.index_path, data)
        except OSError as exc:
            if not self._index_failing:
                self._index_failing = True
                self._log.warning(
                    "jsonl index save failed", index=str(self.index_path), error=str(exc)
                )
            return
        if self._index_failing:
            self._index_failing = False
            self._log.info("jsonl index save recovered", index=str(self.index_path))
        self._dirty = False
        self._saved = True
