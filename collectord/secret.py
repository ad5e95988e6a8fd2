"""A string that never shows itself: access tokens and the app secret live in :class:`Secret`."""

from __future__ import annotations

from typing import Final

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
