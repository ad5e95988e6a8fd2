"""Meta's rules, decided once: what an answer of the Graph API means.

:func:`classify_error` reads Meta's error envelope (docs/meta-facts.md 9): the
``code``, ``error_subcode``, ``is_transient`` and, where Meta leaves no other sign, the
message decide the class and the :class:`~collectord.errors.Outcome` (the table is
:func:`outcome_of`), never the HTTP status alone. Nothing outside this module reads a
code, a subcode or a message to decide what to do. :func:`scrub` masks tokens in any text
before it reaches a log line or an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from collectord.errors import (
    AuthError,
    AuthKind,
    BadResponseError,
    GraphError,
    InvalidRequestError,
    ObjectNotFoundError,
    Outcome,
    PermissionDeniedError,
    ReduceDataError,
    ServerError,
    ThrottledError,
)
from collectord.graph.jsontext import load_json
from collectord.graph.usage import buc_object_id, clamp_wait, header_value, regain_seconds
from collectord.secret import Secret, scrub

#: Content types that are never Meta's JSON (Meta sends ``application/json`` and, on
#: old paths, ``text/javascript``); any type ending in ``html`` or ``xml`` is refused too.
NOT_JSON_TYPES: frozenset[str] = frozenset({"text/html", "text/xml", "application/xml"})

#: Rate-limit codes (docs/meta-facts.md 7.3): Meta says stop calling once one is seen.
THROTTLE_CODES: frozenset[int] = frozenset({4, 17, 32, 341, 368, 613, *range(80000, 80015)})
#: Throttles of the whole app rather than of one token's budget.
APP_THROTTLE_CODES: frozenset[int] = frozenset({4, 341})
#: "User request limit reached": the budget of the token's user.
USER_THROTTLE_CODE = 17
#: "Page request limit reached": the budget of one Page.
PAGE_THROTTLE_CODE = 32
AUTH_CODES: frozenset[int] = frozenset({190, 102, 104})
#: 3000 and 3003 are App Insights' "not owned by the querying app" and "requires app admin
#: privileges".
PERMISSION_CODES: frozenset[int] = frozenset({3, 10, 3000, 3003, *range(200, 300)})
INVALID_CODES: frozenset[int] = frozenset({100, 2500, 3001})
SERVER_CODES: frozenset[int] = frozenset({1, 2})
#: Meta's "An unknown error has occurred" (and "Please reduce the amount of data ...").
UNKNOWN_ERROR_CODE = 1
#: Code 100 with this subcode: the object does not exist or cannot be loaded.
OBJECT_NOT_FOUND_SUBCODE = 33
#: Code 100 with this subcode: Instagram media from before the business conversion.
BEFORE_CONVERSION_SUBCODE = 2108006

#: Which ``X-Business-Use-Case-Usage`` ``type`` each BUC throttle code belongs to.
BUC_TYPES: Mapping[int, str] = {
    80000: "ads_insights",
    80001: "pages",
    80002: "instagram",
    80003: "custom_audience",
    80004: "ads_management",
    80005: "leadgen",
    80006: "messenger",
}

#: What each ``error_subcode`` of an auth error (190, 102) means. Evidence: Meta's
#: "Handling Errors" guide (developers.facebook.com/docs/graph-api/guides/error-handling),
#: table "Authentication Error Subcodes": 458 App Not Installed, 459 User Checkpointed,
#: 460 Password Changed, 463 Expired, 464 Unconfirmed User, 467 Invalid access token
#: ("access token has expired, been revoked, or is otherwise invalid"); Meta's older error
#: reference adds 461 (app reinstalled), 462 (stale session), 465 (invalid user), 466
#: (invalidated through the API) and 468 (app unused for a long time); 492 (the user behind
#: a Page token lost their Page role) is in docs/meta-facts.md 9.2 and 10.1. An unconfirmed
#: user (464) must act on facebook.com, like a checkpointed one. Without a subcode (or with
#: another one) the token is simply invalid (AuthKind.INVALID).
AUTH_SUBCODES: Mapping[int, AuthKind] = {
    458: AuthKind.APP_NOT_INSTALLED,
    459: AuthKind.CHECKPOINT,
    460: AuthKind.PASSWORD_CHANGED,
    461: AuthKind.SESSION_INVALID,
    462: AuthKind.SESSION_INVALID,
    463: AuthKind.EXPIRED,
    464: AuthKind.CHECKPOINT,
    465: AuthKind.SESSION_INVALID,
    466: AuthKind.SESSION_INVALID,
    467: AuthKind.SESSION_INVALID,
    468: AuthKind.EXPIRED,
    492: AuthKind.PAGE_ROLE_LOST,
}
#: Permission codes that mean the token lacks a permission (docs/meta-facts.md 9.2): on the
#: source's own object, a new token is needed. 3000/3003 (App Insights: another app's, or
#: admin rights) are not among them: they are fixed in the config, not with a token.
REVOKED_PERMISSION_CODES: frozenset[int] = frozenset({3, 10, *range(200, 300)})

#: Words of Meta's messages that tell an unsupported metric from an unknown one.
_UNSUPPORTED_WORDS = (
    "not supported",
    "no longer supported",
    "does not support",
    "unsupported",
    "nonexisting",
)
_REDUCE_DATA_WORDS = "reduce the amount of data"
#: Code 100 naming the proof ("Invalid appsecret_proof provided in the API argument",
#: "API calls from the server require an appsecret_proof argument"): a wrong app secret
#: or clock, not a bad metric.
_PROOF_WORDS = ("appsecret_proof", "appsecret_time")


def is_breakdown_call(params: Mapping[str, Any] | None) -> bool:
    """True for a request of one metric with a breakdown (``breakdown=``,
    ``breakdowns[n]=``): the request Meta answers code 1 when the breakdown is unsupported."""
    if not params:
        return False
    breakdown = any(k == "breakdown" or str(k).startswith("breakdowns[") for k in params)
    metric = params.get("metric")
    single = metric is None or (isinstance(metric, str) and "," not in metric)
    if isinstance(metric, list | tuple):
        single = len(metric) == 1
    return breakdown and single


def outcome_of(
    code: int | None,
    subcode: int | None,
    message: str,
    *,
    transient: bool | None = None,
    http_status: int = 0,
    breakdown: bool = False,
) -> Outcome:
    """The one table of what Meta's envelope means (see the module docstring).

    ``breakdown`` says the request was one metric with a breakdown
    (:func:`is_breakdown_call`): Meta's "unknown error" to it means the breakdown is not
    supported (docs/meta-facts.md 5.3, 6.3).
    """
    text = message.lower()
    if code in THROTTLE_CODES:
        return Outcome.THROTTLED
    if code in AUTH_CODES or (code == 100 and any(w in text for w in _PROOF_WORDS)):
        return Outcome.AUTH
    if code == 100 and subcode == OBJECT_NOT_FOUND_SUBCODE:
        return Outcome.OBJECT_GONE
    if subcode == BEFORE_CONVERSION_SUBCODE:
        return Outcome.BEFORE_CONVERSION
    if code == 10 and ("viewers" in text or "permission" not in text):
        # "(#10) Not enough viewers for the media to show insights"; a real permission
        # error of code 10 always says "permission"
        return Outcome.TOO_FEW_VIEWERS
    if code in PERMISSION_CODES:
        return Outcome.PERMISSION
    if _REDUCE_DATA_WORDS in text:
        return Outcome.REDUCE_DATA
    if code in INVALID_CODES:
        if any(w in text for w in _UNSUPPORTED_WORDS):
            return Outcome.METRIC_UNSUPPORTED
        return Outcome.INVALID_METRIC
    if code == UNKNOWN_ERROR_CODE and breakdown:
        return Outcome.BREAKDOWN_UNSUPPORTED
    if code in SERVER_CODES or transient or (code is None and http_status >= 500):
        return Outcome.SERVER
    return Outcome.OTHER


def auth_kind(code: int | None, subcode: int | None, message: str) -> AuthKind:
    """What an :data:`Outcome.AUTH <collectord.errors.Outcome.AUTH>` answer means."""
    if code == 100:
        return AuthKind.APPSECRET_PROOF
    if subcode is None:
        return AuthKind.INVALID
    return AUTH_SUBCODES.get(subcode, AuthKind.INVALID)


def throttle_budget(code: int | None, headers: Mapping[str, str] | None) -> str:
    """The budget a throttle code says ran out (see
    :class:`~collectord.errors.ThrottledError`), with the business object id from the
    ``X-Business-Use-Case-Usage`` header when it names one."""
    if code in APP_THROTTLE_CODES:
        return "app"
    if code == USER_THROTTLE_CODE:
        return "user"
    if code == PAGE_THROTTLE_CODE:
        page = buc_object_id(headers, "pages")
        return f"page:{page}" if page else "page"
    buc_type = BUC_TYPES.get(code) if code is not None else None
    if buc_type is not None:
        owner = buc_object_id(headers, buc_type)
        return f"{buc_type}:{owner}" if owner else buc_type
    return "token"


def _as_int(value: Any) -> int | None:
    """Meta's code or subcode as an int (a number or a string of ASCII digits, at most 18
    of them); anything else is no code."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        digits = value.strip().removeprefix("-")
        if 0 < len(digits) <= 18 and digits.isascii() and digits.isdigit():
            return int(value.strip())
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _retry_after(code: int, headers: Mapping[str, str] | None) -> float | None:
    """Seconds until a throttle lifts: BUC ``estimated_time_to_regain_access``, else
    ``Retry-After`` (seconds only); at most
    :data:`~collectord.graph.usage.MAX_REGAIN_SECONDS`."""
    seconds = regain_seconds(headers, buc_type=BUC_TYPES.get(code))
    if seconds is not None:
        return seconds
    raw = header_value(headers, "Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw.strip()[:64])
    except ValueError:
        return None
    return clamp_wait(value)


def classify_error(
    body: Mapping[str, Any] | None,
    http_status: int,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str | Secret | None] = (),
) -> GraphError:
    """The typed error for one answer of the Graph API.

    ``body`` is the decoded JSON answer, or ``None`` when the answer was not JSON (an HTML
    error page, an empty or torn body), which gives :class:`BadResponseError` whatever the
    status. With Meta's envelope ``{"error": {...}}`` the outcome comes from
    :func:`outcome_of` and the class from the code family (docs/meta-facts.md 9.2);
    without one a 5xx is a :class:`ServerError` and anything else a
    :class:`BadResponseError` (not what Meta answers). ``headers`` give a throttle's ``budget`` and ``retry_after``;
    ``secrets`` are masked in the message.
    """
    if body is None:
        return BadResponseError(
            "the Graph API answered with something that is not JSON", http_status=http_status
        )
    envelope = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(envelope, Mapping):
        if http_status >= 500:
            return ServerError(
                "the Graph API failed without an error envelope", http_status=http_status
            )
        return BadResponseError(
            "the Graph API failed without an error envelope", http_status=http_status
        )

    code = _as_int(envelope.get("code"))
    subcode = _as_int(envelope.get("error_subcode"))
    transient = envelope.get("is_transient")
    transient = transient if isinstance(transient, bool) else None
    message = _as_str(envelope.get("message")) or "the Graph API reported an error"
    outcome = outcome_of(code, subcode, message, transient=transient, http_status=http_status)
    kw: dict[str, Any] = {
        "code": code,
        "subcode": subcode,
        "http_status": http_status,
        "fbtrace_id": _as_str(envelope.get("fbtrace_id")),
        "is_transient": transient,
        "user_title": _as_str(envelope.get("error_user_title")),
        "outcome": outcome,
    }
    text = scrub(message, secrets)

    if outcome is Outcome.THROTTLED:
        budget = throttle_budget(code, headers)
        return ThrottledError(text, retry_after=_retry_after(code, headers), budget=budget, **kw)
    if outcome is Outcome.AUTH:
        return AuthError(text, kind=auth_kind(code, subcode, message), **kw)
    if outcome is Outcome.REDUCE_DATA:
        return ReduceDataError(text, **kw)
    if code in PERMISSION_CODES:
        if outcome is Outcome.PERMISSION and code in REVOKED_PERMISSION_CODES:
            kw["token_kind"] = AuthKind.PERMISSION_REVOKED
        return PermissionDeniedError(text, **kw)
    if outcome is Outcome.OBJECT_GONE:
        return ObjectNotFoundError(text, **kw)
    if code in INVALID_CODES:
        return InvalidRequestError(text, **kw)
    if outcome is Outcome.SERVER:
        return ServerError(text, **kw)
    return GraphError(text, **kw)


def answer_to(error: GraphError, params: Mapping[str, Any] | None) -> GraphError:
    """``error`` as the answer to a request with these query ``params``: Meta's unknown
    error (code 1) to a one-metric breakdown request (:func:`is_breakdown_call`) means
    :data:`~collectord.errors.Outcome.BREAKDOWN_UNSUPPORTED` (still retried first, since
    it is Meta's answer to an outage too). Any other error is returned as it is."""
    if error.code is None or not is_breakdown_call(params):
        return error
    outcome = outcome_of(
        error.code,
        error.subcode,
        error.message,
        transient=error.is_transient,
        http_status=error.http_status or 0,
        breakdown=True,
    )
    if outcome is Outcome.BREAKDOWN_UNSUPPORTED:
        error.outcome = outcome
    return error


def decode_batch_element(
    answer: Any,
    *,
    secrets: Iterable[str | Secret | None] = (),
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any] | GraphError | None:
    """One element of a batch answer (docs/meta-facts.md 8): its decoded ``body`` (a
    JSON string itself), its classified error, or ``None`` for a ``null`` element (not
    completed). ``headers`` are the element's own headers (``include_headers``), which
    give a throttle its budget and regain time."""
    if answer is None:
        return None
    if not isinstance(answer, Mapping):
        return BadResponseError("a batch element is not a JSON object")
    code = answer.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else 0
    body: Any = answer.get("body")
    if isinstance(body, str):
        try:
            body = load_json(body)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return classify_error(None, status, secrets=secrets)
    if status >= 400 or isinstance(body.get("error"), Mapping):
        return classify_error(body, status, headers=headers, secrets=secrets)
    return body


def _content_type(headers: Mapping[str, str] | None) -> str:
    return (header_value(headers, "Content-Type") or "").split(";")[0].strip().lower()


def decode_answer(
    raw: bytes,
    http_status: int,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str | Secret | None] = (),
    where: str = "",
) -> Any:
    """The decoded JSON of one HTTP answer; raises its :func:`classify_error` error when it
    is not JSON (an empty or torn body, an HTML page, a content type that is not JSON,
    nesting deeper than :data:`~collectord.graph.jsontext.MAX_DEPTH`), has a status of 400 or more, or carries an
    error envelope. ``where`` (a method and a scrubbed path) names the call in the message
    of a :class:`~collectord.errors.BadResponseError`."""
    prefix = f"{where}: " if where else ""
    kind = _content_type(headers)
    if not raw.strip():
        raise BadResponseError(f"{prefix}the answer is empty", http_status=http_status)
    if kind in NOT_JSON_TYPES or kind.endswith(("html", "xml")):
        raise BadResponseError(f"{prefix}the answer is {kind}, not JSON", http_status=http_status)
    try:
        body: Any = load_json(raw)
    except ValueError as exc:
        raise BadResponseError(
            f"{prefix}the answer is not JSON ({exc.__class__.__name__}: {str(exc)[:80]})",
            http_status=http_status,
        ) from None
    has_envelope = isinstance(body, Mapping) and isinstance(body.get("error"), Mapping)
    if http_status >= 400 or has_envelope:
        envelope = body if isinstance(body, Mapping) else {}
        raise classify_error(envelope, http_status, headers=headers, secrets=secrets)
    return body


def meta_error(
    message: str,
    *,
    code: int,
    subcode: int | None = None,
    http_status: int = 400,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, Any] | None = None,
) -> GraphError:
    """The typed error for Meta's envelope with these fields: what the Graph client raises
    for such an answer (to a request with query ``params``, when given). For test doubles,
    which must answer as Meta does."""
    envelope: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        envelope["error_subcode"] = subcode
    return answer_to(classify_error({"error": envelope}, http_status, headers=headers), params)
