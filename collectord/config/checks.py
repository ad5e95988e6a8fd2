"""The limits ``collector.toml`` must keep, so that ``collectord check`` refuses every value
``collectord run`` could not use, and the bounded read of the config file itself.

The config file is read once, with a size cap and a time limit: a regular file, a pipe
(``-c <(envsubst < tmpl.toml)``, ``-c /dev/stdin``) or a FIFO all work, and a device or a
writer that never stops is an error rather than a hang. Everything else here turns a value
into a problem message that never repeats the value (the caller decides whether the value
may be shown, see :meth:`collectord.config.reader.Table.got`).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import select
import stat
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from collectord.config.types import Config

KIB: Final = 1024
MIB: Final = 1024 * KIB
DAY: Final = 86400.0

#: The largest config file read (a real one is a few KiB).
CONFIG_MAX_BYTES: Final = 1 * MIB
#: Seconds a pipe or FIFO may take to deliver the whole config file.
CONFIG_READ_TIMEOUT: Final = 10.0
#: Tables and arrays nested deeper than this are refused (a real config nests 3 deep).
MAX_NESTING: Final = 16
#: The largest file an ``X_file`` key may name (a token is well under 1 KiB).
VALUE_FILE_MAX_BYTES: Final = 64 * KIB
#: The longest duration any key accepts (intervals, jitter, ages): about ten years.
MAX_DURATION: Final = 3650 * DAY
#: The longest request timeout.
MAX_TIMEOUT: Final = 3600.0
#: Integers must fit in 64 bits.
MAX_INT: Final = 2**63 - 1
#: Bounds of ``[sink.jsonl]`` (rotating shifts every backup: a million of them takes hours).
BACKUPS_MAX: Final = 1000
MAX_BYTES_MIN: Final = 64 * KIB
MAX_BYTES_MAX: Final = 1024**4

_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?\.?")
_LISTEN_FORM: Final = 'expected HOST:PORT such as "127.0.0.1:9464" or "[::1]:9464"'
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class ConfigReadError(OSError):
    """The config file could not be read whole (too large, too slow, not a file)."""


def read_config_bytes(
    path: Path, *, limit: int = CONFIG_MAX_BYTES, timeout: float = CONFIG_READ_TIMEOUT
) -> bytes:
    """The bytes of the config file ``path``, read once.

    A regular file larger than ``limit`` is refused at once. A pipe, FIFO or character
    device is read as it comes until its writer closes it; past ``limit`` bytes, or when the
    writer sends nothing for ``timeout`` seconds in all, :class:`ConfigReadError` says so
    (``/dev/zero`` or a forgotten FIFO fail quickly instead of filling memory or hanging).
    A FIFO that has no writer yet is waited for within the same ``timeout``.
    """
    fd = os.open(path, os.O_RDONLY | _CLOEXEC | _NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise ConfigReadError("it is a directory")
        regular = stat.S_ISREG(mode)
        if regular:
            if os.fstat(fd).st_size > limit:
                raise ConfigReadError(f"it is larger than {_size(limit)}")
            os.set_blocking(fd, True)
        deadline = None if regular else time.monotonic() + timeout
        return _read_all(fd, limit=limit, deadline=deadline, timeout=timeout)
    finally:
        os.close(fd)


def _read_all(fd: int, *, limit: int, deadline: float | None, timeout: float) -> bytes:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    chunks: list[bytes] = []
    size = 0
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                raise ConfigReadError(
                    f"reading it took longer than {timeout:g}s "
                    "(a pipe or FIFO whose writer never finished)"
                )
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            continue
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ConfigReadError(f"it is larger than {_size(limit)}")
        chunks.append(chunk)


def _size(n: int) -> str:
    return f"{n // MIB} MiB" if n % MIB == 0 else f"{n // KIB} KiB"


def too_deep(document: Any, limit: int = MAX_NESTING) -> bool:
    """Whether tables and arrays in ``document`` nest deeper than ``limit`` (checked
    without recursion, so any depth is safe to ask about)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, Mapping) else value
        for child in children:
            if isinstance(child, Mapping | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def special_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file (``a directory``, ``a
    FIFO``...), else ``None``. Symbolic links are followed."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def append_path_problem(path: Path) -> str | None:
    """Why a file could not be appended to at ``path`` (``None`` when it can be tried)."""
    if path.is_symlink():
        return "is a symbolic link; collectord does not write through one"
    kind = special_file(path)
    if kind is not None:
        return f"expected a regular file, found {kind}"
    parent = not_a_directory(path.parent)
    if parent is not None:
        return f"its folder is {parent}, not a directory"
    return None


def not_a_directory(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a directory, else ``None``."""
    kind = special_file(path)
    if kind is None and path.is_file():
        return "a regular file"
    return None if kind == "a directory" else kind


def duration_problem(seconds: float, *, maximum: float = MAX_DURATION) -> str | None:
    """Why a parsed duration cannot be used (``None`` when it can)."""
    if not math.isfinite(seconds) or seconds > maximum:
        from collectord.config.durations import format_duration

        return f"must be at most {format_duration(maximum)}"
    return None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6) as ``(host, port)``. The :class:`ValueError`
    does not repeat ``text``."""
    match = re.fullmatch(r"\[(?P<v6>[^\]]+)\]:(?P<port>\d+)|(?P<host>[^:\[\]]+):(?P<p>\d+)", text)
    if not match:
        raise ValueError(_LISTEN_FORM)
    host = match.group("v6") or match.group("host")
    digits = match.group("port") or match.group("p")
    if match.group("v6"):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(
                f"{_LISTEN_FORM}: the part in brackets is not an IPv6 address"
            ) from None
    elif not _HOST_NAME.fullmatch(host):
        raise ValueError(f"{_LISTEN_FORM}: the host is not an IP address or a host name")
    port = int(digits) if len(digits) <= 5 else 0
    if not 1 <= port <= 65535:
        raise ValueError("port must be between 1 and 65535")
    return host, port


def url_problem(text: str) -> str | None:
    """Why ``text`` is not a usable ``http://`` or ``https://`` base URL (``None`` when
    it is). Never repeats ``text``."""
    form = "expected an http:// or https:// URL"
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        return f"{form} without spaces or control characters"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        why = "its port is not between 1 and 65535" if "Port" in str(exc) else "it does not parse"
        return f"{form}: {why}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return form
    if port is not None and not 1 <= port <= 65535:
        return f"{form}: its port is not between 1 and 65535"
    return None


def with_listen(config: Config, host: str, port: int) -> Config:
    """``config`` listening on ``host:port`` (``--listen`` and ``$COLLECTORD_LISTEN``)."""
    return replace(config, collector=replace(config.collector, listen_host=host, listen_port=port))
