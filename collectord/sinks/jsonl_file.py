"""Repairing the JSONL data file after a crash: a torn last line is moved aside."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

_BLOCK = 64 * 1024


def repair_torn_tail(path: Path, partial_path: Callable[[], Path]) -> tuple[Path, int] | None:
    """Move a partial last line of ``path`` (no final ``\\n``: a crash mid-write) to the file
    ``partial_path()`` names and cut it off; returns that file and the bytes moved, or None
    when the file is missing, empty or whole."""
    try:
        f = open(path, "r+b")  # noqa: SIM115 - closed below
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
        partial.write_bytes(tail)
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
