"""``collectord auth exchange``, ``auth inspect`` and ``check --online`` against the
simulator, in-process: what a person reads, the exit status, and no token text."""

from __future__ import annotations

import io
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collectord.auth import commands
from collectord.auth.online import check_online
from collectord.cli import build_parser, main
from collectord.config.loader import load_config
from collectord.logs import configure_logging
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.simulator import Simulator, World
from collectord.simulator.base import TokenInfo
from collectord.simulator.world import EXPIRED_USER_TOKEN, SHORT_USER_TOKEN, USER_TOKEN

FROZEN = datetime(2026, 3, 3, 12, tzinfo=UTC)
LACKING = "DEMO-TOKEN-WITHOUT-INSIGHTS-not-a-real-token"


@pytest.fixture
async def sim(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Simulator]:
    monkeypatch.setattr(commands, "clock", FROZEN.timestamp)
    configure_logging("debug", "console")
    sim = Simulator(World(clock=lambda: FROZEN))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def plugins() -> dict[str, Any]:
    return dict(plugin_map(load_source_plugins(())))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    return path


async def auth(sim: Simulator, tmp_path: Path, *argv: str, app: bool = True) -> int:
    creds: list[str] = []
    if app:
        secret = write(tmp_path, "app-secret", sim.world.app_secret)
        creds = ["--app-id", sim.world.app_id, "--app-secret-file", str(secret)]
    args = build_parser().parse_args(["auth", *argv, *creds, "--base-url", sim.url])
    return await commands.auth_main(args, {})


def no_tokens(sim: Simulator, text: str) -> list[str]:
    secrets = [t for t in sim.world.tokens if "|" not in t] + [sim.world.app_secret]
    return [t for t in secrets if t in text]


# -- exchange ---------------------------------------------------------------------------------


async def test_exchange_writes_a_long_lived_token_0600_without_printing_it(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = write(tmp_path, "short", SHORT_USER_TOKEN)
    out = tmp_path / "long"
    code = await auth(sim, tmp_path, "exchange", "--token-file", str(short), "--out", str(out))
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    info = sim.world.tokens[out.read_text().strip()]
    assert info.kind == "USER"
    assert info.expires_at - FROZEN.timestamp() > 59 * 86400
    printed = capsys.readouterr()
    assert "expires in about 59 days" in printed.err
    assert no_tokens(sim, printed.out + printed.err) == []


async def test_exchange_prints_the_token_only_when_asked(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    short = write(tmp_path, "short", SHORT_USER_TOKEN)
    code = await auth(sim, tmp_path, "exchange", "--token-file", str(short), "--print-token")
    assert code == 0
    assert capsys.readouterr().out.strip() in sim.world.tokens


async def test_exchange_of_an_expired_token_is_refused_and_of_no_file_a_bad_argument(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expired = write(tmp_path, "expired", EXPIRED_USER_TOKEN)
    argv = ("exchange", "--token-file", str(expired), "--out", str(tmp_path / "o"))
    assert await auth(sim, tmp_path, *argv) == 1
    assert "refused by Meta" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
    assert await auth(sim, tmp_path, "exchange", "--token-file", str(expired)) == 2
    assert "--out FILE or --print-token" in capsys.readouterr().err
    missing = str(tmp_path / "missing")
    assert await auth(sim, tmp_path, "exchange", "--token-file", missing, "--print-token") == 2


# -- inspect ----------------------------------------------------------------------------------


async def test_inspect_a_page_token_in_plain_words(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = sim.world.first_page
    token = write(tmp_path, "t", page.token)
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(token)) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    assert "type: a Page access token" in lines
    assert f"whose: {page.name} ({page.id})" in lines
    assert "expires: never" in lines
    assert "valid: yes" in lines
    assert any(line.startswith("scopes: ") and "read_insights" in line for line in lines)
    assert any(line.startswith("data access expires: 2026-") for line in lines)
    assert no_tokens(sim, printed.out + printed.err) == []


async def test_inspect_an_expired_token_says_when_and_exits_1(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = write(tmp_path, "t", EXPIRED_USER_TOKEN)
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(token)) == 1
    lines = capsys.readouterr().out.splitlines()
    assert "type: a user access token" in lines
    assert "expires: 2026-03-02 12:00 UTC (24.0 hours ago)" in lines
    assert any(line.startswith("valid: no") and "subcode 463" in line for line in lines)


async def test_inspect_a_token_expiring_during_the_test(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = write(tmp_path, "t", USER_TOKEN)
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(token)) == 0
    assert "expires: 2026-05-02 12:00 UTC (in 60 days)" in capsys.readouterr().out
    sim.world.expire_token(USER_TOKEN)
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(token)) == 1
    assert "valid: no" in capsys.readouterr().out


async def test_inspect_an_invalid_token(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = write(tmp_path, "t", "made-up-token-text")
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(token)) == 1
    out = capsys.readouterr().out
    assert "valid: no (Invalid OAuth access token - Cannot parse access token)" in out
    assert "made-up-token-text" not in out


async def test_inspect_without_app_credentials_says_what_it_cannot_know(
    sim: Simulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    token = write(tmp_path, "t", USER_TOKEN)
    code = await auth(sim, tmp_path, "inspect", "--token-file", str(token), app=False)
    assert code == 0
    printed = capsys.readouterr()
    assert "debug_token needs the app's credentials" in printed.err
    assert "whose: Demo User (100000000000001)" in printed.out
    bad = write(tmp_path, "bad", "made-up-token-text")
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(bad), app=False) == 1


# -- check --online ---------------------------------------------------------------------------


def online_config(tmp_path: Path, sim: Simulator, *, app: bool = True) -> Path:
    world = sim.world
    app_lines = f'app_id = "{world.app_id}"\napp_secret = "{world.app_secret}"\n' if app else ""
    page = world.first_page
    ig = page.ig_user_id
    return write(
        tmp_path,
        "collector.toml",
        f"""
[graph]
base_url = "{sim.url}"
{app_lines}
[[source]]
name = "good"
plugin = "facebook_page"
page_id = "{page.id}"
access_token = "{page.token}"

[[source]]
name = "dead"
plugin = "facebook_page"
page_id = "{page.id}"
access_token = "{EXPIRED_USER_TOKEN}"

[[source]]
name = "lacking"
plugin = "instagram_user"
ig_user_id = "{ig}"
access_token = "{LACKING}"
""",
    )


async def test_check_online_says_per_source_what_is_wrong(
    sim: Simulator, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    world = sim.world
    world.add_token(
        TokenInfo(LACKING, "USER", world.app_id, world.user_id, scopes=("instagram_basic",))
    )
    config = load_config(online_config(tmp_path, sim), plugins)
    out = io.StringIO()
    assert await check_online(config, plugins, out) is False
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        'online: source "good": ok: a Page access token, expires never, permissions complete'
    )
    assert lines[1].startswith('online: source "dead": PROBLEM: a user access token, not valid')
    lacking = 'online: source "lacking": PROBLEM: a user access token lacks permission(s): '
    assert lines[2].startswith(lacking)
    assert "instagram_manage_insights" in lines[2].removeprefix(lacking).split(", ")
    assert "instagram_basic" not in lines[2]
    assert no_tokens(sim, out.getvalue()) == []


async def test_check_online_without_app_credentials_asks_me(
    sim: Simulator, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    sim.world.add_token(TokenInfo(LACKING, "USER", sim.world.app_id, sim.world.user_id, scopes=()))
    config = load_config(online_config(tmp_path, sim, app=False), plugins)
    out = io.StringIO()
    assert await check_online(config, plugins, out) is False
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('online: source "good": ok: the token works (for Demo Coffee')
    assert "set [graph] app_id and app_secret" in lines[0]
    assert lines[1].startswith('online: source "dead": PROBLEM: Meta refused the token')
    assert lines[2].startswith('online: source "lacking": ok')  # scopes cannot be seen


def test_check_without_online_says_it_did_not_contact_meta(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(
        tmp_path,
        "collector.toml",
        '[[source]]\nname = "p"\nplugin = "facebook_page"\npage_id = "1"\naccess_token = "x"\n',
    )
    assert main(["check", "-c", str(config)]) == 0
    assert "did not contact Meta" in capsys.readouterr().out


async def test_inspect_when_meta_cannot_be_reached_says_so_and_not_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = Simulator(World(clock=lambda: FROZEN))
    await sim.start()
    await sim.stop()  # its port is closed now
    token = write(tmp_path, "t", USER_TOKEN)
    assert await auth(sim, tmp_path, "inspect", "--token-file", str(token), app=False) == 1
    printed = capsys.readouterr()
    assert "could not reach Meta" in printed.err
    assert "valid: no" not in printed.out


async def test_check_online_reads_an_instagram_login_token_on_its_own_host_and_warns_on_renewal(
    sim: Simulator, tmp_path: Path, plugins: dict[str, Any]
) -> None:
    world = sim.world
    page = world.first_page
    config = write(
        tmp_path,
        "collector.toml",
        f"""
[graph]
base_url = "{sim.url}"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"

[[source]]
name = "ig-login"
plugin = "instagram_user"
login = "instagram"
ig_user_id = "{page.ig_user_id}"
access_token = "{world.ig_login_token}"
renew_token = true
[source.graph]
base_url = "{sim.url}/graph.instagram.com"

[[source]]
name = "page"
plugin = "facebook_page"
page_id = "{page.id}"
access_token = "{page.token}"
renew_token = true
""",
    )
    out = io.StringIO()
    assert await check_online(load_config(config, plugins), plugins, out) is True
    ig, pg = out.getvalue().splitlines()
    assert ig.startswith('online: source "ig-login": ok: an Instagram-Login token that works')
    assert "renew_token refreshes it" in ig
    assert pg.startswith('online: source "page": ok: a Page access token, expires never')
    assert "warning: renew_token is set but this token never expires" in pg
    assert world.ig_login_token not in out.getvalue()
