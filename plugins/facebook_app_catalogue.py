"""The ``facebook_app`` catalogue: the app node's active-user fields, the App Insights
metrics with the periods each offers, and the periods, aggregations and breakdowns the
edge accepts."""

from __future__ import annotations

from collectord import MetricSpec

PREFIX = "facebook_app"
PERIODS = ("mins_15", "hourly", "daily", "weekly", "days_28", "monthly", "lifetime", "range")
AGGREGATIONS = (
    *("COUNT", "USERS", "TOPK", "SUM", "USD_SUM", "UNKNOWN_USERS"),
    *("SCORE", "MEDIAN_VALUE", "DAU", "WAU", "MAU"),
)
BREAKDOWNS = (
    *("age", "gender", "auth_state", "client", "country", "locale", "action_type"),
    *("destination", "object_type", "sponsored", "acquisition_source"),
    *("acquisition_source_l1", "acquisition_source_l2", "acquisition_source_l3"),
    *("ref", "label_cohort", *(f"app_event_parameter{i}" for i in range(1, 11))),
    *("short_version_code", "ui_element", "sdk_version", "device_model", "device_os"),
    *("app_name", "app_version"),
)

_HR = ("daily", "hourly", "range")
_R = ("daily", "range")
# App Insights metrics: (name, periods, in the default set, unit, help);
# unit "ms" is Meta's milliseconds, exported in seconds. None is in the default set: Meta shut
# the edge down with Facebook Analytics after 2021-06-30 (docs/meta-facts.md 4), so asking
# for them by default cost failing calls and "metric disabled" warnings on every start. A
# source that still gets answers lists them in ``metrics``; the active-user node fields
# (below) stay on.
_INSIGHTS: tuple[tuple[str, tuple[str, ...], bool, str, str], ...] = (
    ("api_calls", _R, False, "count", "API calls from the app."),
    ("api_errors", _R, False, "count", "API errors from the app."),
    ("api_avg_request_time", _R, False, "ms", "Average time of the app's API requests."),
    ("api_calls_by_method", ("daily",), False, "count", "Sampled API calls, by method."),
    ("api_errors_by_method", ("daily",), False, "count", "Sampled API errors, by method."),
    ("api_error_rate_by_method", ("daily",), False, "ratio", "Errors per request, by method."),
    ("app_blocks", _R, False, "count", "Blocks of the app."),
    ("app_center_initial_permission_grants", _HR, False, "count", "App Center accepts."),
    ("app_center_initial_permission_requests", _HR, False, "count", "App Center impressions."),
    *(
        (f"app_notification_{k}", _HR, False, "count", f"App-to-user notifications: {k}.")
        for k in ("clicks", "hides", "impressions", "sends", "spam_reports", "total_accepts")
    ),
    ("app_notification_unhides", _HR, False, "count", "Notifications unhidden."),
    ("app_notification_hide_rate", _HR, False, "ratio", "Notifications hidden per 10k."),
    ("app_notification_spam_rate", _HR, False, "ratio", "Notifications marked spam per 10k."),
    *(
        (f"facebook_features_{k}_active_users", ("daily",), False, "count", f"{k} active users.")
        for k in ("daily", "weekly", "monthly")
    ),
    ("facebook_login_total_users", ("lifetime",), False, "count", "Total accepts of the app."),
    ("initial_permission_grants", _R, False, "count", "Accepts from all sources."),
    *(
        (f"login_dialog_{k}_permission_{w}", _HR, False, "count", f"Login dialog: {k} {w}.")
        for k in ("initial", "additional", "publish")
        for w in ("grants", "requests")
    ),
    ("mobile_referral_installs", _HR, False, "count", "New mobile installs from referrals."),
    ("mobile_referrals", _HR, False, "count", "App launches from Facebook on mobile."),
    ("total_referrals", _HR, False, "count", "App launches from Facebook."),
    ("payments_daily_chargebacks", _R, False, "currency", "Chargeback amount."),
    ("payments_daily_refunds", _R, False, "currency", "Refund amount."),
    ("payments_daily_spend", _R, False, "currency", "Spend amount."),
    ("permission_revocations", _HR, False, "count", "Users who removed the app's permissions."),
    ("request_accepts", _R, False, "count", "Requests accepted by friends."),
    ("request_blocks", _HR, False, "count", "Requests blocked."),
    ("request_impressions", _R, False, "count", "Requests seen."),
    ("request_sends", _HR, False, "count", "Requests sent to friends."),
    ("request_spam_rate", _HR, False, "ratio", "Requests marked spam per 10k."),
    *(
        (f"story_{k}", _HR, False, "count", f"Open Graph stories: {k}.")
        for k in ("clicks", "comments", "impressions", "likes", "publishes")
    ),
    ("story_spam_rate", _HR, False, "ratio", "Open Graph story spam reports per 10k."),
    *(
        (f"structured_request_{k}", _R, False, "count", f"Structured requests: {k}.")
        for k in ("accepts", "impressions", "sends")
    ),
)


def insight(
    graph_name: str,
    periods: tuple[str, ...],
    help: str,
    *,
    default: bool = False,
    unit: str = "count",
) -> MetricSpec:
    """A daily App Insights metric; ``unit="ms"`` is Meta's milliseconds, in seconds."""
    return MetricSpec.insight(
        PREFIX, graph_name, help, cadence="daily", periods=periods, unit=unit, default=default
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec.field(PREFIX, "daily_active_users", "Daily active users (the app node's field)."),
    MetricSpec.field(PREFIX, "weekly_active_users", "Weekly active users (the app node's field)."),
    MetricSpec.field(
        PREFIX, "monthly_active_users", "Monthly active users (the app node's field)."
    ),
    *(insight(n, p, h, default=d, unit=u) for n, p, d, u, h in _INSIGHTS),
)
