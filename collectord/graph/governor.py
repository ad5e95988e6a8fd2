"""The rate-limit governor: asked before every Graph API request, fed by every answer.

Meta meters calls per budget (docs/meta-facts.md 7): the app's budget
(``X-App-Usage``, throttles whose ``budget`` is ``app``) is shared by every token of the
app; the other budgets (a Page's or an Instagram account's BUC budget, a user's budget)
belong to the token a request carries. The governor therefore keeps its state per *budget
key*: :data:`APP` for the app, and an opaque key per token (chosen by the Graph client) for
the rest. A request under budget ``k`` is governed by :data:`APP` and ``k`` together. A
budget named ``{family}/...`` belongs to another app family's app-wide budget,
``{family}/app`` (:func:`app_key`): Instagram-Login sources do not share the Facebook
app's.

Meta's rules it keeps (docs/meta-facts.md 7.3, 7.4, 8):

- **Calls, not requests.** Every element of a batch is a call; a request of ``n`` calls
  is counted as ``n`` (:attr:`GraphStats.calls <collectord.graph.stats.GraphStats>`) and,
  above the ceiling, waits ``n`` times a single call's delay, one request at a time.
- **Blocks.** A throttle with a regain time (``estimated_time_to_regain_access``,
  ``Retry-After``) blocks its budget until then, clamped to :data:`MAX_BLOCK` with a
  warning; a throttle without one blocks for the cooldown of its code (:data:`COOLDOWNS`).
  While a budget is blocked no request goes out under it (:class:`ThrottledError` at once):
  Meta extends a block for calls made during it.
- **Recovery.** When a block ends, the usage readings taken before it are dropped (they
  say 100 %, from the throttled answers) and one request goes out alone as a probe; the
  others wait for its answer, then follow at the pace its fresh usage readings allow.
- **One at a time near the ceiling.** A source's batches go out together, and a reading
  says nothing of the calls still in flight: eight batches of 50 sent at 60 % would all
  land before any answer said 75 %. From :data:`CAUTION` of the ceiling on, requests under
  a budget go out one at a time, each after the previous one's answer (and its readings),
  so usage passes the ceiling by at most one request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from collectord.errors import ThrottledError
from collectord.graph.stats import GraphStats
from collectord.graph.usage import UsageReading

#: The budget key of the app-wide budget.
APP = "app"
#: The longest block collectord accepts from Meta's regain time or ``Retry-After``.
MAX_BLOCK = 3600.0
#: Seconds a budget stays blocked after a throttle without a regain time, per code.
#: Meta documents no duration for these codes (docs/meta-facts.md 7.3 says only "stop
#: calling"); these are collectord's defaults: the app limits (4, 341) and the user and
#: Page limits (17, 32) are metered over a rolling hour, so five minutes lets a fair share
#: of the window pass; 613 (a per-endpoint limit, often "uneven request volume") a minute;
#: 368 (a policy block) a quarter of an hour.
COOLDOWNS: Mapping[int, float] = {4: 300.0, 17: 300.0, 32: 300.0, 341: 300.0, 368: 900.0, 613: 60.0}
#: How far under the ceiling usage must fall to end an episode of slowing down (its log).
HYSTERESIS = 0.05
#: The cooldown of any other throttle code (a BUC code without a regain time).
DEFAULT_COOLDOWN = 300.0
#: From this share of the ceiling on, one request at a time per budget (module docstring).
CAUTION = 0.5
#: How long a reading counts for :data:`CAUTION` (longer than for pacing: a poll every 15
#: minutes finds its last readings older than ``usage_ttl`` and must not send all of its
#: batches blind on them). An hour: the shortest window Meta meters (docs/meta-facts.md 7.1).
CAUTION_MEMORY = 3600.0


class Admission(tuple[str, ...]):
    """What :meth:`RateGovernor.admit` returns: the budget keys the request probes (a
    tuple, as :meth:`RateGovernor.release` expects) and, near the ceiling, the budget's
    one-at-a-time slot the request holds until it is released."""

    gate: asyncio.Lock | None = None

    @classmethod
    def holding(cls, probes: tuple[str, ...], gate: asyncio.Lock) -> Admission:
        admission = cls(probes)
        admission.gate = gate
        return admission


def app_key(budget: str) -> str:
    """The app-wide budget of ``budget``: :data:`APP` (the Facebook app's), or
    ``{family}/app`` for a budget named ``{family}/...`` (docs/meta-facts.md 10.9)."""
    family, sep, _ = budget.partition("/")
    return f"{family}/{APP}" if sep and family else APP


def budget_label(key: str) -> str:
    """The ``budget`` label of a budget key in the self-metrics and on the status page."""
    return key


class RateGovernor:
    """Per-budget throttle and usage state (see the module docstring).

    ``ceiling`` is ``[graph] usage_ceiling``. At a usage ratio ``r >= ceiling`` a call
    waits ``min_delay + (max_delay - min_delay) * (r - ceiling) / (1 - ceiling)`` seconds,
    capped at ``max_delay`` (reached at 100 %); a request of ``n`` calls waits ``n`` times
    that. Readings older than ``usage_ttl`` seconds are ignored, since Meta stops sending
    usage headers once usage is low. ``cooldowns`` replaces :data:`COOLDOWNS` per code.
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
        max_block: float = MAX_BLOCK,
        cooldowns: Mapping[int, float] | None = None,
        stats: GraphStats | None = None,
    ) -> None:
        self.ceiling = ceiling
        self._clock = clock
        self._sleep = sleep
        self._log = log
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._usage_ttl = usage_ttl
        self._max_block = max_block
        self._cooldowns = {**COOLDOWNS, **(cooldowns or {})}
        self.stats = stats if stats is not None else GraphStats()
        # budget key -> (scope, id, kind) -> (ratio, observed at)
        self._usage: dict[str, dict[tuple[str, str, str], tuple[float, float]]] = {}
        # budget key -> (blocked until, the throttle that blocked it)
        self._blocked: dict[str, tuple[float, ThrottledError]] = {}
        self._slowing: set[str] = set()
        self._probe_due: set[str] = set()  # blocks ended, no probe sent yet
        self._probes: dict[str, asyncio.Event] = {}  # probes in flight
        self._gates: dict[str, asyncio.Lock] = {}  # one request at a time near the ceiling
        self.stats.throttled_until.setdefault(APP, 0.0)

    # -- feeding -------------------------------------------------------------------------

    def observe_usage(self, budget: str, readings: Iterable[UsageReading]) -> None:
        """Remember the usage readings of an answer to a request under ``budget``."""
        now = self._clock()
        for reading in readings:
            key = app_key(budget) if reading.scope == "app" else budget
            self._usage.setdefault(key, {})[reading.key] = (reading.ratio, now)

    def observe_throttle(self, budget: str, error: ThrottledError) -> None:
        """Block the throttled budget until Meta's regain time (clamped to the maximum
        block) or, without one, for the cooldown of the throttle's code."""
        key = app_key(budget) if error.budget == APP else budget
        seconds = error.retry_after if error.retry_after and error.retry_after > 0 else None
        if seconds is None:
            seconds = self._cooldowns.get(error.code or 0, DEFAULT_COOLDOWN)
            source = "cooldown"
        else:
            source = "meta"
        if seconds > self._max_block:
            if self._log is not None:
                self._log.warning(
                    "graph api regain time beyond the maximum block, clamped",
                    code=error.code,
                    seconds=round(seconds, 1),
                    maximum=self._max_block,
                )
            seconds = self._max_block
        until = self._clock() + seconds
        previous = self._blocked.get(key)
        if previous is None or previous[0] < until:
            self._blocked[key] = (until, error)
            self.stats.throttled_until[budget_label(key)] = until
        self._probe_due.discard(key)
        if previous is None and self._log is not None:
            self._log.warning(
                "graph api throttled, pausing calls",
                budget=budget_label(key),
                throttled=error.budget,
                code=error.code,
                seconds=round(seconds, 1),
                until=source,
            )

    def count_calls(self, budget: str, calls: int) -> None:
        """Count ``calls`` Graph calls sent under ``budget`` (a batch of ``n`` is ``n``)."""
        self.stats.calls[budget_label(budget)] += calls

    # -- asking --------------------------------------------------------------------------

    def blocked_until(self, budget: str) -> float | None:
        """When the block on ``budget`` (or the app's) ends, or ``None`` when unblocked."""
        now = self._clock()
        ends = [
            b[0] for k in (app_key(budget), budget) if (b := self._blocked.get(k)) and b[0] > now
        ]
        return max(ends) if ends else None

    def check(self, budget: str, *, ceiling: float | None = None, calls: int = 1) -> float:
        """Seconds to wait before a request of ``calls`` calls under ``budget`` (0 for
        none); ``ceiling`` replaces the governor's own for this request (a source's
        ``usage_ceiling``).

        Raises :class:`ThrottledError` while the budget (or the app's) is blocked.
        """
        now = self._clock()
        for key in (app_key(budget), budget):
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
            self._end_block(key)
        delay = self._usage_delay(budget, now, self.ceiling if ceiling is None else ceiling)
        return delay * max(1, calls)

    def _end_block(self, key: str) -> None:
        """The block on ``key`` is over: forget the readings taken up to now (the throttled
        answers' 100 %) and let the next request probe alone."""
        del self._blocked[key]
        self.stats.throttled_until[budget_label(key)] = 0.0
        if key == app_key(key):
            for owner, readings in self._usage.items():
                if app_key(owner) != key:
                    continue
                for usage_key in [k for k in readings if k[0] == "app"]:
                    del readings[usage_key]
        else:
            self._usage.pop(key, None)
        self._slowing.discard(key)
        self._probe_due.add(key)
        if self._log is not None:
            self._log.info("graph api throttle over, probing", budget=budget_label(key))

    async def admit(
        self, budget: str, *, ceiling: float | None = None, calls: int = 1
    ) -> tuple[str, ...]:
        """Wait as :meth:`check` says (raising like it), using the injected sleep.

        Returns the budget keys this request probes after a block: pass the returned value
        to :meth:`release` once its answer (or failure) is in. Requests arriving while a
        probe is in flight wait for it, then check again. Near the ceiling (from
        :data:`CAUTION` of it) requests under ``budget`` go one at a time: the returned
        :class:`Admission` holds the budget's slot until released.
        """
        limit = self.ceiling if ceiling is None else ceiling
        while True:
            delay = self.check(budget, ceiling=ceiling, calls=calls)
            waiting = [self._probes[k] for k in (app_key(budget), budget) if k in self._probes]
            if waiting:
                await waiting[0].wait()
                continue
            probing = tuple(k for k in (app_key(budget), budget) if k in self._probe_due)
            if probing:
                for key in probing:
                    self._probe_due.discard(key)
                    self._probes[key] = asyncio.Event()
                return probing
            if self._near(budget, limit) or delay > 0:
                # at or above the ceiling, the delay is waited holding the slot too
                return await self._one_at_a_time(budget, ceiling, calls)
            return ()

    async def _one_at_a_time(self, budget: str, ceiling: float | None, calls: int) -> Admission:
        """Take the budget's slot (after the request before has its answer), then wait
        what the readings, fresh from that answer, say."""
        gate = self._gates.setdefault(budget, asyncio.Lock())
        await gate.acquire()
        try:
            delay = self.check(budget, ceiling=ceiling, calls=calls)
            if delay > 0:
                await self._sleep(delay)
        except BaseException:
            gate.release()
            raise
        return Admission.holding((), gate)

    def release(self, probes: Iterable[str]) -> None:
        """The request admitted with ``probes`` (what :meth:`admit` returned) has its answer:
        let the requests waiting behind it go."""
        for key in probes:
            event = self._probes.pop(key, None)
            if event is not None:
                event.set()
        gate = getattr(probes, "gate", None)
        if gate is not None and gate.locked():
            gate.release()

    def _near(self, budget: str, ceiling: float) -> bool:
        """Usage of ``budget`` (or the app's) was at :data:`CAUTION` of the ceiling or more
        within :data:`CAUTION_MEMORY`."""
        hottest = self._hottest(budget, self._clock(), max(self._usage_ttl, CAUTION_MEMORY))
        return hottest is not None and hottest[2] >= ceiling * CAUTION

    def _hottest(
        self, budget: str, now: float, ttl: float | None = None
    ) -> tuple[str, tuple[str, str, str], float] | None:
        best: tuple[str, tuple[str, str, str], float] | None = None
        ttl = self._usage_ttl if ttl is None else ttl
        for key in (app_key(budget), budget):
            for usage_key, (ratio, seen) in self._usage.get(key, {}).items():
                if now - seen > ttl:
                    continue
                if best is None or ratio > best[2]:
                    best = (key, usage_key, ratio)
        return best

    def _usage_delay(self, budget: str, now: float, ceiling: float) -> float:
        hottest = self._hottest(budget, now)
        if hottest is None or hottest[2] < ceiling:
            # an episode of slowing down ends (and is logged) only once usage is clearly
            # under the ceiling, so usage hovering at it does not log every batch
            if hottest is None or hottest[2] < ceiling - HYSTERESIS:
                if self._slowing & {app_key(budget), budget} and self._log is not None:
                    self._log.info("graph api usage back under the ceiling", ceiling=ceiling)
                self._slowing -= {app_key(budget), budget}
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
