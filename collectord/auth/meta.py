"""The calls ``collectord auth`` makes to Meta, through the project's Graph client.

Login codes, the long-lived exchange (docs/meta-facts.md 10.2), ``debug_token`` (10.4),
``/me`` and ``/me/accounts`` (10.5). Every secret sent (the app secret, the code, the
tokens) is handed to the client as a secret, so no error text or log line shows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from collectord.config.types import GraphConfig
from collectord.errors import GraphError, GraphTimeoutError, NetworkError
from collectord.graph.bound import BoundGraph
from collectord.graph.calls import Binding, budget_key
from collectord.graph.client import GraphClient
from collectord.secret import Secret

#: The login dialog's host on Meta (the API itself is on graph.facebook.com).
DIALOG_BASE = "https://www.facebook.com"
#: Fields read for each Page of ``/me/accounts`` (docs/meta-facts.md 10.5).
ACCOUNT_FIELDS = "id,name,access_token,tasks,instagram_business_account{id,username}"


class RefusedError(Exception):
    """Meta refused a call (a bad secret, a used code, an invalid token), or could not be
    reached (``reached`` False: no answer, a timeout); the message is safe to show
    (secrets scrubbed)."""

    def __init__(self, message: str, *, reached: bool = True) -> None:
        super().__init__(message)
        self.reached = reached

    @property
    def headline(self) -> str:
        return "refused by Meta" if self.reached else "could not reach Meta"


def refused(exc: GraphError) -> RefusedError:
    """The :class:`RefusedError` of a Graph error."""
    unreached = isinstance(exc, NetworkError | GraphTimeoutError)
    return RefusedError(str(exc), reached=not unreached)


@dataclass(frozen=True)
class App:
    """The Meta app a command acts for."""

    app_id: str
    app_secret: Secret | None = None

    @property
    def app_token(self) -> Secret:
        assert self.app_secret is not None
        return Secret(f"{self.app_id}|{self.app_secret.reveal()}")


@dataclass(frozen=True)
class PageAccount:
    """One Page of ``/me/accounts`` with its token and its linked Instagram account."""

    page_id: str
    name: str
    token: Secret
    tasks: tuple[str, ...]
    ig_user_id: str | None
    ig_username: str | None


class MetaAuth:
    """The auth calls, over one :class:`GraphClient` (see :func:`meta_auth`)."""

    def __init__(self, client: GraphClient, graph: GraphConfig) -> None:
        self.client = client
        self.graph = graph

    def _bound(self, token: Secret | None, *secrets: Secret) -> BoundGraph:
        binding = Binding(token, self.graph, "auth", budget_key(token), extra_secrets=secrets)
        return BoundGraph(self.client, binding)

    async def _get(
        self, token: Secret | None, path: str, params: dict[str, Any], *secrets: Secret
    ) -> dict[str, Any]:
        try:
            return await self._bound(token, *secrets).get(path, params)
        except GraphError as exc:
            raise refused(exc) from None

    async def exchange_code(self, app: App, code: Secret, redirect_uri: str) -> Secret:
        """A login ``code`` for a (short-lived) user token."""
        assert app.app_secret is not None
        params = {
            "client_id": app.app_id,
            "client_secret": app.app_secret,
            "redirect_uri": redirect_uri,
            "code": code,
        }
        body = await self._get(None, "oauth/access_token", params, app.app_secret, code)
        return _token_of(body)

    async def long_lived(self, app: App, short: Secret) -> tuple[Secret, int | None]:
        """A short-lived user token for a long-lived one, and its ``expires_in``."""
        assert app.app_secret is not None
        params = {
            "grant_type": "fb_exchange_token",
            "client_id": app.app_id,
            "client_secret": app.app_secret,
            "fb_exchange_token": short,
        }
        body = await self._get(None, "oauth/access_token", params, app.app_secret, short)
        expires = body.get("expires_in")
        return _token_of(body), expires if isinstance(expires, int) else None

    async def debug_token(self, app: App, token: Secret) -> dict[str, Any]:
        """``debug_token``'s ``data`` for ``token``, asked with the app token."""
        graph = replace(self.graph, app_id=app.app_id, app_secret=app.app_secret)
        try:
            return await self.client.debug_token(token, graph=graph, source="auth")
        except GraphError as exc:
            raise refused(exc) from None

    async def me(self, token: Secret) -> dict[str, Any]:
        """``/me?fields=id,name`` with ``token`` (a Page token answers with its Page)."""
        return await self._get(token, "me", {"fields": "id,name"})

    async def pages(self, user_token: Secret) -> list[PageAccount]:
        """The Pages ``user_token`` manages, with their Page tokens."""
        try:
            items = await self._bound(user_token).get_all(
                "me/accounts", {"fields": ACCOUNT_FIELDS, "limit": 100}
            )
        except GraphError as exc:
            raise refused(exc) from None
        out: list[PageAccount] = []
        for item in items:
            token = item.get("access_token")
            if not isinstance(token, str) or not token or "id" not in item:
                continue  # no Page token: the user cannot act for this Page
            ig = item.get("instagram_business_account")
            ig = ig if isinstance(ig, dict) else {}
            tasks = item.get("tasks")
            out.append(
                PageAccount(
                    page_id=str(item["id"]),
                    name=str(item.get("name") or item["id"]),
                    token=Secret(token),
                    tasks=tuple(str(t) for t in tasks) if isinstance(tasks, list) else (),
                    ig_user_id=str(ig["id"]) if ig.get("id") else None,
                    ig_username=str(ig["username"]) if ig.get("username") else None,
                )
            )
        return out


def _token_of(body: dict[str, Any]) -> Secret:
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise RefusedError("Meta answered without an access_token")
    return Secret(token)


def graph_settings(base_url: str | None, version: str | None = None) -> GraphConfig:
    """The Graph settings of an auth command: Meta, or ``base_url`` (a simulator)."""
    graph = GraphConfig()
    if base_url:
        graph = replace(graph, base_url=base_url.rstrip("/"))
    if version:
        graph = replace(graph, version=version)
    return graph


@asynccontextmanager
async def meta_auth(graph: GraphConfig) -> AsyncIterator[MetaAuth]:
    """A :class:`MetaAuth` over a fresh HTTP session (closed on exit); no retries of
    refused calls: a login code is good once."""
    async with aiohttp.ClientSession() as session:
        yield MetaAuth(GraphClient(session, graph, max_retries=1), graph)
