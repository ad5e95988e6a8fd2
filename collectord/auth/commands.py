"""The ``collectord auth login|exchange|inspect`` subcommands.

Exit status: 0 done; 1 refused by Meta (a bad secret, a used code, an invalid token, a
login cancelled or never finished); 2 bad arguments (a missing or unreadable file, a port
in use). Progress goes to stderr as plain lines; what a person pastes (the ``[[source]]``
blocks, ``inspect``'s answer) goes to stdout. No token is printed unless ``--print-token``.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
import webbrowser
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from collectord.auth.explain import describe
from collectord.auth.login import (
    Callback,
    LoginRefused,
    dialog_url,
    login,
    secrets_text,
    source_blocks,
    write_secrets,
)
from collectord.auth.meta import DIALOG_BASE, App, RefusedError, graph_settings, meta_auth
from collectord.auth.scopes import login_scopes
from collectord.files import atomic_write, read_limited
from collectord.secret import Secret, scrub

EXIT_OK, EXIT_REFUSED, EXIT_ARGS = 0, 1, 2
#: The clock ``inspect`` says "in N days" against (tests fix it).
clock: Callable[[], float] = time.time
#: The largest token or secret file read.
MAX_SECRET_BYTES = 64 * 1024


class ArgumentProblem(Exception):
    """A bad argument (exit 2); the message names it."""


def add_auth_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register ``auth`` and its subcommands on the main parser's ``sub``."""
    auth = sub.add_parser("auth", help="get, exchange and explain tokens")
    cmds = auth.add_subparsers(dest="auth_command", required=True, metavar="ACTION")

    def app_args(p: argparse.ArgumentParser, required: bool) -> None:
        p.add_argument("--app-id", required=required, metavar="ID", help="the Meta app's id")
        p.add_argument(
            "--app-secret-file",
            required=required,
            metavar="FILE",
            help="a file holding the app secret (never pass it on the command line)",
        )

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--base-url", metavar="URL", help="Graph API base URL (a simulator)")
        p.add_argument(
            "--graph-version", metavar="vNN.0", help="Graph API version (default: collectord's)"
        )
        p.add_argument(
            "--print-token", action="store_true", help="also print the token(s) to stdout"
        )

    p = cmds.add_parser("login", parents=parents, help="Facebook Login, then Page tokens")
    app_args(p, True)
    p.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        help="ask for the scopes of the plugins this config's sources use (default: all)",
    )
    p.add_argument(
        "--scopes",
        metavar="LIST",
        help="comma-separated permissions (default: what the plugins need)",
    )
    p.add_argument("--open", action="store_true", help="open the login URL in a browser")
    p.add_argument(
        "--port",
        type=int,
        default=0,
        metavar="N",
        help="callback port on 127.0.0.1 (default: a free one)",
    )
    p.add_argument(
        "--out",
        default="collectord-secrets.env",
        metavar="FILE",
        help="secrets file to write, mode 0600 (default: collectord-secrets.env)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the login (default: 600)",
    )
    common(p)

    p = cmds.add_parser(
        "exchange", parents=parents, help="a short-lived user token for a long-lived one"
    )
    app_args(p, True)
    p.add_argument(
        "--token-file",
        required=True,
        metavar="FILE",
        help="a file holding the short-lived user token",
    )
    p.add_argument("--out", metavar="FILE", help="where to write the long-lived token (0600)")
    common(p)

    p = cmds.add_parser("inspect", parents=parents, help="say what a token is")
    app_args(p, False)
    p.add_argument("--token-file", required=True, metavar="FILE", help="a file holding the token")
    common(p)


def run_auth(
    args: argparse.Namespace, plugins: Mapping[str, Any], used: list[str] | None = None
) -> int:
    """Run ``collectord auth ...``; the exit status. Login asks for the scopes of the
    plugins named in ``used`` (default: all of ``plugins``)."""
    return asyncio.run(auth_main(args, plugins, used))


async def auth_main(
    args: argparse.Namespace, plugins: Mapping[str, Any], used: list[str] | None = None
) -> int:
    """:func:`run_auth` inside a running event loop (tests run it beside a simulator)."""
    try:
        if args.auth_command == "login":
            _check_out(args.out)
            return await _login(args, login_scopes(plugins, used))
        if args.auth_command == "exchange":
            return await _exchange(args)
        return await _inspect(args)
    except ArgumentProblem as exc:
        _err(str(exc))
        return EXIT_ARGS
    except RefusedError as exc:
        _err(f"{exc.headline}: {scrub(str(exc))}")
        return EXIT_REFUSED
    except LoginRefused as exc:
        _err(scrub(str(exc)))
        return EXIT_REFUSED


def _check_out(out: str) -> None:
    if Path(out).is_dir():
        raise ArgumentProblem(f"--out {out}: is a directory")


def _err(line: str) -> None:
    print(f"collectord auth: {line}", file=sys.stderr, flush=True)


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def read_secret(path: str, what: str) -> Secret:
    """The first line of ``path`` as a secret; :class:`ArgumentProblem` when it cannot
    be read or is empty."""
    try:
        text = read_limited(Path(path), MAX_SECRET_BYTES).decode().strip()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ArgumentProblem(f"{what} {path}: cannot read it ({type(exc).__name__})") from None
    if not text:
        raise ArgumentProblem(f"{what} {path}: the file is empty")
    return Secret(text.splitlines()[0].strip())


def _app(args: argparse.Namespace) -> App | None:
    if not args.app_id and not args.app_secret_file:
        return None
    if not args.app_id or not args.app_secret_file:
        raise ArgumentProblem("--app-id and --app-secret-file go together")
    if not str(args.app_id).isdigit():
        raise ArgumentProblem(f"--app-id: expected the app's numeric id, got {args.app_id!r}")
    return App(args.app_id, read_secret(args.app_secret_file, "--app-secret-file"))


def _graph(args: argparse.Namespace) -> Any:
    return graph_settings(args.base_url, args.graph_version)


async def _login(args: argparse.Namespace, scopes: list[str]) -> int:
    app = _app(args)
    assert app is not None
    if args.scopes:
        scopes = sorted({s.strip() for s in args.scopes.split(",") if s.strip()})
    out = Path(args.out)
    graph = _graph(args)
    callback = Callback(secrets.token_urlsafe(24))
    try:
        redirect_uri = await callback.start(args.port)
    except OSError as exc:
        raise ArgumentProblem(
            f"--port {args.port}: cannot listen on 127.0.0.1 ({exc.strerror or exc}); "
            "pick another port or leave --port out for a free one"
        ) from None
    try:
        dialog_base = args.base_url or DIALOG_BASE
        url = dialog_url(
            dialog_base, graph.version, app.app_id, redirect_uri, callback.state, scopes
        )
        _say(f"waiting for the login on {redirect_uri}")
        _say(f"permissions asked for: {', '.join(scopes)}")
        _say("open this URL in a browser and log in:")
        print(url, flush=True)
        if args.open:
            webbrowser.open(url)
        async with meta_auth(graph) as meta:
            result = await login(meta, app, callback, redirect_uri, wait=args.timeout, say=_say)
    finally:
        await callback.stop()
    try:
        write_secrets(out, result)
    except OSError as exc:
        raise ArgumentProblem(f"--out {out}: cannot write it ({exc.strerror or exc})") from None
    days = f" (about {result.expires_in // 86400} days)" if result.expires_in else ""
    _say(
        f"wrote {out} (mode 0600): a long-lived user token{days} and "
        f"{len(result.pages)} Page token(s), which do not expire"
    )
    if not result.pages:
        _say("no Pages: the user manages none, or did not grant pages_show_list")
    print(f"\n# Load the tokens before starting collectord, e.g. `set -a; . {out}; set +a`,")
    print("# docker run --env-file, or systemd EnvironmentFile=. Then add to collector.toml:\n")
    print(source_blocks(result.pages))
    if args.print_token:
        print(f"# {out}:")
        print(secrets_text(result), end="")
    return EXIT_OK


async def _exchange(args: argparse.Namespace) -> int:
    app = _app(args)
    assert app is not None
    short = read_secret(args.token_file, "--token-file")
    if not args.out and not args.print_token:
        raise ArgumentProblem("say where the long-lived token goes: --out FILE or --print-token")
    async with meta_auth(_graph(args)) as meta:
        token, expires_in = await meta.long_lived(app, short)
    if args.out:
        try:
            atomic_write(Path(args.out), (token.reveal() + "\n").encode())
        except OSError as exc:
            raise ArgumentProblem(f"--out {args.out}: cannot write it ({exc})") from None
        _say(f"wrote a long-lived user token to {args.out} (mode 0600)")
    if expires_in:
        _say(f"it expires in about {expires_in // 86400} days")
    if args.print_token:
        print(token.reveal())
    return EXIT_OK


async def _inspect(args: argparse.Namespace) -> int:
    app = _app(args)
    token = read_secret(args.token_file, "--token-file")
    async with meta_auth(_graph(args)) as meta:
        if app is None:
            _say(
                "no --app-id/--app-secret-file: Meta's debug_token needs the app's credentials,"
                " so the token's type, scopes and expiry are unknown; asking /me only"
            )
            try:
                me = await meta.me(token)
            except RefusedError as exc:
                if exc.reached:
                    print("valid: no")
                _err(f"{exc.headline}: {scrub(str(exc), [token])}")
                return EXIT_REFUSED
            print(f"whose: {me.get('name', '?')} ({me.get('id', '?')})")
            print("valid: yes (it can call the Graph API)")
            return EXIT_OK
        data = await meta.debug_token(app, token)
        name = None
        if data.get("is_valid"):
            try:
                name = str((await meta.me(token)).get("name") or "") or None
            except RefusedError:
                name = None
    for line in describe(data, clock(), name=name):
        print(scrub(line, [token, app.app_secret]))
    if args.print_token:
        print(f"token: {token.reveal()}")
    return EXIT_OK if data.get("is_valid") else EXIT_REFUSED
