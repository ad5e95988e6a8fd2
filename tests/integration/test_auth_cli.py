"""``collectord auth login`` and ``check --online`` as real processes against the
simulator: a scripted browser (an HTTP client) follows the printed login URL through the
dialog's redirect to the process's callback server."""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from pathlib import Path

import aiohttp
import pytest

from collectord.simulator import Simulator
from collectord.simulator.world import EXPIRED_USER_TOKEN

pytestmark = pytest.mark.integration


async def collectord(*argv: str, cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "collectord", *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


async def test_login_as_a_process_with_a_browser_following_the_url(
    simulator: Simulator, tmp_path: Path
) -> None:
    world = simulator.world
    (tmp_path / "app-secret").write_text(world.app_secret)
    proc = await collectord(
        "auth", "login", "--app-id", world.app_id, "--app-secret-file", "app-secret",
        "--base-url", simulator.url, "--out", "secrets.env", "--timeout", "20",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        url = ""
        while not url.startswith("http"):
            line = await proc.stdout.readline()
            assert line, "the process ended without printing a login URL"
            url = line.decode().strip()
        async with aiohttp.ClientSession() as browser, browser.get(url) as resp:
            assert resp.status == 200
            assert resp.url.host == "127.0.0.1"
            assert "received the login" in await resp.text()
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    secrets = tmp_path / "secrets.env"
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
    assert f"FB_PAGE_{world.first_page.id}_TOKEN={world.first_page.token}" in secrets.read_text()
    text = out.decode() + err.decode()
    assert 'plugin = "instagram_media"' in text
    assert [t for t in world.tokens if "|" not in t and t in text] == []
    assert world.app_secret not in text


async def test_check_online_exits_1_naming_the_bad_source(
    simulator: Simulator, tmp_path: Path
) -> None:
    world = simulator.world
    page = world.first_page
    config = tmp_path / "collector.toml"
    config.write_text(
        f"""
[graph]
base_url = "{simulator.url}"
app_id = "{world.app_id}"
app_secret = "{world.app_secret}"

[[source]]
name = "good"
plugin = "facebook_page"
page_id = "{page.id}"
access_token = "{page.token}"

[[source]]
name = "bad"
plugin = "facebook_post"
page_id = "{page.id}"
access_token = "{EXPIRED_USER_TOKEN}"
"""
    )
    proc = await collectord("check", "--online", "-c", str(config), cwd=tmp_path)
    async with asyncio.timeout(20):
        out, err = await proc.communicate()
    assert proc.returncode == 1, err.decode()
    lines = out.decode().splitlines()
    assert any(line.startswith('online: source "good": ok') for line in lines)
    assert any(line.startswith('online: source "bad": PROBLEM') for line in lines)
    assert page.token not in out.decode() + err.decode()
