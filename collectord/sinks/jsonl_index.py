"""The JSONL sink's index: which series last had which value at which ``end_time``.

The index lets the sink write a record only when a series got a new value, also across
restarts. It is persisted as ``state_dir/jsonl-index.json`` (written atomically: temp file
and rename) together with the data file's identity and the byte offset the index covers;
the data file itself is the log of every change after that offset, replayed at start-up.
So the index is not rewritten after every batch: it is compacted (saved whole) when the
records appended since the last save outgrow it (amortised O(1) per record), at rotation
and at close. A series not seen for :data:`FORGET_AFTER` seconds (its object left the
plugin's window, the source was removed) is dropped at compaction; should it come back,
its value is written again once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from collectord.files import atomic_write
from collectord.model import series_key

#: Name of the index file inside ``state_dir``.
INDEX_FILE = "jsonl-index.json"
INDEX_VERSION = 3
#: Index versions that can still be read (2: without the ``seen`` times).
READABLE_VERSIONS = (2, 3)
#: What the index remembers of a series: the value last written for each of its newest
#: ``end_time`` values (``None`` for values without one). Meta answers several days at
#: once (a daily metric's last two days), and each day's value is recorded once.
SeriesState = dict[str | None, float | None]
#: End times remembered per series; Meta's windows are a few days at most.
KEEP_END_TIMES = 8
#: Seconds after which a series no poll returned any more is forgotten (14 days).
FORGET_AFTER = 14 * 86400.0
#: The smallest log (bytes appended since the last save) that triggers a compaction.
MIN_COMPACT_BYTES = 1 << 20

_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def remember(state: SeriesState | None, end_time: str | None, value: float | None) -> SeriesState:
    """``state`` plus ``end_time -> value``, keeping the newest :data:`KEEP_END_TIMES`."""
    new = dict(state or {})
    new[end_time] = value
    if len(new) > KEEP_END_TIMES:
        dated = sorted((k for k in new if k is not None), reverse=True)
        for old in dated[KEEP_END_TIMES - (None in new) :]:
            del new[old]
    return new


class UnusableIndex(ValueError):
    """The saved index cannot be used (corrupt, unknown version)."""


@dataclass
class SavedIndex:
    """An index read back from disk: its series, and what part of which file it covers."""

    series: dict[str, SeriesState]
    seen: dict[str, float]
    file: tuple[int, int] | None
    offset: int
    path: str


@dataclass
class SeriesIndex:
    """The series known to the sink, when each was last seen, and the compaction policy."""

    series: dict[str, SeriesState] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    #: Bytes of data appended since the index was last saved (the log to replay).
    log_bytes: int = 0
    #: Size of the index file at its last save.
    saved_bytes: int = 0
    #: Saves so far and the bytes they wrote (for benchmarks and tests).
    saves: int = 0
    bytes_written: int = 0

    def should_compact(self) -> bool:
        """True when the log since the last save is at least as large as the index."""
        return self.log_bytes >= max(self.saved_bytes, MIN_COMPACT_BYTES)

    def forget_unseen(self, now: float) -> int:
        """Drop the series not seen since ``now - FORGET_AFTER``; return how many."""
        limit = now - FORGET_AFTER
        gone = [k for k, t in self.seen.items() if t < limit]
        for key in gone:
            del self.seen[key]
            self.series.pop(key, None)
        return len(gone)

    def encode(self, path: str, file: tuple[int, int] | None, offset: int) -> bytes:
        doc = {
            "version": INDEX_VERSION,
            "path": path,
            "file": None if file is None else list(file),
            "offset": offset,
            # JSON keys are strings: a value without end_time is stored under "".
            "series": {
                k: {("" if e is None else e): x for e, x in v.items()}
                for k, v in self.series.items()
            },
            "seen": self.seen,
        }
        return _COMPACT.encode(doc).encode("utf-8")

    def save(self, index_path: Path, data: bytes) -> None:
        """Write ``data`` (from :meth:`encode`) atomically (0600, fsynced, never through a
        symbolic link); raises :class:`OSError`."""
        atomic_write(index_path, data)
        self.saves += 1
        self.bytes_written += len(data)
        self.saved_bytes = len(data)
        self.log_bytes = 0


def decode_index(raw: bytes, default_seen: float) -> SavedIndex:
    """Parse a saved index; raises :class:`UnusableIndex` when it cannot be used."""
    try:
        doc: Any = json.loads(raw)
        if doc["version"] not in READABLE_VERSIONS:
            raise ValueError(f"unknown version {doc['version']!r}")
        series = {
            str(k): {
                (None if e == "" else str(e)): (None if x is None else float(x))
                for e, x in v.items()
            }
            for k, v in doc["series"].items()
        }
        saved_seen = doc.get("seen") or {}
        seen = {k: float(saved_seen.get(k, default_seen)) for k in series}
        ident = None if doc["file"] is None else (int(doc["file"][0]), int(doc["file"][1]))
        return SavedIndex(series, seen, ident, int(doc["offset"]), str(doc["path"]))
    except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise UnusableIndex(str(exc)) from exc


def index_key(metric: str, labels: Iterable[tuple[str, str]]) -> str:
    """The index's name of one series (``source`` among its labels): its
    :func:`collectord.model.series_key` as JSON, so label order does not matter."""
    return _COMPACT.encode(series_key(metric, labels))
