"""docs/getting-tokens.md, followed step by step against ``collectord simulate``.

Every block the guide marks with ``<!-- guide-step: NAME -->`` runs as written (after the
substitutions below), in the guide's order, as real processes: the app secret pasted into
its file, ``collectord auth login`` with a scripted browser (an HTTP client following the
printed login URL through the simulator's dialog to the command's callback), the printed
``[[source]]`` blocks pasted into the guide's ``collector.toml``, the secrets loaded,
``check``, ``check --online``, ``once``, ``run`` scraped with the guide's ``curl``, then
the by-hand route with ``curl``. The guide's permission table is compared with what the
plugins declare. No step's output may show a token or the app secret.

Convention and helpers: tests/integration/guide_support.py.
"""

from __future__ import annotations

import re
import signal
import stat
from pathlib import Path

import aiohttp
import pytest
from conftest import free_port
from guide_support import (
    Ran,
    Shell,
    Step,
    Substitutions,
    login_with_browser,
    need_curl,
    start_simulator,
    steps_of,
    stop,
    wait_ready,
)

from collectord.plugin.manager import describe_plugin, load_source_plugins
from collectord.simulator.world import SHORT_USER_TOKEN

pytestmark = pytest.mark.integration

GUIDE = Path(__file__).parents[2] / "docs" / "getting-tokens.md"

#: The guide's steps, in its order. A step added, removed or renamed in the guide fails the
#: test until the test knows what a reader should see from it.
STEPS = [
    "app-secret",
    "login",
    "config",
    "load-secrets",
    "check",
    "check-online",
    "once",
    "run",
    "scrape",
    "hand-short-token",
    "hand-exchange",
    "hand-pages",
    "hand-page-token",
    "hand-inspect",
    "hand-ig-user-id",
]
#: What the config step says to paste after its text: ``auth login``'s blocks.
PASTE_FROM = "[[source]]"


def test_the_guide_marks_the_steps_the_test_knows() -> None:
    assert [s.name for s in steps_of(GUIDE.read_text())] == STEPS


def test_the_step_convention_reads_indented_blocks_and_refuses_a_mark_without_one() -> None:
    doc = "- item:\n\n  <!-- guide-step: a -->\n  ```sh\n  echo one \\\n    two\n  ```\n"
    assert steps_of(doc) == [Step("a", "sh", "echo one \\\n  two\n")]
    with pytest.raises(AssertionError, match="must open a fenced block"):
        steps_of("<!-- guide-step: b -->\ntext\n")
    with pytest.raises(AssertionError, match="never closed"):
        steps_of("<!-- guide-step: c -->\n```sh\necho\n")


def test_the_permission_table_is_what_the_plugins_declare() -> None:
    text = GUIDE.read_text()
    table = text.split("<!-- guide-table: scopes -->\n", 1)[1].split("\n\n", 1)[0]
    listed: dict[str, list[str]] = {}
    for row in table.splitlines()[2:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        plugin = cells[0].strip("`")
        listed[plugin] = re.findall(r"`([a-z_]+)`", cells[-1])
    declared = {
        name: sorted(describe_plugin(name, lp)["scopes"])
        for name, lp in load_source_plugins(()).items()
    }
    assert {k: sorted(v) for k, v in listed.items()} == declared


def ok(ran: Ran, step: str) -> Ran:
    assert ran.returncode == 0, f"step {step} failed ({ran.returncode}):\n{ran.out}\n{ran.err}"
    return ran


def private(path: Path) -> bool:
    return path.is_file() and stat.S_IMODE(path.stat().st_mode) == 0o600


async def test_following_the_guide_against_the_simulator(tmp_path: Path) -> None:
    need_curl()
    steps = steps_of(GUIDE.read_text())
    assert [s.name for s in steps] == STEPS
    home = tmp_path / "reader"
    home.mkdir()
    shell = Shell(home, tmp_path / "exported-variables")
    sim = await start_simulator(free_port())
    daemon_port, callback_port = free_port(), free_port()
    page_id, ig_user_id = sim.ids["page_id"], sim.ids["ig_user_id"]
    subs = Substitutions(
        [
            (r"(?<!\d)1234567890(?!\d)", sim.app_id),  # "your App ID"
            (r"(?<!\d)111222333444555(?!\d)", page_id),  # "your Page's id"
            (re.escape("https://graph.facebook.com"), sim.url),
            (r"collectord auth login", f"collectord auth login --base-url {sim.url}"),
            (r"collectord auth inspect", f"collectord auth inspect --base-url {sim.url}"),
            (r"\[graph\]\n", f'[graph]\nbase_url = "{sim.url}"\n'),
            (r"--port 8765\b", f"--port {callback_port}"),
            (r"127\.0\.0\.1:9464\b", f"127.0.0.1:{daemon_port}"),
        ]
    )
    blocks = ""
    daemon = None
    try:
        async with aiohttp.ClientSession() as browser:
            for raw in steps:
                step = Step(raw.name, raw.lang, subs.apply(raw.text))
                if step.name == "app-secret":
                    ok(await shell.run(step.text, stdin=sim.app_secret + "\n"), step.name)
                    assert private(home / "fb-app-secret")
                elif step.name == "login":
                    ran = ok(await login_with_browser(shell, step.text, browser), step.name)
                    assert PASTE_FROM in ran.out
                    blocks = ran.out[ran.out.index(PASTE_FROM) :]
                    assert private(home / "collectord-secrets.env")
                elif step.name == "config":
                    assert step.lang == "toml"
                    (home / "collector.toml").write_text(step.text + "\n" + blocks)
                elif step.name == "load-secrets":
                    ok(await shell.run(step.text), step.name)
                elif step.name == "check":
                    ran = ok(await shell.run(step.text), step.name)
                    assert "did not contact Meta" in ran.out
                    assert f'page_id = "{page_id}"' in blocks
                    for name in re.findall(r'^name = "(.*)"$', blocks, re.M):
                        assert f'source "{name}"' in ran.out
                elif step.name == "check-online":
                    ran = ok(await shell.run(step.text), step.name)
                    names = re.findall(r'^name = "(.*)"$', blocks, re.M)
                    assert len(names) >= 4
                    for name in names:
                        assert f'online: source "{name}": ok' in ran.out, ran.out
                elif step.name == "once":
                    ran = ok(await shell.run(step.text, within=120), step.name)
                    for family in ("facebook_page_", "facebook_post_", "instagram_user_"):
                        assert re.search(rf"^{family}\w+{{", ran.out, re.M), family
                elif step.name == "run":
                    daemon = await shell.start(step.text)
                    await wait_ready(browser, daemon_port, daemon)
                elif step.name == "scrape":
                    ran = ok(await shell.run(step.text), step.name)
                    up = re.findall(
                        r'^collectord_source_up\{.*source="([^"]+)".*\} 1\.0$', ran.out, re.M
                    )
                    assert sorted(up) == sorted(re.findall(r'^name = "(.*)"$', blocks, re.M))
                    assert daemon is not None
                    await stop(shell, daemon, signal.SIGTERM)
                elif step.name == "hand-short-token":
                    ok(await shell.run(step.text, stdin=SHORT_USER_TOKEN + "\n"), step.name)
                    assert private(home / "short-token")
                elif step.name == "hand-exchange":
                    ok(await shell.run(step.text), step.name)
                    assert private(home / "user-token")
                    long_lived = (home / "user-token").read_text().strip()
                    assert long_lived
                    assert long_lived != SHORT_USER_TOKEN
                elif step.name == "hand-pages":
                    ran = ok(await shell.run(step.text), step.name)
                    assert f'"id":"{page_id}"' in ran.out.replace(" ", "")
                elif step.name == "hand-page-token":
                    ok(await shell.run(step.text), step.name)
                    assert private(home / "page-token")
                    # the same never-expiring Page token auth login wrote
                    secrets = (home / "collectord-secrets.env").read_text()
                    page_token = (home / "page-token").read_text().strip()
                    assert f"FB_PAGE_{page_id}_TOKEN={page_token}\n" in secrets
                elif step.name == "hand-inspect":
                    ran = ok(await shell.run(step.text), step.name)
                    assert "type: a Page access token" in ran.out
                    assert "expires: never" in ran.out
                    assert "valid: yes" in ran.out
                elif step.name == "hand-ig-user-id":
                    ran = ok(await shell.run(step.text), step.name)
                    assert ig_user_id in ran.out
                else:
                    raise AssertionError(f"unknown step {step.name}")
    finally:
        if daemon is not None and daemon.returncode is None:
            await stop(shell, daemon, signal.SIGTERM)
        await sim.stop()
    subs.assert_all_used()
    shell.assert_no_secret_shown(sim.app_secret)
