"""Meta's rate-limit usage headers (docs/meta-facts.md 7.2), read into ratios.

``X-App-Usage`` and ``X-Page-Usage`` hold whole-number percentages of one budget;
``X-Business-Use-Case-Usage`` holds, per business object id, a list of budgets each with a
``type`` and an ``estimated_time_to_regain_access`` in minutes. A header that cannot be read
is ignored (with a debug log line): usage headers inform, they never fail a request.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

APP_USAGE = "X-App-Usage"
PAGE_USAGE = "X-Page-Usage"
BUC_USAGE = "X-Business-Use-Case-Usage"
#: The budgets each header reports, as the ``kind`` of a reading.
KINDS: tuple[str, ...] = ("call_count", "total_cputime", "total_time")
#: The longest wait read from Meta's ``estimated_time_to_regain_access`` or
#: ``Retry-After`` (one day): a header saying "a million minutes" (or an endless number)
#: reads as one day, so no later arithmetic meets an absurd or infinite time. The governor
#: then blocks a budget for at most an hour of it (``MAX_BLOCK``, with a warning).
MAX_REGAIN_SECONDS = 86400.0


def clamp_wait(seconds: float) -> float | None:
    """A wait from Meta's headers, in seconds, held to at most :data:`MAX_REGAIN_SECONDS`;
    ``None`` for one that is not a positive number."""
    if not math.isfinite(seconds):
        return MAX_REGAIN_SECONDS if seconds > 0 else None
    if seconds <= 0:
        return None
    return min(seconds, MAX_REGAIN_SECONDS)


@dataclass(frozen=True)
class UsageReading:
    """One budget's usage: ``scope`` is ``app``, ``page`` or a BUC ``type`` (``pages``,
    ``instagram``, ...), ``id`` the business object id (``""`` when unknown), ``kind`` one of
    :data:`KINDS`, ``ratio`` the share used (1.0 = 100 %)."""

    scope: str
    id: str
    kind: str
    ratio: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.scope, self.id, self.kind)


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name`` in ``headers``, matched case-insensitively."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lower = name.lower()
    for key, val in headers.items():
        if key.lower() == lower:
            return val
    return None


def _percent(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        ratio = float(value) / 100.0
    except OverflowError:
        return None
    return ratio if math.isfinite(ratio) else None


def _load(headers: Mapping[str, str] | None, name: str, log: Any) -> Any:
    raw = header_value(headers, name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        if log is not None:
            log.debug("malformed usage header ignored", header=name, value=raw[:200])
        return None


def _readings(scope: str, object_id: str, entry: Mapping[str, Any]) -> Iterator[UsageReading]:
    for kind in KINDS:
        ratio = _percent(entry.get(kind))
        if ratio is not None:
            yield UsageReading(scope, object_id, kind, ratio)


def _buc_entries(value: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """``(business object id, entry)`` pairs of a decoded BUC header; raises ValueError."""
    if not isinstance(value, Mapping):
        raise ValueError("not an object")
    for object_id, entries in value.items():
        if not isinstance(entries, list):
            raise ValueError("entries are not a list")
        for entry in entries:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
                raise ValueError("entry without a type")
            yield str(object_id), entry


def parse_usage(
    headers: Mapping[str, str] | None, *, app_id: str = "", log: Any = None
) -> list[UsageReading]:
    """Every usage reading in a response's headers (``app_id`` keys the ``app`` scope)."""
    out: list[UsageReading] = []
    for name, scope, object_id in ((APP_USAGE, "app", app_id), (PAGE_USAGE, "page", "")):
        value = _load(headers, name, log)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            if log is not None:
                log.debug("malformed usage header ignored", header=name)
            continue
        out.extend(_readings(scope, object_id, value))
    value = _load(headers, BUC_USAGE, log)
    if value is not None:
        try:
            buc = [
                reading
                for object_id, entry in _buc_entries(value)
                for reading in _readings(entry["type"], object_id, entry)
            ]
        except ValueError as exc:
            if log is not None:
                log.debug("malformed usage header ignored", header=BUC_USAGE, problem=str(exc))
        else:
            out.extend(buc)
    return out


def regain_seconds(
    headers: Mapping[str, str] | None, *, buc_type: str | None = None
) -> float | None:
    """Seconds until access returns, from the BUC header's ``estimated_time_to_regain_access``
    (minutes): the longest among entries of ``buc_type`` (all entries when ``None``);
    ``None`` when no entry gives a positive time."""
    value = _load(headers, BUC_USAGE, None)
    if value is None:
        return None
    try:
        entries = list(_buc_entries(value))
    except ValueError:
        return None
    minutes = [
        _minutes(entry.get("estimated_time_to_regain_access"))
        for _, entry in entries
        if buc_type is None or entry["type"] == buc_type
    ]
    longest = max(minutes, default=0.0)
    return clamp_wait(longest * 60.0)


def _minutes(value: Any) -> float:
    """``estimated_time_to_regain_access`` as minutes (0 when it is not a number; a
    number too big for a float counts as endless and is clamped by the caller)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    try:
        minutes = float(value)
    except OverflowError:
        return math.inf
    return 0.0 if math.isnan(minutes) else minutes


def buc_object_id(headers: Mapping[str, str] | None, buc_type: str) -> str | None:
    """The business object id of the BUC header's entry of ``buc_type`` (the one with the
    longest ``estimated_time_to_regain_access`` when there are several), or ``None``."""
    value = _load(headers, BUC_USAGE, None)
    if value is None:
        return None
    try:
        entries = [(oid, e) for oid, e in _buc_entries(value) if e["type"] == buc_type]
    except ValueError:
        return None
    if not entries:
        return None

    def wait(pair: tuple[str, Mapping[str, Any]]) -> float:
        return _minutes(pair[1].get("estimated_time_to_regain_access"))

    return max(entries, key=wait)[0]
