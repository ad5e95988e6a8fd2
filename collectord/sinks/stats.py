"""What a sink has written, read by the exporter at scrape time."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SinkStats:
    """Records a sink wrote, failed to write, and dropped (its write queue was full)."""

    name: str
    records: int = 0
    errors: int = 0
    dropped: int = 0
