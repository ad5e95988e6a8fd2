"""A clock the test sets, for the code under test to read instead of the real one."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class Clock(Generic[T]):
    """``clock()`` is ``clock.now``: a test moves time by setting ``now`` (unix seconds or
    an aware datetime, whatever the code under test reads)."""

    def __init__(self, now: T) -> None:
        self.now = now

    def __call__(self) -> T:
        return self.now
