"""A source whose token dies stops calling Meta and waits for a new token (issue 10, point 2).

A real daemon polls a Page (token from a file) and an Instagram account every second. When
Meta starts refusing the Page's token, the Page source goes to ``needs_reauth``: the
simulator's request log shows no more calls for the Page, the log says once what happened
and what to do, its last values stay with ``collectord_source_up`` 0. A reload with the same
token changes nothing; once the token file holds a new token and the daemon gets SIGHUP,
the Page is polled again at once. The Instagram source never notices, and no token text
appears in any output.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collectord.simulator import Simulator
from collectord.store.status import SOURCE_STATES

pytestmark = pytest.mark.integration

#: The replacement Page token (the simulator knows it once the test adds it).
NEW_TOKEN = "DEMO-PAGE-TOKEN-RENEWED-not-a-real-token"


def sources(sim: Simulator, token_file: Path, extra: str = "") -> str:
    """The Page (its token from ``token_file``; ``extra``: a line more) and the account."""
    world = sim.world
    return f"""
[[source]]
name = "page"
plugin = "facebook_page"
access_token_file = "{token_file}"
page_id = "{world.first_page.id}"
{extra}

[[source]]
name = "ig"
plugin = "instagram_user"
access_token = "{world.demo_token("instagram_user")}"
ig_user_id = "{world.instagram.user_ids[0]}"
"""


def page_requests(sim: Simulator) -> int:
    """HTTP requests the simulator answered that concern the Page (batch elements too)."""
    page = sim.world.first_page.id
    return sum(1 for e in sim.requests if page in e.path or any(page in p for p in e.elements))


def polls(scrape: Any, source: str) -> float:
    got = scrape.value(
        "collectord_source_poll_duration_seconds_count", source=source, cadence="fast"
    )
    return got or 0.0


def state_of(scrape: Any, source: str) -> dict[str, float]:
    return {
        labels["state"]: value
        for labels, value in scrape.matching("collectord_source_state", source=source)
    }


def events(daemon: Any, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.log_events() if e.get("event") == name]


async def test_a_dead_token_stops_the_source_until_a_new_one_is_loaded(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
) -> None:
    world = simulator.world
    old_token = world.first_page.token
    token_file = tmp_path / "page.token"
    token_file.write_text(old_token + "\n")
    token_file.chmod(0o600)
    daemon = await start_daemon(make_config(simulator, sources(simulator, token_file), fast="1s"))
    await daemon.wait_ready()
    good = await daemon.scrape()
    followers = good.value("facebook_page_followers", source="page")
    assert followers is not None
    assert state_of(good, "page") == {s: float(s == "ok") for s in SOURCE_STATES}

    # Meta says the token expired: one poll fails, then the source waits
    world.revoke_token(old_token, 463)
    dead = await daemon.wait_for(
        lambda s: s.value("collectord_source_state", source="page", state="needs_reauth") == 1
    )
    sent = page_requests(simulator)
    later = await daemon.wait_for(lambda s: polls(s, "ig") >= polls(dead, "ig") + 3)
    assert page_requests(simulator) == sent, "a source in needs_reauth must not call Meta"
    assert state_of(later, "page") == {s: float(s == "needs_reauth") for s in SOURCE_STATES}
    assert later.value("collectord_source_up", source="page") == 0
    assert later.value("facebook_page_followers", source="page") == followers, "values stay"
    assert later.value("collectord_source_poll_errors_total", source="page", reason="auth") == 1
    assert later.value("collectord_source_state", source="ig", state="ok") == 1
    assert later.value("collectord_source_up", source="ig") == 1
    status, page = await daemon.get("/")
    assert status == 200
    assert '<span class="needs_reauth">needs_reauth</span>' in page
    [told] = events(daemon, "source needs a new token")
    assert told["source"] == "page"
    assert told["problem"] == "expired"
    assert "the token expired" in told["what_to_do"]
    assert "docs/getting-tokens.md" in told["what_to_do"]
    assert "SIGHUP" in told["what_to_do"]

    # a reload that brings the same token (with another setting changed) changes nothing
    extra = 'daily_interval = "2h"'
    changed = make_config(simulator, sources(simulator, token_file, extra), fast="1s")
    (tmp_path / "collector.toml").write_text(changed.replace("@PORT@", str(daemon.port)))
    daemon.proc.send_signal(signal.SIGHUP)
    reloaded = await daemon.wait_for(lambda s: len(events(daemon, "config reloaded")) == 1)
    assert events(daemon, "config reloaded")[0]["changed"] == ["page"]
    after = await daemon.wait_for(lambda s: polls(s, "ig") >= polls(reloaded, "ig") + 2)
    assert page_requests(simulator) == sent
    assert after.value("collectord_source_state", source="page", state="needs_reauth") == 1

    # a new token in the file, then SIGHUP: polled again at once
    world.add_token(dataclasses.replace(world.tokens[old_token], token=NEW_TOKEN))
    token_file.write_text(NEW_TOKEN + "\n")
    daemon.proc.send_signal(signal.SIGHUP)
    back = await daemon.wait_for(
        lambda s: (
            s.value("collectord_source_state", source="page", state="ok") == 1
            and s.value("collectord_source_up", source="page") == 1
        )
    )
    assert page_requests(simulator) > sent
    assert back.value("collectord_source_state", source="page", state="needs_reauth") == 0
    assert back.value("facebook_page_followers", source="page") is not None
    metrics_text = (await daemon.get("/metrics"))[1]
    page_text = (await daemon.get("/"))[1]
    assert await daemon.stop() == 0

    assert len(events(daemon, "source needs a new token")) == 1, "said once"
    assert len(events(daemon, "source has a new token, polling it again")) == 1
    assert [e["source"] for e in events(daemon, "source recovered")] == ["page"]
    logs = daemon.logs()
    for token in (old_token, NEW_TOKEN, world.demo_token("instagram_user")):
        for text in (logs, metrics_text, page_text):
            assert token not in text
