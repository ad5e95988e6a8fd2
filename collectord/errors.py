"""Every exception collectord raises on purpose, in one place.

Three families: :class:`ConfigError` (all problems of a config, reported together),
:class:`GraphError` and its subclasses (what the Graph API or the way to it answered,
classified from Meta's error envelope), and :class:`PollError` (a poll that could not
deliver for another reason).
"""

from __future__ import annotations

import contextlib
import enum
from collections import Counter
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import ClassVar

#: The longest message (and user title) a :class:`GraphError` keeps, in characters: Meta's
#: message is cut there, so a huge one never reaches a log line, the store or the status
#: page.
MAX_MESSAGE_CHARS = 500


def truncate(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


class CollectordError(Exception):
    """Base of collectord's own exceptions."""


class ConfigError(CollectordError):
    """A config is invalid. ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class Outcome(enum.Enum):
    """What an answer of the Graph API means, decided once by the Graph layer.

    Plugins act on this, never on Meta's codes, subcodes or message texts.
    """

    #: The object was deleted, or cannot be loaded with this token.
    OBJECT_GONE = "object_gone"
    #: Instagram media posted before the account became a business account: no insights.
    BEFORE_CONVERSION = "before_conversion"
    #: An Instagram story seen by too few accounts for Meta to show its insights.
    TOO_FEW_VIEWERS = "too_few_viewers"
    #: The token lacks a permission, or the app may not read this object.
    PERMISSION = "permission"
    #: A metric (or a metric for this kind of object) Meta does not know or no longer serves.
    INVALID_METRIC = "invalid_metric"
    #: A metric Meta knows but does not serve for this object (or no longer serves).
    METRIC_UNSUPPORTED = "metric_unsupported"
    #: A breakdown that the metric does not support.
    BREAKDOWN_UNSUPPORTED = "breakdown_unsupported"
    #: "Please reduce the amount of data you're asking for": ask for less.
    REDUCE_DATA = "reduce_data"
    #: A rate limit was reached (see :class:`ThrottledError` for the budget and the wait).
    THROTTLED = "throttled"
    #: The token is invalid or expired: a human has to act.
    AUTH = "auth"
    #: Meta failed on its side (retried before it reaches a plugin).
    SERVER = "server"
    TIMEOUT = "timeout"
    NETWORK = "network"
    #: An answer that is not the JSON Meta promises.
    BAD_RESPONSE = "bad_response"
    OTHER = "other"


class AuthKind(enum.Enum):
    """Why a token (or the app's proof of it) was refused: what the human has to do.

    Decided by :func:`collectord.graph.answers.classify_error` from Meta's code and
    ``error_subcode`` (docs/meta-facts.md 9.2).
    """

    #: The token expired (190/463): issue a new one (or a long-lived/system user one).
    EXPIRED = "expired"
    #: The user changed their password (190/460): the user has to log in again.
    PASSWORD_CHANGED = "password_changed"  # noqa: S105 (a label, not a password)
    #: The user removed the app, or never installed it (190/458): grant it again.
    APP_NOT_INSTALLED = "app_not_installed"
    #: The session ended: logged out, invalidated (467, 461, 462, 465, 466).
    SESSION_INVALID = "session_invalid"
    #: Facebook checkpointed the user (190/459), or the user is not confirmed (190/464):
    #: they must log in on facebook.com.
    CHECKPOINT = "checkpoint"
    #: The user behind a Page token lost their role on the Page (190/492).
    PAGE_ROLE_LOST = "page_role_lost"
    #: Invalid, expired or revoked without a more precise subcode (190, 102, 104).
    INVALID = "invalid"
    #: A permission error (3, 10, 200-299) on the source's own object: a permission the
    #: token needs was revoked or never granted. Decided by the poller (the error escaped
    #: the plugin), not by the Graph layer: on another object it only skips that object.
    PERMISSION_REVOKED = "permission_revoked"
    #: Meta refused ``appsecret_proof`` (code 100): a wrong ``app_secret``, or a clock
    #: that is off. A config problem, not the token's.
    APPSECRET_PROOF = "appsecret_proof"


#: Where every needs-a-new-token message sends the reader, and what to do after.
_RENEW = (
    "get a new token (docs/getting-tokens.md), write it into the source's access_token_file, "
    "then reload (SIGHUP or POST /-/reload): the source resumes by itself (a token from an "
    "environment variable needs a restart)"
)

#: What happened, in words a person can act on, per :class:`AuthKind`.
_WHAT_HAPPENED: dict[AuthKind, str] = {
    AuthKind.EXPIRED: "the token expired{on}",
    AuthKind.PASSWORD_CHANGED: (
        "the token stopped working because the person who made it changed their Facebook "
        "password; they must log in again"
    ),
    AuthKind.APP_NOT_INSTALLED: (
        "the person who made the token removed the app (or never authorized it); they must "
        "authorize the app again"
    ),
    AuthKind.SESSION_INVALID: (
        "the token's session is no longer valid (its user logged out, or Meta invalidated it)"
    ),
    AuthKind.CHECKPOINT: (
        "Facebook holds the token's user at a checkpoint: they must log in on facebook.com "
        "and finish what Facebook asks (a security check, confirming the account)"
    ),
    AuthKind.PAGE_ROLE_LOST: (
        "the person who made this Page token no longer has a role on the Page; someone "
        "with a role on the Page must make the new token"
    ),
    AuthKind.INVALID: "Meta says the token is invalid, expired or revoked",
    AuthKind.PERMISSION_REVOKED: (
        "the token lacks a permission this source needs to read its object (revoked, or "
        "never granted); grant it when making the new token (the guide lists the "
        "permissions of each plugin)"
    ),
}


def reauth_advice(kind: AuthKind, expired_on: str | None = None) -> str:
    """One sentence saying what happened to a source's token and how to fix it;
    ``expired_on`` (a date) completes an expiry. Never contains the token."""
    if kind is AuthKind.APPSECRET_PROOF:
        return (
            "Meta refused the appsecret_proof: check [graph] app_secret (or the source's "
            "[source.graph] one) and the machine's clock, then reload"
        )
    what = _WHAT_HAPPENED[kind].format(on=f" on {expired_on}" if expired_on else "")
    return f"{what}; {_RENEW}"


class GraphError(CollectordError):
    """An answer of the Graph API that is not the data asked for.

    ``reason`` is the label it is counted under in
    ``collectord_source_poll_errors_total``; ``retryable`` says whether the Graph client
    retries it (with backoff). ``code``/``subcode`` come from Meta's error envelope.
    ``token_kind``, set by the Graph layer, says what is wrong with the token when this
    error ends a poll of a source (it then concerns the source's own object): the source
    waits for a new token (``needs_reauth``); ``None`` when a new token would not help.
    Messages never contain access tokens: the Graph client scrubs them.
    """

    reason: ClassVar[str] = "other"
    retryable: ClassVar[bool] = False
    #: The outcome when the Graph layer does not decide a more precise one.
    default_outcome: ClassVar[Outcome] = Outcome.OTHER

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
        outcome: Outcome | None = None,
        token_kind: AuthKind | None = None,
    ) -> None:
        message = truncate(message)
        super().__init__(message)
        self.message = message
        self.outcome: Outcome = outcome if outcome is not None else self.default_outcome
        self.code = code
        self.subcode = subcode
        self.http_status = http_status
        self.fbtrace_id = truncate(fbtrace_id, 100) if fbtrace_id else fbtrace_id
        self.is_transient = is_transient
        self.user_title = truncate(user_title, 200) if user_title else user_title
        self.token_kind = token_kind

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

    ``budget`` names the budget that ran out: ``app`` (the whole app's), ``user`` (the
    token's user), ``page`` or ``page:<id>`` (a Page's), a Business Use Case budget as
    ``<type>`` or ``<type>:<id>`` (``instagram:17841...``), or ``token`` when Meta does not
    say. ``retry_after`` is in seconds, from ``estimated_time_to_regain_access`` (or
    ``Retry-After``) when Meta gives it.
    """

    reason = "throttled"
    default_outcome = Outcome.THROTTLED

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        budget: str = "token",
        **kw: object,
    ) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        self.budget = budget


class AuthError(GraphError):
    """The token is invalid or expired (190 and subcodes, 102, 104), or Meta refused the
    ``appsecret_proof``: needs a human. ``kind`` says what happened (:class:`AuthKind`)."""

    reason = "auth"
    default_outcome = Outcome.AUTH

    def __init__(self, message: str, *, kind: AuthKind = AuthKind.INVALID, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.kind = kind
        # a refused appsecret_proof is the app secret's or the clock's fault, not the token's
        self.token_kind = None if kind is AuthKind.APPSECRET_PROOF else kind


class PermissionDeniedError(GraphError):
    """The token lacks a permission (3, 10, 200-299)."""

    reason = "permission"
    default_outcome = Outcome.PERMISSION


class InvalidRequestError(GraphError):
    """Invalid parameter or metric (100, 2500, 3001): fix the request or skip the object."""

    reason = "invalid_metric"
    default_outcome = Outcome.INVALID_METRIC


class ObjectNotFoundError(InvalidRequestError):
    """Code 100 subcode 33: the object vanished, or cannot be loaded with this token."""

    reason = "skipped_object"
    default_outcome = Outcome.OBJECT_GONE


class ReduceDataError(GraphError):
    """ "Please reduce the amount of data you're asking for" (code 1 with that message):
    asking again unchanged fails again, so it is not retried; ask for less."""

    reason = "server"
    default_outcome = Outcome.REDUCE_DATA


class TransientError(GraphError):
    """A failure worth retrying: outages, 5xx, timeouts, broken connections or bodies."""

    reason = "server"
    default_outcome = Outcome.SERVER
    retryable = True


class ServerError(TransientError):
    """Codes 1 and 2, or an HTTP 5xx without a usable error envelope."""

    reason = "server"


class GraphTimeoutError(TransientError):
    """No answer within the configured timeout."""

    reason = "timeout"
    default_outcome = Outcome.TIMEOUT


class NetworkError(TransientError):
    """The connection failed (refused, reset, DNS)."""

    reason = "network"
    default_outcome = Outcome.NETWORK


class BadResponseError(TransientError):
    """An answer that is not the JSON Meta promises (an HTML error page, a torn body)."""

    reason = "bad_response"
    default_outcome = Outcome.BAD_RESPONSE


class AnswerTooLargeError(BadResponseError):
    """An answer longer than the Graph client reads (``MAX_ANSWER_BYTES`` of
    :mod:`collectord.graph.client`): asking again would fetch it again, so it is not retried."""

    retryable = False


class PollError(CollectordError):
    """A poll failed for a reason that is not a Graph API answer."""

    def __init__(self, message: str, *, reason: str = "other") -> None:
        super().__init__(message)
        self.reason = reason


#: The problems counted by :func:`count_problem` during the current poll (``None``: not
#: inside a poll).
_PROBLEMS: ContextVar[Counter[str] | None] = ContextVar("collectord_problems", default=None)


def count_problem(reason: str) -> None:
    """Count a problem with Meta's answers that did not fail the poll (series over the cap,
    a paging loop, a value out of range): the poller adds it to
    ``collectord_source_poll_errors_total{reason}``. Outside a poll (a test double, a
    tool) it is not counted anywhere."""
    problems = _PROBLEMS.get()
    if problems is not None:
        problems[reason] += 1


@contextlib.contextmanager
def counting_problems() -> Iterator[Counter[str]]:
    """Collect the :func:`count_problem` calls made inside the block (tasks started in it
    included) into the counter it yields."""
    problems: Counter[str] = Counter()
    token = _PROBLEMS.set(problems)
    try:
        yield problems
    finally:
        _PROBLEMS.reset(token)
