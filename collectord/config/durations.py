"""Durations as people write them in ``collector.toml``: ``"90s"``, ``"15m"``, ``"1h30m"``."""

from __future__ import annotations

import re
from typing import Final

#: Seconds per unit, longest unit name first so that ``ms`` is not read as ``m``.
_UNITS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE: Final = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")

#: How the expected form is described in error messages.
DURATION_FORM: Final = 'a duration such as "90s", "15m", "24h", "28d" or "1h30m"'


def parse_duration(text: str) -> float:
    """Return the number of seconds ``text`` stands for.

    ``text`` is one or more ``<number><unit>`` parts with the units ``ms``, ``s``, ``m``,
    ``h`` and ``d`` (``"500ms"``, ``"90s"``, ``"1h30m"``, ``"1.5h"``). Zero (``"0s"``) is
    accepted; whether it makes sense is the caller's decision. Raises :class:`ValueError`
    saying the expected form for anything else, bare numbers included.

    >>> parse_duration("1h30m")
    5400.0
    >>> parse_duration("500ms")
    0.5
    """
    if not isinstance(text, str):
        raise ValueError(f"expected {DURATION_FORM}")
    stripped = text.strip()
    if not _WHOLE.fullmatch(stripped):
        hint = " (a bare number has no unit)" if _is_number(stripped) else ""
        raise ValueError(f"expected {DURATION_FORM}{hint}")
    return sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(stripped))


def format_duration(seconds: float) -> str:
    """Write ``seconds`` the way :func:`parse_duration` reads it, largest units first.

    >>> format_duration(5400)
    '1h30m'
    >>> format_duration(0.25)
    '250ms'
    """
    if seconds <= 0:
        return "0s"
    millis = round(seconds * 1000)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms"):
        size = round(_UNITS[unit] * 1000)
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
