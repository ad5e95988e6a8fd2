"""Fault injection on the Graph side, against a real daemon process (issue 9, point 10).

Each case injects a fault of Meta's (or of the way to Meta) through the simulator's
faults, for one source only, and checks what a user would: the daemon stays up,
``/metrics`` keeps answering quickly, the other source stays correct, the self-metrics say
what happened, no token appears in any output, and once the fault clears every series is
what it was (a deleted post stays gone; the others are what they were).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

#: How long one phase may take: a bad_response is retried three times with backoff
#: (base 1 s) before the poll fails.
PHASE = 30.0


def ig_source(sim: Simulator) -> str:
    """The ``[[source]]`` table of the simulator's Instagram account, ``acme-ig``."""
    world = sim.world
    return f"""
[[source]]
name = "acme-ig"
plugin = "instagram_user"
access_token = "{world.demo_token("instagram_user")}"
ig_user_id = "{world.instagram.user_ids[0]}"
"""


def sources(sim: Simulator, page_id: str | None = None, metrics: str = "") -> str:
    """``acme-page`` (the first Page, or ``page_id``) and ``acme-ig``."""
    world = sim.world
    return f"""
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "{world.demo_token("facebook_page")}"
page_id = "{page_id or world.first_page.id}"
{metrics}
{ig_source(sim)}"""


Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def of_source(scrape: Any, source: str) -> Series:
    """The data series (not collectord's own) of one source."""
    return {
        (name, frozenset(labels.items())): value
        for name, labels, value in scrape.samples
        if labels.get("source") == source and not name.startswith("collectord_")
    }


def errors(scrape: Any, source: str, reason: str) -> float:
    got = scrape.value("collectord_source_poll_errors_total", source=source, reason=reason)
    return got or 0.0


async def timed_scrape(daemon: Any) -> Any:
    """A scrape that must come back quickly, whatever the daemon is going through."""
    started = time.monotonic()
    scrape = await daemon.scrape()
    assert time.monotonic() - started < 1.0, "/metrics answered slowly during the fault"
    return scrape


def assert_no_token(sim: Simulator, *texts: str) -> None:
    world = sim.world
    for token in (world.demo_token("facebook_page"), world.demo_token("instagram_user")):
        for text in texts:
            assert token not in text


@pytest.mark.parametrize(
    ("fault", "event", "reason"),
    [
        ("html", None, "bad_response"),
        ("malformed", None, "bad_response"),
        ("huge", "graph answer too large", "bad_response"),
        ("endless", "graph answer too large", "bad_response"),
        ("reset", None, "network"),
        ("timeout", None, "timeout"),
    ],
)
async def test_answers_that_are_not_metas_json_fail_one_source_only(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    fault: str,
    event: str | None,
    reason: str,
) -> None:
    page_id = simulator.world.first_page.id
    config = make_config(simulator, sources(simulator), fast="1s")
    if fault == "timeout":  # answers 2 s late against a 1 s timeout
        config = config.replace('timeout = "5s"', 'timeout = "1s"')
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    good = await daemon.wait_for(lambda s: bool(of_source(s, "acme-ig")))
    page_before, ig_before = of_source(good, "acme-page"), of_source(good, "acme-ig")
    assert page_before
    assert ig_before

    inject = {
        "html": lambda: simulator.faults.server_error(html=True, count=None, path=page_id),
        "malformed": lambda: simulator.faults.malformed_json(count=None, path=page_id),
        "huge": lambda: simulator.faults.huge(20, count=None, path=page_id),
        "endless": lambda: simulator.faults.endless(count=None, path=page_id),
        "reset": lambda: simulator.faults.reset(count=None, path=page_id),
        "timeout": lambda: simulator.faults.delay(2.0, count=None, path=page_id),
    }[fault]
    inject()
    bad = await daemon.wait_for(
        lambda s: (
            errors(s, "acme-page", reason) >= 1
            and s.value("collectord_source_up", source="acme-page") == 0
        ),
        within=PHASE,
    )
    assert bad.value("collectord_source_up", source="acme-ig") == 1
    assert of_source(bad, "acme-page") == page_before, "the last good values stay"
    during = await timed_scrape(daemon)
    assert of_source(during, "acme-ig") == ig_before
    rss = during.value("process_resident_memory_bytes")
    assert rss is not None
    assert rss < 200 * 1024 * 1024, "an endless or huge answer must fit a 256 Mi pod"
    status, healthz = await daemon.get("/healthz")
    assert status == 200
    _, page = await daemon.get("/")
    assert reason in page

    simulator.faults.clear()
    healed = await daemon.wait_for(
        lambda s: s.value("collectord_source_up", source="acme-page") == 1, within=PHASE
    )
    assert of_source(healed, "acme-page") == page_before
    assert of_source(healed, "acme-ig") == ig_before
    assert daemon.proc.returncode is None
    _, metrics_text = await daemon.get("/metrics")
    assert await daemon.stop() == 0
    logs = daemon.logs()
    assert "Traceback" not in logs
    events = [e.get("event") for e in daemon.log_events()]
    assert events.count("source failing") == 1
    if event is not None:
        assert event in events
    assert_no_token(simulator, logs, page, metrics_text, healthz)


def last_daily(scrape: Any, source: str) -> float:
    got = scrape.value(
        "collectord_source_last_success_timestamp_seconds", source=source, cadence="daily"
    )
    return got or 0.0


async def test_null_batch_elements_then_a_metric_retired_mid_run(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    metrics = 'metrics = ["page_views_total", "page_post_engagements", "page_follows"]'
    config = make_config(simulator, sources(simulator, metrics=metrics), fast="1s", daily="1s")
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    good = await daemon.wait_for(lambda s: bool(of_source(s, "acme-ig")))
    page_before, ig_before = of_source(good, "acme-page"), of_source(good, "acme-ig")

    # Meta leaves some batch elements out: they are asked again, the values stay right
    # (the Instagram source sends its insights as batches; the Page's fit one GET)
    simulator.faults.batch_null_rate = 0.1
    since = last_daily(good, "acme-ig") + 1.5
    later = await daemon.wait_for(lambda s: last_daily(s, "acme-ig") > since, within=PHASE)
    assert of_source(later, "acme-page") == page_before
    assert of_source(later, "acme-ig") == ig_before

    # Meta leaves every element out: retried, then the poll fails as a server error
    simulator.faults.batch_null_rate = 1.0
    await daemon.wait_for(
        lambda s: (
            s.value("collectord_source_up", source="acme-ig") == 0
            and errors(s, "acme-ig", "server") >= 1
        ),
        within=PHASE,
    )
    during = await timed_scrape(daemon)
    assert of_source(during, "acme-ig") == ig_before, "the last good values stay"
    assert of_source(during, "acme-page") == page_before
    assert during.value("collectord_source_up", source="acme-page") == 1
    simulator.faults.clear()
    healed = await daemon.wait_for(
        lambda s: (
            s.value("collectord_source_up", source="acme-page") == 1
            and s.value("collectord_source_up", source="acme-ig") == 1
        ),
        within=PHASE,
    )
    assert of_source(healed, "acme-page") == page_before
    assert of_source(healed, "acme-ig") == ig_before

    # Meta retires a metric between two polls: it is disabled, the others flow
    simulator.faults.invalid_metrics(["page_post_engagements"])
    retired = await daemon.wait_for(
        lambda s: (
            s.value(
                "collectord_metric_disabled", source="acme-page", metric="page_post_engagements"
            )
            == 1
        ),
        within=PHASE,
    )
    assert retired.value("collectord_source_up", source="acme-page") == 1
    assert errors(retired, "acme-page", "invalid_metric") == 1
    rest = await daemon.wait_for(
        lambda s: not s.value("facebook_page_post_engagements", source="acme-page", period="day")
    )
    remaining = {k: v for k, v in page_before.items() if "post_engagements" not in k[0]}
    assert of_source(rest, "acme-page") == remaining
    assert of_source(rest, "acme-ig") == ig_before
    assert await daemon.stop() == 0
    assert "Traceback" not in daemon.logs()
    assert_no_token(simulator, daemon.logs())


async def test_a_page_id_meta_does_not_know_fails_as_not_found_naming_it(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    wrong = "1999999999999"
    daemon = await start_daemon(make_config(simulator, sources(simulator, page_id=wrong)))
    await daemon.wait_ready()
    scrape = await daemon.wait_for(lambda s: errors(s, "acme-page", "not_found") >= 1)
    assert errors(scrape, "acme-page", "skipped_object") == 0
    assert scrape.value("collectord_source_up", source="acme-page") == 0
    assert scrape.value("collectord_source_up", source="acme-ig") == 1
    _, page = await daemon.get("/")
    assert wrong in page
    assert "not_found" in page
    assert await daemon.stop() == 0
    failing = [e for e in daemon.log_events() if e.get("event") == "source failing"]
    assert {e["reason"] for e in failing} == {"not_found"}
    assert all(wrong in e["error"] for e in failing)
    assert "Traceback" not in daemon.logs()
    assert_no_token(simulator, daemon.logs(), page)


async def test_a_post_deleted_mid_cycle_costs_that_post_only(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    from test_daemon_facebook_post import expected_post, exposed_post, post_source

    world = simulator.world
    posts = world.posts(world.first_page.id)[:3]
    victim, survivors = posts[0].id, [p.id for p in posts[1:]]
    recorder = tap(simulator)
    config = make_config(
        simulator,
        post_source(world, "acme-posts", max_posts=3) + ig_source(simulator),
        fast="1s",
        daily="1s",
    )
    daemon = await start_daemon(config)
    await daemon.wait_ready()
    good = await daemon.wait_for(lambda s: bool(of_source(s, "acme-ig")))
    ig_before = of_source(good, "acme-ig")
    expected = {pid: expected_post(world, "acme-posts", pid) for pid in survivors}

    def after(call: Any) -> None:  # the listing names the post; then it is gone
        if call.path.endswith("/published_posts") and victim not in world.deleted_posts:
            world.delete_post(victim)

    recorder.after = after
    gone = await daemon.wait_for(
        lambda s: (
            errors(s, "acme-posts", "skipped_object") >= 1 and not s.with_label("post_id", victim)
        ),
        within=PHASE,
    )
    assert gone.value("collectord_source_up", source="acme-posts") == 1
    for pid in survivors:
        assert exposed_post(gone, "acme-posts", pid) == pytest.approx(expected[pid]), pid
    assert of_source(gone, "acme-ig") == ig_before
    await timed_scrape(daemon)
    assert await daemon.stop() == 0
    assert "Traceback" not in daemon.logs()
    assert_no_token(simulator, daemon.logs())
    assert world.demo_token("facebook_post") not in daemon.logs()
