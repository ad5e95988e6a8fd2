"""What the store hands to the state file and takes back from it at start-up.

Plain frozen records, built on the event loop by :meth:`collectord.store.store.Store.capture`
(cheap: the sample tuples are the store's own immutable ones) and encoded elsewhere, off the
loop, by :mod:`collectord.store.persist`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collectord.model import Sample


@dataclass(frozen=True)
class SavedCadence:
    """One (source, cadence): outcome of its last poll and the samples it left."""

    ok: bool | None
    last_success: float | None  # unix time
    last_error: str | None
    last_error_reason: str | None
    newest_end_time: float | None  # unix time
    samples: tuple[Sample, ...]


@dataclass(frozen=True)
class SavedSource:
    """What a restart needs to know of one source."""

    name: str
    plugin: str
    cadences: Mapping[str, SavedCadence]
    disabled: Mapping[str, str]
    disabled_at: Mapping[str, datetime]
    memory: Mapping[str, Any]


@dataclass(frozen=True)
class SavedState:
    """Every source, as of ``saved_at`` (unix time)."""

    saved_at: float
    sources: tuple[SavedSource, ...]
