"""The limits ``collector.toml`` must keep, so that ``collectord check`` refuses every value
``collectord run`` could not use.

Each check here turns a value into a problem message that never repeats the value (the
caller decides whether the value may be shown, see
:meth:`collectord.config.reader.Table.got`).
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import stat
from dataclasses import replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from collectord.config.types import Config
from collectord.errors import ConfigError
from collectord.sharding import check_spec

KIB: Final = 1024
MIB: Final = 1024 * KIB
DAY: Final = 86400.0

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


def _mode(path: Path, *, follow: bool = True) -> int | None:
    """``st_mode`` of ``path``, or ``None`` when it cannot be known (missing, a name too
    long, no permission)."""
    try:
        return os.stat(path, follow_symlinks=follow).st_mode
    except (OSError, ValueError):
        return None


def special_file(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a regular file (``a directory``, ``a
    FIFO``...), else ``None``. Symbolic links are followed."""
    mode = _mode(path)
    if mode is None or stat.S_ISREG(mode):
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


def not_a_directory(path: Path) -> str | None:
    """What ``path`` is when it exists and is not a directory, else ``None``."""
    mode = _mode(path)
    if mode is None or stat.S_ISDIR(mode):
        return None
    return "a regular file" if stat.S_ISREG(mode) else special_file(path)


def is_directory(path: Path) -> bool:
    mode = _mode(path)
    return mode is not None and stat.S_ISDIR(mode)


def append_path_problem(path: Path) -> str | None:
    """Why a file could not be appended to at ``path`` (``None`` when it can be tried)."""
    link = _mode(path, follow=False)
    if link is not None and stat.S_ISLNK(link):
        return "is a symbolic link; collectord does not write through one"
    kind = special_file(path)
    if kind is not None:
        return f"expected a regular file, found {kind}"
    parent = not_a_directory(path.parent)
    if parent is not None:
        return f"its folder is {parent}, not a directory"
    return None


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


def with_shard(config: Config, spec: str) -> Config:
    """``config`` with ``--shard`` in place of ``[collector] shard``; a malformed spec is a
    :class:`ConfigError` saying what is wrong."""
    wrong = check_spec(spec)
    if wrong:
        raise ConfigError([f"--shard: {wrong}, got {spec!r}"])
    return replace(config, collector=replace(config.collector, shard=spec.strip()))
