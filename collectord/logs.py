"""Logging: one structlog processor chain for collectord's own logs and for the stdlib logs
of aiohttp and APScheduler; console output for people, JSON lines for services.

Secrets are redacted twice: values under secret-looking keys are masked (inside nested
dicts, lists and tuples too), and token parameters inside any string (a paging URL in an
error) are scrubbed. Tracebacks never
render frame locals.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor

from collectord.secret import MASK, Secret, scrub

LogFormat = Literal["console", "json"]

_SECRET_KEY = re.compile(
    r"token|secret|password|passwd|proof|authorization|basic_auth|credential|cookie", re.IGNORECASE
)

__all__ = ["configure_logging", "get_logger", "redact", "scrub"]


#: Nested values deeper than this are replaced by a placeholder rather than walked.
_MAX_DEPTH = 16


def _redact_value(key: str, value: Any, *, secret: bool = False, depth: int = 0) -> Any:
    """``value`` with secrets masked: a :class:`Secret`, any non-empty string or bytes under
    a secret-looking key (at any depth: a key inside a dict, or the key a list hangs from),
    and token-shaped text anywhere. Dicts, lists, tuples and sets are copied, never changed
    in place."""
    secret = secret or bool(_SECRET_KEY.search(key))
    if isinstance(value, Secret):
        return MASK
    if secret and isinstance(value, str | bytes) and value:
        return MASK
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping | list | tuple | set | frozenset) and depth >= _MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {
            k: _redact_value(str(k), v, secret=secret, depth=depth + 1) for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [_redact_value(key, v, secret=secret, depth=depth + 1) for v in value]
        return items if isinstance(value, list | set | frozenset) else tuple(items)
    return value


def redact(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secret values and scrub tokens out of strings, inside
    nested dicts, lists and tuples too."""
    for key, value in list(event_dict.items()):
        event_dict[key] = _redact_value(key, value)
    return event_dict


def _scrub_rendered_exception(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    exc = event_dict.get("exception")
    if isinstance(exc, str):
        event_dict["exception"] = scrub(exc)
    elif isinstance(exc, list):
        event_dict["exception"] = _scrub_structure(exc)
    return event_dict


def _scrub_structure(obj: Any) -> Any:
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, list):
        return [_scrub_structure(v) for v in obj]
    if isinstance(obj, MutableMapping):
        return {k: _scrub_structure(v) for k, v in obj.items()}
    return obj


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.ExtraAdder(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]


def _renderer_chain(fmt: LogFormat, stream: TextIO) -> list[Processor]:
    if fmt == "json":
        return [
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            ),
            _scrub_rendered_exception,
            structlog.processors.JSONRenderer(),
        ]
    colors = hasattr(stream, "isatty") and stream.isatty()
    return [
        structlog.processors.format_exc_info,
        _scrub_rendered_exception,
        structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        ),
    ]


def configure_logging(
    level: str = "info", fmt: LogFormat = "console", *, stream: TextIO | None = None
) -> None:
    """Route collectord's structlog loggers and stdlib logging through one chain to ``stream``
    (stderr by default). Safe to call again (the CLI reconfigures after reading the config)."""
    stream = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *_renderer_chain(fmt, stream),
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # Per-request and per-run INFO lines of our libraries are noise for an exporter that is
    # scraped every few seconds; keep their warnings and errors.
    quiet = logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING
    for name in ("aiohttp.access", "apscheduler.executors", "apscheduler.scheduler"):
        logging.getLogger(name).setLevel(quiet)


def get_logger(name: str = "collectord") -> Any:
    return structlog.stdlib.get_logger(name)
