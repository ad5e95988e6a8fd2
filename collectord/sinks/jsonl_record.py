"""The JSONL record: one sample as one compact JSON line, keys in contract order.

Used by the JSONL sink and by ``collectord once --format jsonl``; the format is documented
in the README ("JSONL sink").
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from collectord.model import Sample

_RECORD = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def format_collected_at(dt: datetime) -> str:
    """``2026-11-23T18:00:03.120Z``: UTC, milliseconds (a naive datetime is taken as UTC)."""
    dt = to_utc(dt)
    return f"{dt:%Y-%m-%dT%H:%M:%S}.{dt.microsecond // 1000:03d}Z"


def format_end_time(dt: datetime | None) -> str | None:
    """``2026-11-23T08:00:00Z`` (UTC, whole seconds), or ``None``."""
    return None if dt is None else f"{to_utc(dt):%Y-%m-%dT%H:%M:%SZ}"


def json_value(value: float) -> float | None:
    """The value as a JSON float; ``None`` (``null``) when it is NaN or infinite."""
    v = float(value)
    return v if math.isfinite(v) else None


def build_record(
    source: str, plugin: str, sample: Sample, stamp: str, end_time: str | None
) -> dict[str, Any]:
    return {
        "collected_at": stamp,
        "source": source,
        "plugin": plugin,
        "metric": sample.metric,
        "graph_metric": sample.graph_metric,
        "object_id": sample.object_id,
        "period": sample.period,
        "end_time": end_time,
        "value": json_value(sample.value),
        "labels": {"source": source, **dict(sample.labels)},
    }


def make_record(source: str, plugin: str, sample: Sample, collected_at: datetime) -> dict[str, Any]:
    """The JSONL record of one sample, keys in contract order (README "JSONL sink")."""
    stamp = format_collected_at(collected_at)
    return build_record(source, plugin, sample, stamp, format_end_time(sample.end_time))


def encode_record(record: Mapping[str, Any]) -> str:
    """One record as a compact JSON line, without the trailing newline."""
    return _RECORD.encode(record)


def record_line(source: str, plugin: str, sample: Sample, collected_at: datetime) -> str:
    """The record of one sample as a complete line (``\n``-terminated), as the sink writes it."""
    return encode_record(make_record(source, plugin, sample, collected_at)) + "\n"
