"""Token expiry, read with ``debug_token`` when the app's id and secret are configured.

Fills ``collectord_token_expiry_timestamp_seconds{source}`` (0 = never expires). Each
source's token is inspected with its own app (``[graph]``, or its ``[source.graph]``).
Without app credentials the expiry cannot be known and the series is absent. Checked at start-up
and then twice a day; a failed check is logged once per source, never fails a poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from collectord.config.types import GraphConfig
from collectord.errors import GraphError
from collectord.logs import get_logger, scrub
from collectord.scheduling.scheduler import SourceRuntime
from collectord.store.store import Store

CHECK_INTERVAL = 12 * 3600.0

log = get_logger("collectord.graph.tokens")


class TokenWatcher:
    def __init__(self, client: Any, runtimes: Sequence[SourceRuntime], store: Store) -> None:
        self.client = client
        self.store = store
        self.runtimes = [rt for rt in runtimes if _has_app(rt.config.graph)]
        self.enabled = bool(self.runtimes)
        self._failing: set[str] = set()

    def start(self, scheduler: Any) -> None:
        """Add the check to ``scheduler`` (an APScheduler instance): now, then every 12 h."""
        if not self.enabled:
            log.info("token expiry unknown: set [graph] app_id and app_secret to check tokens")
            return
        scheduler.add_job(
            self.check_all,
            "interval",
            seconds=CHECK_INTERVAL,
            id="tokens",
            name="check token expiry",
            next_run_time=datetime.now(UTC) + timedelta(seconds=1),
            max_instances=1,
            coalesce=True,
        )

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
