"""``collectord auth login`` against the simulator, in-process, with a scripted browser:
``--open`` hands the login URL to a stand-in for ``webbrowser.open``, which follows it
with an HTTP client to the dialog and, through its redirect, to the callback server."""

from __future__ import annotations

import asyncio
import logging
import stat
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from collectord.auth import commands
from collectord.cli import build_parser
from collectord.config.loader import load_config
from collectord.logs import configure_logging
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.simulator import Simulator, World
from collectord.simulator.base import quantize

FROZEN = quantize(datetime(2026, 3, 3, 12, tzinfo=UTC), 60)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=lambda: FROZEN, page_count=2))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def plugins() -> dict[str, Any]:
    return dict(plugin_map(load_source_plugins(())))


@pytest.fixture
def secret_file(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "app-secret"
    path.write_text(sim.world.app_secret + "\n")
    return path


class Browser:
    """Stands in for ``webbrowser.open``: follows the URL (and its redirects) on loopback."""

    def __init__(self, before: Callable[[str], str] | None = None) -> None:
        self.urls: list[str] = []
        self.pages: list[tuple[int, str]] = []
        self.before = before
        self.task: asyncio.Task[None] | None = None

    def open(self, url: str) -> bool:
        self.urls.append(url)
        self.task = asyncio.get_running_loop().create_task(self._visit(url))
        return True

    async def _visit(self, url: str) -> None:
        async with aiohttp.ClientSession() as session:
            if self.before is not None:  # a request of someone else first
                async with session.get(self.before(url)) as resp:
                    self.pages.append((resp.status, await resp.text()))
            async with session.get(url) as resp:
                self.pages.append((resp.status, await resp.text()))


async def run_login(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    plugins: dict[str, Any],
    secret_file: Path,
    out: Path,
    *extra: str,
    browser: Browser | None = None,
) -> tuple[int, Browser]:
    configure_logging("debug", "console")  # as main() does: logs to stderr, all of them
    browser = browser or Browser()
    monkeypatch.setattr(commands.webbrowser, "open", browser.open)
    argv = [
        "auth", "login", "--app-id", sim.world.app_id, "--app-secret-file", str(secret_file),
        "--base-url", sim.url, "--out", str(out), "--open", "--timeout", "10", *extra,
    ]  # fmt: skip
    code = await commands.auth_main(build_parser().parse_args(argv), plugins)
    if browser.task is not None:
        await browser.task
    return code, browser


def all_tokens(world: World) -> list[str]:
    return [t for t in world.tokens if "|" not in t]


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key] = value
    return out


async def test_login_writes_page_tokens_0600_and_prints_blocks_that_load(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    plugins: dict[str, Any],
    secret_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "secrets.env"
    code, browser = await run_login(monkeypatch, sim, plugins, secret_file, out)
    assert code == 0
    # the browser was sent to the dialog with the plugins' scopes and a state, and came
    # back to the callback server, which thanked it
    query = parse_qs(urlsplit(browser.urls[0]).query)
    scopes = set(query["scope"][0].split(","))
    assert {"pages_show_list", "read_insights", "pages_read_engagement"} <= scopes
    assert {"instagram_basic", "instagram_manage_insights"} <= scopes
    assert len(query["state"][0]) >= 20
    assert query["redirect_uri"][0].startswith("http://127.0.0.1:")
    assert browser.pages == [(200, browser.pages[0][1])]
    assert "You can close this window" in browser.pages[0][1]

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    secrets = env_file(out)
    world = sim.world
    for page in world.pages.values():
        assert secrets[f"FB_PAGE_{page.id}_TOKEN"] == page.token
    user = world.tokens[secrets["FB_USER_TOKEN"]]
    assert user.kind == "USER"
    assert user.expires_at - FROZEN.timestamp() > 50 * 86400  # long-lived, not the 1-2 h one
    assert {"read_insights", "instagram_manage_insights"} <= set(user.scopes)

    printed = capsys.readouterr()
    config = tmp_path / "collector.toml"
    config.write_text(printed.out.split(browser.urls[0], 1)[1])
    loaded = load_config(config, plugins, environ=secrets)
    by_plugin = {
        (s.plugin, s.options.get("page_id") or s.options.get("ig_user_id")) for s in loaded.sources
    }
    first, second = world.pages
    ig = world.pages[first].ig_user_id
    assert by_plugin == {
        ("facebook_page", first), ("facebook_post", first),
        ("facebook_page", second), ("facebook_post", second),
        ("instagram_user", ig), ("instagram_media", ig),
    }  # fmt: skip
    tokens = {s.name: s.access_token.reveal() for s in loaded.sources if s.access_token}
    assert tokens[next(s.name for s in loaded.sources if s.plugin == "instagram_user")] == (
        world.pages[first].token
    )
    seen = printed.out + printed.err + caplog.text
    leaked = [t for t in [*all_tokens(world), world.app_secret] if t in seen]
    assert leaked == []


async def test_print_token_shows_the_tokens(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    plugins: dict[str, Any],
    secret_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _ = await run_login(
        monkeypatch, sim, plugins, secret_file, tmp_path / "s.env", "--print-token"
    )
    assert code == 0
    assert sim.world.first_page.token in capsys.readouterr().out


async def test_a_callback_with_another_state_is_refused_and_the_login_goes_on(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    plugins: dict[str, Any],
    secret_file: Path,
    tmp_path: Path,
) -> None:
    def forged(url: str) -> str:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        return f"{redirect}?code=stolen&state=not-the-state"

    browser = Browser(before=forged)
    code, _ = await run_login(
        monkeypatch, sim, plugins, secret_file, tmp_path / "s.env", browser=browser
    )
    assert code == 0
    assert [status for status, _ in browser.pages] == [400, 200]


async def test_a_cancelled_login_exits_1_and_writes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    plugins: dict[str, Any],
    secret_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim.world.consent = False
    out = tmp_path / "s.env"
    code, _ = await run_login(monkeypatch, sim, plugins, secret_file, out)
    assert code == 1
    assert "the login was refused (user_denied)" in capsys.readouterr().err
    assert not out.exists()


async def test_a_wrong_app_secret_is_refused_by_meta(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    plugins: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = tmp_path / "wrong-secret"
    wrong.write_text("not-the-secret-of-this-app")
    out = tmp_path / "s.env"
    code, _ = await run_login(monkeypatch, sim, plugins, wrong, out)
    err = capsys.readouterr().err
    assert code == 1
    assert "refused by Meta" in err
    assert "client secret" in err
    assert "not-the-secret-of-this-app" not in err
    assert not out.exists()


async def test_a_missing_secret_file_is_a_bad_argument(
    sim: Simulator, plugins: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["auth", "login", "--app-id", "1", "--app-secret-file", str(tmp_path / "none")]
    code = await commands.auth_main(build_parser().parse_args(argv), plugins)
    assert code == 2
    assert "--app-secret-file" in capsys.readouterr().err


def test_scopes_come_from_a_plugin_declaring_them() -> None:
    from collectord_plugins.facebook_page import FacebookPage

    from collectord.auth.scopes import login_scopes

    class Declares:
        scopes = ("ads_read",)

    assert login_scopes({"x": Declares(), "facebook_page": FacebookPage()}) == [
        "ads_read", "pages_read_engagement", "pages_show_list", "read_insights",
    ]  # fmt: skip


def test_pages_of_the_same_name_get_distinct_source_names() -> None:
    from collectord.auth.login import source_blocks
    from collectord.auth.meta import PageAccount
    from collectord.secret import Secret

    pages = [PageAccount(pid, "Shop", Secret("t"), (), None, None) for pid in ("11", "12")]
    names = [line for line in source_blocks(pages).splitlines() if line.startswith("name = ")]
    assert names == [
        'name = "shop-page"', 'name = "shop-posts"',
        'name = "shop-12-page"', 'name = "shop-12-posts"',
    ]  # fmt: skip


def test_a_page_role_without_analyze_is_pointed_out() -> None:
    from collectord.auth.login import source_blocks
    from collectord.auth.meta import PageAccount
    from collectord.secret import Secret

    pages = [
        PageAccount("11", "Mine", Secret("t"), ("ANALYZE", "CREATE_CONTENT"), None, None),
        PageAccount("12", "Theirs", Secret("t"), ("CREATE_CONTENT",), None, None),
    ]
    text = source_blocks(pages)
    assert text.count("lacks the ANALYZE task") == 1
    assert text.index("lacks the ANALYZE task") > text.index("(Page 12)")


def test_with_a_config_login_asks_for_what_its_sources_need_and_gives_up_in_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from collectord.cli import main

    (tmp_path / "secret").write_text("s")
    config = tmp_path / "collector.toml"
    config.write_text('[[source]]\nname = "p"\nplugin = "facebook_page"\npage_id = "1"\n')
    argv = ["auth", "login", "-c", str(config), "--app-id", "1", "--app-secret-file"]
    code = main([*argv, str(tmp_path / "secret"), "--timeout", "0", "--out", str(tmp_path / "o")])
    printed = capsys.readouterr()
    assert code == 1
    assert "no login came back within 0s" in printed.err
    url = next(line for line in printed.out.splitlines() if line.startswith("https://"))
    assert url.startswith("https://www.facebook.com/v26.0/dialog/oauth?")
    scope = parse_qs(urlsplit(url).query)["scope"][0].split(",")
    assert {"pages_read_engagement", "pages_show_list", "read_insights"} <= set(scope)
    assert not [s for s in scope if s.startswith("instagram")]  # no Instagram source
    assert not (tmp_path / "o").exists()
