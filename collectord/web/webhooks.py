"""The ``[webhooks]`` listener: Meta's verification handshake and signed deliveries.

Meta reaches one URL path (``[webhooks] path``) in two ways (docs/meta-facts.md 6.8):

- ``GET path?hub.mode=subscribe&hub.verify_token=T&hub.challenge=C`` when the callback
  URL is saved in the App Dashboard: answered 200 with ``C`` as plain text when ``T`` is
  the configured ``verify_token`` (compared in constant time), 403 otherwise;
- ``POST path`` with a JSON body and ``X-Hub-Signature-256: sha256=<hex>``, the
  HMAC-SHA256 of the raw body keyed with ``[graph] app_secret``. A body over
  :data:`MAX_BODY` is refused with 413 (one that takes longer than :data:`BODY_TIMEOUT`
  with 408), a missing or wrong signature with 403, a body that is not a delivery's JSON
  with 400; in each case nothing is recorded. A signed
  delivery is answered 200 once each of its changes was handed to ``record`` (the sources
  whose plugin takes it record it, :meth:`~collectord.scheduling.poller.Poller
  .record_webhook`); a change no source takes is counted and ignored. With sharding and
  ``forward_url``, a delivery about an account another replica polls is also passed on
  to that replica (:mod:`collectord.web.forward`).

The signature is the credential: basic auth of ``[collector.web]`` never applies to this
path (Meta cannot send it), TLS does. The path is served by the metrics server, or by a
listener of its own when ``[webhooks] listen`` names another address. The secrets are
read from the config in use at each request, so a reload that rotates them applies at
once. Refusals are logged once per kind, without the body or any secret; the counts are
``collectord_webhook_requests_total`` and ``collectord_webhook_changes_total``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
from aiohttp import web

from collectord.config.types import Config
from collectord.exporter.exposition import Exposition
from collectord.exporter.registry import WebhookStats
from collectord.logs import get_logger
from collectord.sharding import Shard
from collectord.web.auth import BasicAuth
from collectord.web.forward import FORWARDED_HEADER, Forwarder
from collectord.web.listener import Limits
from collectord.web.server import (
    AUTH_KEY,
    LIMITS_KEY,
    WEB_KEY,
    WEBHOOK_PATH_KEY,
    guard,
    start_server,
    stop_server,
)

log = get_logger("collectord.web.webhooks")

#: The largest delivery accepted (Meta batches changes; a story's is about 200 bytes).
MAX_BODY: Final = 1 << 20
#: Seconds a client may take to send the body (the headers have their own limit).
BODY_TIMEOUT: Final = 30.0
SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
_PREFIX: Final = "sha256="
#: Fields some built-in plugin reads; a change of another field is ``unknown_field``.
KNOWN_FIELDS: Final = frozenset({"story_insights"})
#: Meta's challenge is a number; anything else safe to echo as text is accepted too.
_CHALLENGE = re.compile(r"[A-Za-z0-9_.~-]{1,256}")
_CHUNK = 64 * 1024

#: Hands one change (field, the entry's id, the change's value) to the sources; returns
#: how many took it.
Record = Callable[[str, str, Mapping[str, Any]], int]


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value of ``body`` under the app secret."""
    return _PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant time; hex in any case)."""
    if not header or not header.isascii():
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().lower().encode())


def challenge_answer(query: Mapping[str, str], verify_token: str) -> str | None:
    """The challenge to answer for a verification request, or ``None`` to refuse it."""
    given = query.get("hub.verify_token", "")
    matches = hmac.compare_digest(
        given.encode("utf-8", "surrogateescape"), verify_token.encode("utf-8")
    )
    challenge = query.get("hub.challenge", "")
    if query.get("hub.mode") != "subscribe" or not matches or not _CHALLENGE.fullmatch(challenge):
        return None
    return challenge


class MalformedDelivery(ValueError):
    """A body that is not the JSON of a webhook delivery."""


@dataclass(frozen=True, slots=True)
class Change:
    """One change of a delivery: the object kind, the entry's id, the field, its value."""

    object: str
    entry_id: str
    field: str
    value: Mapping[str, Any]


def parse_delivery(body: bytes) -> list[Change]:
    """The changes of a delivery (an object, or a list of them as some of Meta's examples
    show). Raises :class:`MalformedDelivery` naming what is wrong, never quoting the body."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise MalformedDelivery("not JSON") from None
    out: list[Change] = []
    for item in doc if isinstance(doc, list) else [doc]:
        if not isinstance(item, dict) or not isinstance(item.get("entry"), list):
            raise MalformedDelivery("expected an object with an 'entry' list")
        kind = item.get("object")
        for entry in item["entry"]:
            entry_id = entry.get("id") if isinstance(entry, dict) else None
            if isinstance(entry_id, int) and not isinstance(entry_id, bool):
                entry_id = str(entry_id)
            if not isinstance(entry_id, str) or not entry_id.isdigit():
                raise MalformedDelivery("an entry without a numeric 'id'")
            changes = entry.get("changes", [])
            if not isinstance(changes, list):
                raise MalformedDelivery("an entry whose 'changes' is not a list")
            for change in changes:
                field = change.get("field") if isinstance(change, dict) else None
                value = change.get("value") if isinstance(change, dict) else None
                if not isinstance(field, str) or not isinstance(value, dict):
                    raise MalformedDelivery("a change without a 'field' and a 'value' object")
                out.append(Change(str(kind), entry_id, field, value))
    return out


class WebhookHandler:
    """The two routes of the webhook path; ``config`` gives the config in use."""

    def __init__(
        self,
        config: Callable[[], Config],
        record: Record,
        stats: WebhookStats,
        *,
        max_body: int = MAX_BODY,
        body_timeout: float = BODY_TIMEOUT,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.config = config
        #: The table at start (``None`` only in tests of a handler alone).
        self.started = config().webhooks
        self.record = record
        self.stats = stats
        self.max_body = max_body
        self.body_timeout = body_timeout
        #: Sharding: passes deliveries on to the replicas polling their accounts.
        self.forwarder = forwarder
        self._logged: set[str] = set()

    async def _read(self, request: web.Request) -> bytes | None:
        """The raw body, or ``None`` once it passes the limit (without a Content-Length)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    def _refuse(self, kind: str, status: int, text: str, request: web.Request) -> web.Response:
        self.stats.requests[kind] += 1
        if kind not in self._logged:  # once per kind: a scanner must not fill the log
            self._logged.add(kind)
            log.warning("webhook refused", why=kind, status=status, remote=request.remote)
        return web.Response(status=status, text=f"{text}\n")

    async def verify(self, request: web.Request) -> web.Response:
        """``GET``: Meta's verification handshake (with the token of the config in use; a
        reload that dropped the table needs a restart, the token of the start stays)."""
        hooks = self.config().webhooks or self.started
        token = hooks.verify_token.reveal() if hooks is not None else ""
        answer = challenge_answer(request.query, token) if token else None
        if answer is None:
            if "verify" not in self._logged:
                self._logged.add("verify")
                log.warning("webhook verification refused", remote=request.remote)
            return web.Response(status=403, text="verification refused\n")
        log.info("webhook verification answered", remote=request.remote)
        return web.Response(text=answer)

    async def deliver(self, request: web.Request) -> web.Response:
        """``POST``: a delivery, checked, then handed change by change to ``record``."""
        if (request.content_length or 0) > self.max_body:
            resp = self._refuse("too_large", 413, "delivery too large", request)
            resp.force_close()
            return resp
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await self._read(request)
        except TimeoutError:
            resp = self._refuse("too_slow", 408, "the body took too long", request)
            resp.force_close()
            return resp
        if body is None:
            resp = self._refuse("too_large", 413, "delivery too large", request)
            resp.force_close()
            return resp
        secret = self.config().graph.app_secret
        header = request.headers.get(SIGNATURE_HEADER)
        if secret is None or not signature_ok(secret.reveal(), body, header):
            return self._refuse("bad_signature", 403, "bad or missing signature", request)
        try:
            changes = parse_delivery(body)
        except MalformedDelivery as exc:
            self.stats.requests["malformed"] += 1
            if "malformed" not in self._logged:
                self._logged.add("malformed")
                log.warning("webhook refused", why="malformed", problem=str(exc))
            return web.Response(status=400, text=f"malformed delivery: {exc}\n")
        self.stats.requests["accepted"] += 1
        taken = [self.record(c.field, c.entry_id, c.value) > 0 for c in changes]
        passed_on = FORWARDED_HEADER in request.headers
        owners, sent = await self._pass_on(changes, body, header or "", passed_on)
        for change, took in zip(changes, taken, strict=True):
            if took:
                outcome = "recorded"
            elif passed_on:
                continue  # counted by the replica that took it from Meta
            elif change.field in KNOWN_FIELDS and (there := owners.get(change.entry_id)):
                outcome = "forwarded" if there <= sent else "forward_failed"
            elif change.object == "instagram" and change.field in KNOWN_FIELDS:
                outcome = "unknown_account"
            else:
                outcome = "unknown_field"
            self.stats.changes[outcome] += 1
            if outcome.startswith("unknown") and outcome not in self._logged:
                self._logged.add(outcome)
                log.info("webhook change ignored", why=outcome, field=change.field[:64])
        return web.Response(text="ok\n")

    async def _pass_on(
        self, changes: list[Change], body: bytes, signature: str, passed_on: bool
    ) -> tuple[dict[str, set[int]], set[int]]:
        """Sharding: a delivery whose accounts other replicas poll goes on to them
        (:mod:`collectord.web.forward`). Returns the other shards polling each account of
        a change collectord reads, and the shards that took the delivery."""
        hooks, forwarder = self.config().webhooks, self.forwarder
        if forwarder is None or passed_on or hooks is None:
            return {}, set()
        read = {c.entry_id for c in changes if c.field in KNOWN_FIELDS}
        owners = {entry: there for entry in read if (there := forwarder.targets(hooks, [entry]))}
        if not owners:
            return {}, set()
        return owners, await forwarder.forward(
            hooks, set().union(*owners.values()), body, signature
        )


def mount(app: web.Application, handler: WebhookHandler, path: str) -> None:
    """Serve the webhook path on ``app`` (before it runs): GET and POST, no basic auth."""
    app[WEBHOOK_PATH_KEY] = path
    app.router.add_get(path, handler.verify)
    app.router.add_post(path, handler.deliver)


def make_webhook_app(
    handler: WebhookHandler, path: str, metrics_app: web.Application
) -> web.Application:
    """An application serving only the webhook path, with the metrics server's TLS and
    limits (for ``[webhooks] listen`` at an address of its own)."""
    app = web.Application(middlewares=[guard])
    app[WEB_KEY] = metrics_app[WEB_KEY]
    app[LIMITS_KEY] = metrics_app.get(LIMITS_KEY, Limits())
    app[AUTH_KEY] = BasicAuth({})
    mount(app, handler, path)
    return app


class _Recorder(Protocol):
    def record_webhook(
        self, runtimes: Any, field: str, object_id: str, value: Mapping[str, Any]
    ) -> int: ...


class Collecting(Protocol):
    """What the listener needs of the daemon's collector: the config in use, the sources
    it runs and the poller that records their samples."""

    @property
    def config(self) -> Config: ...

    @property
    def runtimes(self) -> Any: ...

    @property
    def poller(self) -> _Recorder: ...

    @property
    def shard(self) -> Shard: ...

    def webhook_owners(self, object_id: str) -> set[int]: ...


@asynccontextmanager
async def webhook_listener(
    metrics_app: web.Application, exposition: Exposition, col: Collecting
) -> AsyncIterator[WebhookHandler | None]:
    """While entered, the ``[webhooks]`` path is served (nothing without the table): on
    ``metrics_app`` (enter before it runs) or on a listener of its own. Deliveries go to
    ``col``'s sources, the counts to ``exposition``'s self-metrics. Raises
    :class:`OSError` when the address is taken."""
    current = col.config
    hooks = current.webhooks
    if hooks is None:
        yield None
        return
    stats = exposition.insights.webhooks = WebhookStats.started()

    def record(field: str, object_id: str, value: Mapping[str, Any]) -> int:
        return col.poller.record_webhook(col.runtimes, field, object_id, value)

    async with aiohttp.ClientSession() as session:
        forwarder = Forwarder(session, col.shard, col.webhook_owners) if col.shard.sharded else None
        handler = WebhookHandler(lambda: col.config, record, stats, forwarder=forwarder)
        host, port = current.collector.listen_host, current.collector.listen_port
        if hooks.listen is None or hooks.shared_with(host, port):
            mount(metrics_app, handler, hooks.path)
            log.info("webhooks served", path=hooks.path, on="the metrics listener")
            yield handler
            return
        app = make_webhook_app(handler, hooks.path, metrics_app)
        try:
            runner, bound = await start_server(app, *hooks.listen)
        except OSError as exc:  # the daemon's "cannot listen" line then names the table
            raise OSError(exc.errno, f"[webhooks] listen: {exc.strerror or exc}") from exc
        log.info("webhooks served", path=hooks.path, host=hooks.listen[0], port=bound)
        try:
            yield handler
        finally:
            await stop_server(runner)
