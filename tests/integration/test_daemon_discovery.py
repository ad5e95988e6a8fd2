"""Discovery with an allow-list (issue 10, point 6), a real daemon against the simulator.

One user token stands for every Page it manages and one system-user token for every linked
Instagram account. The daemon starts with their children already polled (a business-owned
Page among them, found through ``granular_scopes``), honours ``include``/``exclude``, picks
up a Page added to the world and drops a removed one on its next daily run (the series of
the removed one go), and applies a reload that widens an allow-list at once. The parents
themselves are never polled sources, and no token text reaches the output.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import running

from collectord.simulator import Simulator, World
from collectord.simulator.world import SYSTEM_USER_TOKEN, USER_TOKEN

pytestmark = pytest.mark.integration

#: Bound on each awaited change (a discovery run every 3 s, then a poll).
WITHIN = 20.0


@pytest.fixture
async def agency(frozen_now: datetime) -> AsyncIterator[Simulator]:
    """Four Pages (the first three with an Instagram account each) and a fifth that a
    Business Manager owns, so that ``/me/accounts`` leaves it out."""
    world = World(clock=lambda: frozen_now, page_count=4, linked_accounts=3, n_posts=3)
    world.add_page(business=True)
    async with running(world) as sim:
        yield sim


def sources(ig_include: str) -> str:
    return f"""
[[source]]
name = "pages"
plugin = "facebook_page"
access_token = "{USER_TOKEN}"
discover = true
exclude = ["Demo Bakery"]
daily_interval = "3s"

[[source]]
name = "ig"
plugin = "instagram_user"
access_token = "{SYSTEM_USER_TOKEN}"
discover = true
include = {ig_include}
"""


def polled(scrape: Any) -> set[str]:
    return {labels["source"] for labels in scrape.series("collectord_source_up")}


def discovery_lines(daemon: Any, source: str) -> list[dict[str, Any]]:
    return [
        e
        for e in daemon.log_events()
        if e.get("event") == "discovery" and e.get("source") == source
    ]


async def test_discovery_follows_the_pages_a_token_can_see(
    agency: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    world = agency.world
    business = next(iter(world.business_pages))
    config = make_config(agency, sources('["northwind.*", "17841400000000103"]'))
    daemon = await start_daemon(config)
    await daemon.wait_ready()

    # at start: every Page but the excluded one (the business-owned one too), the chosen
    # accounts; the parents are not polled sources themselves
    pages = {f"pages/{p}" for p in ("105000000000001", "105000000000002", "105000000000003")}
    pages.add(f"pages/{business}")
    accounts = {"ig/17841400000000001", "ig/17841400000000103"}
    scrape = await daemon.wait_for(lambda s: polled(s) == pages | accounts, WITHIN)
    assert scrape.value("facebook_page_followers", source=f"pages/{business}") is not None
    states = {labels["source"] for labels in scrape.series("collectord_source_state")}
    assert states == pages | accounts
    status = (await daemon.get("/"))[1]
    assert f"pages/{business}" in status
    first = discovery_lines(daemon, "pages")[0]
    assert first["from_granular_scopes"] == business
    assert first["found"] == 5
    assert first["kept"] == 4

    # a Page added to the world appears, a removed one leaves, on the next daily run
    added = world.add_page(instagram=True)  # its account is outside the allow-list
    world.remove_page("105000000000002")
    pages = (pages - {"pages/105000000000002"}) | {f"pages/{added.id}"}
    scrape = await daemon.wait_for(lambda s: polled(s) == pages | accounts, WITHIN)
    assert not scrape.with_label("source", "pages/105000000000002")
    change = next(e for e in discovery_lines(daemon, "pages") if e.get("removed"))
    assert change["added"] == added.id
    assert change["removed"] == "105000000000002"

    # a reload that widens an allow-list takes effect without a restart
    wider = make_config(agency, sources('["*"]')).replace("@PORT@", str(daemon.port))
    (tmp_path / "collector.toml").write_text(wider)
    daemon.proc.send_signal(signal.SIGHUP)
    accounts.add(f"ig/{added.ig_user_id}")
    await daemon.wait_for(lambda s: polled(s) == pages | accounts, WITHIN)

    assert await daemon.stop() == 0
    output = daemon.logs()
    secrets = [t for t in world.tokens if "|" not in t] + [world.app_secret]
    assert [t for t in secrets if t in output] == []


async def test_a_failed_first_discovery_does_not_stop_the_daemon(
    agency: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    world = agency.world
    world.revoke_token(USER_TOKEN, 460)  # the user changed their password
    parent = f"""
[[source]]
name = "pages"
plugin = "facebook_page"
access_token = "{USER_TOKEN}"
discover = true
fast_interval = "2s"
"""
    daemon = await start_daemon(make_config(agency, parent))
    await daemon.wait_ready()
    assert polled(await daemon.scrape()) == set()
    failed = [e for e in daemon.log_events() if e.get("event", "").startswith("discovery failed")]
    assert len(failed) == 1
    assert failed[0]["source"] == "pages"

    # tried again on the fast cadence; the new token works
    del world.revoked[USER_TOKEN]
    scrape = await daemon.wait_for(lambda s: len(polled(s)) == 5, WITHIN)
    assert f"pages/{next(iter(world.business_pages))}" in polled(scrape)
    again = [e for e in daemon.log_events() if e.get("event") == "discovery works again"]
    assert len(again) == 1
    assert await daemon.stop() == 0
    assert USER_TOKEN not in daemon.logs()
