"""When discovery runs, and what it changes: :class:`Discoverer`.

The first run happens during start-up, before the first polls, every discovering source at
once, each given its Graph ``timeout``; ``run`` and ``once`` both see its children. A
source whose first run fails is logged once in words and has no children until a later run
succeeds: the daemon starts anyway. A first run that takes longer than the timeout starts
again in the background as soon as the daemon runs, unbounded (each request is bounded). While the daemon runs, each
discovering source is discovered again on its ``daily_interval`` (after a failure, on its
``fast_interval`` when that is shorter), and at once after a reload changed it. After each
run the children are written to the collector's ``discovered`` map and ``on_change`` is
called, so that new objects start and removed ones stop (their series go) without a
restart. A failed run keeps the children of the last good one: a passing error of Meta
never removes a Page. Each run that changes the set logs the ids added and removed, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Set
from typing import Any

from collectord.config.types import SourceConfig
from collectord.discovery.find import child_name, children, list_pages, objects, select
from collectord.errors import GraphError, reauth_advice
from collectord.graph.api import FACEBOOK
from collectord.logs import get_logger, scrub
from collectord.plugin.api import SourcePlugin

log = get_logger("collectord.discovery")

#: The shortest wait between two runs for one source, whatever the intervals say.
MIN_WAIT = 1.0


class Discoverer:
    """Runs discovery for the discovering sources of a config and keeps ``discovered``
    (the collector's map: parent name → child sources) current.

    Call :meth:`first` at start-up (with the process's Graph client), enter
    :meth:`running` once the daemon can apply changes, and call :meth:`follow` after a
    reload.
    """

    def __init__(
        self,
        plugins: Mapping[str, SourcePlugin],
        discovered: dict[str, tuple[SourceConfig, ...]],
        *,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        #: The Graph client (given to :meth:`first`).
        self.client: Any = None
        self.plugins = plugins
        self.discovered = discovered
        #: Called after a run or a reload changed some source's children.
        self.on_change: Callable[[], object] | None = None
        #: The discovering sources as last configured, by name.
        self.parents: dict[str, SourceConfig] = {}
        #: The Pages the last good run of each source saw (before include/exclude).
        self.pages: dict[str, tuple[dict[str, Any], ...]] = {}
        #: Runs so far and failed runs so far, for each source (tests and the log).
        self.runs: dict[str, int] = {}
        self.failed: dict[str, int] = {}
        self._sleep = sleep
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failing: set[str] = set()
        self._told_skipped: set[str] = set()
        self._slow: set[str] = set()  # first runs cut at the Graph timeout

    # -- the daemon's calls -------------------------------------------------------------------
    async def first(
        self, client: Any, sources: Iterable[SourceConfig], only: Set[str] | None = None
    ) -> None:
        """The first run of every discovering source in ``sources`` (with ``only``, of
        those it names, itself or a child: ``once --source``), at once, through
        ``client`` (the process's Graph client, used from then on)."""
        self.client = client
        wanted = None if only is None else {name.split("/")[0] for name in only}
        for src in sources:
            if src.discover and (wanted is None or src.name in wanted):
                self.parents[src.name] = src
        await asyncio.gather(*(self._bounded(p) for p in self.parents.values()))

    @contextlib.asynccontextmanager
    async def running(self, on_change: Callable[[], object]) -> AsyncIterator[Discoverer]:
        """While entered, discover again on each source's cadence; ``on_change`` applies
        a change of children to the running sources. Leaving stops every run."""
        self.on_change = on_change
        for name in self.parents:
            self._schedule(name, now=name in self._slow)
        try:
            yield self
        finally:
            self.on_change = None
            await self.close()

    def follow(self, sources: Iterable[SourceConfig]) -> None:
        """After a reload or a renewed token (before the sources are applied), with the
        configured ``sources``: forget the sources no longer discovering, rebuild the
        children of changed ones from what was last found (their new settings and token
        apply at once) and discover those again now."""
        parents = {s.name: s for s in sources if s.discover}
        for name in [n for n in self.parents if n not in parents]:
            self._forget(name)
        for name, parent in parents.items():
            if self.parents.get(name) == parent:
                continue
            self.parents[name] = parent
            if name in self.pages:
                self._build(parent, self.pages[name])
            if self.on_change is not None:
                self._schedule(name, now=True)

    async def close(self) -> None:
        """Stop every scheduled run (at shutdown)."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_once(self, parent: SourceConfig) -> bool:
        """Discover ``parent``'s objects once; False (logged once) when it failed."""
        self.runs[parent.name] = self.runs.get(parent.name, 0) + 1
        graph = self.client.bind(
            parent.access_token, graph=parent.graph, source=parent.name, api=FACEBOOK
        )
        app = parent.graph
        debug = None
        if app.app_id and app.app_secret and parent.access_token:

            async def debug() -> dict[str, Any]:
                return dict(
                    await self.client.debug_token(
                        parent.access_token, graph=app, source=parent.name
                    )
                )

        try:
            listing = await list_pages(graph, debug, source=parent.name)
        except GraphError as exc:
            kind = exc.token_kind
            self._failed(parent, scrub(str(exc)), reauth_advice(kind) if kind else None)
            return False
        if parent.name in self._failing:
            self._failing.discard(parent.name)
            log.info("discovery works again", source=parent.name)
        if listing.skipped and parent.name not in self._told_skipped:
            self._told_skipped.add(parent.name)
            log.info(
                "discovery: business-owned Pages not looked for",
                source=parent.name,
                reason=listing.skipped,
            )
        if self.parents.get(parent.name, parent) != parent:
            return True  # a reload changed the source meanwhile: its own run follows
        self.pages[parent.name] = listing.pages
        if self._build(parent, listing.pages, fallback=listing.fallback) and self.on_change:
            self.on_change()
        return True

    # -- inside ---------------------------------------------------------------------------------
    async def _bounded(self, parent: SourceConfig) -> bool:
        """The first run, given the Graph timeout: one that takes longer goes on in the
        background as soon as the daemon runs (its children start when it ends)."""
        try:
            async with asyncio.timeout(parent.graph.timeout):
                return await self.run_once(parent)
        except TimeoutError:
            self._slow.add(parent.name)
            self.failed[parent.name] = self.failed.get(parent.name, 0) + 1
            log.warning(
                "discovery is slow: the daemon starts without its sources, which start "
                "when it ends",
                source=parent.name,
                waited=parent.graph.timeout,
            )
            return False

    def _build(
        self,
        parent: SourceConfig,
        pages: tuple[dict[str, Any], ...],
        *,
        fallback: tuple[str, ...] | None = None,
    ) -> bool:
        """Write ``parent``'s children from ``pages``; log the ids added and removed;
        True when the children changed."""
        plugin = self.plugins.get(parent.plugin)
        if plugin is None or plugin.discovers is None:
            return False
        found = objects(plugin.discovers, pages)
        kept = select(found, parent.include, parent.exclude)
        before = {c.name for c in self.discovered.get(parent.name, ())}
        kids = children(parent, plugin, kept)
        changed = self.discovered.get(parent.name) != kids
        self.discovered[parent.name] = kids
        prefix = len(child_name(parent.name, ""))
        added = sorted(c.name[prefix:] for c in kids if c.name not in before)
        removed = sorted(n[prefix:] for n in before - {c.name for c in kids})
        fields: dict[str, Any] = {"source": parent.name, "found": len(found), "kept": len(kids)}
        if fallback:
            fields["from_granular_scopes"] = ", ".join(fallback)
        if added or removed or self.runs.get(parent.name) == 1:
            log.info("discovery", added=", ".join(added), removed=", ".join(removed), **fields)
        else:
            log.debug("discovery: nothing changed", **fields)
        return changed

    def _failed(self, parent: SourceConfig, reason: str, fix: str | None = None) -> None:
        self.failed[parent.name] = self.failed.get(parent.name, 0) + 1
        if parent.name in self._failing:
            return
        self._failing.add(parent.name)
        kept = len(self.discovered.get(parent.name, ()))
        log.warning(
            "discovery failed: the objects found last are kept, and it is tried again later",
            source=parent.name,
            error=reason,
            kept=kept,
            **({"fix": fix} if fix else {}),
        )

    def _forget(self, name: str) -> None:
        self.parents.pop(name, None)
        self.pages.pop(name, None)
        self.discovered.pop(name, None)
        self._failing.discard(name)
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()

    def _schedule(self, name: str, *, now: bool) -> None:
        old = self._tasks.pop(name, None)
        if old is not None:
            old.cancel()
        task = asyncio.create_task(self._every(name, now=now), name=f"discovery {name}")
        self._tasks[name] = task

    async def _every(self, name: str, *, now: bool) -> None:
        ok = not now and name not in self._failing
        while True:
            parent = self.parents.get(name)
            if parent is None:
                return
            if not now:
                schedule = parent.schedule
                wait = schedule.daily_interval
                if not ok:
                    wait = min(wait, schedule.fast_interval)
                await self._sleep(max(wait, MIN_WAIT))
                parent = self.parents.get(name)
                if parent is None:
                    return
            now = False
            try:  # each request is bounded by the Graph client; the run is not
                ok = await self.run_once(parent)
            except Exception as exc:  # a bug here must not end discovery or the daemon
                ok = False
                log.error(
                    "discovery failed", source=name, error=scrub(f"{type(exc).__name__}: {exc}")
                )
