"""The files collectord writes: private modes, no symlinks, bounded reads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from collectord.files import UnsafePathError, atomic_write, ensure_dir, open_append, read_limited


def test_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        d = ensure_dir(tmp_path / "state" / "x")
        atomic_write(d / "f.json", b"{}")
        fd = open_append(d / "log.jsonl")
        os.close(fd)
    finally:
        os.umask(old)
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    assert stat.S_IMODE(d.parent.stat().st_mode) == 0o700, "a parent it created too"
    assert stat.S_IMODE((d / "f.json").stat().st_mode) == 0o600
    assert stat.S_IMODE((d / "log.jsonl").stat().st_mode) == 0o600
    assert (d / "f.json").read_bytes() == b"{}"
    assert [p.name for p in d.iterdir() if p.name.endswith(".tmp")] == []


def test_symlinks_are_refused(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_text("keep")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(UnsafePathError):
        atomic_write(link, b"x")
    with pytest.raises(UnsafePathError):
        open_append(link)
    assert target.read_text() == "keep"


def test_read_limited_refuses_fifos_devices_and_big_files(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(UnsafePathError):
        read_limited(fifo, 100)
    with pytest.raises(UnsafePathError):
        read_limited(Path("/dev/urandom"), 100)
    big = tmp_path / "big"
    big.write_bytes(b"x" * 101)
    with pytest.raises(UnsafePathError):
        read_limited(big, 100)
    assert read_limited(big, 101) == b"x" * 101
