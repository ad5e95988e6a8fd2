"""Turning what the Graph API answered into typed errors, and keeping secrets out of them.

:func:`classify_error` reads Meta's error envelope (graph-api.md 9): the ``code``,
``error_subcode`` and ``is_transient`` decide the class, never the HTTP status alone.
:func:`scrub` masks tokens in any text before it reaches a log line or an exception.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from collectord.errors import (
    AuthError,
    BadResponseError,
    GraphError,
    InvalidRequestError,
    ObjectNotFoundError,
    Outcome,
    PermissionDeniedError,
    ServerError,
    ThrottledError,
)
from collectord.graph.usage import header_value, regain_seconds
from collectord.secret import Secret, scrub

#: Rate-limit codes (graph-api.md 7.3): Meta says stop calling once one is seen.
THROTTLE_CODES: frozenset[int] = frozenset({4, 17, 32, 341, 368, 613, *range(80000, 80015)})
#: Throttles of the whole app rather than of one token's budget.
APP_THROTTLE_CODES: frozenset[int] = frozenset({4, 341})
AUTH_CODES: frozenset[int] = frozenset({190, 102, 104})
#: 3000 and 3003 are App Insights' "not owned by the querying app" and "requires app admin
#: privileges" (seeds/002).
PERMISSION_CODES: frozenset[int] = frozenset({3, 10, 3000, 3003, *range(200, 300)})
INVALID_CODES: frozenset[int] = frozenset({100, 2500, 3001})
SERVER_CODES: frozenset[int] = frozenset({1, 2})
#: Code 100 with this subcode: the object does not exist or cannot be loaded.
OBJECT_NOT_FOUND_SUBCODE = 33

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


#: Code 100 with this subcode: Instagram media from before the business conversion.
BEFORE_CONVERSION_SUBCODE = 2108006
#: Words of Meta's messages that tell an unsupported metric from an unknown one.
_UNSUPPORTED_WORDS = (
    "not supported",
    "no longer supported",
    "does not support",
    "unsupported",
    "nonexisting",
)
_REDUCE_DATA_WORDS = "reduce the amount of data"


def outcome_of(code: int | None, subcode: int | None, message: str) -> Outcome | None:
    """The outcome Meta's envelope means beyond its class, or None for the class default.

    One table for what used to be decided in plugins: subcodes about the object, the
    too-few-viewers answer to a story's insights, "reduce the amount of data", and an
    unsupported metric told from an unknown one by Meta's words.
    """
    text = message.lower()
    if code == 100 and subcode == OBJECT_NOT_FOUND_SUBCODE:
        return Outcome.OBJECT_GONE
    if subcode == BEFORE_CONVERSION_SUBCODE:
        return Outcome.BEFORE_CONVERSION
    if code == 10 and ("viewers" in text or "permission" not in text):
        # "(#10) Not enough viewers for the media to show insights"; a real permission
        # error of code 10 always says "permission"
        return Outcome.TOO_FEW_VIEWERS
    if _REDUCE_DATA_WORDS in text:
        return Outcome.REDUCE_DATA
    if code in INVALID_CODES and any(w in text for w in _UNSUPPORTED_WORDS):
        return Outcome.METRIC_UNSUPPORTED
    return None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _retry_after(code: int, headers: Mapping[str, str] | None) -> float | None:
    """Seconds until a throttle lifts: BUC ``estimated_time_to_regain_access``, else
    ``Retry-After`` (seconds only)."""
    seconds = regain_seconds(headers, buc_type=BUC_TYPES.get(code))
    if seconds is not None:
        return seconds
    raw = header_value(headers, "Retry-After")
    if raw is None:
        return None
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    return value if value > 0 else None


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
    status. With Meta's envelope ``{"error": {...}}`` the class follows ``code``,
    ``error_subcode`` and ``is_transient`` (graph-api.md 9.2); without one a 5xx is a
    :class:`ServerError` and anything else a plain :class:`GraphError`. ``headers`` give a
    throttle's ``retry_after``; ``secrets`` are masked in the message.
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
        return GraphError("the Graph API answered with an unexpected body", http_status=http_status)

    code = _as_int(envelope.get("code"))
    subcode = _as_int(envelope.get("error_subcode"))
    transient = envelope.get("is_transient")
    transient = transient if isinstance(transient, bool) else None
    message = _as_str(envelope.get("message")) or "the Graph API reported an error"
    kw: dict[str, Any] = {
        "code": code,
        "subcode": subcode,
        "http_status": http_status,
        "fbtrace_id": _as_str(envelope.get("fbtrace_id")),
        "is_transient": transient,
        "user_title": _as_str(envelope.get("error_user_title")),
        "outcome": outcome_of(code, subcode, message),
    }
    message = scrub(message, secrets)

    if code in THROTTLE_CODES:
        return ThrottledError(message, retry_after=_retry_after(code, headers), **kw)
    if code in AUTH_CODES:
        return AuthError(message, **kw)
    if code in PERMISSION_CODES:
        return PermissionDeniedError(message, **kw)
    if code == 100 and subcode == OBJECT_NOT_FOUND_SUBCODE:
        return ObjectNotFoundError(message, **kw)
    if code in INVALID_CODES:
        return InvalidRequestError(message, **kw)
    if code in SERVER_CODES or transient:
        return ServerError(message, **kw)
    if code is None and http_status >= 500:
        return ServerError(message, **kw)
    return GraphError(message, **kw)


def decode_batch_element(
    answer: Any, *, secrets: Iterable[str | Secret | None] = ()
) -> dict[str, Any] | GraphError | None:
    """One element of a batch answer (graph-api.md 8): its decoded ``body`` (a JSON string
    itself), its classified error, or ``None`` for a ``null`` element (not completed)."""
    if answer is None:
        return None
    if not isinstance(answer, Mapping):
        return BadResponseError("a batch element is not a JSON object")
    code = answer.get("code")
    status = code if isinstance(code, int) and not isinstance(code, bool) else 0
    body: Any = answer.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        return classify_error(None, status, secrets=secrets)
    if status >= 400 or isinstance(body.get("error"), Mapping):
        return classify_error(body, status, secrets=secrets)
    return body


def decode_answer(
    raw: bytes,
    http_status: int,
    *,
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str | Secret | None] = (),
) -> Any:
    """The decoded JSON of one HTTP answer; raises its :func:`classify_error` error when it
    is not JSON, has a status of 400 or more, or carries an error envelope."""
    try:
        body: Any = json.loads(raw)
    except ValueError:
        raise classify_error(None, http_status, headers=headers, secrets=secrets) from None
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
) -> GraphError:
    """The typed error for Meta's envelope with these fields: what the Graph client raises
    for such an answer. For test doubles, which must answer as Meta does."""
    envelope: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if subcode is not None:
        envelope["error_subcode"] = subcode
    return classify_error({"error": envelope}, http_status, headers=headers)
