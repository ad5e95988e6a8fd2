"""Token checks with ``debug_token`` when the app's id and secret are configured.

Each source's token is inspected with its own app (``[graph]``, or its ``[source.graph]``)
at start-up and then every ``token_check_interval`` (6 h unless set). What Meta answers
(docs/meta-facts.md 10.4) goes to the store as a :class:`~collectord.store.status.TokenView`:
validity, type, expiry (0 = never), data-access expiry, and the scopes the source's plugin
declares (``SourcePlugin.scopes``) that the token lacks. ``/metrics`` and the status page
read it from there. Without app credentials nothing can be known: the view says so and the
token metrics are absent. A failed check is logged once per source and never fails a poll.
No token text is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from collectord.config.types import GraphConfig, SourceConfig
from collectord.errors import GraphError
from collectord.graph.api import GRAPH_APP
from collectord.logs import get_logger, scrub
from collectord.model import TokenView

if TYPE_CHECKING:
    from collectord.scheduling.scheduler import SourceRuntime
    from collectord.store.store import Store

#: What the status page says for a source whose token cannot be checked.
NO_APP = "set [graph] app_id and app_secret to check tokens"
#: What the status page says for a source speaking the Instagram API with Instagram Login.
NOT_FACEBOOK = "an Instagram-Login token cannot be checked with debug_token"
#: The shortest wait between two rounds, whatever the intervals say.
MIN_WAIT = 1.0

log = get_logger("collectord.graph.tokens")

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[Any]]


class TokenWatcher:
    """Checks the sources' tokens now and then every ``token_check_interval``, while entered.

    An async context manager of its own (an asyncio task, not a scheduler job), so that the
    daemon's shutdown cancels a check in flight at once, quietly: a token check is never a
    failed job and never holds up the exit. ``clock`` (monotonic seconds) and ``sleep`` are
    the watcher's sense of time; tests give fake ones.

    Building a watcher marks every source without app credentials in the store (the status
    page says why its token is not checked); :attr:`runtimes` keeps the others.
    """

    def __init__(
        self,
        client: Any,
        runtimes: Sequence[SourceRuntime],
        store: Store,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.store = store
        self.runtimes = [rt for rt in runtimes if _checkable(rt)]
        self.enabled = bool(self.runtimes)
        self._clock = clock
        self._sleep = sleep
        self._failing: set[str] = set()
        self._told: dict[str, tuple[bool, tuple[str, ...]]] = {}
        self._task: asyncio.Task[None] | None = None
        for rt in runtimes:
            if not _facebook(rt):
                store.set_token(rt.name, TokenView(note=NOT_FACEBOOK))
            elif not _has_app(rt.config.graph):
                store.set_token(rt.name, TokenView(note=NO_APP))

    async def __aenter__(self) -> TokenWatcher:
        if not self.enabled:
            log.info("tokens not checked: " + NO_APP)
        # runs even with nothing to check: a reload may give sources app credentials
        self._task = asyncio.create_task(self._every(), name="token check")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _every(self) -> None:
        """Check every source when due (each by its own interval), then wait for the next."""
        last: dict[str, float] = {}
        while True:
            now = self._clock()
            due = [
                rt
                for rt in self.runtimes
                if now >= last.get(rt.name, -1e300) + rt.config.graph.token_check_interval
            ]
            try:
                await self.check_all(due)
            except Exception as exc:  # a bug here must not end the checks or the daemon
                log.error("token check failed", error=scrub(f"{type(exc).__name__}: {exc}"))
            names = {rt.name for rt in self.runtimes}
            last = {name: when for name, when in last.items() if name in names}
            last.update((rt.name, now) for rt in due)
            nexts = [
                last.get(rt.name, now) + rt.config.graph.token_check_interval
                for rt in self.runtimes
            ]
            wait = min(nexts, default=now + GraphConfig.token_check_interval) - self._clock()
            await self._sleep(max(wait, MIN_WAIT))

    async def check_all(self, runtimes: Iterable[SourceRuntime] | None = None) -> None:
        """Check the tokens of ``runtimes`` (all the watcher's sources by default) once."""
        for rt in self.runtimes if runtimes is None else runtimes:
            token = rt.config.access_token
            if not token:
                continue
            try:
                data = await self.client.debug_token(token, graph=rt.config.graph, source=rt.name)
            except GraphError as exc:
                self._failed(rt, exc)
                continue
            self._failing.discard(rt.name)
            view = read_answer(data, getattr(rt.plugin, "scopes", ()), object_of(rt.config))
            self._tell(rt.name, view)
            self.store.set_token(rt.name, view)

    def _failed(self, rt: SourceRuntime, exc: GraphError) -> None:
        """Keep what the last answer said, noting that the check failed."""
        reason = scrub(str(exc))
        if rt.name not in self._failing:
            self._failing.add(rt.name)
            log.warning("token check failed", source=rt.name, error=reason)
        before = rt.status.token if rt.status.token is not None else TokenView()
        note = f"the last check failed: {reason}"
        self.store.set_token(rt.name, dataclasses.replace(before, note=note))

    def _tell(self, name: str, view: TokenView) -> None:
        """Log a token turning invalid (or valid again) and a change of missing scopes, once."""
        valid = bool(view.valid)
        told = self._told.get(name)
        self._told[name] = (valid, view.missing_scopes)
        if told is None and valid and not view.missing_scopes:
            return
        if told is None or told[0] != valid:
            if valid:
                log.info("token is valid again", source=name)
            else:
                log.warning("token is not valid: collect a new one", source=name)
        if view.missing_scopes and (told is None or told[1] != view.missing_scopes):
            log.warning(
                "token lacks scopes the plugin needs",
                source=name,
                missing=", ".join(view.missing_scopes),
            )


def read_answer(
    data: Mapping[str, Any], needed: Iterable[str], target: tuple[str, str] | None = None
) -> TokenView:
    """The :class:`TokenView` of one ``debug_token`` ``data`` object, for a source whose
    plugin needs the scopes ``needed``, on ``target`` (:func:`object_of`) when given.

    Missing scopes are reported for valid tokens only (an invalid one has other troubles,
    and Meta lists no scopes for a token it cannot read). A scope counts as granted when
    ``scopes`` or ``granular_scopes`` names it, unless ``granular_scopes`` limits one of
    the target's kind (``pages_*`` for a Page, ``instagram_*`` for an account) to
    ``target_ids`` that leave the target out: a person who chose only some Pages in the
    login dialog grants it for those alone (docs/meta-facts.md 10.4).
    """
    valid = data.get("is_valid") is True
    kind = data.get("type")
    granted: set[str] = set()
    scopes = data.get("scopes")
    if isinstance(scopes, list):
        granted.update(s for s in scopes if isinstance(s, str))
    granular = data.get("granular_scopes")
    for g in granular if isinstance(granular, list) else ():
        if not isinstance(g, dict) or not isinstance(g.get("scope"), str):
            continue
        targets = g.get("target_ids")
        if (
            target is not None
            and g["scope"].startswith(target[0])
            and isinstance(targets, list)
            and target[1] not in map(str, targets)
        ):
            granted.discard(g["scope"])  # granted, but for other objects
        else:
            granted.add(g["scope"])
    missing = tuple(sorted(set(needed) - granted)) if valid else ()
    return TokenView(
        valid=valid,
        type=kind if isinstance(kind, str) and kind else None,
        expires_at=_time(data.get("expires_at")),
        data_access_expires_at=_time(data.get("data_access_expires_at")),
        missing_scopes=missing,
    )


#: The option naming the object a source reads, and the prefix of the scopes whose
#: ``granular_scopes`` ``target_ids`` list objects of that kind.
_TARGETS: Final = (("page_id", "pages_"), ("ig_user_id", "instagram_"))


def object_of(src: SourceConfig) -> tuple[str, str] | None:
    """``(scope prefix, id)`` of the Page or Instagram account a source reads, whose id
    ``granular_scopes`` may list; ``None`` for other sources (an app's)."""
    for key, prefix in _TARGETS:
        value = src.options.get(key)
        if isinstance(value, str) and value:
            return prefix, value
    return None


def _time(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


def _facebook(rt: SourceRuntime) -> bool:
    """Whether the source speaks an API of the app ``[graph]`` describes (its token is a
    Facebook one, which ``debug_token`` reads)."""
    api_for = getattr(rt.plugin, "api_for", None)
    return api_for is None or api_for(rt.config.options).app == GRAPH_APP


def _checkable(rt: SourceRuntime) -> bool:
    return _facebook(rt) and _has_app(rt.config.graph)


def _has_app(graph: GraphConfig) -> bool:
    return bool(graph.app_id and graph.app_secret)
