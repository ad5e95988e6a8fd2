"""Self-renewing tokens: ``renew_token = true`` on a source (docs/meta-facts.md 10.9).

A long-lived Facebook user token is exchanged for a new one (``fb_exchange_token``, with
``[graph] app_id`` and ``app_secret``) and an Instagram-Login token is refreshed
(``ig_refresh_token``, once it is a day old) when less than :data:`RENEW_SHARE` of its life
is left. What the renewer knows of a configured token comes from ``debug_token`` (Facebook)
or from nothing (an Instagram-Login token cannot be inspected: the renewer tries a refresh
at once, and again every :data:`CHECK_EVERY` until Meta accepts it).

The new token is kept in ``{state_dir}/renewed-tokens.json`` (mode 0600, written
atomically) beside a fingerprint of the configured token it replaces, and used in
preference to it while valid (:meth:`RenewedTokens.apply`, which
``Collector.wanted`` calls): a restart keeps using it, and a changed configured token (a
reload) wins again. Page, system-user and app tokens that never expire are left alone,
with one warning. A failed renewal is logged once, in words, and tried again every
:data:`CHECK_EVERY`; the source keeps polling with the token it has. No token is ever
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectord.auth.meta import App, MetaAuth, RefusedError
from collectord.config.types import SourceConfig
from collectord.errors import GraphError
from collectord.files import atomic_write, ensure_dir, read_limited
from collectord.graph.api import GRAPH_APP, GraphApi, settings_for
from collectord.graph.calls import Binding, budget_key
from collectord.logs import get_logger, scrub
from collectord.plugin.api import SourcePlugin
from collectord.secret import Secret

#: The file in ``state_dir`` that holds renewed tokens.
STATE_FILE = "renewed-tokens.json"
#: Seconds between two looks at the tokens to renew.
CHECK_EVERY = 3600.0
#: A token is renewed once less than this share of its life is left.
RENEW_SHARE = 1 / 3
#: The life of a long-lived token when Meta does not say when it was issued (60 days).
LONG_LIVED = 60 * 86400.0
#: Meta refreshes an Instagram-Login token only once it is this old.
IG_MIN_AGE = 86400.0
#: The largest state file read.
MAX_FILE = 1024 * 1024

if TYPE_CHECKING:
    from collectord.daemon import Collector
    from collectord.reload import Reloader

log = get_logger("collectord.auth.renew")


def fingerprint(token: Secret) -> str:
    """A short one-way fingerprint of ``token``: which configured token a renewed one
    replaces, without keeping that token."""
    return hashlib.sha256(token.reveal().encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Renewed:
    """A renewed token: the token, the configured one it replaces (fingerprint), when it
    expires and when it was obtained (Unix seconds)."""

    token: Secret
    replaces: str
    expires_at: float
    renewed_at: float


class RenewedTokens:
    """``{state_dir}/renewed-tokens.json``: the renewed token of each source, by name."""

    def __init__(self, state_dir: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.path = state_dir / STATE_FILE
        self._clock = clock
        self.entries: dict[str, Renewed] = self._load()

    def _load(self) -> dict[str, Renewed]:
        try:
            raw = json.loads(read_limited(self.path, MAX_FILE))
            items = raw["sources"].items()
            return {
                str(name): Renewed(
                    Secret(str(e["token"])),
                    str(e["replaces"]),
                    float(e["expires_at"]),
                    float(e["renewed_at"]),
                )
                for name, e in items
            }
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning(
                "renewed tokens unreadable, using the configured ones",
                path=str(self.path),
                error=type(exc).__name__,
            )
            return {}

    def save(self) -> None:
        """Write the file (0600, atomically; ``state_dir`` made 0700 when missing)."""
        ensure_dir(self.path.parent)
        sources = {
            name: {
                "token": e.token.reveal(),
                "replaces": e.replaces,
                "expires_at": e.expires_at,
                "renewed_at": e.renewed_at,
            }
            for name, e in sorted(self.entries.items())
        }
        text = json.dumps({"version": 1, "sources": sources}, indent=1)
        atomic_write(self.path, text.encode())

    def current(self, src: SourceConfig) -> Renewed | None:
        """The renewed token ``src`` uses: one that replaces its configured token and has
        not expired; ``None`` otherwise (then the configured token is used)."""
        entry = self.entries.get(src.name)
        if entry is None or not src.renew_token or not src.access_token:
            return None
        if entry.replaces != fingerprint(src.access_token):
            return None
        if entry.expires_at and entry.expires_at <= self._clock():
            return None
        return entry

    def apply(self, src: SourceConfig) -> SourceConfig:
        """``src`` with its renewed token in place of the configured one, when it has one."""
        entry = self.current(src)
        return src if entry is None else replace(src, access_token=entry.token)


class Renewer:
    """Renews the tokens of the sources with ``renew_token`` while entered (an asyncio task).

    ``sources`` gives the configured sources this process runs (their tokens as
    configured), ``plugins`` the plugins (which API each source speaks), ``renewed`` is
    called after a token was renewed and saved (the daemon applies it to the running
    sources). ``clock`` and ``sleep`` are the renewer's sense of time.
    """

    def __init__(
        self,
        client: Any,
        tokens: RenewedTokens,
        sources: Callable[[], Iterable[SourceConfig]],
        plugins: Mapping[str, SourcePlugin],
        renewed: Callable[[], object],
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.client = client
        self.tokens = tokens
        self.sources = sources
        self.plugins = plugins
        self.renewed = renewed
        self._clock = clock
        self._sleep = sleep
        self._told: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Renewer:
        self._task = asyncio.create_task(self._every(), name="token renewal")
        return self

    async def __aexit__(self, *exc: object) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _every(self) -> None:
        while True:
            try:
                await self.check_all()
            except Exception as exc:  # a bug here must not end the renewals or the daemon
                log.error("token renewal failed", error=scrub(f"{type(exc).__name__}: {exc}"))
            await self._sleep(CHECK_EVERY)

    async def check_all(self) -> int:
        """Renew every due token once; returns how many were renewed (and applies them)."""
        count = 0
        sources = list(self.sources())
        for src in sources:
            plugin = self.plugins.get(src.plugin)
            if not src.renew_token or not src.access_token or plugin is None:
                continue
            count += await self._check(src, plugin.api_for(src.options))
        if count:
            for gone in set(self.tokens.entries) - {s.name for s in sources}:
                del self.tokens.entries[gone]  # a source no longer configured here
            try:
                self.tokens.save()
            except OSError as exc:  # used all the same; a restart goes back to the configured
                log.warning(
                    "renewed tokens not saved",
                    path=str(self.tokens.path),
                    error=exc.strerror or type(exc).__name__,
                )
            self.renewed()
        return count

    async def _check(self, src: SourceConfig, api: GraphApi) -> int:
        assert src.access_token is not None
        graph = settings_for(api, src.graph)
        instagram = api.app != GRAPH_APP
        now = self._clock()
        entry = self.tokens.current(src)
        token = entry.token if entry is not None else src.access_token
        try:
            if entry is not None:
                life: tuple[float | None, float | None] = (entry.expires_at, entry.renewed_at)
            elif instagram:
                life = (None, None)  # not inspectable: try at once
            else:
                life = await self._inspect(src, token, graph)
            if not _due(now, *life, instagram=instagram):
                return 0
            if instagram:
                new, expires_in = await self._refresh(src, token, graph, api.app)
            else:
                if not graph.app_id or not graph.app_secret:  # the config requires them
                    raise GraphError("renew_token needs [graph] app_id and app_secret")
                app = App(graph.app_id, graph.app_secret)
                new, expires_in = await MetaAuth(self.client, graph).long_lived(app, token)
        except _Never as never:
            self._tell(src.name, "never", f"token never expires ({never}): nothing to renew")
            return 0
        except (GraphError, RefusedError) as exc:
            self._failed(src.name, scrub(str(exc)), instagram)
            return 0
        expires_at = now + (expires_in if expires_in else LONG_LIVED)
        self.tokens.entries[src.name] = Renewed(new, fingerprint(src.access_token), expires_at, now)
        self._told.pop(src.name, None)
        log.info("token renewed", source=src.name, expires=_day(expires_at))
        return 1

    async def _inspect(
        self, src: SourceConfig, token: Secret, graph: Any
    ) -> tuple[float | None, float | None]:
        """(expires_at, issued_at) of a Facebook token, from ``debug_token``."""
        data = await self.client.debug_token(token, graph=graph, source=src.name)
        if data.get("is_valid") is not True:
            raise GraphError("the token is not valid: collect a new one (docs/getting-tokens.md)")
        expires = data.get("expires_at")
        kind = str(data.get("type") or "")
        if expires == 0 or (kind in ("PAGE", "APP", "SYSTEM_USER") and not expires):
            raise _Never(kind or "expires_at 0")
        issued = data.get("issued_at")
        return (
            float(expires) if isinstance(expires, int | float) else None,
            float(issued) if isinstance(issued, int | float) and issued > 0 else None,
        )

    async def _refresh(
        self, src: SourceConfig, token: Secret, graph: Any, app: str
    ) -> tuple[Secret, Any]:
        """``GET graph.instagram.com/refresh_access_token?grant_type=ig_refresh_token``."""
        binding = Binding(token, graph, src.name, budget_key(token, app))
        url = f"{graph.base_url.rstrip('/')}/refresh_access_token"
        body = await self.client.send(
            binding, "GET", url, params={"grant_type": "ig_refresh_token"}
        )
        new = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(new, str) or not new:
            raise GraphError("Meta answered the refresh without an access_token")
        expires_in = body.get("expires_in")
        return Secret(new), expires_in if isinstance(expires_in, int | float) else None

    def _failed(self, name: str, reason: str, instagram: bool) -> None:
        hint = (
            "an Instagram-Login token can be refreshed once it is a day old and until it "
            "expires; after that, log in again and set the new token"
            if instagram
            else "check [graph] app_id and app_secret; an expired user token cannot be "
            "exchanged: log in again and set the new token"
        )
        self._tell(name, reason, "token renewal failed, the source keeps its token", hint)

    def _tell(self, name: str, key: str, event: str, hint: str | None = None) -> None:
        if self._told.get(name) == key:
            return
        self._told[name] = key
        extra = {"hint": hint, "error": key} if hint else {}
        log.warning(event, source=name, retry_in=f"{CHECK_EVERY / 3600:g}h", **extra)


def daemon_renewer(col: Collector, reloader: Reloader) -> Renewer:
    """The daemon's renewer: the configured sources ``col`` owns, and every discovering
    source (each replica discovers with its token); a renewed token is applied to
    discovery (a parent's children take it) and to the running sources."""
    assert col.client is not None
    assert col.tokens is not None

    def renewed() -> None:
        col.discoverer.follow(col.configured(col.config))
        reloader.apply_wanted()

    return Renewer(
        col.client,
        col.tokens,
        lambda: [s for s in col.config.sources if s.discover or col.owns(s.name)],
        col.plugins,
        renewed,
    )


class _Never(Exception):
    """The token never expires (a Page, system-user or app token)."""


def _due(now: float, expires_at: float | None, issued_at: float | None, *, instagram: bool) -> bool:
    """Whether a token should be renewed now: unknown expiry (an Instagram-Login token not
    renewed yet), or less than :data:`RENEW_SHARE` of its life left (an Instagram-Login
    token only once a day old)."""
    if expires_at is None:
        return True
    if instagram and issued_at is not None and now - issued_at < IG_MIN_AGE:
        return False
    life = expires_at - issued_at if issued_at is not None else LONG_LIVED
    return expires_at - now < max(life, 0.0) * RENEW_SHARE


def _day(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")
