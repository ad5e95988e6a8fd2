"""Files collectord writes: private modes whatever the umask, never through a symlink,
replaced atomically.

Everything collectord keeps (the state file, the JSONL sink and its index, renewed tokens)
goes through these helpers: directories are created 0700 and files 0600 (the mode is set
explicitly, so a umask of 000 changes nothing), a symlink where a file is expected is
refused (``O_NOFOLLOW``), and a whole-file write goes to a temporary file in the same
directory that is flushed, fsynced and renamed over the old one, so a crash leaves either
the old content or the new one, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

__all__ = [
    "DIR_MODE",
    "FILE_MODE",
    "UnsafePathError",
    "atomic_write",
    "ensure_dir",
    "open_append",
    "read_limited",
]

DIR_MODE = 0o700
FILE_MODE = 0o600
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class UnsafePathError(OSError):
    """A path collectord refuses to write or read: a symlink, a device, a FIFO."""


def ensure_dir(path: Path) -> Path:
    """Create ``path`` (and each missing parent) with mode 0700 when missing; refuse a symlink or a
    non-directory there. An existing directory keeps its mode (the operator's choice)."""
    if path.is_symlink():
        raise UnsafePathError(f"{path} is a symbolic link; collectord does not write through one")
    if path.exists() and not path.is_dir():
        raise UnsafePathError(f"{path} exists and is not a directory")
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):  # each one 0700: mkdir(parents=True) would not
        folder.mkdir(mode=DIR_MODE, exist_ok=True)
    return path


def atomic_write(path: Path, data: bytes, *, mode: int = FILE_MODE, fsync: bool = True) -> None:
    """Replace ``path`` by ``data`` atomically: a temporary file beside it (created with
    ``mode``), written, flushed, fsynced (unless ``fsync`` is False), then renamed over
    ``path``; the directory is fsynced too. A symlink at ``path`` is refused. Raises
    :class:`OSError` (disk full, permission) with the old file untouched."""
    ensure_dir(path.parent)
    if path.is_symlink():
        raise UnsafePathError(f"{path} is a symbolic link; collectord does not write through one")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            fh.write(data)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a directory be fsynced
        fd = os.open(path, os.O_RDONLY | _CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_append(path: Path, *, mode: int = FILE_MODE) -> int:
    """An ``O_APPEND`` descriptor on ``path``, created with ``mode`` (set explicitly, so
    the umask does not widen it); a symlink or a non-regular file is refused."""
    ensure_dir(path.parent)
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC
    try:
        fd = os.open(path, flags, mode)
    except OSError as err:
        if path.is_symlink():
            raise UnsafePathError(
                f"{path} is a symbolic link; collectord does not write through one"
            ) from None
        raise err
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise UnsafePathError(f"{path} is not a regular file")
    if st.st_size == 0 and stat.S_IMODE(st.st_mode) != mode:
        os.fchmod(fd, mode)  # a file we just created: the umask may have narrowed or widened it
    return fd


def read_limited(path: Path, limit: int) -> bytes:
    """Read a regular file of at most ``limit`` bytes. A FIFO, a device, a directory or a
    longer file raises :class:`UnsafePathError` (so a token file on ``/dev/urandom`` or a
    FIFO never hangs or fills memory)."""
    flags = os.O_RDONLY | _CLOEXEC | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path} is not a regular file")
        if st.st_size > limit:
            raise UnsafePathError(f"{path} is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > limit:
                raise UnsafePathError(f"{path} is larger than {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
