"""The rate-limit governor: asked before every Graph API request, fed by every answer.

Meta meters calls per budget (docs/meta-graph-api.md 7): the app's budget
(``X-App-Usage``, throttles whose ``budget`` is ``app``) is shared by every token of the
app; the other budgets (a Page's or an Instagram account's BUC budget, a user's budget)
belong to the token a request carries. The
governor therefore keeps its state per *budget key*: :data:`APP` for the app, and an opaque
key per token (chosen by the Graph client) for the rest. A request under budget ``k`` is
governed by :data:`APP` and ``k`` together.

Before a request it refuses (``ThrottledError``, no call to Meta) while a throttle with a
known end is active, and waits when a recent usage ratio is at or above the ceiling, longer
the closer usage is to 100 %.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from collectord.errors import ThrottledError
from collectord.graph.usage import UsageReading

#: The budget key of the app-wide budget.
APP = "app"


class RateGovernor:
    """Per-budget throttle and usage state (see the module docstring).

    ``ceiling`` is ``[graph] usage_ceiling``. At a usage ratio ``r >= ceiling`` a request
    waits ``min_delay + (max_delay - min_delay) * (r - ceiling) / (1 - ceiling)`` seconds,
    capped at ``max_delay`` (reached at 100 %). Readings older than ``usage_ttl`` seconds are
    ignored, since Meta stops sending usage headers once usage is low.
    """

    def __init__(
        self,
        ceiling: float,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        log: Any = None,
        min_delay: float = 1.0,
        max_delay: float = 60.0,
        usage_ttl: float = 600.0,
    ) -> None:
        self.ceiling = ceiling
        self._clock = clock
        self._sleep = sleep
        self._log = log
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._usage_ttl = usage_ttl
        # budget key -> (scope, id, kind) -> (ratio, observed at)
        self._usage: dict[str, dict[tuple[str, str, str], tuple[float, float]]] = {}
        # budget key -> (blocked until, the throttle that blocked it)
        self._blocked: dict[str, tuple[float, ThrottledError]] = {}
        self._slowing: set[str] = set()

    # -- feeding -------------------------------------------------------------------------

    def observe_usage(self, budget: str, readings: Iterable[UsageReading]) -> None:
        """Remember the usage readings of an answer to a request under ``budget``."""
        now = self._clock()
        for reading in readings:
            key = APP if reading.scope == "app" else budget
            self._usage.setdefault(key, {})[reading.key] = (reading.ratio, now)

    def observe_throttle(self, budget: str, error: ThrottledError) -> None:
        """Remember a throttle; with a known ``retry_after``, refuse requests until then."""
        if error.retry_after is None or error.retry_after <= 0:
            return
        key = APP if error.budget == APP else budget
        until = self._clock() + error.retry_after
        previous = self._blocked.get(key)
        if previous is None or previous[0] < until:
            self._blocked[key] = (until, error)
        if previous is None and self._log is not None:
            self._log.warning(
                "graph api throttled, pausing calls",
                budget="app" if key == APP else "token",
                throttled=error.budget,
                code=error.code,
                seconds=round(error.retry_after, 1),
            )

    # -- asking --------------------------------------------------------------------------

    def check(self, budget: str, *, ceiling: float | None = None) -> float:
        """Seconds to wait before a request under ``budget`` (0 for none); ``ceiling``
        replaces the governor's own for this request (a source's ``usage_ceiling``).

        Raises :class:`ThrottledError` while a throttle with a known end is active.
        """
        now = self._clock()
        for key in (APP, budget):
            blocked = self._blocked.get(key)
            if blocked is None:
                continue
            until, cause = blocked
            if until > now:
                raise ThrottledError(
                    f"rate limit reached earlier; not calling the Graph API for another "
                    f"{until - now:.0f}s",
                    retry_after=until - now,
                    budget=cause.budget,
                    code=cause.code,
                )
            del self._blocked[key]
            if self._log is not None:
                self._log.info("graph api throttle over", budget="app" if key == APP else "token")
        return self._usage_delay(budget, now, self.ceiling if ceiling is None else ceiling)

    async def admit(self, budget: str, *, ceiling: float | None = None) -> None:
        """Wait as :meth:`check` says (raising like it), using the injected sleep."""
        delay = self.check(budget, ceiling=ceiling)
        if delay > 0:
            await self._sleep(delay)

    def _hottest(self, budget: str, now: float) -> tuple[str, tuple[str, str, str], float] | None:
        best: tuple[str, tuple[str, str, str], float] | None = None
        for key in (APP, budget):
            for usage_key, (ratio, seen) in self._usage.get(key, {}).items():
                if now - seen > self._usage_ttl:
                    continue
                if best is None or ratio > best[2]:
                    best = (key, usage_key, ratio)
        return best

    def _usage_delay(self, budget: str, now: float, ceiling: float) -> float:
        hottest = self._hottest(budget, now)
        if hottest is None or hottest[2] < ceiling:
            if self._slowing & {APP, budget} and self._log is not None:
                self._log.info("graph api usage back under the ceiling", ceiling=ceiling)
            self._slowing -= {APP, budget}
            return 0.0
        key, (scope, object_id, kind), ratio = hottest
        span = 1.0 - ceiling
        share = 1.0 if span <= 0 else min(1.0, (ratio - ceiling) / span)
        delay = min(self._max_delay, self._min_delay + (self._max_delay - self._min_delay) * share)
        if key not in self._slowing:
            self._slowing.add(key)
            if self._log is not None:
                self._log.warning(
                    "graph api usage at or above the ceiling, slowing down",
                    scope=scope,
                    id=object_id,
                    kind=kind,
                    ratio=ratio,
                    ceiling=ceiling,
                    delay=round(delay, 1),
                )
        return delay
