"""``collectord check --online``: each source's token and permissions, asked of Meta.

With the source's app credentials (``[graph]`` or ``[source.graph]`` ``app_id`` and
``app_secret``) its token goes through ``debug_token`` (docs/meta-facts.md 10.4): valid or
not, its type, its expiry and the scopes its plugin needs that it lacks. Without them a
``/me`` call says whether the token works at all, and the line says the scopes were not
checked. A source of an app-token plugin without a token of its own is checked with the
app token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import aiohttp

from collectord.auth.explain import TYPE_WORDS, when
from collectord.auth.scopes import plugin_scopes
from collectord.config.types import Config, SourceConfig
from collectord.errors import GraphError, GraphTimeoutError, NetworkError
from collectord.graph.api import GRAPH_APP
from collectord.graph.client import GraphClient
from collectord.graph.tokens import object_of, read_answer
from collectord.secret import Secret, scrub

#: An expiry closer than this is mentioned (the shipped alert warns 7 days before).
WARN_BEFORE = 7 * 86400


@dataclass(frozen=True)
class Verdict:
    source: str
    ok: bool
    detail: str


async def check_online(
    config: Config,
    plugins: Mapping[str, Any],
    out: TextIO,
    *,
    clock: Callable[[], float] = time.time,
) -> bool:
    """Check every source, print a line each; True when all are fine."""
    verdicts: list[Verdict] = []
    async with aiohttp.ClientSession() as session:
        client = GraphClient(session, config.graph, max_retries=1)
        for src in config.sources:
            verdict = await _check_source(client, src, plugins.get(src.plugin), clock())
            verdicts.append(verdict)
            state = "ok" if verdict.ok else "PROBLEM"
            out.write(f'online: source "{src.name}": {state}: {verdict.detail}\n')
    return all(v.ok for v in verdicts)


def _failed(exc: GraphError) -> str:
    if isinstance(exc, NetworkError | GraphTimeoutError):
        return "could not reach Meta"
    return "Meta refused the token"


def _token_of(src: SourceConfig) -> Secret | None:
    if src.access_token:
        return src.access_token
    graph = src.graph
    if graph.app_id and graph.app_secret:
        return Secret(f"{graph.app_id}|{graph.app_secret.reveal()}")
    return None


async def _check_source(client: GraphClient, src: SourceConfig, plugin: Any, now: float) -> Verdict:
    token = _token_of(src)
    if token is None:
        return Verdict(src.name, False, "no access token to check")
    graph = src.graph
    secrets = (token, graph.app_secret)
    api = plugin.api_for(src.options) if plugin is not None else None
    if api is not None and api.app != GRAPH_APP:
        return await _check_elsewhere(client, src, token, api)
    if not (graph.app_id and graph.app_secret):
        try:
            me = await client.bind(token, graph=graph, source=src.name).get(
                "me", {"fields": "id,name"}
            )
        except GraphError as exc:
            return Verdict(src.name, False, f"{_failed(exc)}: {scrub(str(exc), secrets)}")
        return Verdict(
            src.name,
            True,
            f"the token works (for {scrub(str(me.get('name', '?')), secrets)}); type, expiry "
            "and permissions not checked: set [graph] app_id and app_secret",
        )
    try:
        data = await client.debug_token(token, graph=graph, source=src.name)
    except GraphError as exc:
        return Verdict(src.name, False, f"debug_token: {_failed(exc)}: {scrub(str(exc), secrets)}")
    kind = str(data.get("type") or "")
    words = TYPE_WORDS.get(kind, kind or "a token of unknown type")
    if not data.get("is_valid"):
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        reason = scrub(str(error.get("message") or "not valid"), secrets)
        sub = f", subcode {error['subcode']}" if error.get("subcode") else ""
        return Verdict(src.name, False, f"{words}, not valid: {reason}{sub}")
    parts = [words, f"expires {when(data.get('expires_at'), now)}"]
    expires = data.get("expires_at")
    if isinstance(expires, int) and 0 < expires - now < WARN_BEFORE:
        parts.append("renew it soon")
    if src.renew_token and expires == 0:
        parts.append("warning: renew_token is set but this token never expires: nothing to renew")
    if kind == "APP":
        return Verdict(src.name, True, ", ".join(parts))
    if src.discover and kind not in ("USER", "SYSTEM_USER"):
        return Verdict(src.name, False, f"{words}: discover needs a user or system-user token")
    # discovery lists the Pages first (docs/meta-facts.md 10.5)
    needed = plugin_scopes(plugin) + (("pages_show_list",) if src.discover else ())
    # read as the daemon's token checks read it (scopes and granular_scopes)
    lacking = read_answer(data, needed, object_of(src)).missing_scopes
    if lacking:
        return Verdict(src.name, False, f"{words} lacks permission(s): {', '.join(lacking)}")
    parts.append("permissions complete" if needed else "no permissions needed")
    return Verdict(src.name, True, ", ".join(parts))


async def _check_elsewhere(
    client: GraphClient, src: SourceConfig, token: Secret, api: Any
) -> Verdict:
    """A source of another API than Facebook's (Instagram Login): ``debug_token`` cannot
    read its token, so ``/me`` on that API says whether it works."""
    secrets = (token,)
    try:
        me = await client.bind(token, graph=src.graph, source=src.name, api=api).get(
            "me", {"fields": "id,username"}
        )
    except GraphError as exc:
        return Verdict(src.name, False, f"{_failed(exc)}: {scrub(str(exc), secrets)}")
    who = scrub(str(me.get("username") or me.get("id") or "?"), secrets)
    return Verdict(
        src.name,
        True,
        f"an Instagram-Login token that works (for {who}); its expiry and permissions cannot "
        "be read (no debug_token there)"
        + ("; renew_token refreshes it" if src.renew_token else ": renew it within 60 days"),
    )
