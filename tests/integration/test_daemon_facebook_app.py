"""``facebook_app`` end to end: active users and App Insights against the simulator, and
the retired edge (Meta ended Facebook Analytics in 2021) as a quiet, once-reported state."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from collectord.simulator import Simulator, World
from collectord.simulator.base import pacific_midnight_on_or_before
from collectord.simulator.timewin import pacific_midnight_days_before

pytestmark = pytest.mark.integration

#: App Insights metrics a source lists (none is in the default set since Meta shut the edge
#: down) and their families (``_seconds``: Meta's milliseconds).
LISTED_INSIGHTS = {
    "api_calls": "facebook_app_api_calls",
    "api_errors": "facebook_app_api_errors",
    "api_avg_request_time": "facebook_app_api_avg_request_time_seconds",
    "facebook_features_daily_active_users": "facebook_app_facebook_features_daily_active_users",
    "facebook_features_weekly_active_users": "facebook_app_facebook_features_weekly_active_users",
    "facebook_features_monthly_active_users": "facebook_app_facebook_features_monthly_active_users",
    "initial_permission_grants": "facebook_app_initial_permission_grants",
    "mobile_referral_installs": "facebook_app_mobile_referral_installs",
    "total_referrals": "facebook_app_total_referrals",
    "permission_revocations": "facebook_app_permission_revocations",
}
FIELDS = ("daily_active_users", "weekly_active_users", "monthly_active_users")
#: The ``metrics`` line of a source reading the fields and the listed insights.
LISTED = f"metrics = {json.dumps([*FIELDS, *LISTED_INSIGHTS])}"


def app_source(world: World, name: str, extra: str = "") -> str:
    """A ``facebook_app`` source; its token is the default app token from ``[graph]``."""
    return f"""
[[source]]
name = "{name}"
plugin = "facebook_app"
app_id = "{world.app_id}"
{extra}
"""


def newest_point(frozen_now: datetime) -> datetime:
    """The ``time`` of the newest daily data point: the day ending at the last Pacific
    midnight (a row's ``time`` starts its day)."""
    return pacific_midnight_days_before(pacific_midnight_on_or_before(frozen_now), 1)


async def test_app_fields_and_insights_match_the_simulator(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    frozen_now: datetime,
) -> None:
    world = simulator.world
    app_id = world.app_id
    sources = app_source(world, "acme-app", LISTED) + app_source(
        world, "acme-app-by-country", 'metrics = ["api_calls"]\nbreakdowns = ["country"]'
    )
    daemon = await start_daemon(make_config(simulator, sources))
    await daemon.wait_ready()
    scrape = await daemon.scrape()
    base = {"source": "acme-app", "app_id": app_id}

    for name in FIELDS:  # Meta sends them as strings
        family = f"facebook_app_{name}"
        assert scrape.matching(family, source="acme-app") == [
            (base, float(world.app_field(app_id, name)))
        ], family

    when = newest_point(frozen_now)
    for graph, family in LISTED_INSIGHTS.items():
        expected = float(world.app_insight(app_id, graph, "daily", when))
        if family.endswith("_seconds"):
            expected /= 1000
        ((labels, value),) = scrape.matching(family, source="acme-app")
        assert labels == {**base, "period": "daily"}, family
        assert value == pytest.approx(expected), family

    # breakdowns become labels, in their own family
    split = scrape.matching("facebook_app_api_calls_by_country", source="acme-app-by-country")
    assert {lab["country"]: v for lab, v in split} == {
        country: float(
            world.app_insight(app_id, "api_calls", "daily", when, breakdowns={"country": country})
        )
        for country in ("US", "BR", "IN", "GB", "DE", "MX")
    }
    assert {frozenset(lab) for lab, _ in split} == {
        frozenset({"source", "app_id", "period", "country"})
    }
    assert not scrape.matching("facebook_app_api_calls", source="acme-app-by-country")
    assert scrape.value("collectord_source_up", source="acme-app", plugin="facebook_app") == 1
    assert world.app_secret not in (await daemon.get("/metrics"))[1]
    assert await daemon.stop() == 0
    assert world.app_secret not in daemon.logs()


async def test_retired_edge_disables_insights_once_while_fields_flow(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    world = simulator.world
    app_id = world.app_id
    simulator.faults.app_insights_retired = True
    recorder = tap(simulator)
    config = make_config(simulator, app_source(world, "acme-app", LISTED), fast="1s", daily="1s")
    daemon = await start_daemon(config)
    await daemon.wait_ready()

    def polls(scrape: Any, cadence: str) -> float:
        got = scrape.value(
            "collectord_source_poll_duration_seconds_count", source="acme-app", cadence=cadence
        )
        return got or 0.0

    scrape = await daemon.wait_for(lambda s: polls(s, "daily") >= 4 and polls(s, "fast") >= 4)

    for graph in LISTED_INSIGHTS:
        assert scrape.matching("collectord_metric_disabled", source="acme-app", metric=graph) == [
            ({"source": "acme-app", "metric": graph, "reason": "unsupported"}, 1.0)
        ], graph
    assert not [n for n in scrape.names() if n in LISTED_INSIGHTS.values()]
    assert scrape.value("collectord_source_up", source="acme-app") == 1
    errors = scrape.matching("collectord_source_poll_errors_total", source="acme-app")
    # each disabled metric is counted once (docs/operations.md: they do not fail the poll; they are
    # counted), and nothing else went wrong
    by_reason = {labels["reason"]: v for labels, v in errors if v}
    assert by_reason == {"invalid_metric": len(LISTED_INSIGHTS)}, errors
    for name in FIELDS:
        assert scrape.value(f"facebook_app_{name}", source="acme-app") == float(
            world.app_field(app_id, name)
        )

    # No error storm: each metric was asked for once, in the first daily poll only, while
    # the fields are read on every fast poll.
    asked = [c for c in recorder.calls if "/app_insights" in c.path]
    assert sorted(c.path.rsplit("/", 1)[1] for c in asked) == sorted(LISTED_INSIGHTS)
    assert all(c.status == 400 for c in asked)
    # The simulator's HTTP request log: one batch for the insights, then field reads only
    # (and the token check).
    http = list(simulator.requests)
    insight_batches = [r for r in http if any("/app_insights" in e for e in r.elements)]
    assert [r.batch_size for r in insight_batches] == [len(LISTED_INSIGHTS)]
    field_reads = [r for r in http if r.path == f"/v26.0/{app_id}"]
    assert len(field_reads) >= 4
    rest = [r.path for r in http if r not in insight_batches and r not in field_reads]
    assert set(rest) <= {"/v26.0/debug_token"}, rest

    status, page = await daemon.get("/")
    assert status == 200
    assert "api_calls" in page
    assert "unsupported" in page
    assert await daemon.stop() == 0
    warnings = [e for e in daemon.log_events() if e.get("event") == "metric disabled"]
    assert sorted(w["metric"] for w in warnings) == sorted(LISTED_INSIGHTS), "one line each"


async def test_default_set_reads_the_fields_and_never_calls_the_retired_edge(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    """Meta shut App Insights down in 2021: a source that lists no metrics reads the
    active-user fields, makes no App Insights call and logs no "metric disabled"."""
    world = simulator.world
    simulator.faults.app_insights_retired = True
    recorder = tap(simulator)
    daemon = await start_daemon(make_config(simulator, app_source(world, "acme-app")))
    await daemon.wait_ready()
    scrape = await daemon.scrape()
    for name in FIELDS:
        assert scrape.value(f"facebook_app_{name}", source="acme-app") == float(
            world.app_field(world.app_id, name)
        )
    assert not scrape.matching("collectord_metric_disabled", source="acme-app")
    assert not [c for c in recorder.calls if "/app_insights" in c.path]
    assert await daemon.stop() == 0
    assert not [e for e in daemon.log_events() if e.get("event") == "metric disabled"]
