"""Shared pieces of the Graph API simulator: requests, errors, time and value helpers.

Object kinds (Pages, posts, apps, Instagram users, media, stories) live in their own modules.
Each kind module exposes a handler with the signature ``handle(req: SimRequest) -> dict``
that returns the JSON body of a successful answer or raises :class:`SimError`; the core
router authenticates the request, finds which kind owns ``req.node_id`` and dispatches.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")

#: ``IG_USER``: an Instagram-Login token (graph.instagram.com only).
TokenKind = Literal["USER", "PAGE", "APP", "SYSTEM_USER", "IG_USER"]


@dataclass(frozen=True)
class TokenInfo:
    """What the simulator knows about an access token."""

    token: str
    kind: TokenKind
    app_id: str
    user_id: str | None = None
    page_id: str | None = None  # for PAGE tokens
    scopes: tuple[str, ...] = ()
    expires_at: int = 0  # 0 = never
    #: When its data access lapses (debug_token's ``data_access_expires_at``); ``None``:
    #: 90 days after the world's ``issued_at``. Not for app tokens.
    data_access_expires_at: int | None = None
    #: When it was issued (``None``: the world's ``issued_at``).
    issued_at: int | None = None
    #: Whether it is a long-lived token (Instagram-Login tokens: refreshable, 60 days).
    long_lived: bool = True


@dataclass
class SimRequest:
    """One Graph API call, after the version prefix was checked and the token resolved.

    ``node_id`` is the first path component after the version (``"me"`` allowed), ``edge``
    the second (``insights``, ``posts``, ``media``, ...), ``rest`` whatever follows.
    ``params`` holds the query (or batch ``relative_url`` query) without ``access_token``,
    ``appsecret_proof`` and ``appsecret_time``.
    """

    method: str
    version: str
    node_id: str
    edge: str | None
    rest: tuple[str, ...]
    params: dict[str, str]
    token: TokenInfo
    now: datetime
    base_url: str = ""  # scheme://host:port of the simulator, for paging URLs
    raw_token: str = field(default="", repr=False)


class SimError(Exception):
    """An error answer, rendered as Meta's error envelope."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        http_status: int = 400,
        type: str = "OAuthException",
        is_transient: bool | None = None,
        user_title: str | None = None,
        user_msg: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.http_status = http_status
        self.type = type
        self.is_transient = is_transient
        self.user_title = user_title
        self.user_msg = user_msg

    def envelope(self, trace_id: str = "AsimTRACE0001") -> dict[str, Any]:
        err: dict[str, Any] = {
            "message": self.message,
            "type": self.type,
            "code": self.code,
            "fbtrace_id": trace_id,
        }
        if self.subcode is not None:
            err["error_subcode"] = self.subcode
        if self.is_transient is not None:
            err["is_transient"] = self.is_transient
        if self.user_title is not None:
            err["error_user_title"] = self.user_title
        if self.user_msg is not None:
            err["error_user_msg"] = self.user_msg
        return {"error": err}


def invalid_metric_error() -> SimError:
    return SimError(100, "(#100) The value must be a valid insights metric")


def object_missing_error(node_id: str) -> SimError:
    return SimError(
        100,
        f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read "
        "the Graph API documentation at https://developers.facebook.com/docs/graph-api",
        subcode=33,
        type="GraphMethodException",
    )


# -- time -------------------------------------------------------------------------------


def fb_time(dt: datetime) -> str:
    """Meta's timestamp format: ``2026-03-03T08:00:00+0000``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")


def pacific_midnight_on_or_before(dt: datetime) -> datetime:
    """The last US Pacific midnight at or before ``dt``, in UTC."""
    local = dt.astimezone(PACIFIC)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(UTC)


def pacific_day_ends(since: datetime, until: datetime) -> list[datetime]:
    """Pacific midnights ``t`` with ``since < t <= until`` (UTC): daily ``end_time`` values."""
    out: list[datetime] = []
    day = since.astimezone(PACIFIC).date() + timedelta(days=1)
    while True:
        t = datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)
        if t > until:
            return out
        if t > since:
            out.append(t)
        day += timedelta(days=1)


def parse_time_param(value: str) -> datetime:
    """A ``since``/``until`` value: Unix seconds or a ``YYYY-MM-DD`` date (UTC midnight)."""
    value = value.strip()
    if value.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# -- deterministic values ---------------------------------------------------------------


def unit_hash(*parts: object) -> float:
    """A stable pseudo-random number in [0, 1) from ``parts`` (same input, same output)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def daily_rhythm(at: datetime) -> float:
    """A factor around 1.0 that peaks in the Pacific evening and dips at night."""
    local = at.astimezone(PACIFIC)
    hour = local.hour + local.minute / 60
    return 1.0 + 0.35 * math.sin((hour - 13) / 24 * 2 * math.pi)


def growing(base: float, at: datetime, *, per_day: float, epoch: datetime) -> float:
    """``base`` grown by ``per_day`` (a fraction) per day since ``epoch``."""
    days = (at - epoch).total_seconds() / 86400
    return base * (1 + per_day) ** max(days, 0)


def quantize(at: datetime, step: float) -> datetime:
    """``at`` rounded down to a multiple of ``step`` seconds (values are stable within)."""
    ts = math.floor(at.timestamp() / step) * step
    return datetime.fromtimestamp(ts, UTC)


def split_csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def require(params: Mapping[str, str], name: str) -> str:
    if not params.get(name):
        raise SimError(100, f"(#100) The parameter {name} is required")
    return params[name]
