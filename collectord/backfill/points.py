"""Timestamped points: read from JSONL records, kept one per series and time, written as
OpenMetrics text for ``promtool tsdb create-blocks-from openmetrics``.

A point is one value of one series at one time. Its series is the family name and the
Prometheus labels exactly as the daemon exports them (``source`` included), so the blocks
made from the file continue the series the daemon scrapes. Its time is Meta's
``end_time`` (the end of the day the value measures) or, for a record without one, the
time it was collected.

The OpenMetrics text groups each family's samples together (families by name), puts each
series' samples in time order (series by labels), gives every sample its timestamp in
seconds, and ends with ``# EOF``: what promtool requires.
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from collectord.sinks.jsonl_record import to_utc

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

#: A series: its family name and its labels sorted by name.
SeriesId = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True, slots=True)
class Point:
    """One value of one series at ``timestamp`` (Unix seconds)."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    timestamp: float
    value: float

    @property
    def series(self) -> SeriesId:
        return self.metric, self.labels


def make_point(metric: str, labels: Mapping[str, Any], at: datetime, value: float) -> Point:
    """A point with its labels sorted by name (one series, whatever order they came in)."""
    pairs = tuple(sorted((str(k), "" if v is None else str(v)) for k, v in labels.items()))
    return Point(metric, pairs, to_utc(at).timestamp(), float(value))


@dataclass
class Points:
    """Points kept one per series and timestamp: a later :meth:`add` of the same series
    and time replaces the earlier one unless ``keep_first`` (a revised reading wins)."""

    _by_key: dict[tuple[SeriesId, float], Point] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._by_key)

    def add(self, point: Point, *, keep_first: bool = False) -> None:
        key = (point.series, point.timestamp)
        if keep_first and key in self._by_key:
            return
        self._by_key[key] = point

    def extend(self, points: Iterable[Point]) -> None:
        for point in points:
            self.add(point)

    def sorted(self) -> list[Point]:
        """Every point, by family, then series, then time."""
        return sorted(self._by_key.values(), key=lambda p: (p.metric, p.labels, p.timestamp))


# -- OpenMetrics ---------------------------------------------------------------------------


def escape_label_value(value: str) -> str:
    """A label value as OpenMetrics quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def format_timestamp(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}"


def write_openmetrics(points: Iterable[Point], out: TextIO) -> int:
    """Write ``points`` (any order) as OpenMetrics text with ``# EOF``; return the number
    of samples written. Every family is a gauge, as the daemon exports it."""
    count = 0
    family = None
    for point in sorted(points, key=lambda p: (p.metric, p.labels, p.timestamp)):
        if point.metric != family:
            family = point.metric
            out.write(f"# TYPE {family} gauge\n")
        labels = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in point.labels)
        series = f"{point.metric}{{{labels}}}" if labels else point.metric
        out.write(f"{series} {format_value(point.value)} {format_timestamp(point.timestamp)}\n")
        count += 1
    out.write("# EOF\n")
    return count


# -- JSONL records ---------------------------------------------------------------------------


@dataclass
class JsonlRead:
    """What reading one JSONL file found: its points, each with the time it was collected
    (0 when the record does not say), and the lines it could not use."""

    path: Path
    points: list[tuple[float, Point]] = field(default_factory=list)
    bad_lines: int = 0
    first_bad: int = 0
    no_value: int = 0

    def note_bad(self, number: int) -> None:
        self.bad_lines += 1
        self.first_bad = self.first_bad or number


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return to_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None


def record_point(record: Any) -> Point | None:
    """The point of one JSONL record (README "JSONL sink"); ``None`` when the record is
    not one (a wrong shape, an invalid name, no time). A ``null`` value is NaN."""
    if not isinstance(record, dict):
        return None
    metric, labels, value = record.get("metric"), record.get("labels"), record.get("value")
    if not isinstance(metric, str) or not _METRIC_NAME.match(metric):
        return None
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and _LABEL_NAME.match(k) and isinstance(v, str)
        for k, v in labels.items()
    ):
        return None
    at = _when(record.get("end_time")) or _when(record.get("collected_at"))
    if at is None:
        return None
    if value is None:
        value = math.nan
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return make_point(metric, labels, at, float(value))


def _open_regular(path: Path) -> TextIO:
    """``path`` opened for reading, refused unless it is a regular file (a FIFO would hang)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        return os.fdopen(fd, encoding="utf-8", errors="replace")
    except BaseException:
        os.close(fd)
        raise


def read_jsonl(path: Path) -> JsonlRead:
    """Every usable record of a JSONL file (the sink's, a rotated one, or a backfill part),
    in file order; lines that are not a record are counted, not fatal (a torn last line
    after a crash is one). Raises :class:`OSError` when the file cannot be read."""
    read = JsonlRead(path)
    with _open_regular(path) as handle:
        for number, line in enumerate(_lines(handle), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                read.note_bad(number)
                continue
            point = record_point(record)
            if point is None:
                read.note_bad(number)
            elif math.isnan(point.value):
                read.no_value += 1
            else:
                collected = _when(record.get("collected_at"))
                read.points.append((collected.timestamp() if collected else 0.0, point))
    return read


def _lines(handle: TextIO) -> Iterator[str]:
    yield from handle


def point_record(point: Point) -> str:
    """A point as a JSONL line the reader takes back (a backfill part)."""
    when = datetime.fromtimestamp(point.timestamp, UTC).isoformat()
    record = {
        "metric": point.metric,
        "end_time": when,
        "value": point.value if math.isfinite(point.value) else None,
        "labels": dict(point.labels),
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False) + "\n"
