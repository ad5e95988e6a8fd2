"""Finding the objects a discovering source stands for, and the child sources they become.

A source with ``discover = true`` holds a user or system-user token. Its objects are the
Pages that token manages (``facebook_page``, ``facebook_post``) or the Instagram
professional accounts linked to them (``instagram_user``, ``instagram_media``):

1. ``GET /me/accounts`` lists the Pages with their Page tokens and linked accounts, page by
   page (docs/meta-facts.md 10.5).
2. Pages owned by a Business Manager can be missing from that list although the token may
   read them (docs/meta-facts.md 10.5): with the app's id and secret, ``debug_token`` names
   the Pages the token was granted in ``granular_scopes``; those the list left out are read
   by id. Without the app's credentials this step is skipped.

``include`` and ``exclude`` then narrow the objects: each entry is an id or a name (a Page's
name, an account's username), ``*`` and ``?`` match as in shell patterns, names regardless
of case. Each object left becomes a child source named ``{parent}/{object_id}``: the
parent's settings with the object key set, holding the Page's own token for the Page
plugins and the parent's token for the Instagram ones. Tokens stay :class:`Secret`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import MappingProxyType
from typing import Any

from collectord.config.types import SourceConfig
from collectord.errors import GraphError
from collectord.logs import get_logger, scrub
from collectord.plugin.api import DISCOVERY_KEYS, SourcePlugin
from collectord.secret import Secret

#: The fields asked for each Page, in the list and when read by id.
PAGE_FIELDS = "id,name,access_token,instagram_business_account{id,username}"
#: Pages per list page (Meta's cap for ``/me/accounts``).
PAGE_LIMIT = 100
#: Scopes whose ``target_ids`` in ``granular_scopes`` are Page ids.
PAGE_SCOPE_PREFIX = "pages_"

log = get_logger("collectord.discovery")


@dataclass(frozen=True)
class Found:
    """One object a token can see: its id, its name (a Page's name, an account's
    username) and, for a Page, the Page token Meta answered with."""

    id: str
    name: str
    token: Secret | None = None


@dataclass(frozen=True)
class Listing:
    """What one discovery run saw: the Pages, and whether the ``granular_scopes``
    fallback ran (``None``: skipped, with the reason; else the ids it added)."""

    pages: tuple[dict[str, Any], ...]
    fallback: tuple[str, ...] | None
    skipped: str | None = None


async def list_pages(graph: Any, debug_token: Any | None, *, source: str | None = None) -> Listing:
    """The Pages ``graph``'s token can see, each as Meta answered it (``id``, ``name``,
    ``access_token``, ``instagram_business_account``).

    ``graph`` is a bound Graph client for the token; ``debug_token`` an awaitable
    factory answering ``debug_token``'s ``data`` for that token, or ``None`` without the
    app's credentials (the fallback is then skipped). A failing list raises its
    :class:`GraphError`; a Page of the fallback that cannot be read is left out with a
    warning."""
    listed = await graph.get_all("me/accounts", {"fields": PAGE_FIELDS, "limit": PAGE_LIMIT})
    pages = [p for p in listed if isinstance(p.get("id"), str) and p["id"]]
    if debug_token is None:
        return Listing(tuple(pages), None, "no [graph] app_id and app_secret")
    try:
        data = await debug_token()
    except GraphError as exc:
        return Listing(tuple(pages), None, f"debug_token failed: {scrub(str(exc))}")
    seen = {p["id"] for p in pages}
    extra = [i for i in granted_page_ids(data) if i not in seen]

    async def read(page_id: str) -> dict[str, Any] | None:
        try:
            return dict(await graph.get(page_id, {"fields": PAGE_FIELDS}))
        except GraphError as exc:
            log.warning(
                "discovery: a Page named in granular_scopes cannot be read",
                source=source,
                page_id=page_id,
                error=scrub(str(exc)),
            )
            return None

    # the Graph client keeps the reads within its concurrency limits
    read_pages = await asyncio.gather(*(read(page_id) for page_id in extra))
    added: list[str] = []
    for page_id, page in zip(extra, read_pages, strict=True):
        if page is not None and page.get("id") == page_id:
            pages.append(page)
            added.append(page_id)
    return Listing(tuple(pages), tuple(added))


def granted_page_ids(data: Mapping[str, Any]) -> list[str]:
    """The Page ids in a ``debug_token`` answer's ``granular_scopes`` (the ``target_ids``
    of the ``pages_*`` scopes), in order, once each."""
    out: dict[str, None] = {}
    granular = data.get("granular_scopes")
    for entry in granular if isinstance(granular, list) else ():
        if not isinstance(entry, dict):
            continue
        scope = entry.get("scope")
        targets = entry.get("target_ids")
        if not (isinstance(scope, str) and scope.startswith(PAGE_SCOPE_PREFIX)):
            continue
        if isinstance(targets, list):
            out.update((t, None) for t in targets if isinstance(t, str) and t.isdigit())
    return list(out)


def objects(kind: str, pages: Iterable[Mapping[str, Any]]) -> list[Found]:
    """The objects of ``kind`` (``page`` or ``instagram``) among ``pages``, once each."""
    out: dict[str, Found] = {}
    for page in pages:
        if kind == "page":
            token = page.get("access_token")
            secret = Secret(token) if isinstance(token, str) and token else None
            out.setdefault(page["id"], Found(page["id"], _text(page.get("name")), secret))
        elif kind == "instagram":
            account = page.get("instagram_business_account")
            if isinstance(account, dict) and isinstance(account.get("id"), str):
                ig_id = account["id"]
                out.setdefault(ig_id, Found(ig_id, _text(account.get("username"))))
    return list(out.values())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def matches(found: Found, patterns: Sequence[str]) -> bool:
    """Whether an entry of ``patterns`` names ``found``: its id exactly (or as a shell
    pattern), or its name regardless of case."""
    name = found.name.casefold()
    return any(
        fnmatchcase(found.id, p) or (name and fnmatchcase(name, p.casefold())) for p in patterns
    )


def select(found: Iterable[Found], include: Sequence[str], exclude: Sequence[str]) -> list[Found]:
    """``found`` within ``include`` (all when empty) and not in ``exclude``."""
    return [
        f
        for f in found
        if (not include or matches(f, include)) and not (exclude and matches(f, exclude))
    ]


def child_name(parent: str, object_id: str) -> str:
    """The name of the child source for one object of ``parent``."""
    return f"{parent}/{object_id}"


def children(
    parent: SourceConfig, plugin: SourcePlugin, found: Iterable[Found]
) -> tuple[SourceConfig, ...]:
    """One child source per object: ``parent``'s settings, the object key set to the
    object's id, the Page token (Page plugins; the parent's when Meta sent none) or the
    parent's token (Instagram plugins). A Page token never needs renewing: a Page child
    does not renew."""
    kind = plugin.discovers or ""
    key = DISCOVERY_KEYS[kind]
    out = []
    for f in found:
        page_token = kind == "page" and f.token is not None
        out.append(
            dataclasses.replace(
                parent,
                name=child_name(parent.name, f.id),
                parent=parent.name,
                discover=False,
                include=(),
                exclude=(),
                options=MappingProxyType({**parent.options, key: f.id}),
                access_token=f.token if page_token else parent.access_token,
                renew_token=False if page_token else parent.renew_token,
            )
        )
    return tuple(out)
