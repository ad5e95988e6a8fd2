"""The daemon end to end on a Facebook Page: a real process, the simulator, real HTTP."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collectord.simulator import Simulator
from collectord.simulator.base import pacific_midnight_on_or_before

pytestmark = pytest.mark.integration


def page_source(sim: Simulator, metrics: str = "") -> str:
    """The ``[[source]]`` table of the simulator's first Page (``metrics``: an extra line)."""
    world = sim.world
    return f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{world.first_page.id}"
{metrics}
"""


async def test_page_metrics_match_what_the_simulator_served(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tmp_path: Path,
    frozen_now: datetime,
) -> None:
    world = simulator.world
    page_id = world.first_page.id
    daemon = await start_daemon(make_config(simulator, page_source(simulator)))
    await daemon.wait_ready()
    scrape = await daemon.scrape()
    labels = {"source": "acme-page", "page_id": page_id}

    assert scrape.value("facebook_page_followers", **labels) == world.page_field(
        page_id, "followers_count"
    )
    assert scrape.value("facebook_page_fans", **labels) == world.page_field(page_id, "fan_count")

    newest = pacific_midnight_on_or_before(frozen_now)
    for graph_name, prom in [
        ("page_views_total", "facebook_page_views"),
        ("page_post_engagements", "facebook_page_post_engagements"),
        ("page_media_view", "facebook_page_media_view"),
    ]:
        for period in ("day", "week", "days_28"):
            expected = world.page_insight(page_id, graph_name, period, newest)
            assert scrape.value(prom, period=period, **labels) == expected, (prom, period)
    split = world.page_insight(page_id, "page_media_view", "day", newest, breakdown="is_from_ads")
    for flag, expected in split.items():
        assert (
            scrape.value(
                "facebook_page_media_view_by_is_from_ads", period="day", is_from_ads=flag, **labels
            )
            == expected
        )
    reactions = world.page_insight(page_id, "page_actions_post_reactions_total", "day", newest)
    for kind, expected in reactions.items():
        assert (
            scrape.value("facebook_page_actions_post_reactions", reaction_type=kind, **labels)
            == expected
        )
    # milliseconds become seconds
    view_ms = world.page_insight(page_id, "page_video_view_time", "day", newest)
    assert scrape.value(
        "facebook_page_video_view_time_seconds", period="day", **labels
    ) == pytest.approx(view_ms / 1000)

    # self-metrics
    assert scrape.value("collectord_source_up", source="acme-page", plugin="facebook_page") == 1
    assert scrape.value(
        "collectord_source_newest_end_time_seconds", source="acme-page", cadence="daily"
    ) == (newest.timestamp())
    # Page tokens from long-lived user tokens never expire: debug_token says expires_at 0.
    # The token check runs beside the first polls, so it may land a moment after /readyz.
    scrape = await daemon.wait_for_value(
        "collectord_token_expiry_timestamp_seconds", source="acme-page"
    )
    assert scrape.value("collectord_token_expiry_timestamp_seconds", source="acme-page") == 0
    assert scrape.value("collectord_token_valid", source="acme-page") == 1
    assert scrape.value("collectord_token_info", source="acme-page", type="PAGE") == 1
    assert scrape.value("collectord_graph_requests_total", code="200") >= 2
    assert world.demo_token("facebook_page") not in (await daemon.get("/metrics"))[1]

    status, page = await daemon.get("/")
    assert status == 200
    assert "acme-page" in page
    assert "<td>acme-page</td><td>PAGE</td>" in page[page.index("<h2>Tokens</h2>") :]

    assert await daemon.stop() == 0
    events = daemon.log_events()
    assert any(e.get("event") == "stopped" for e in events)
    assert world.demo_token("facebook_page") not in daemon.logs()

    # The JSONL sink holds one record per series value, with the documented fields.
    records = [json.loads(line) for line in (tmp_path / "samples.jsonl").read_text().splitlines()]
    views = [r for r in records if r["graph_metric"] == "page_views_total" and r["period"] == "day"]
    previous = pacific_midnight_on_or_before(newest - timedelta(seconds=1))
    assert sorted(r["end_time"] for r in views) == [
        previous.strftime("%Y-%m-%dT%H:%M:%SZ"),
        newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ], "Meta's last two days, each recorded once"
    latest = max(views, key=lambda r: r["end_time"])
    assert latest == {
        "collected_at": latest["collected_at"],
        "source": "acme-page",
        "plugin": "facebook_page",
        "metric": "facebook_page_views",
        "graph_metric": "page_views_total",
        "object_id": page_id,
        "period": "day",
        "end_time": newest.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "value": float(world.page_insight(page_id, "page_views_total", "day", newest)),
        "labels": {"source": "acme-page", "page_id": page_id, "period": "day"},
    }
    # a field is exported by what it counts; the record keeps Meta's name
    followers = [r for r in records if r["graph_metric"] == "followers_count"]
    assert followers
    assert {(r["metric"], r["end_time"]) for r in followers} == {("facebook_page_followers", None)}


async def test_restart_writes_no_duplicate_records(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str], tmp_path: Path
) -> None:
    config = make_config(simulator, page_source(simulator))
    first = await start_daemon(config)
    await first.wait_ready()
    assert await first.stop(signal.SIGKILL) == -signal.SIGKILL
    jsonl = tmp_path / "samples.jsonl"
    lines_before = jsonl.read_text().splitlines()
    assert lines_before

    second = await start_daemon(config)
    await second.wait_ready()
    assert await second.stop() == 0
    assert jsonl.read_text().splitlines() == lines_before, "unchanged values are not re-recorded"


async def test_retired_metric_is_disabled_while_the_others_flow(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    metrics = 'metrics = ["page_views_total", "page_impressions", "page_post_engagements"]'
    daemon = await start_daemon(make_config(simulator, page_source(simulator, metrics)))
    await daemon.wait_ready()
    scrape = await daemon.scrape()
    assert (
        scrape.value("collectord_metric_disabled", source="acme-page", metric="page_impressions")
        == 1
    )
    assert scrape.value("facebook_page_views", period="day") is not None
    assert scrape.value("facebook_page_post_engagements", period="week") is not None
    assert scrape.value("collectord_source_up", source="acme-page") == 1
    assert not [n for n in scrape.names() if "impressions" in n and not n.startswith("collectord")]
    assert await daemon.stop() == 0
    warnings = [e for e in daemon.log_events() if e.get("event") == "metric disabled"]
    assert [w["metric"] for w in warnings] == ["page_impressions"], "reported once"


async def test_invalid_config_exits_2_naming_the_key(start_daemon: Any) -> None:
    daemon = await start_daemon(
        '[collector]\nlisten = "127.0.0.1:@PORT@"\n[schedule]\nfast_intervall = "15m"\n'
    )
    assert await asyncio.wait_for(daemon.proc.wait(), 20) == 2
    out = daemon.logs()
    assert "fast_intervall" in out
    assert "did you mean 'fast_interval'" in out
    assert "Traceback" not in out


async def test_failing_source_recovers_and_keeps_last_values(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    """A failing poll (Meta down) leaves the values (up=0, state failing); the daemon itself
    stays healthy, and the source recovers when Meta answers again. (A token error is
    another story: tests/integration/test_needs_reauth.py.)"""
    config = make_config(simulator, page_source(simulator), fast="1s")
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    good = await daemon.scrape()
    followers = good.value("facebook_page_followers")
    simulator.faults.server_error(count=None)
    # the client's retries wait a random backoff: a poll may run out of time (timeout)
    # before one fails as the server error itself, so wait for both to show
    bad = await daemon.wait_for(
        lambda s: (
            s.value("collectord_source_up", source="acme-page") == 0
            and (
                s.value("collectord_source_poll_errors_total", source="acme-page", reason="server")
                or 0
            )
            >= 1
        ),
        within=30,
    )
    assert bad.value("facebook_page_followers") == followers
    assert (
        bad.value("collectord_source_poll_errors_total", source="acme-page", reason="server") >= 1
    )
    assert bad.value("collectord_source_state", source="acme-page", state="ok") == 0
    assert bad.value("collectord_source_state", source="acme-page", state="needs_reauth") == 0
    assert (await daemon.get("/healthz"))[0] == 200
    simulator.faults.clear()
    await daemon.wait_for_value("collectord_source_up", 1, source="acme-page", within=30)
    assert await daemon.stop() == 0
    events = [e["event"] for e in daemon.log_events()]
    assert events.count("source failing") == 1
    assert events.count("source recovered") == 1


def test_python_dash_m_works() -> None:
    import subprocess

    out = subprocess.run(
        [sys.executable, "-m", "collectord", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("collectord ")


async def test_sigterm_lets_a_running_poll_finish(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    """SIGTERM in the middle of a poll: the poll gets the grace period (it finishes), no
    job is reported as failed, and the daemon exits 0."""
    # a poll of posts lists them, then reads their breakdowns: still waiting on Meta after
    # its first answer (since issue 8 a Page's fast poll is one call, its fields)
    source = page_source(simulator).replace('"facebook_page"', '"facebook_post"')
    source = source.replace(
        simulator.world.demo_token("facebook_page"), simulator.world.demo_token("facebook_post")
    )
    daemon = await start_daemon(make_config(simulator, source, fast="1s", daily="1s"))
    await daemon.wait_ready()
    simulator.faults.delay(2.0, count=None)  # every answer from now on comes 2 s late
    asked = asyncio.Event()
    tap(simulator).after = lambda _call: asked.set()
    await asyncio.wait_for(asked.wait(), 15)  # a poll is under way, waiting on Meta
    assert await daemon.stop() == 0
    events = daemon.log_events()
    names = [e.get("event") for e in events]
    assert "waiting for running polls" in names
    assert "cancelled polls at shutdown" not in names
    assert not [e for e in events if e.get("level") in ("error", "critical")], events
    assert "raised an exception" not in daemon.logs()
    assert "Traceback" not in daemon.logs()
