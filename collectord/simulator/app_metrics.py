"""The app insights catalogue (the v2.8-era App Insights reference) and its values.

Metrics and the periods the simulator accepts for them: ``hourly``/``mins_15`` only for
metrics the reference lists with hourly data, ``lifetime`` only (and only) for
``facebook_login_total_users``, ``daily`` only for the ``facebook_features_*`` active-user
counts, and ``daily``, ``weekly``, ``monthly``, ``days_28``, ``range`` for the rest.
Values follow :mod:`collectord.simulator.series`; a breakdown splits a value by stable
weights (so the parts add up to about the total); ``aggregateBy`` scales it (``USERS``
below ``COUNT``; ``SUM``/``USD_SUM``/``SCORE``/``MEDIAN_VALUE`` are decimals).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from collectord.simulator.base import daily_rhythm, growing, pacific_day_ends, unit_hash
from collectord.simulator.series import GROWTH_PER_DAY, daily, rolling, weights
from collectord.simulator.timewin import pacific_midnight_days_before

if TYPE_CHECKING:
    from collectord.simulator.world_view import WorldView

PERIODS = ("mins_15", "hourly", "daily", "weekly", "monthly", "lifetime", "days_28", "range")
DAYS = {"daily": 1, "weekly": 7, "days_28": 28, "monthly": 30}
AGGREGATIONS = {
    "COUNT": 1.0,
    "USERS": 0.62,
    "TOPK": 1.0,
    "SUM": 3.5,
    "USD_SUM": 3.5,
    "UNKNOWN_USERS": 0.07,
    "SCORE": 0.01,
    "MEDIAN_VALUE": 0.02,
    "DAU": 0.62,
    "WAU": 1.6,
    "MAU": 3.9,
}
_FLOAT_AGGREGATIONS = {"SUM", "USD_SUM", "SCORE", "MEDIAN_VALUE"}
H, D = True, False  # whether the metric has hourly data
METRICS: dict[str, tuple[float, bool]] = {
    "api_avg_request_time": (120, D),
    "api_calls": (25000, D),
    "api_calls_by_method": (25000, D),
    "api_error_rate_by_method": (0.6, D),
    "api_errors": (140, D),
    "api_errors_by_method": (140, D),
    "app_blocks": (2, D),
    "app_center_initial_permission_grants": (15, H),
    "app_center_initial_permission_requests": (40, H),
    "app_event": (800, H),
    "app_notification_clicks": (90, H),
    "app_notification_hide_rate": (12, H),
    "app_notification_hides": (6, H),
    "app_notification_impressions": (2400, H),
    "app_notification_sends": (700, H),
    "app_notification_spam_rate": (3, H),
    "app_notification_spam_reports": (2, H),
    "app_notification_total_accepts": (80, H),
    "app_notification_unhides": (1, H),
    "facebook_features_daily_active_users": (1200, D),
    "facebook_features_weekly_active_users": (3100, D),
    "facebook_features_monthly_active_users": (7800, D),
    "facebook_login_total_users": (52000, D),
    "initial_permission_grants": (35, D),
    "login_dialog_additional_permission_grants": (9, H),
    "login_dialog_additional_permission_requests": (20, H),
    "login_dialog_initial_permission_grants": (30, H),
    "login_dialog_initial_permission_requests": (55, H),
    "login_dialog_publish_permission_grants": (4, H),
    "login_dialog_publish_permission_requests": (10, H),
    "mobile_referral_installs": (25, H),
    "mobile_referrals": (160, H),
    "payments_daily_chargebacks": (12, D),
    "payments_daily_refunds": (40, D),
    "payments_daily_spend": (1800, D),
    "permission_revocations": (5, H),
    "request_accepts": (30, D),
    "request_blocks": (2, H),
    "request_impressions": (400, D),
    "request_sends": (120, H),
    "request_spam_rate": (4, H),
    "story_clicks": (70, H),
    "story_comments": (8, H),
    "story_impressions": (3000, H),
    "story_likes": (45, H),
    "story_publishes": (150, H),
    "story_spam_rate": (2, H),
    "structured_request_accepts": (20, D),
    "structured_request_impressions": (260, D),
    "structured_request_sends": (90, D),
    "total_referrals": (210, H),
}
_RATES = {"api_avg_request_time", "api_error_rate_by_method"} | {
    m for m in METRICS if m.endswith("_rate")
}
_DAILY_ONLY = {m for m in METRICS if m.startswith("facebook_features_")}
_LIFETIME_ONLY = {"facebook_login_total_users"}
BREAKDOWN_VALUES: dict[str, tuple[str, ...]] = {
    "country": ("US", "BR", "IN", "GB", "DE", "MX"),
    "client": ("ios", "android", "web", "mobile_web"),
    "auth_state": ("1", "0"),
    "age": ("25-34", "18-24", "35-44", "45-54", "55+"),
    "gender": ("female", "male", "unknown"),
    "locale": ("en_US", "pt_BR", "es_LA", "de_DE"),
    "sponsored": ("0", "1"),
    "device_os": ("Android", "iOS", "Windows"),
    "acquisition_source": (
        "facebook_organic",
        "facebook_ads",
        "instagram_ads",
        "audience_network",
        "other",
    ),
}
GENERIC_BREAKDOWNS = (
    "action_type",
    "destination",
    "object_type",
    "acquisition_source_l1",
    "acquisition_source_l2",
    "acquisition_source_l3",
    "ref",
    "label_cohort",
    *(f"app_event_parameter{i}" for i in range(1, 11)),
    "short_version_code",
    "ui_element",
    "sdk_version",
    "device_model",
    "app_name",
    "app_version",
)


def breakdown_values(name: str) -> tuple[str, ...]:
    """The values a breakdown takes in the simulator."""
    if name in BREAKDOWN_VALUES:
        return BREAKDOWN_VALUES[name]
    return (f"{name}_1", f"{name}_2", f"{name}_3")


def supported_periods(metric: str) -> tuple[str, ...]:
    """The periods the simulator accepts for ``metric`` (see the module docstring)."""
    if metric in _LIFETIME_ONLY:
        return ("lifetime",)
    if metric in _DAILY_ONLY:
        return ("daily",)
    hourly = ("mins_15", "hourly") if METRICS[metric][1] else ()
    return (*hourly, "daily", "weekly", "monthly", "days_28", "range")


# -- values ------------------------------------------------------------------------------


def _share(world: WorldView, metric: str, breakdowns: dict[str, str] | None) -> float:
    result = 1.0
    for name, value in sorted((breakdowns or {}).items()):
        result *= weights(world, ("app", metric, name), breakdown_values(name)).get(value, 0.0)
    return result


def _finish(metric: str, raw: float, aggregate_by: str | None) -> int | float:
    agg = (aggregate_by or "COUNT").upper()
    value = raw * AGGREGATIONS.get(agg, 1.0)
    if metric in _RATES or metric.startswith("payments_") or agg in _FLOAT_AGGREGATIONS:
        return round(value, 2)
    return round(value)


def point_value(
    world: WorldView,
    metric: str,
    period: str,
    time: datetime,
    *,
    breakdowns: dict[str, str] | None = None,
    aggregate_by: str | None = None,
    event_name: str | None = None,
    until: datetime | None = None,
) -> int | float:
    """The value of the data point of ``metric``/``period`` whose ``time`` is ``time``
    (``until`` is the end of a ``range`` query)."""
    base = METRICS[metric][0] * _share(world, metric, breakdowns)
    key: tuple[object, ...] = ("app", metric, event_name or "")
    if period == "lifetime":
        raw = growing(base, time, per_day=GROWTH_PER_DAY, epoch=world.growth_epoch)
    elif period in ("hourly", "mins_15"):
        end = pacific_midnight_days_before(time, -1)
        noise = 0.8 + 0.4 * unit_hash(world.seed, *key, time.isoformat())
        raw = daily(world, key, base, end) / 24 * daily_rhythm(time) * noise
        raw /= 4 if period == "mins_15" else 1
    elif period == "range":
        assert until is not None, "a range value needs the query's until"
        raw = sum(daily(world, key, base, end) for end in pacific_day_ends(time, until))
    else:
        end = pacific_midnight_days_before(time, -1)
        days = DAYS[period]
        raw = rolling(world, key, base, end, days)
        if metric in _RATES:
            raw /= days
    return _finish(metric, raw, aggregate_by)


def app_field_value(world: WorldView, name: str) -> Any:
    """An app node field now (ground truth); active-user counts are numeric strings."""
    now = world.now_q()
    dau = growing(1200, now, per_day=GROWTH_PER_DAY, epoch=world.growth_epoch)
    dau *= 0.95 + 0.05 * daily_rhythm(now)
    return {
        "id": world.app_id,
        "name": world.app_name,
        "category": "Business",
        "link": f"https://www.facebook.com/games/?app_id={world.app_id}",
        "namespace": "collectord-demo",
        "company": "Collectord Demo",
        "daily_active_users": str(round(dau)),
        "weekly_active_users": str(round(dau * 2.6)),
        "monthly_active_users": str(round(dau * 6.5)),
        "daily_active_users_rank": 48213,
        "monthly_active_users_rank": 51877,
    }[name]
