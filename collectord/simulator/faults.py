"""Faults to inject into the simulator, from tests in-process or over HTTP (``/_sim/faults``).

Each fault is a :class:`FaultRule` that can be limited to calls whose path contains
``path`` and to the next ``count`` matching calls (``None``: until cleared). Defaults:
one call for ``throttle``, ``server_error``, ``malformed_json``, ``delay``, ``huge`` and
``endless``; until
cleared for ``token_error`` and ``invalid_metrics``.

- ``throttle(code, minutes)``: answer a rate-limit error (4, 17, 32, 341, 368, 613, 80001,
  80002); the usage headers show 100% and, for BUC codes, ``estimated_time_to_regain_access``
  = ``minutes`` (``regain=False``: 0, no regain time, as Meta sometimes answers; with
  ``retry_after=True`` also a ``Retry-After`` header in seconds). With ``hold=True`` the
  throttled budget stays blocked for ``minutes`` as Meta's does: every call to it meanwhile
  (batch elements included) is throttled too, and counted in ``Router.calls_during_block``
  (Meta extends a block for such calls, docs/meta-facts.md 7.3).
- ``server_error(html)``: HTTP 500 with code 2 (``is_transient``), or with ``html`` an
  HTML 502 page instead of JSON.
- ``malformed_json()``: HTTP 200 with a torn JSON body.
- ``delay(seconds)``: answer late.
- ``reset()``: drop the connection without an answer (the client sees the server hang up).
- ``huge(megabytes)``: HTTP 200 with a valid JSON body of that size, sent in chunks without
  a ``Content-Length`` (the client learns its size only by reading it).
- ``endless()``: HTTP 200 with a JSON body that never ends (sent until the client hangs
  up, or 1 GiB at most).
- ``token_error(subcode)``: code 190 with that subcode (463 expired, 460 password
  changed, 492 lost Page role, ...).
- ``invalid_metrics(names)``: those metrics answer as retired ones do (code 100).
- ``batch_null_rate``: the share of batch elements answered ``null`` (timed out).
- ``app_insights_retired``: ``app_insights`` answers as the retired edge does.

HTTP: ``POST /_sim/faults`` with a JSON object ``{"kind": "throttle", "code": 4,
"minutes": 5, "count": 2, "path": "insights"}`` (or a list of them, or
``{"batch_null_rate": 0.3}`` / ``{"app_insights_retired": true}``); ``DELETE
/_sim/faults`` clears everything; ``GET /_sim/faults`` lists what is active.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

KINDS = (
    "throttle",
    "server_error",
    "malformed_json",
    "delay",
    "token_error",
    "invalid_metrics",
    "huge",
    "endless",
    "reset",
)
TRANSPORT_KINDS = ("server_error", "malformed_json", "delay", "huge", "endless", "reset")
_UNLIMITED_BY_DEFAULT = ("token_error", "invalid_metrics")
#: Options of each kind with their defaults (``...``: required).
_OPTIONS: dict[str, dict[str, Any]] = {
    "throttle": {"code": 4, "minutes": 5, "retry_after": False, "regain": True, "hold": False},
    "server_error": {"html": False},
    "malformed_json": {},
    "delay": {"seconds": ...},
    "token_error": {"subcode": 463},
    "invalid_metrics": {"names": ...},
    "huge": {"megabytes": 20.0},
    "endless": {},
    "reset": {},
}


@dataclass
class FaultRule:
    """One injected fault: its kind, options, path filter and remaining uses."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    path: str | None = None
    remaining: int | None = 1

    def matches(self, paths: Iterable[str]) -> bool:
        return self.path is None or any(self.path in p for p in paths)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.options, "path": self.path, "count": self.remaining}


class Faults:
    """The set of active faults (empty by default: the simulator behaves)."""

    def __init__(self, *, seed: int = 1) -> None:
        self.rules: list[FaultRule] = []
        self.batch_null_rate = 0.0
        self.app_insights_retired = False
        self._rng = random.Random(seed)

    # -- adding ------------------------------------------------------------------------

    def add(
        self,
        kind: str,
        *,
        count: int | str | None = "default",
        path: str | None = None,
        **options: Any,
    ) -> FaultRule:
        """Add a fault of ``kind`` (one of :data:`KINDS`)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {', '.join(KINDS)}")
        if count == "default":
            count = None if kind in _UNLIMITED_BY_DEFAULT else 1
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or None")
        unknown = set(options) - set(_OPTIONS[kind])
        if unknown:
            raise ValueError(f"unknown options for {kind}: {sorted(unknown)}")
        options = {**_OPTIONS[kind], **options}
        missing = [k for k, v in options.items() if v is ...]
        if missing:
            raise ValueError(f"{kind} needs {', '.join(missing)}")
        if kind == "invalid_metrics":
            names = options["names"]
            options["names"] = sorted({names} if isinstance(names, str) else set(names))
        rule = FaultRule(kind, options, path, count)
        self.rules.append(rule)
        return rule

    def throttle(
        self,
        code: int = 4,
        minutes: int = 5,
        count: int | None = 1,
        *,
        path: str | None = None,
        retry_after: bool = False,
        regain: bool = True,
        hold: bool = False,
    ) -> FaultRule:
        """Answer rate-limit error ``code``; access returns after ``minutes`` (said in the
        BUC header unless ``regain=False``; kept as a block with ``hold``)."""
        return self.add(
            "throttle",
            count=count,
            path=path,
            code=code,
            minutes=minutes,
            retry_after=retry_after,
            regain=regain,
            hold=hold,
        )

    def server_error(
        self, html: bool = False, count: int | None = 1, *, path: str | None = None
    ) -> FaultRule:
        """Answer HTTP 500 code 2, or an HTML 502 page with ``html``."""
        return self.add("server_error", count=count, path=path, html=html)

    def malformed_json(self, count: int | None = 1, *, path: str | None = None) -> FaultRule:
        """Answer HTTP 200 with a body that is not valid JSON."""
        return self.add("malformed_json", count=count, path=path)

    def delay(self, seconds: float, count: int | None = 1, *, path: str | None = None) -> FaultRule:
        """Answer ``seconds`` late."""
        return self.add("delay", count=count, path=path, seconds=seconds)

    def huge(
        self, megabytes: float = 20.0, count: int | None = 1, *, path: str | None = None
    ) -> FaultRule:
        """Answer a valid JSON body of ``megabytes``, in chunks without a length."""
        return self.add("huge", count=count, path=path, megabytes=megabytes)

    def reset(self, count: int | None = 1, *, path: str | None = None) -> FaultRule:
        return self.add("reset", count=count, path=path)

    def endless(self, count: int | None = 1, *, path: str | None = None) -> FaultRule:
        """Answer a JSON body that never ends."""
        return self.add("endless", count=count, path=path)

    def token_error(
        self, subcode: int = 463, count: int | None = None, *, path: str | None = None
    ) -> FaultRule:
        """Answer code 190 with ``subcode``."""
        return self.add("token_error", count=count, path=path, subcode=subcode)

    def invalid_metrics(
        self, names: Iterable[str], count: int | None = None, *, path: str | None = None
    ) -> FaultRule:
        """Make ``names`` answer as retired metrics do."""
        return self.add("invalid_metrics", count=count, path=path, names=names)

    def clear(self) -> None:
        """Remove every fault."""
        self.rules.clear()
        self.batch_null_rate = 0.0
        self.app_insights_retired = False

    # -- using -------------------------------------------------------------------------

    def take(
        self,
        kind: str,
        paths: Iterable[str],
        predicate: Callable[[FaultRule], bool] | None = None,
    ) -> FaultRule | None:
        """The first active fault of ``kind`` for a call on ``paths``; uses it up once."""
        paths = list(paths)
        for rule in self.rules:
            if rule.kind == kind and rule.matches(paths) and (predicate is None or predicate(rule)):
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        self.rules.remove(rule)
                return rule
        return None

    def null_elements(self, n: int) -> list[bool]:
        """Which of ``n`` batch elements come back ``null`` (``batch_null_rate``)."""
        return [self._rng.random() < self.batch_null_rate for _ in range(n)]

    # -- JSON (the control endpoint) ---------------------------------------------------

    def apply_json(self, spec: Any) -> list[FaultRule]:
        """Add faults from the control endpoint's JSON; raises ValueError when invalid."""
        if isinstance(spec, list):
            return [rule for item in spec for rule in self.apply_json(item)]
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        spec = dict(spec)
        if "batch_null_rate" in spec:
            rate = float(spec.pop("batch_null_rate"))
            if not 0 <= rate <= 1:
                raise ValueError("batch_null_rate must be between 0 and 1")
            self.batch_null_rate = rate
        if "app_insights_retired" in spec:
            self.app_insights_retired = bool(spec.pop("app_insights_retired"))
        if "kind" not in spec:
            if spec:
                raise ValueError(f"unknown keys {sorted(spec)}")
            return []
        kind = spec.pop("kind")
        count = spec.pop("count", "default")
        path = spec.pop("path", None)
        return [self.add(kind, count=count, path=path, **spec)]

    def describe(self) -> dict[str, Any]:
        """The active faults, as JSON."""
        return {
            "faults": [rule.to_json() for rule in self.rules],
            "batch_null_rate": self.batch_null_rate,
            "app_insights_retired": self.app_insights_retired,
        }
