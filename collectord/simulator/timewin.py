"""Time windows of insights queries (``since``/``until``/``date_preset``) and their paging.

Daily Facebook values end at US Pacific midnight (docs/meta-facts.md 2.5); without
``since``/``until`` a query covers the last two complete Pacific days (2.1); at most 90
days fit in one query (2.6). ``paging.previous``/``next`` are full URLs on the
simulator's own base URL that move the window by its own length and carry the
``access_token``, as Meta's do (2.2, 11).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from collectord.simulator.base import (
    PACIFIC,
    SimError,
    SimRequest,
    pacific_day_ends,
    pacific_midnight_on_or_before,
    parse_time_param,
)
from collectord.simulator.errors import invalid_parameter

MAX_SPAN = timedelta(days=90)
_PRESET_DAYS = {
    "last_3d": 3,
    "last_7d": 7,
    "last_14d": 14,
    "last_28d": 28,
    "last_30d": 30,
    "last_90d": 90,
}


@dataclass(frozen=True)
class Window:
    """A query's ``[since, until]`` and the daily ``end_time`` values inside it."""

    since: datetime
    until: datetime
    end_times: tuple[datetime, ...]


def pacific_midnight_days_before(t: datetime, days: int) -> datetime:
    """The Pacific midnight ``days`` calendar days before the Pacific day of ``t`` (UTC)."""
    day = t.astimezone(PACIFIC).date() - timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=PACIFIC).astimezone(UTC)


def _time_param(params: dict[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if not raw:
        return None
    try:
        return parse_time_param(raw)
    except ValueError:
        raise invalid_parameter(f"(#100) Invalid {name} parameter: {raw!r}") from None


def _preset(preset: str, now: datetime) -> tuple[datetime, datetime]:
    midnight = pacific_midnight_on_or_before(now)
    if preset == "today":
        return midnight, now
    if preset == "yesterday":
        return pacific_midnight_days_before(now, 1), midnight
    if preset in _PRESET_DAYS:
        return pacific_midnight_days_before(now, _PRESET_DAYS[preset]), midnight
    if preset == "this_month":
        local = now.astimezone(PACIFIC)
        first = datetime(local.year, local.month, 1, tzinfo=PACIFIC).astimezone(UTC)
        return first, now
    raise invalid_parameter(
        "(#100) date_preset must be one of the following values: today, yesterday, "
        + ", ".join(_PRESET_DAYS)
        + ", this_month"
    )


def query_window(
    params: dict[str, str], now: datetime, *, default_days: int = 2, max_span: timedelta = MAX_SPAN
) -> Window:
    """The window of an insights query, validated; ``end_times`` never lie after ``now``."""
    since = _time_param(params, "since")
    until = _time_param(params, "until")
    if since is None and until is None and params.get("date_preset"):
        since, until = _preset(params["date_preset"], now)
    if since is None and until is None:
        until = pacific_midnight_on_or_before(now)
        since = pacific_midnight_days_before(until, default_days)
    elif since is None:
        assert until is not None
        since = pacific_midnight_days_before(until, default_days)
    elif until is None:
        until = now
    if since >= until:
        raise invalid_parameter("(#100) The since parameter must be earlier than until")
    if until - since > max_span:
        days = max_span.days
        raise invalid_parameter(
            f"(#100) There cannot be more than {days} days ({int(max_span.total_seconds())} s) "
            "between since and until"
        )
    ends = tuple(t for t in pacific_day_ends(since, until) if t <= now)
    return Window(since, until, ends)


def request_path(req: SimRequest) -> str:
    """The request's path after the version: ``node/edge/rest...``."""
    parts = [req.node_id, *([req.edge] if req.edge else []), *req.rest]
    return "/".join(parts)


def graph_url(req: SimRequest, path: str, params: dict[str, str]) -> str:
    """A full URL on the simulator, versioned, with ``access_token`` first (as Meta's)."""
    query = {"access_token": req.raw_token, **params}
    return f"{req.base_url}/{req.version}/{path}?{urlencode(query)}"


def window_paging(req: SimRequest, window: Window) -> dict[str, str]:
    """``previous``/``next`` URLs one window length before and after ``window``."""
    span = window.until - window.since
    base = {k: v for k, v in req.params.items() if k not in ("since", "until", "date_preset")}
    path = request_path(req)

    def url(shift: timedelta) -> str:
        since = int((window.since + shift).timestamp())
        until = int((window.until + shift).timestamp())
        return graph_url(req, path, {**base, "since": str(since), "until": str(until)})

    return {"previous": url(-span), "next": url(span)}


def reject_unknown(value: str, allowed: tuple[str, ...], name: str) -> None:
    """Raise Meta's enum error when ``value`` is not one of ``allowed``."""
    if value not in allowed:
        raise SimError(
            100,
            f"(#100) {name} must be one of the following values: {', '.join(allowed)}",
        )
