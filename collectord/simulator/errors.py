"""The simulator's error answers, worded and coded as Meta words and codes them.

HTTP statuses follow docs/meta-facts.md 9.1 (observed, not documented): 400 for most codes, 403
for 4, 10 and 200-299, 5xx for 1 and 2. Every constructor returns a :class:`SimError`.
"""

from __future__ import annotations

from collectord.simulator.base import SimError

RATE_LIMIT_DOC = "https://developers.facebook.com/docs/graph-api/overview/rate-limiting"

#: Throttle codes and their messages (docs/meta-facts.md 7.3).
THROTTLE_MESSAGES: dict[int, str] = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    341: "(#341) Application limit reached",
    368: "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    80001: (
        "(#80001) There have been too many calls to this Page account. Wait a bit and try "
        f"again. For more info, please refer to {RATE_LIMIT_DOC}."
    ),
    80002: (
        "(#80002) There have been too many calls to this Instagram account. Wait a bit and "
        f"try again. For more info, please refer to {RATE_LIMIT_DOC}."
    ),
}

#: ``X-Business-Use-Case-Usage`` ``type`` of each BUC throttle code.
BUC_TYPE_OF_CODE: dict[int, str] = {80001: "pages", 80002: "instagram"}

#: Messages of code 190 by subcode (docs/meta-facts.md 9.2).
TOKEN_SUBCODE_MESSAGES: dict[int, str] = {
    458: "Error validating access token: The user has not authorized application.",
    459: "Error validating access token: You cannot access the app till you log in to "
    "www.facebook.com and follow the instructions given.",
    460: "Error validating access token: The session has been invalidated because the user "
    "changed their password or Facebook has changed the session for security reasons.",
    463: "Error validating access token: Session has expired.",
    464: "Error validating access token: Sessions for the user are not allowed because the "
    "user is not a confirmed user.",
    467: "Error validating access token: The access token is invalid.",
    492: "Error validating access token: The user is not an admin, editor, or moderator of "
    "this Page.",
}


def status_for_code(code: int) -> int:
    """The HTTP status Meta is observed to send with an error ``code``."""
    if code in (1, 2):
        return 500
    if code in (4, 10) or 200 <= code <= 299:
        return 403
    return 400


def graph_error(code: int, message: str, **kw: object) -> SimError:
    """A :class:`SimError` with the HTTP status that goes with ``code``."""
    return SimError(code, message, http_status=status_for_code(code), **kw)  # type: ignore[arg-type]


def missing_token() -> SimError:
    return graph_error(104, "An access token is required to request this resource.")


def unparsable_token() -> SimError:
    return graph_error(190, "Invalid OAuth access token - Cannot parse access token")


def token_error(subcode: int) -> SimError:
    message = TOKEN_SUBCODE_MESSAGES.get(subcode, "Error validating access token.")
    return graph_error(190, message, subcode=subcode)


def page_token_required() -> SimError:
    return graph_error(190, "(#190) This method must be called with a Page Access Token")


def permission_error(message: str = "(#200) Permissions error") -> SimError:
    return graph_error(200, message)


def no_permission(
    message: str = "(#10) Application does not have permission for this action",
) -> SimError:
    return graph_error(10, message)


def insights_not_owned() -> SimError:
    return graph_error(
        3000,
        "Reading insights of a Page, business, app, domain or event source group not owned "
        "by the querying user or application",
    )


def unknown_path(component: str) -> SimError:
    return graph_error(2500, f"Unknown path components: /{component}")


def nonexisting_field(field: str, node_type: str) -> SimError:
    return graph_error(
        100, f"(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"
    )


def no_metric() -> SimError:
    return graph_error(
        3001,
        "No metric was specified to be fetched. Please specify one or more metrics.",
        subcode=1504028,
        user_title="No Metric Specified",
        user_msg="No metric was specified to be fetched. Please specify one or more metrics.",
    )


def invalid_parameter(message: str) -> SimError:
    return graph_error(100, message if message.startswith("(#") else f"(#100) {message}")


def bad_proof() -> SimError:
    return graph_error(100, "Invalid appsecret_proof provided in the API argument")


def proof_required() -> SimError:
    return graph_error(100, "API calls from the server require an appsecret_proof argument")


def throttled(code: int) -> SimError:
    """A rate-limit answer; code 4 is marked transient as Meta marks it."""
    message = THROTTLE_MESSAGES.get(code, f"(#{code}) Rate limit reached")
    return graph_error(code, message, is_transient=True if code == 4 else None)


def server_error() -> SimError:
    return graph_error(
        2, "An unexpected error has occurred. Please retry your request later.", is_transient=True
    )


def batch_too_large() -> SimError:
    return SimError(
        100,
        "Too many requests in batch message. Maximum batch size is 50",
        type="GraphBatchException",
    )
