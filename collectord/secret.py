"""Keeping secrets out of sight: :class:`Secret` holds one, :func:`scrub` cleans text.

Access tokens and the app secret live in :class:`Secret` from the moment the config is
read. Any text that may carry one (a paging URL inside an error, a form body) goes through
:func:`scrub` before it reaches a log line, an exception message or the status page.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote

MASK: Final = "**********"


class Secret:
    """Holds a secret string; ``str()``, ``repr()`` and f-strings show a mask.

    Call :meth:`reveal` at the one place the real value is needed (building a request).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled")


#: Query or form parameters whose values are secrets.
SECRET_PARAMS: tuple[str, ...] = (
    "access_token",
    "appsecret_proof",
    "client_secret",
    "fb_exchange_token",
    "input_token",
)
_PARAM_RE = re.compile(
    r"(?i)\b(" + "|".join(SECRET_PARAMS) + r")(=|%3D)([^&\s\"'#<>]+)",
)
# Meta's user, Page and system-user tokens start with "EAA" and are long.
_BARE_TOKEN_RE = re.compile(r"\bEAA[A-Za-z0-9]{20,}")
_JSON_RE = re.compile(r"(?i)([\"'](?:" + "|".join(SECRET_PARAMS) + r")[\"']\s*:\s*[\"'])([^\"']+)")
#: Literal secrets shorter than this are not searched for (they would mangle the text).
_MIN_LITERAL = 4


def scrub(text: str, secrets: Iterable[str | Secret | None] = ()) -> str:
    """Mask secret parameter values and the given literal secrets in ``text``.

    Masks the values of ``access_token``, ``appsecret_proof``, ``client_secret``,
    ``fb_exchange_token`` and ``input_token`` in URLs, form bodies and JSON, then every
    occurrence of each secret in ``secrets`` (also URL-encoded), and anything shaped like a
    Meta token (``EAA`` and 20 or more letters and digits).

    >>> scrub("https://h/v1/me?fields=id&access_token=EAAB123&after=x")
    'https://h/v1/me?fields=id&access_token=**********&after=x'
    """
    out = _PARAM_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    out = _JSON_RE.sub(lambda m: f"{m.group(1)}{MASK}", out)
    out = _BARE_TOKEN_RE.sub(MASK, out)
    for secret in secrets:
        value = secret.reveal() if isinstance(secret, Secret) else secret
        if not value or len(value) < _MIN_LITERAL:
            continue
        out = out.replace(value, MASK)
        quoted = quote(value, safe="")
        if quoted != value:
            out = out.replace(quoted, MASK)
    return out
