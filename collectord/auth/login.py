"""``collectord auth login``: Facebook Login on a localhost callback, then Page tokens.

The steps (docs/meta-facts.md 10.7): a callback server on 127.0.0.1 (``/callback``), the
login dialog URL with the scopes and a random ``state``, the ``code`` the browser brings back (a wrong ``state`` is
refused and the wait goes on), the code for a user token, that for a long-lived one
(docs/meta-facts.md 10.2), then ``/me/accounts`` (10.5): each Page's token, which does not
expire when it comes from a long-lived user token (10.1). The tokens go to a secrets file
(mode 0600) in ``KEY=value`` form, which ``docker run --env-file``, systemd's
``EnvironmentFile=`` and a shell's ``set -a; . FILE`` all read; the ``[[source]]`` blocks
printed refer to them as ``${VAR}``.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from collectord.auth.meta import App, MetaAuth, PageAccount
from collectord.files import atomic_write
from collectord.secret import Secret

CALLBACK_PATH = "/callback"
_PAGE_DONE = (
    "<!DOCTYPE html><html><head><title>collectord</title></head><body>"
    "<p>collectord received the login. You can close this window.</p></body></html>"
)
_PAGE_REFUSED = (
    "<!DOCTYPE html><html><head><title>collectord</title></head><body>"
    "<p>collectord: the login did not succeed ({reason}). See the terminal.</p></body></html>"
)


class LoginRefused(Exception):
    """The person or Meta refused the login (the message is safe to show)."""


def dialog_url(
    dialog_base: str, version: str, app_id: str, redirect_uri: str, state: str, scopes: list[str]
) -> str:
    """The Facebook Login dialog URL (``response_type=code``)."""
    query = {
        "client_id": app_id,
        "redirect_uri": redirect_uri,
        "state": state,
        "response_type": "code",
        "scope": ",".join(scopes),
    }
    return f"{dialog_base.rstrip('/')}/{version}/dialog/oauth?{urlencode(query)}"


class Callback:
    """The localhost server the login dialog redirects to; :meth:`code` waits for it."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.refused_states = 0
        self._result: asyncio.Future[Secret] | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, port: int = 0) -> str:
        """Listen on 127.0.0.1:``port`` (0: a free one); returns the redirect URI."""
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get(CALLBACK_PATH, self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        try:
            await site.start()
        except OSError:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        return f"http://127.0.0.1:{self.port}{CALLBACK_PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def code(self) -> Secret:
        """The login code, once the browser comes back with it."""
        assert self._result is not None
        return await self._result

    async def _handle(self, request: web.Request) -> web.Response:
        query = request.query
        if not secrets.compare_digest(query.get("state", ""), self.state):
            self.refused_states += 1  # not our login (or a forged request): keep waiting
            return web.Response(text="state does not match this login", status=400)
        assert self._result is not None
        if self._result.done():
            return web.Response(text="this login was already received", status=409)
        if "error" in query:
            reason = re.sub(r"[^\w .,:()-]", "", query.get("error_reason") or query["error"])
            self._result.set_exception(LoginRefused(f"the login was refused ({reason[:80]})"))
            return web.Response(
                text=_PAGE_REFUSED.format(reason=reason[:80]), content_type="text/html"
            )
        code = query.get("code")
        if not code:
            return web.Response(text="no code in the callback", status=400)
        self._result.set_result(Secret(code))
        return web.Response(text=_PAGE_DONE, content_type="text/html")


@dataclass(frozen=True)
class LoginResult:
    user_token: Secret
    expires_in: int | None
    pages: list[PageAccount]


async def login(
    meta: MetaAuth,
    app: App,
    callback: Callback,
    redirect_uri: str,
    *,
    wait: float,
    say: Callable[[str], None],
) -> LoginResult:
    """Wait for the code, then exchange it and list the Pages."""
    try:
        async with asyncio.timeout(wait):
            code = await callback.code()
    except TimeoutError:
        raise LoginRefused(f"no login came back within {wait:g}s") from None
    say("login received; exchanging the code for a user token")
    short = await meta.exchange_code(app, code, redirect_uri)
    say("exchanging it for a long-lived user token")
    long_lived, expires_in = await meta.long_lived(app, short)
    say("listing your Pages and their Instagram accounts")
    pages = await meta.pages(long_lived)
    return LoginResult(long_lived, expires_in, pages)


# -- what is written and printed --------------------------------------------------------------

USER_VAR = "FB_USER_TOKEN"


def page_var(page_id: str) -> str:
    """The variable holding a Page's token in the secrets file."""
    return f"FB_PAGE_{re.sub(r'[^0-9A-Za-z]', '_', page_id)}_TOKEN"


def secrets_text(result: LoginResult) -> str:
    """The secrets file: one ``KEY=value`` line per token, with comments."""
    lines = [
        "# Written by `collectord auth login`. Keep it private (mode 0600).",
        "# Page tokens made from a long-lived user token do not expire; the user token",
        "# lasts about 60 days.",
        f"{USER_VAR}={result.user_token.reveal()}",
    ]
    for page in result.pages:
        lines.append(f"# {_one_line(page.name)}")
        lines.append(f"{page_var(page.page_id)}={page.token.reveal()}")
    return "\n".join(lines) + "\n"


def write_secrets(path: Path, result: LoginResult) -> None:
    """Write the secrets file atomically with mode 0600."""
    atomic_write(path, secrets_text(result).encode())


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "source"


def source_blocks(pages: list[PageAccount]) -> str:
    """A ready ``[[source]]`` block per Page (facebook_page, facebook_post) and per linked
    Instagram account (instagram_user, instagram_media), tokens as ``${VAR}``. Names come
    from the Page's name (or the account's username); a name already taken gets the id."""
    out: list[str] = []
    taken: set[str] = set()

    def unique(base: str, object_id: str) -> str:
        name = base if base not in taken else f"{base}-{object_id}"
        taken.add(name)
        return name

    for page in pages:
        var = page_var(page.page_id)
        slug = unique(_slug(page.name), page.page_id)
        out.append(f"# {_one_line(page.name)} (Page {page.page_id})")
        if page.tasks and "ANALYZE" not in page.tasks:
            out.append("# note: your role on this Page lacks the ANALYZE task; Meta refuses its")
            out.append("# insights until a Page admin gives you a role that includes it")
        for plugin, suffix in (("facebook_page", "page"), ("facebook_post", "posts")):
            out.append(_block(f"{slug}-{suffix}", plugin, "page_id", page.page_id, var))
        if page.ig_user_id:
            who = f"@{page.ig_username}" if page.ig_username else page.ig_user_id
            out.append(f"# Instagram {who} (linked to {_one_line(page.name)})")
            ig_slug = unique(_slug(page.ig_username or f"{slug}-instagram"), page.ig_user_id)
            for plugin, suffix in (("instagram_user", "ig"), ("instagram_media", "ig-media")):
                name = f"{ig_slug}-{suffix}"
                out.append(_block(name, plugin, "ig_user_id", page.ig_user_id, var))
    return "\n".join(out)


def _block(name: str, plugin: str, key: str, value: str, var: str) -> str:
    return (
        f'[[source]]\nname = "{name}"\nplugin = "{plugin}"\n{key} = "{value}"\n'
        f'access_token = "${{{var}}}"\n'
    )
