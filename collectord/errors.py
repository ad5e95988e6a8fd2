"""Every exception collectord raises on purpose, in one place.

Three families: :class:`ConfigError` (all problems of a config, reported together),
:class:`GraphError` and its subclasses (what the Graph API or the way to it answered,
classified from Meta's error envelope), and :class:`PollError` (a poll that could not
deliver for another reason).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar


class CollectordError(Exception):
    """Base of collectord's own exceptions."""


class ConfigError(CollectordError):
    """A config is invalid. ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class GraphError(CollectordError):
    """An answer of the Graph API that is not the data asked for.

    ``reason`` is the label it is counted under in
    ``collectord_source_poll_errors_total``; ``retryable`` says whether the Graph client
    retries it (with backoff). ``code``/``subcode`` come from Meta's error envelope.
    Messages never contain access tokens: the Graph client scrubs them.
    """

    reason: ClassVar[str] = "other"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        fbtrace_id: str | None = None,
        is_transient: bool | None = None,
        user_title: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.fbtrace_id = fbtrace_id
        self.is_transient = is_transient
        self.user_title = user_title

    def __str__(self) -> str:
        parts = [self.message]
        if self.code is not None:
            parts.append(f"code={self.code}")
        if self.subcode is not None:
            parts.append(f"subcode={self.subcode}")
        if self.http_status is not None:
            parts.append(f"http_status={self.http_status}")
        if self.fbtrace_id:
            parts.append(f"fbtrace_id={self.fbtrace_id}")
        return " ".join(parts)


class ThrottledError(GraphError):
    """Rate limit reached (codes 4, 17, 32, 341, 368, 613, 80000-80014).

    ``retry_after`` is in seconds, from ``estimated_time_to_regain_access`` when Meta
    gives it.
    """

    reason = "throttled"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AuthError(GraphError):
    """The token is invalid or expired (190 and subcodes, 102, 104): needs a human."""

    reason = "auth"


class PermissionDeniedError(GraphError):
    """The token lacks a permission (3, 10, 200-299)."""

    reason = "permission"


class InvalidRequestError(GraphError):
    """Invalid parameter or metric (100, 2500, 3001): fix the request or skip the object."""

    reason = "invalid_metric"


class ObjectNotFoundError(InvalidRequestError):
    """Code 100 subcode 33: the object vanished, or cannot be loaded with this token."""

    reason = "skipped_object"


class TransientError(GraphError):
    """A failure worth retrying: outages, 5xx, timeouts, broken connections or bodies."""

    reason = "server"
    retryable = True


class ServerError(TransientError):
    """Codes 1 and 2, or an HTTP 5xx without a usable error envelope."""

    reason = "server"


class GraphTimeoutError(TransientError):
    """No answer within the configured timeout."""

    reason = "timeout"


class NetworkError(TransientError):
    """The connection failed (refused, reset, DNS)."""

    reason = "network"


class BadResponseError(TransientError):
    """An answer that is not the JSON Meta promises (an HTML error page, a torn body)."""

    reason = "bad_response"


class PollError(CollectordError):
    """A poll failed for a reason that is not a Graph API answer."""

    def __init__(self, message: str, *, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason
