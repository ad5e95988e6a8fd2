"""Cursor paging helpers shared by the cursor-paged edges (docs/meta-facts.md 11).

Cursors are opaque base64 strings, as Meta's are; inside they hold a few integers
(an offset, and whatever else an edge needs to resume).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from collectord.simulator.errors import invalid_parameter

MAX_LIMIT = 100
DEFAULT_LIMIT = 25


def encode_cursor(**fields: int) -> str:
    """An opaque cursor holding ``fields``."""
    raw = "|".join(f"{k}:{v}" for k, v in fields.items()).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> dict[str, int]:
    """The fields of a cursor made by :func:`encode_cursor` (code 100 when garbled)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return {k: int(v) for k, v in (part.split(":", 1) for part in raw.split("|"))}
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise invalid_parameter("(#100) Invalid cursor") from None


def parse_limit(params: Mapping[str, str], default: int = DEFAULT_LIMIT) -> int:
    """``limit``: a whole number of at most 100; more is an error, as on Meta's edges."""
    raw = params.get("limit", str(default))
    if not raw.isdigit():
        raise invalid_parameter("(#100) Param limit must be a non-negative integer")
    if int(raw) > MAX_LIMIT:
        raise invalid_parameter(f"(#100) The limit parameter must not be greater than {MAX_LIMIT}")
    return int(raw)
