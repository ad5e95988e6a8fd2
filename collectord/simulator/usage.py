"""Rate-limit accounting and usage headers (docs/meta-facts.md 7).

Each Graph call counts against one scope over a rolling window of
``World.usage_window`` seconds with a budget of ``World.call_budget`` calls:

- app token → ``app`` (``X-App-Usage``), code 4 at 100%;
- user token → ``user`` (``X-App-Usage``), code 17, or 32 on a Pages endpoint;
- Page or system-user token on a Page, post → ``pages`` BUC keyed by the Page id
  (``X-Business-Use-Case-Usage``), code 80001;
- any token on an Instagram object → ``instagram`` BUC keyed by the IG user id, code 80002.

Percentages are whole numbers that rise with the calls in the window; the BUC header's
``estimated_time_to_regain_access`` (minutes) says when the oldest call leaves the
window once the budget is used up. Throttled calls are not counted.
"""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass

APP_USAGE = "X-App-Usage"
BUC_USAGE = "X-Business-Use-Case-Usage"
_CODES = {"app": 4, "user": 17, "pages": 80001, "instagram": 80002}


@dataclass(frozen=True)
class Scope:
    """What a call is metered against: ``kind`` (app, user, pages, instagram) and id."""

    kind: str
    key: str
    pages_endpoint: bool = False

    @property
    def buc(self) -> bool:
        return self.kind in ("pages", "instagram")

    @property
    def throttle_code(self) -> int:
        if self.kind == "user" and self.pages_endpoint:
            return 32
        return _CODES[self.kind]


class UsageTracker:
    """Calls per scope over a rolling window (timestamps in seconds of the world clock)."""

    def __init__(self, budget: int, window: float) -> None:
        if budget < 1 or window <= 0:
            raise ValueError("the call budget and the usage window must be positive")
        self.budget = budget
        self.window = window
        self._calls: dict[Scope, deque[float]] = {}

    def _live(self, scope: Scope, now: float) -> deque[float]:
        calls = self._calls.setdefault(scope, deque())
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        return calls

    def record(self, scope: Scope, now: float) -> None:
        self._live(scope, now).append(now)

    def percent(self, scope: Scope, now: float) -> int:
        return min(100, math.floor(100 * len(self._live(scope, now)) / self.budget))

    def exhausted(self, scope: Scope, now: float) -> bool:
        return self.percent(scope, now) >= 100

    def regain_minutes(self, scope: Scope, now: float) -> int:
        """Minutes until the scope drops below its budget again (0 when not exhausted)."""
        calls = self._live(scope, now)
        if len(calls) < self.budget:
            return 0
        frees_at = calls[len(calls) - self.budget] + self.window
        return max(1, math.ceil((frees_at - now) / 60))

    def reset(self) -> None:
        self._calls.clear()

    def headers(
        self, scope: Scope, now: float, *, forced_minutes: int | None = None
    ) -> dict[str, str]:
        """The usage header of ``scope``; ``forced_minutes`` shows a throttle fault (100%)."""
        if forced_minutes is None:
            count = self.percent(scope, now)
            minutes = self.regain_minutes(scope, now)
        else:
            count, minutes = 100, forced_minutes
        usage = {
            "call_count": count,
            "total_cputime": count if count >= 100 else math.floor(count * 0.8),
            "total_time": count if count >= 100 else math.floor(count * 0.9),
        }
        if not scope.buc:
            return {APP_USAGE: json.dumps(usage)}
        entry = {"type": scope.kind, **usage, "estimated_time_to_regain_access": minutes}
        return {BUC_USAGE: json.dumps({scope.key: [entry]})}
