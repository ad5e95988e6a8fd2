"""Config reload while running: SIGHUP, or ``POST /-/reload`` through :meth:`Reloader.reload`.

The config is read again with the loader the daemon started with (``_file`` secrets
included) and checked whole. An invalid config changes nothing: each problem is logged
once and the running config stays. A valid one is compared source by source with the
running one: a source that was removed stops (its series go), an added one starts, and one
whose settings changed in any way (its token too) is scheduled afresh; its samples, status
and plugin memory stay when its plugin and cadences are the same. Every other source keeps
its schedule, state and memory untouched. Keys that only take effect at start (``listen``,
``state_dir``, ``shard``, the log settings, ``plugin_dirs``, ``[collector.web]``, the shared
Graph client's ``max_concurrency`` and ``usage_ceiling``, the sink, ``[webhooks]`` ``listen``
and ``path``) are logged as needing a restart and otherwise left as they are.

A source waiting for a new token (``needs_reauth``) leaves that state when a reload brings
it a different token (a changed ``access_token_file``, or variable) and is polled at once;
with the same token it keeps waiting, whatever else changed.

Reloads never overlap: one runs at a time, and a burst of SIGHUPs coalesces into at most
one more, which reads the file as it is by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from collectord.config.types import Config, SourceConfig
from collectord.errors import ConfigError
from collectord.exporter.registry import ReloadStats
from collectord.graph.tokens import TokenWatcher
from collectord.logs import get_logger, scrub
from collectord.scheduling.scheduler import PollScheduler, SourceRuntime

if TYPE_CHECKING:
    from collectord.daemon import Collector

#: Seconds a reload may take to read and check the config before it is given up.
READ_TIMEOUT = 10.0

#: ``[collector]`` fields, by the config key that sets them; all need a restart.
_COLLECTOR_KEYS = {
    "listen_host": "listen",
    "listen_port": "listen",
    "log_level": "log_level",
    "log_format": "log_format",
    "state_dir": "state_dir",
    "plugin_dirs": "plugin_dirs",
    "shard": "shard",  # the sources this replica owns are the others' to leave alone
    "web": "web",  # the table itself; the files it names are re-read as they change
}
#: ``[graph]`` keys the one shared Graph client was built with.
_CLIENT_KEYS = ("max_concurrency", "usage_ceiling")

log = get_logger("collectord.reload")


class Reloader:
    """Applies a new config to a running :class:`~collectord.daemon.Collector` and its
    :class:`~collectord.scheduling.scheduler.PollScheduler`; ``stats`` feed the
    ``collectord_config_last_reload_*`` metrics."""

    def __init__(
        self,
        collector: Collector,
        scheduler: PollScheduler,
        loader: Callable[[], Config] | None,
        stats: ReloadStats,
    ) -> None:
        self.collector = collector
        self.scheduler = scheduler
        self.loader = loader
        self.stats = stats
        #: The token watcher, once started (a reload updates the sources it checks).
        self.watcher: TokenWatcher | None = None
        self._lock = asyncio.Lock()
        self._queued = False
        self._told_unavailable = False
        self._tasks: set[asyncio.Task[Any]] = set()
        #: Reloads applied or refused so far (for tests and the log).
        self.attempts = 0

    # -- the two ways in -------------------------------------------------------------------
    def on_sighup(self) -> None:
        """SIGHUP: start a reload unless one is already waiting to start (which will read
        the file as it is by then)."""
        if self._queued:
            return
        self._queued = True
        self._spawn(self._from_signal(), "reload")

    async def reload(self) -> tuple[bool, str]:
        """Reload now (after the one running, if any): ``(True, "reloaded")``, or ``(False,
        the first problem)`` when the config was refused and the old one kept. The
        callback ``POST /-/reload`` calls."""
        async with self._lock:
            return await self._apply()

    async def close(self) -> None:
        """Cancel reloads and token checks in flight (at shutdown)."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- inside ------------------------------------------------------------------------------
    def _spawn(self, coro: Any, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _from_signal(self) -> None:
        async with self._lock:
            self._queued = False
            await self._apply()

    def _unavailable(self) -> str | None:
        """Why the config cannot be read again, if it cannot."""
        if self.loader is None:
            return "the --demo config is made at start: restart to change it"
        path = self.collector.config.path
        try:
            regular = stat.S_ISREG(os.stat(path).st_mode)
        except OSError:
            regular = True  # gone or unreadable: the loader says so, as a config problem
        if not regular:
            return f"{path}: not a regular file (a pipe?): it cannot be read again; restart"
        return None

    async def _apply(self) -> tuple[bool, str]:
        self.attempts += 1
        why = self._unavailable()
        if why is not None:
            if not self._told_unavailable:
                self._told_unavailable = True
                log.warning("config reload unavailable", reason=why)
            return False, why
        assert self.loader is not None
        try:
            config = await asyncio.wait_for(asyncio.to_thread(self.loader), READ_TIMEOUT)
        except ConfigError as exc:
            return self._refused(list(exc.problems) or ["the config is invalid"])
        except TimeoutError:
            return self._refused([f"reading the config took over {READ_TIMEOUT:g}s"])
        except Exception as exc:  # a bug in a plugin's option check must not end the daemon
            return self._refused([scrub(f"{type(exc).__name__}: {exc}")])
        for warning in config.warnings:
            log.warning("config warning", detail=warning)
        self._apply_config(config)
        self.stats.successful = True
        self.stats.success_time = time.time()
        return True, "reloaded"

    def _refused(self, problems: list[str]) -> tuple[bool, str]:
        for line in problems:
            log.error("config problem", problem=line)
        log.error("config reload refused, the running config stays", problems=len(problems))
        self.stats.successful = False
        return False, problems[0]

    def _apply_config(self, new: Config) -> None:
        col = self.collector
        restart = needs_restart(col.config, new)
        if restart:
            log.warning("config change needs a restart, ignored until then", keys=restart)
        col.discoverer.follow(col.configured(new))  # children of changed parents follow
        wanted = col.wanted(new)
        added, removed, changed = self.apply_sources(wanted)
        col.use_config(new)
        log.info(
            "config reloaded",
            added=added,
            removed=removed,
            changed=changed,
            unchanged=len(wanted) - len(added) - len(changed),
        )

    def apply_wanted(self) -> None:
        """Make the running sources those the collector wants now (discovery found
        objects come or go)."""
        self.apply_sources(self.collector.wanted(self.collector.config))

    def apply_sources(
        self, wanted: dict[str, SourceConfig]
    ) -> tuple[list[str], list[str], list[str]]:
        """Make the running sources ``wanted`` (``Collector.wanted``): stop the ones not
        in it, start the new ones, schedule the changed ones afresh (see the module's
        words); return the names ``(added, removed, changed)``. A reload calls it, and so
        does discovery when it finds objects come or go."""
        col = self.collector
        current = {rt.name: rt for rt in col.runtimes}
        removed = [name for name in current if name not in wanted]
        added = [name for name in wanted if name not in current]
        changed = [n for n in wanted if n in current and current[n].config != wanted[n]]
        for name in removed:
            self.scheduler.remove_source(name)
            col.store.remove(name)
        fresh: list[SourceRuntime] = []
        for name in changed:
            self.scheduler.remove_source(name)
            rt = current[name]
            src = wanted[name]
            if rt.config.access_token != src.access_token and col.store.clear_reauth(name):
                log.info("source has a new token, polling it again", source=name)
            if _same_shape(rt.config, src):
                current[name] = col.runtime(src, rt.status)
            else:
                col.store.remove(name)
                current[name] = col.runtime(src)
            fresh.append(current[name])
        for name in added:
            current[name] = col.runtime(wanted[name])
            fresh.append(current[name])
        for rt in fresh:
            self.scheduler.add_source(rt)
        col.runtimes[:] = [current[name] for name in wanted]
        self._follow_tokens(fresh)
        return added, removed, changed

    def _follow_tokens(self, fresh: list[SourceRuntime]) -> None:
        """Point the token watcher at the sources now running; check new tokens now."""
        watcher = self.watcher
        if watcher is None:
            return
        col = self.collector
        watcher.runtimes = TokenWatcher(col.client, col.runtimes, col.store).runtimes
        check = TokenWatcher(col.client, fresh, col.store)
        if check.enabled:
            self._spawn(check.check_all(), "token check after reload")


def _same_shape(old: SourceConfig, new: SourceConfig) -> bool:
    """True when a changed source can keep its status (samples, counters, memory)."""
    return old.plugin == new.plugin and old.cadences() == new.cadences()


def needs_restart(old: Config, new: Config) -> list[str]:
    """The changed keys that take effect only at start, as ``[table] key`` strings."""
    keys: list[str] = []
    for field, key in _COLLECTOR_KEYS.items():
        label = "[collector.web]" if key == "web" else f"[collector] {key}"
        if getattr(old.collector, field) != getattr(new.collector, field) and label not in keys:
            keys.append(label)
    for key in _CLIENT_KEYS:
        if getattr(old.graph, key) != getattr(new.graph, key):
            keys.append(f"[graph] {key}")
    if old.jsonl != new.jsonl:
        keys.append("[sink.jsonl]")
    hooks, new_hooks = old.webhooks, new.webhooks
    if (hooks is None) != (new_hooks is None):
        keys.append("[webhooks]")  # the listener is set up at start (its secrets follow)
    elif hooks is not None and new_hooks is not None:
        keys += [
            f"[webhooks] {k}"
            for k in ("listen", "path")
            if getattr(hooks, k) != getattr(new_hooks, k)
        ]
    return keys
