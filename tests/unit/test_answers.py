"""The one table of what Meta's answers mean: class, outcome and counted reason per case,
the kind of an auth failure, the budget of a throttle, and a refused breakdown."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collectord.errors import (
    AuthError,
    AuthKind,
    GraphError,
    InvalidRequestError,
    ObjectNotFoundError,
    Outcome,
    PermissionDeniedError,
    ReduceDataError,
    ServerError,
    ThrottledError,
)
from collectord.graph.answers import answer_to, classify_error, meta_error


def envelope(code: int | None, message: str, subcode: int | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": "OAuthException"}
    if code is not None:
        error["code"] = code
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


# (case, code, subcode, message, HTTP status) -> (class, outcome, reason)
TABLE: list[tuple[str, int | None, int | None, str, int, type[GraphError], Outcome, str]] = [
    (
        "object gone",
        100,
        33,
        "Unsupported get request. Object with ID '17841' does not exist",
        400,
        ObjectNotFoundError,
        Outcome.OBJECT_GONE,
        "skipped_object",
    ),
    (
        "media before the business conversion",
        100,
        2108006,
        "Media posted before business account conversion",
        400,
        InvalidRequestError,
        Outcome.BEFORE_CONVERSION,
        "invalid_metric",
    ),
    (
        "too few viewers",
        10,
        None,
        "(#10) Not enough viewers for the media to show insights",
        400,
        PermissionDeniedError,
        Outcome.TOO_FEW_VIEWERS,
        "permission",
    ),
    (
        "permission code 3",
        3,
        None,
        "(#3) Application does not have the capability to make this API call.",
        400,
        PermissionDeniedError,
        Outcome.PERMISSION,
        "permission",
    ),
    (
        "permission code 10",
        10,
        None,
        "(#10) This endpoint requires the 'read_insights' permission",
        403,
        PermissionDeniedError,
        Outcome.PERMISSION,
        "permission",
    ),
    (
        "permission code 200",
        200,
        None,
        "(#200) Requires pages_read_engagement permission",
        403,
        PermissionDeniedError,
        Outcome.PERMISSION,
        "permission",
    ),
    (
        "permission code 299",
        299,
        None,
        "(#299) Requires extended permission",
        403,
        PermissionDeniedError,
        Outcome.PERMISSION,
        "permission",
    ),
    (
        "app not owned (3000)",
        3000,
        None,
        "(#3000) Reading insights of a Page, business, app, domain or event source group "
        "not owned by the querying user or application",
        400,
        PermissionDeniedError,
        Outcome.PERMISSION,
        "permission",
    ),
    (
        "app admin required (3003)",
        3003,
        None,
        "(#3003) Requires app admin privileges",
        400,
        PermissionDeniedError,
        Outcome.PERMISSION,
        "permission",
    ),
    (
        "metric invalid",
        100,
        None,
        "(#100) The value must be a valid insights metric",
        400,
        InvalidRequestError,
        Outcome.INVALID_METRIC,
        "invalid_metric",
    ),
    (
        "metric invalid (2500)",
        2500,
        None,
        "Unknown path components: /insights/nope",
        400,
        InvalidRequestError,
        Outcome.INVALID_METRIC,
        "invalid_metric",
    ),
    (
        "metric unsupported for the media type",
        100,
        None,
        "(#100) The metric plays is not supported for this media type",
        400,
        InvalidRequestError,
        Outcome.METRIC_UNSUPPORTED,
        "invalid_metric",
    ),
    (
        "metric no longer supported",
        100,
        None,
        "(#100) The metric impressions is no longer supported for version v22.0 and above",
        400,
        InvalidRequestError,
        Outcome.METRIC_UNSUPPORTED,
        "invalid_metric",
    ),
    (
        "nonexisting field",
        100,
        None,
        "(#100) Tried accessing nonexisting field (page_fans)",
        400,
        InvalidRequestError,
        Outcome.METRIC_UNSUPPORTED,
        "invalid_metric",
    ),
    (
        "reduce the amount of data",
        1,
        None,
        "Please reduce the amount of data you're asking for, then retry your request",
        500,
        ReduceDataError,
        Outcome.REDUCE_DATA,
        "server",
    ),
    (
        "unknown error (no breakdown)",
        1,
        None,
        "An unknown error has occurred.",
        500,
        ServerError,
        Outcome.SERVER,
        "server",
    ),
    (
        "outage",
        2,
        None,
        "Service temporarily unavailable",
        503,
        ServerError,
        Outcome.SERVER,
        "server",
    ),
    (
        "app throttle",
        4,
        None,
        "(#4) Application request limit reached",
        403,
        ThrottledError,
        Outcome.THROTTLED,
        "throttled",
    ),
    (
        "user throttle",
        17,
        None,
        "(#17) User request limit reached",
        403,
        ThrottledError,
        Outcome.THROTTLED,
        "throttled",
    ),
    (
        "instagram BUC throttle",
        80002,
        None,
        "(#80002) There have been too many calls to this Instagram account.",
        400,
        ThrottledError,
        Outcome.THROTTLED,
        "throttled",
    ),
    (
        "token expired",
        190,
        463,
        "Error validating access token: Session has expired",
        400,
        AuthError,
        Outcome.AUTH,
        "auth",
    ),
    (
        "invalid appsecret_proof",
        100,
        None,
        "Invalid appsecret_proof provided in the API argument",
        400,
        AuthError,
        Outcome.AUTH,
        "auth",
    ),
    (
        "appsecret_proof required",
        100,
        None,
        "API calls from the server require an appsecret_proof argument",
        400,
        AuthError,
        Outcome.AUTH,
        "auth",
    ),
    (
        "duplicate post",
        506,
        None,
        "Duplicate status message",
        400,
        GraphError,
        Outcome.OTHER,
        "other",
    ),
]


@pytest.mark.parametrize(
    ("case", "code", "subcode", "message", "status", "cls", "outcome", "reason"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_the_table(
    case: str,
    code: int | None,
    subcode: int | None,
    message: str,
    status: int,
    cls: type[GraphError],
    outcome: Outcome,
    reason: str,
) -> None:
    error = classify_error(envelope(code, message, subcode), status)
    assert type(error) is cls
    assert error.outcome is outcome
    assert error.reason == reason
    assert error.retryable is (cls is ServerError)


def test_every_outcome_of_meta_is_in_the_table() -> None:
    """Every outcome an envelope can mean has a row (the rest come from the transport or a
    request's context: timeouts, broken connections, bodies that are not JSON, breakdowns)."""
    from_transport = {Outcome.TIMEOUT, Outcome.NETWORK, Outcome.BAD_RESPONSE}
    from_context = {Outcome.BREAKDOWN_UNSUPPORTED}
    assert {row[6] for row in TABLE} == set(Outcome) - from_transport - from_context


@pytest.mark.parametrize(
    ("code", "subcode", "message", "kind"),
    [
        (190, 463, "Error validating access token: Session has expired", AuthKind.EXPIRED),
        (
            190,
            460,
            "The session has been invalidated because the user changed their password",
            AuthKind.PASSWORD_CHANGED,
        ),
        (
            190,
            458,
            "Error validating access token: The user has not authorized application",
            AuthKind.APP_NOT_INSTALLED,
        ),
        (
            190,
            467,
            "Error validating access token: The user is enrolled in a blocking, logged-in checkpoint",
            AuthKind.SESSION_INVALID,
        ),
        (
            190,
            464,
            "Error validating access token: Sessions for the user are not allowed because the user is not a confirmed user",
            AuthKind.CHECKPOINT,
        ),
        (
            190,
            459,
            "Error validating access token: You cannot access the app till you log in to www.facebook.com",
            AuthKind.CHECKPOINT,
        ),
        (190, None, "Invalid OAuth access token - Cannot parse access token", AuthKind.INVALID),
        (102, None, "A user access token is required to request this resource.", AuthKind.INVALID),
        (
            100,
            None,
            "Invalid appsecret_proof provided in the API argument",
            AuthKind.APPSECRET_PROOF,
        ),
    ],
)
def test_auth_kind(code: int, subcode: int | None, message: str, kind: AuthKind) -> None:
    error = classify_error(envelope(code, message, subcode), 400)
    assert isinstance(error, AuthError)
    assert error.kind is kind
    assert error.outcome is Outcome.AUTH


def buc(object_id: str, kind: str, minutes: int) -> dict[str, str]:
    entry = {"type": kind, "call_count": 100, "estimated_time_to_regain_access": minutes}
    return {"X-Business-Use-Case-Usage": json.dumps({object_id: [entry]})}


@pytest.mark.parametrize(
    ("code", "headers", "budget", "retry_after"),
    [
        (4, None, "app", None),
        (341, None, "app", None),
        (17, None, "user", None),
        (32, buc("105000000000001", "pages", 5), "page:105000000000001", 300.0),
        (32, None, "page", None),
        (80001, buc("105000000000001", "pages", 2), "pages:105000000000001", 120.0),
        (80002, buc("17841400000000001", "instagram", 10), "instagram:17841400000000001", 600.0),
        (80002, None, "instagram", None),
        (613, {"Retry-After": "30"}, "token", 30.0),
    ],
)
def test_throttle_budget_and_wait(
    code: int, headers: dict[str, str] | None, budget: str, retry_after: float | None
) -> None:
    error = classify_error(envelope(code, f"(#{code}) limit reached"), 400, headers=headers)
    assert isinstance(error, ThrottledError)
    assert error.budget == budget
    assert error.retry_after == retry_after


def test_unknown_error_to_a_one_metric_breakdown_means_the_breakdown_is_unsupported() -> None:
    params = {"metric": "reach", "breakdown": "follow_type"}
    error = meta_error("An unknown error has occurred.", code=1, http_status=500, params=params)
    assert isinstance(error, ServerError), "still retried: it is Meta's answer to outages too"
    assert error.outcome is Outcome.BREAKDOWN_UNSUPPORTED
    app = {"breakdowns[0]": "country"}  # App Insights: the metric is in the path
    assert answer_to(meta_error("An unknown error has occurred.", code=1), app).outcome is (
        Outcome.BREAKDOWN_UNSUPPORTED
    )


@pytest.mark.parametrize(
    "params",
    [
        None,
        {"metric": "reach"},
        {"metric": "reach,views", "breakdown": "follow_type"},
    ],
)
def test_unknown_error_elsewhere_stays_a_server_failure(params: dict[str, str] | None) -> None:
    error = meta_error("An unknown error has occurred.", code=1, params=params)
    assert error.outcome is Outcome.SERVER


def test_other_answers_to_a_breakdown_keep_their_outcome() -> None:
    params = {"metric": "reach", "breakdown": "follow_type"}
    error = meta_error("(#100) The metric reach is not supported", code=100, params=params)
    assert error.outcome is Outcome.METRIC_UNSUPPORTED
