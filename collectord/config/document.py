"""The config file as a whole: which one, read once (a pipe works), parsed, and the
``plugin_dirs`` it names, wanted before the plugins are loaded.

The file is read with a size cap and a time limit: a regular file, a pipe
(``-c <(envsubst < tmpl.toml)``, ``-c /dev/stdin``) or a FIFO all work, and a device or a
writer that never stops is a one-line error rather than a hang. Checking what the file
says is :mod:`collectord.config.loader`'s work.
"""

from __future__ import annotations

import os
import re
import select
import stat
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from collectord.config.checks import KIB, MIB, is_directory
from collectord.config.reader import Context, Table
from collectord.errors import ConfigError

#: The variable naming the config file when ``-c`` does not.
CONFIG_ENV: Final = "COLLECTORD_CONFIG"
#: The config file when neither ``-c`` nor the variable names one.
DEFAULT_CONFIG: Final = "collector.toml"
#: The largest config file read (a real one is a few KiB).
CONFIG_MAX_BYTES: Final = 1 * MIB
#: Seconds a pipe or FIFO may take to deliver the whole config file.
CONFIG_READ_TIMEOUT: Final = 10.0
#: Tables and arrays nested deeper than this are refused (a real config nests 3 deep).
MAX_NESTING: Final = 16
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def resolve_config_path(cli_value: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The config file to read: ``-c FILE``, else ``$COLLECTORD_CONFIG``, else
    ``./collector.toml``."""
    env = os.environ if environ is None else environ
    return Path(cli_value or env.get(CONFIG_ENV) or DEFAULT_CONFIG)


def read_document(path: Path) -> dict[str, Any]:
    """The TOML document in ``path``, unchecked, read once (a pipe works: see
    :func:`read_config_bytes`); a one-line :class:`ConfigError`
    naming the file when it cannot be read or parsed."""
    try:
        raw = read_config_bytes(path.expanduser())
    except ConfigReadError as exc:
        raise ConfigError([f"{path}: cannot read the config file: {exc}"]) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        hint = f" (choose the file with -c FILE or ${CONFIG_ENV})"
        raise ConfigError([f"{path}: cannot read the config file: {reason}{hint}"]) from None
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if where:
            message = message[: where.start()]
            location = f"line {where.group(1)}, column {where.group(2)}: "
        else:
            location = ""
        raise ConfigError([f"{path}: {location}invalid TOML: {message}"]) from None
    except RecursionError:
        document = None
    except ValueError:  # an integer of thousands of digits
        raise ConfigError([f"{path}: invalid TOML: a number too long to read"]) from None
    if document is None or too_deep(document):
        raise ConfigError(
            [f"{path}: invalid TOML: tables or arrays nested more than {MAX_NESTING} deep"]
        )
    return document


def read_plugin_dirs(
    path: Path,
    *,
    environ: Mapping[str, str] | None = None,
    document: Mapping[str, Any] | None = None,
) -> tuple[Path, ...]:
    """``[collector] plugin_dirs`` alone, read before the plugins are loaded (which
    :func:`~collectord.config.loader.load_config` needs), from ``document`` when given (the
    file is read once: a pipe cannot be read again), else from ``path``. A wrong value
    gives ``()`` here (the loader reports it); a folder that does not exist is a
    :class:`ConfigError`, as is a file that cannot be read or parsed."""
    path = Path(path)
    data = read_document(path) if document is None else document
    ctx = Context(
        file=str(path),
        base_dir=path.expanduser().absolute().parent,
        environ=os.environ if environ is None else environ,
    )
    collector = data.get("collector")
    table = Table(ctx, "[collector]", collector if isinstance(collector, dict) else {})
    dirs = table.take("plugin_dirs", "path_list")
    if not isinstance(dirs, tuple) or ctx.problems:
        return ()
    for number, folder in enumerate(dirs, 1):
        if not is_directory(folder):  # said here, where a value from ${VAR} is not shown
            what = f"item {number} is not a directory{table.got('plugin_dirs', None)}"
            if table.shown("plugin_dirs"):
                what = f"{folder} is not a directory"
            raise ConfigError([ctx.line("[collector]", "plugin_dirs", what)])
    return dirs


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
