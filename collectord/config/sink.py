"""``[sink.*]``: the optional sinks every sample is also handed to (so far ``[sink.jsonl]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from collectord.config.checks import BACKUPS_MAX, MAX_BYTES_MAX, MAX_BYTES_MIN, append_path_problem
from collectord.config.reader import (
    INVALID,
    Context,
    choice,
    keep,
    sub_table,
    suggestion,
    type_name,
)
from collectord.config.types import FSYNC_POLICIES, JsonlSinkConfig

__all__ = ["SINKS", "read_sink"]

SINKS: Final = ("jsonl",)


def read_sink(ctx: Context, raw: Any) -> JsonlSinkConfig | None:
    """``[sink.jsonl]``, if present (the only sink so far)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        ctx.problem("[sink]", None, f"expected a table, got {type_name(raw)}")
        return None
    for key in raw:
        if key not in SINKS:
            ctx.problem("[sink]", key, f"unknown sink{suggestion(key, SINKS)}")
    if "jsonl" not in raw:
        return None
    table = sub_table(ctx, raw, "jsonl", "[sink.jsonl]")
    values: dict[str, Any] = {}
    path = table.take("path", "path", required=True)
    if isinstance(path, Path) and (wrong := append_path_problem(path)):
        table.problem("path", wrong)
        path = INVALID
    for key, low, high in (
        ("max_bytes", MAX_BYTES_MIN, MAX_BYTES_MAX),
        ("backups", 0, BACKUPS_MAX),
    ):
        number = table.take(key, "int")
        if isinstance(number, int) and not low <= number <= high:
            table.problem(key, f"must be between {low} and {high}{table.got(key, number)}")
        else:
            keep(values, key, number)
    keep(values, "fsync", choice(table, "fsync", FSYNC_POLICIES))
    table.finish()
    if not isinstance(path, Path):
        return None
    return JsonlSinkConfig(path=path, **values)
