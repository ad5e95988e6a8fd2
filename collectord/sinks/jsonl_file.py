"""Reading the JSONL data file back after a crash: a torn last line is moved aside, the
records the saved index has not seen are replayed into it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from collectord.files import FILE_MODE, UnsafePathError
from collectord.sinks.jsonl_index import SeriesIndex, remember

T = TypeVar("T", bound=tuple[Any, ...])

_BLOCK = 64 * 1024
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open_regular(path: Path, flags: int) -> int:
    """A descriptor on ``path`` if it is a regular file (not through a symlink): a device
    such as ``/dev/full`` or ``/dev/zero`` would be read forever."""
    fd = os.open(path, flags | _NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(f"{path} is not a regular file")
    return fd


def repair_torn_tail(path: Path, partial_path: Callable[[], Path]) -> tuple[Path, int] | None:
    """Move a partial last line of ``path`` (no final ``\\n``: a crash mid-write) to the file
    ``partial_path()`` names and cut it off; returns that file and the bytes moved, or None
    when the file is missing, empty or whole. A symbolic link at ``path`` is refused
    (``OSError``); the tail goes to a new 0600 file, never through a link."""
    try:
        f = os.fdopen(_open_regular(path, os.O_RDWR), "r+b")
    except FileNotFoundError:
        return None
    with f:
        end = f.seek(0, os.SEEK_END)
        if end == 0:
            return None
        f.seek(end - 1)
        if f.read(1) == b"\n":
            return None
        keep = _after_last_newline(f, end)
        f.seek(keep)
        tail = f.read()
        partial = partial_path()
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)  # whatever the umask
            out.write(tail)
        f.truncate(keep)
    return partial, len(tail)


def _after_last_newline(f: Any, end: int) -> int:
    """Offset just past the last ``\\n`` before ``end`` in binary file ``f`` (0 if none)."""
    pos = end
    while pos > 0:
        start = max(0, pos - _BLOCK)
        f.seek(start)
        block = f.read(pos - start)
        i = block.rfind(b"\n")
        if i >= 0:
            return start + i + 1
        pos = start
    return 0


def replay_records(
    path: Path,
    offset: int,
    index: SeriesIndex,
    key: Callable[[str, Iterable[tuple[str, str]]], str],
) -> tuple[int, int, float]:
    """Feed the records of ``path`` from ``offset`` on into ``index`` (``key`` names a
    series); returns (records replayed, unreadable lines, newest ``collected_at``)."""
    try:
        f = os.fdopen(_open_regular(path, os.O_RDONLY), "rb")
    except FileNotFoundError:
        return 0, 0, 0.0
    count = bad = 0
    latest = 0.0
    with f:
        f.seek(offset)
        for line in f:
            try:
                rec = json.loads(line)
                name = key(rec["metric"], rec["labels"].items())
                value = rec["value"]
                end_time = rec["end_time"]
                value = None if value is None else float(value)
                seen_at = datetime.fromisoformat(rec["collected_at"]).timestamp()
            except (ValueError, KeyError, TypeError, AttributeError):
                bad += 1
                continue
            index.series[name] = remember(index.series.get(name), end_time, value)
            index.seen[name] = max(index.seen.get(name, seen_at), seen_at)
            latest = max(latest, seen_at)
            count += 1
    return count, bad, latest


def within_bytes(lines: list[T], max_bytes: int) -> Iterator[list[T]]:
    """``lines`` (tuples ending with a line's bytes) as one chunk, or split at line
    boundaries where a chunk would exceed ``max_bytes`` (one ``write()`` each)."""
    chunk: list[T] = []
    size = 0
    for item in lines:
        if chunk and size + len(item[-1]) > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append(item)
        size += len(item[-1])
    yield chunk
