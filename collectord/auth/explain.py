"""``debug_token``'s answer in plain words (docs/meta-facts.md 10.4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

TYPE_WORDS = {
    "USER": "a user access token",
    "PAGE": "a Page access token",
    "APP": "an app access token",
    "SYSTEM_USER": "a system-user access token (Business Manager)",
}


def when(ts: Any, now: float) -> str:
    """A timestamp in words: ``never`` for 0, else the UTC time and how far off it is."""
    if not isinstance(ts, int | float) or ts <= 0:
        return "never"
    at = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
    delta = ts - now
    days = abs(delta) / 86400
    span = f"{days:.0f} days" if days >= 2 else f"{abs(delta) / 3600:.1f} hours"
    return f"{at} ({'in ' + span if delta > 0 else span + ' ago'})"


def describe(data: dict[str, Any], now: float, *, name: str | None = None) -> list[str]:
    """Lines saying what the token is, whose, which scopes, when it expires, whether valid."""
    kind = str(data.get("type") or "unknown")
    lines = [f"type: {TYPE_WORDS.get(kind, kind)}"]
    owner = data.get("profile_id") if kind == "PAGE" else data.get("user_id")
    if kind == "APP":
        owner = data.get("app_id")
    if owner:
        whose = f"{name} ({owner})" if name else str(owner)
        lines.append(f"whose: {whose}")
    if data.get("application") or data.get("app_id"):
        lines.append(f"app: {data.get('application') or '?'} ({data.get('app_id') or '?'})")
    scopes = [str(s) for s in data.get("scopes") or ()]
    lines.append(f"scopes: {', '.join(scopes) if scopes else 'none'}")
    lines.append(f"expires: {when(data.get('expires_at'), now)}")
    if "data_access_expires_at" in data:
        lines.append(f"data access expires: {when(data.get('data_access_expires_at'), now)}")
    if data.get("is_valid"):
        lines.append("valid: yes")
    else:
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        reason = error.get("message") or "Meta says it is not valid"
        sub = f", subcode {error['subcode']}" if error.get("subcode") else ""
        lines.append(f"valid: no ({reason}{sub})")
    return lines
