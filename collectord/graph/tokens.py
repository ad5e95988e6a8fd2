"""Token expiry, read with ``debug_token`` when the app's id and secret are configured.

Fills ``collectord_token_expiry_timestamp_seconds{source}`` (0 = never expires). Each
source's token is inspected with its own app (``[graph]``, or its ``[source.graph]``).
Without app credentials the expiry cannot be known and the series is absent. Checked at start-up
and then twice a day; a failed check is logged once per source, never fails a poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from collectord.config.types import GraphConfig
from collectord.errors import GraphError
from collectord.logs import get_logger, scrub

if TYPE_CHECKING:
    from collectord.scheduling.scheduler import SourceRuntime
    from collectord.store.store import Store

CHECK_INTERVAL = 12 * 3600.0

log = get_logger("collectord.graph.tokens")


class TokenWatcher:
    """Checks the sources' token expiry now and then every 12 hours, while entered.

    An async context manager of its own (an asyncio task, not a scheduler job), so that the
    daemon's shutdown cancels a check in flight at once, quietly: a token check is never a
    failed job and never holds up the exit.
    """

    def __init__(self, client: Any, runtimes: Sequence[SourceRuntime], store: Store) -> None:
        self.client = client
        self.store = store
        self.runtimes = [rt for rt in runtimes if _has_app(rt.config.graph)]
        self.enabled = bool(self.runtimes)
        self._failing: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> TokenWatcher:
        if not self.enabled:
            log.info("token expiry unknown: set [graph] app_id and app_secret to check tokens")
        else:
            self._task = asyncio.create_task(self._every(CHECK_INTERVAL), name="token check")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _every(self, interval: float) -> None:
        while True:
            try:
                await self.check_all()
            except Exception as exc:  # a bug here must not end the checks or the daemon
                log.error("token check failed", error=scrub(f"{type(exc).__name__}: {exc}"))
            await asyncio.sleep(interval)

    async def check_all(self) -> None:
        for rt in self.runtimes:
            token = rt.config.access_token
            if not token:
                continue
            try:
                data = await self.client.debug_token(token, graph=rt.config.graph, source=rt.name)
            except GraphError as exc:
                if rt.name not in self._failing:
                    self._failing.add(rt.name)
                    log.warning("token check failed", source=rt.name, error=scrub(str(exc)))
                continue
            self._failing.discard(rt.name)
            if data.get("is_valid") is False:
                log.warning("token is not valid", source=rt.name)
            expires = data.get("expires_at")
            if isinstance(expires, int | float):
                self.store.set_token_expiry(rt.name, float(expires))


def _has_app(graph: GraphConfig) -> bool:
    return bool(graph.app_id and graph.app_secret)
