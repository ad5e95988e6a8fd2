"""Classifying Graph API answers into typed errors, and scrubbing secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest

from collectord.errors import (
    AuthError,
    BadResponseError,
    GraphError,
    InvalidRequestError,
    ObjectNotFoundError,
    PermissionDeniedError,
    ReduceDataError,
    ServerError,
    ThrottledError,
)
from collectord.graph.answers import classify_error, decode_answer, decode_batch_element, scrub
from collectord.secret import MASK, Secret


def err(code: int | None, message: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": message, "type": "OAuthException", **extra}
    if code is not None:
        body["code"] = code
    body.setdefault("fbtrace_id", "AK5w64sspf_nMUi-7r8eg31")
    return {"error": body}


# Envelopes as Meta sends them (docs/meta-facts.md 7.3, 9), with the HTTP status usually seen.
CASES: list[tuple[str, int, dict[str, Any] | None, type[GraphError]]] = [
    (
        "bad metric",
        400,
        err(100, "(#100) The value must be a valid insights metric"),
        InvalidRequestError,
    ),
    (
        "metric_type",
        400,
        err(
            100,
            "(#100) The following metrics (views) should be specified with parameter metric_type=total_value",
        ),
        InvalidRequestError,
    ),
    (
        "object gone",
        400,
        {
            "error": {
                "message": "Unsupported get request. Object with ID '17841' does not exist",
                "type": "GraphMethodException",
                "code": 100,
                "error_subcode": 33,
            }
        },
        ObjectNotFoundError,
    ),
    (
        "pre-conversion media",
        400,
        err(100, "(#100) Media posted before business account conversion", error_subcode=2108006),
        InvalidRequestError,
    ),
    ("unknown path", 400, err(2500, "Unknown path components: /v99.0"), InvalidRequestError),
    (
        "no metric",
        400,
        err(3001, "No metric was specified to be fetched", error_subcode=1504028),
        InvalidRequestError,
    ),
    (
        "expired token",
        400,
        err(190, "Error validating access token: Session has expired", error_subcode=463),
        AuthError,
    ),
    (
        "password changed",
        400,
        err(190, "Error validating access token", error_subcode=460),
        AuthError,
    ),
    (
        "lost page role",
        400,
        err(190, "Error validating access token", error_subcode=492),
        AuthError,
    ),
    (
        "invalid token",
        400,
        err(190, "Invalid OAuth access token - Cannot parse access token"),
        AuthError,
    ),
    ("session", 400, err(102, "Session key invalid or no longer valid"), AuthError),
    (
        "token required",
        400,
        err(104, "An access token is required to request this resource."),
        AuthError,
    ),
    (
        "capability",
        403,
        err(3, "(#3) Application does not have the capability"),
        PermissionDeniedError,
    ),
    (
        "permission",
        403,
        err(10, "(#10) Not enough viewers for the media to show insights"),
        PermissionDeniedError,
    ),
    ("permissions error", 403, err(200, "(#200) Permissions error"), PermissionDeniedError),
    ("user not visible", 403, err(210, "(#210) User not visible"), PermissionDeniedError),
    (
        "app limit",
        403,
        err(4, "(#4) Application request limit reached", is_transient=True),
        ThrottledError,
    ),
    (
        "user limit",
        400,
        err(17, "(#17) User request limit reached", error_subcode=2446079),
        ThrottledError,
    ),
    ("page limit", 400, err(32, "(#32) Page request limit reached"), ThrottledError),
    ("app limit 341", 400, err(341, "(#341) Application limit reached"), ThrottledError),
    (
        "blocked",
        400,
        err(368, "(#368) Temporarily blocked for policies violations"),
        ThrottledError,
    ),
    (
        "custom limit",
        400,
        err(613, "(#613) Calls to this api have exceeded the rate limit.", error_subcode=1996),
        ThrottledError,
    ),
    (
        "pages buc",
        400,
        err(80001, "(#80001) There have been too many calls to this Page account."),
        ThrottledError,
    ),
    (
        "ig buc",
        400,
        err(80002, "(#80002) There have been too many calls to this Instagram account."),
        ThrottledError,
    ),
    ("catalog buc", 400, err(80014, "(#80014) too many calls"), ThrottledError),
    ("unknown", 500, err(1, "An unknown error occurred", is_transient=False), ServerError),
    (
        "reduce data",
        500,
        err(1, "Please reduce the amount of data you're asking for, then retry your request"),
        ReduceDataError,
    ),
    ("outage", 503, err(2, "Service temporarily unavailable", is_transient=True), ServerError),
    ("unknown transient", 400, err(9007, "Something odd", is_transient=True), ServerError),
    (
        "app not owned",
        400,
        err(
            3000,
            "(#3000) Reading insights of a Page, business, app, domain or event source group "
            "not owned by the querying user or application",
        ),
        PermissionDeniedError,
    ),
    (
        "app admin required",
        400,
        err(3003, "(#3003) Requires app admin privileges"),
        PermissionDeniedError,
    ),
    ("duplicate post", 400, err(506, "Duplicate status message"), GraphError),
    ("5xx without envelope", 502, {"message": "proxy"}, ServerError),
    ("5xx without code", 500, err(None, "internal"), ServerError),
    ("html page", 502, None, BadResponseError),
    ("html with 200", 200, None, BadResponseError),
    ("4xx without envelope", 404, {"unexpected": True}, BadResponseError),
]


@pytest.mark.parametrize(("name", "status", "body", "cls"), CASES, ids=[c[0] for c in CASES])
def test_classify_error(name: str, status: int, body: dict[str, Any] | None, cls: type) -> None:
    error = classify_error(body, status)
    assert type(error) is cls
    assert error.http_status == status


def test_http_status_alone_does_not_decide() -> None:
    # a throttle seen with 403 is not a permission error; an auth error with 500 is auth
    assert type(classify_error(err(4, "(#4) limit"), 403)) is ThrottledError
    assert type(classify_error(err(190, "expired"), 500)) is AuthError
    assert type(classify_error(err(100, "bad"), 500)) is InvalidRequestError


def test_reasons_match_the_metric_labels() -> None:
    assert classify_error(err(80001, "x"), 400).reason == "throttled"
    assert classify_error(err(190, "x"), 400).reason == "auth"
    assert classify_error(err(10, "x"), 403).reason == "permission"
    assert classify_error(err(3000, "x"), 400).reason == "permission"
    assert classify_error(err(3003, "x"), 400).reason == "permission"
    assert not classify_error(err(3003, "x"), 400).retryable, "no retry storm on a denial"
    assert classify_error(err(100, "x"), 400).reason == "invalid_metric"
    assert classify_error(err(100, "x", error_subcode=33), 400).reason == "skipped_object"
    assert classify_error(err(2, "x"), 500).reason == "server"
    assert classify_error(None, 502).reason == "bad_response"
    assert classify_error(err(506, "x"), 400).reason == "other"


def test_envelope_fields_are_kept() -> None:
    body = err(
        190,
        "Error validating access token: The user has not authorized application 123.",
        error_subcode=458,
        error_user_title="App not installed",
        is_transient=False,
    )
    error = classify_error(body, 400)
    assert (error.code, error.subcode, error.http_status) == (190, 458, 400)
    assert error.fbtrace_id == "AK5w64sspf_nMUi-7r8eg31"
    assert error.user_title == "App not installed"
    assert error.is_transient is False
    assert error.message.startswith("Error validating access token")
    assert "code=190" in str(error)
    assert "subcode=458" in str(error)


def test_throttle_retry_after_from_the_matching_buc_entry() -> None:
    headers = {
        "x-business-use-case-usage": json.dumps(
            {
                "111": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 5}],
                "222": [
                    {"type": "instagram", "call_count": 100, "estimated_time_to_regain_access": 30}
                ],
            }
        )
    }
    pages = classify_error(err(80001, "(#80001) too many calls"), 400, headers=headers)
    instagram = classify_error(err(80002, "(#80002) too many calls"), 400, headers=headers)
    app = classify_error(err(4, "(#4) limit"), 403, headers=headers)
    assert isinstance(pages, ThrottledError)
    assert isinstance(instagram, ThrottledError)
    assert isinstance(app, ThrottledError)
    assert pages.retry_after == 300.0
    assert instagram.retry_after == 1800.0
    assert app.retry_after == 1800.0  # no BUC type for code 4: the longest wait


def test_throttle_retry_after_from_retry_after_or_unknown() -> None:
    with_header = classify_error(err(17, "(#17) limit"), 400, headers={"Retry-After": "120"})
    zero_buc = {
        "X-Business-Use-Case-Usage": '{"1": [{"type": "pages", "estimated_time_to_regain_access": 0}]}'
    }
    unknown = classify_error(err(80001, "limit"), 400, headers=zero_buc)
    date = classify_error(
        err(17, "limit"), 400, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}
    )
    assert isinstance(with_header, ThrottledError)
    assert with_header.retry_after == 120.0
    assert isinstance(unknown, ThrottledError)
    assert unknown.retry_after is None
    assert isinstance(date, ThrottledError)
    assert date.retry_after is None


def test_classified_messages_are_scrubbed() -> None:
    token = "EAAsecretToken12345"
    body = err(
        190, f"Bad token {token} in https://h/me?access_token={token}&appsecret_proof=abc123"
    )
    error = classify_error(body, 400, secrets=[Secret(token)])
    assert token not in str(error)
    assert "abc123" not in str(error)
    assert MASK in str(error)


# -- decoding answers --------------------------------------------------------------------


def test_decode_answer_returns_json_and_raises_errors() -> None:
    assert decode_answer(b'{"id": "1"}', 200) == {"id": "1"}
    with pytest.raises(BadResponseError):
        decode_answer(b"<html>oops</html>", 200)
    with pytest.raises(BadResponseError):
        decode_answer(b"", 502)
    with pytest.raises(AuthError):
        decode_answer(json.dumps(err(190, "expired")).encode(), 400)
    with pytest.raises(InvalidRequestError):  # an envelope on a 200 still is an error
        decode_answer(json.dumps(err(100, "bad")).encode(), 200)
    with pytest.raises(ServerError):
        decode_answer(b"[]", 503)


def test_decode_batch_element() -> None:
    ok = {"code": 200, "body": json.dumps({"data": [1]})}
    bad = {"code": 400, "body": json.dumps(err(100, "(#100) invalid"))}
    torn = {"code": 200, "body": '{"data": ['}
    assert decode_batch_element(ok) == {"data": [1]}
    assert decode_batch_element(None) is None
    assert isinstance(decode_batch_element(bad), InvalidRequestError)
    assert isinstance(decode_batch_element(torn), BadResponseError)
    assert isinstance(decode_batch_element("garbage"), BadResponseError)
    assert decode_batch_element({"code": 200, "body": {"id": "x"}}) == {"id": "x"}


# -- scrub -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ("https://graph.facebook.com/v26.0/me?access_token=EAAB123xyz&fields=id", "EAAB123xyz"),
        ("/v26.0/me?fields=id&appsecret_proof=deadbeef99&appsecret_time=1", "deadbeef99"),
        (
            "grant_type=fb_exchange_token&client_secret=abcSECRET&fb_exchange_token=EAAshort",
            "abcSECRET",
        ),
        ("grant_type=fb_exchange_token&client_id=1&fb_exchange_token=EAAshort1", "EAAshort1"),
        ("/debug_token?input_token=EAAinspected&access_token=1%7Csecret", "EAAinspected"),
        ('{"access_token": "EAAjson123", "token_type": "bearer"}', "EAAjson123"),
        ("ACCESS_TOKEN=EAAupper&x=1", "EAAupper"),
        ("access_token%3DEAAencoded%26x", "EAAencoded"),
    ],
)
def test_scrub_masks_secret_parameters(text: str, hidden: str) -> None:
    out = scrub(text)
    assert hidden not in out
    assert MASK in out


def test_scrub_keeps_the_rest() -> None:
    text = "GET /v26.0/123/insights?metric=page_views_total&access_token=EAAx&since=17"
    assert scrub(text) == (
        f"GET /v26.0/123/insights?metric=page_views_total&access_token={MASK}&since=17"
    )


def test_scrub_masks_literal_secrets_also_url_encoded() -> None:
    app_token = "4242|app-secret"
    text = f"token {app_token} and quoted 4242%7Capp-secret and secret app-secret"
    out = scrub(text, [Secret(app_token), "app-secret", None, ""])
    assert "app-secret" not in out
    assert out.count(MASK) == 3
