"""docs/walkthrough.md, followed step by step against ``collectord simulate``.

The demo runs and is scraped with the walkthrough's ``curl``, then stopped as Ctrl-C
would; the tokens come from docs/getting-tokens.md's own ``app-secret`` and ``login``
steps (the walkthrough sends the reader there); then the walkthrough's one-Page config is
written, checked (offline and online), polled once, run and scraped, and its Prometheus
job is read. Where the walkthrough shows what a step prints (the ```` ```text ```` block
right after the step), the test compares: every line of ``check`` and ``check --online``
as shown, and for the scrapes each shown series (name and labels; values move with time).

Convention and helpers: tests/integration/guide_support.py.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import aiohttp
import pytest
import yaml
from conftest import free_port
from guide_support import (
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

pytestmark = pytest.mark.integration

DOCS = Path(__file__).parents[2] / "docs"
WALKTHROUGH = DOCS / "walkthrough.md"
GUIDE = DOCS / "getting-tokens.md"

STEPS = [
    "demo",
    "demo-scrape",
    "config",
    "load-secrets",
    "check",
    "check-online",
    "once",
    "run",
    "scrape",
    "prometheus",
]
#: The getting-tokens steps the walkthrough sends the reader through (its section 2).
GUIDE_STEPS = ("app-secret", "login")


def shown_output(markdown: str, step: str) -> list[str]:
    """The lines of the ```` ```text ```` block that follows step ``step``'s block."""
    after = markdown.split(f"<!-- guide-step: {step} -->\n", 1)[1]
    section = after.split("<!-- guide-step:", 1)[0]  # up to the next step
    found = re.search(r"^```text\n(.*?)^```", section, re.S | re.M)
    assert found, f"the walkthrough shows no output for {step}"
    return found[1].splitlines()


def series(line: str) -> str:
    """A sample line without its value."""
    return line.rsplit(" ", 1)[0]


def assert_shown_series(shown: list[str], printed: str, logged: str = "") -> None:
    """Each series shown (name and labels) was printed, and each log line shown (``[info
    ] event [logger] key=value``) was logged: its event, and its ``source=`` if any."""
    got = {series(line) for line in printed.splitlines() if line and not line.startswith("#")}
    for line in shown:
        if line.startswith("["):
            event = line.split("]", 1)[1].split("[", 1)[0].strip()
            assert event in logged, f"shown but not logged: {line}\n{logged}"
            source = re.search(r"source=(\S+)", line)
            assert source is None or source[0] in logged, line
        elif line != "..." and not line.startswith("#"):
            assert series(line) in got, f"shown but not printed: {line}\n{printed}"


def test_the_walkthrough_marks_the_steps_the_test_knows() -> None:
    assert [s.name for s in steps_of(WALKTHROUGH.read_text())] == STEPS


async def test_following_the_walkthrough_against_the_simulator(tmp_path: Path) -> None:
    need_curl()
    text = WALKTHROUGH.read_text()
    steps = steps_of(text)
    assert [s.name for s in steps] == STEPS
    guide_steps = {s.name: s for s in steps_of(GUIDE.read_text()) if s.name in GUIDE_STEPS}
    home = tmp_path / "reader"
    home.mkdir()
    port = free_port()
    shell = Shell(home, tmp_path / "exported-variables")
    sim = await start_simulator(free_port())
    page_id = sim.ids["page_id"]
    subs = Substitutions(
        [
            (r"(?<!\d)1234567890(?!\d)", sim.app_id),  # "your App ID"
            (r"(?<!\d)111222333444555(?!\d)", page_id),  # "your Page's id"
            (r"collectord auth login", f"collectord auth login --base-url {sim.url}"),
            (r"\[graph\]\n", f'[graph]\nbase_url = "{sim.url}"\n'),
            (r"--port 8765\b", f"--port {free_port()}"),
            (r"127\.0\.0\.1:9464\b", f"127.0.0.1:{port}"),
            (r"collectord run --demo", f"collectord run --demo --listen 127.0.0.1:{port}"),
        ]
    )
    running = None
    try:
        async with aiohttp.ClientSession() as browser:
            for raw in steps:
                step = Step(raw.name, raw.lang, subs.apply(raw.text))
                if step.name == "demo":
                    running = await shell.start(step.text)
                    await wait_ready(browser, port, running)
                elif step.name == "demo-scrape":
                    ran = await shell.run(step.text)
                    assert ran.returncode == 0, ran.err
                    assert_shown_series(shown_output(text, step.name), ran.out)
                    assert running is not None
                    stopped = await stop(shell, running, signal.SIGINT)  # Ctrl-C
                    running = None
                    assert_shown_series(shown_output(text, "demo"), "", stopped.err)
                    await _tokens_as_the_guide_says(
                        shell, subs, guide_steps, browser, sim.app_secret
                    )
                elif step.name == "config":
                    (home / "collector.toml").write_text(step.text)
                elif step.name in ("load-secrets", "once"):
                    ran = await shell.run(step.text, within=120)
                    assert ran.returncode == 0, ran.err
                    if step.name == "once":
                        shown = [subs.apply(line) for line in shown_output(text, step.name)]
                        assert_shown_series(shown, ran.out, ran.err)
                elif step.name in ("check", "check-online"):
                    ran = await shell.run(step.text)
                    assert ran.returncode == 0, ran.err
                    shown = [subs.apply(line) for line in shown_output(text, step.name)]
                    if step.name == "check":
                        assert ran.out.splitlines() == shown
                    else:
                        assert set(shown) <= set(ran.out.splitlines()), ran.out
                elif step.name == "run":
                    running = await shell.start(step.text)
                    await wait_ready(browser, port, running)
                elif step.name == "scrape":
                    ran = await shell.run(step.text)
                    assert ran.returncode == 0, ran.err
                    shown = [subs.apply(line) for line in shown_output(text, step.name)]
                    assert_shown_series(shown, ran.out)
                    assert running is not None
                    await stop(shell, running, signal.SIGTERM)
                    running = None
                elif step.name == "prometheus":
                    job = yaml.safe_load(step.text)["scrape_configs"][0]
                    targets = job["static_configs"][0]["targets"]
                    assert targets == [f"127.0.0.1:{port}"]
                else:
                    raise AssertionError(f"unknown step {step.name}")
    finally:
        if running is not None:
            await stop(shell, running, signal.SIGTERM)
        await sim.stop()
    subs.assert_all_used()
    shell.assert_no_secret_shown(sim.app_secret)


async def _tokens_as_the_guide_says(
    shell: Shell,
    subs: Substitutions,
    steps: dict[str, Step],
    browser: aiohttp.ClientSession,
    app_secret: str,
) -> None:
    """Section 2: getting-tokens.md's app-secret and login steps, run as that guide's test
    runs them (the secret pasted, a browser following the printed URL)."""
    ran = await shell.run(subs.apply(steps["app-secret"].text), stdin=app_secret + "\n")
    assert ran.returncode == 0, ran.err
    ran = await login_with_browser(shell, subs.apply(steps["login"].text), browser)
    assert ran.returncode == 0, ran.err
    assert (shell.cwd / "collectord-secrets.env").is_file()
