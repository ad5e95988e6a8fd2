"""``instagram_user`` end to end: account fields and insights against the simulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from collectord import completed_days
from collectord.simulator import Simulator

pytestmark = pytest.mark.integration

SOURCE = "northwind-ig"
#: total_value metrics of the default set.
TOTALS = (
    "views",
    "accounts_engaged",
    "total_interactions",
    "likes",
    "comments",
    "saves",
    "shares",
    "replies",
    "reposts",
    "profile_links_taps",
    "follows_and_unfollows",
)
#: (metric, breakdown) pairs of the default set, asked for with metric_type=total_value.
BREAKDOWNS = (
    *(
        (m, "media_product_type")
        for m in ("views", "reach", "total_interactions", "likes", "comments", "saves", "shares")
    ),
    ("views", "follower_type"),
    ("reach", "follow_type"),
    ("profile_links_taps", "contact_button_type"),
    ("follows_and_unfollows", "follow_type"),
)
DEMOGRAPHICS = ("follower_demographics", "engaged_audience_demographics")
DEMOGRAPHIC_BREAKDOWNS = ("age,gender", "city", "country")
TIMEFRAMES = ("this_week", "this_month")
#: How far the daemon's clock may run ahead of the simulator's frozen one in a test.
MARGIN = timedelta(minutes=10)

Expected = dict[str, dict[frozenset[tuple[str, str]], float]]


def newest(series: list[dict[str, Any]]) -> Any:
    """The value of the entry with the newest ``end_time`` of a time-series answer."""
    return max(series, key=lambda v: v["end_time"])["value"]


def expected_account(sim: Simulator, now: datetime) -> Expected:
    """What ``/metrics`` should expose for the account with the default metrics, by family:
    labels (all of them) -> value, from the simulator's ground truth at ``now``."""
    ig = sim.world.instagram
    user = ig.user_ids[0]
    out: Expected = {}

    def put(family: str, value: float, **labels: str) -> None:
        key = frozenset({"source": SOURCE, "ig_user_id": user, **labels}.items())
        out.setdefault(family, {})[key] = float(value)

    def truth(metric: str, **kw: Any) -> Any:
        return ig.user_insight(user, metric, now=now, **kw)

    for name in ("followers_count", "follows_count", "media_count"):  # named by what they count
        put(f"instagram_user_{name.removesuffix('_count')}", ig.user_field(user, name, now))
    # issue 8: a day is the last completed Pacific day, not the 24 hours before the poll
    last, before = completed_days(now, 2)
    day = {"metric_type": "total_value", "since": last.since, "until": last.until}
    for metric in TOTALS:
        put(f"instagram_user_{metric}", truth(metric, **day), period="day")
    for metric, dim in BREAKDOWNS:
        split = truth(metric, breakdown=dim, **day)
        assert split, (metric, dim)
        for key, value in split.items():
            put(f"instagram_user_{metric}_by_{dim}", value, period="day", **{dim: key})
    window = {"metric_type": "time_series", "since": before.since, "until": last.until}
    put("instagram_user_reach", newest(truth("reach", **window)), period="day")
    for hour, value in newest(truth("online_followers", **window)).items():
        put("instagram_user_online_followers", value, period="lifetime", hour=hour)
    for metric in DEMOGRAPHICS:
        for timeframe in TIMEFRAMES:
            for breakdown in DEMOGRAPHIC_BREAKDOWNS:
                dims = breakdown.split(",")
                family = f"instagram_user_{metric}_by_{'_'.join(dims)}"
                rows = truth(metric, breakdown=breakdown, timeframe=timeframe)
                assert rows, (metric, timeframe, breakdown)
                for key, value in rows.items():
                    keys = key if isinstance(key, tuple) else (key,)
                    labels = dict(zip(dims, keys, strict=True))
                    put(family, value, period="lifetime", timeframe=timeframe, **labels)
    return out


async def test_account_fields_and_insights_match_the_simulator(
    simulator: Simulator,
    start_daemon: Any,
    make_config: Callable[..., str],
    jsonl_records: Callable[[], list[dict[str, Any]]],
    frozen_now: datetime,
) -> None:
    world = simulator.world
    user = world.instagram.user_ids[0]
    source = f"""
[[source]]
name = "{SOURCE}"
plugin = "instagram_user"
access_token = "{world.demo_token("instagram_user")}"
ig_user_id = "{user}"
"""
    daemon = await start_daemon(make_config(simulator, source))
    await daemon.wait_ready()
    scrape = await daemon.scrape()
    assert await daemon.stop() == 0

    expected = expected_account(simulator, frozen_now)
    assert len(expected) == 3 + len(TOTALS) + len(BREAKDOWNS) + 2 + 6  # families checked
    for family, series in expected.items():
        exposed = {frozenset(lab.items()): v for lab, v in scrape.matching(family)}
        assert exposed == series, family
    # a family never mixes a total with its breakdown
    assert not scrape.matching("instagram_user_reach", follow_type="FOLLOWER")
    assert not scrape.matching("instagram_user_views", media_product_type="REEL")
    assert scrape.value("collectord_source_up", source=SOURCE, plugin="instagram_user") == 1

    # reach is a time series: each of Meta's days lands in the JSONL file with its end_time
    full = world.instagram.user_insight(
        user,
        "reach",
        now=frozen_now,
        metric_type="time_series",
        since=frozen_now - timedelta(days=2),
        until=frozen_now,
    )
    truth = {_utc(v["end_time"]): float(v["value"]) for v in full}
    recorded = {
        _utc(r["end_time"]): r["value"]
        for r in jsonl_records()
        if r["metric"] == "instagram_user_reach"
    }
    assert len(truth) >= 2, "Meta answers the last two days"
    # every day the daemon's window surely holds (its clock runs a little ahead)
    inner = {e: v for e, v in truth.items() if e > frozen_now - timedelta(days=2) + MARGIN}
    assert inner
    assert inner.items() <= recorded.items() <= truth.items()

    # a total_value is a day too: the JSONL file has each of the two days read, with its end
    views = {
        _utc(r["end_time"]): r["value"]
        for r in jsonl_records()
        if r["metric"] == "instagram_user_views"
    }
    days = completed_days(frozen_now, 2)
    assert views == {
        d.until: float(
            world.instagram.user_insight(
                user,
                "views",
                now=frozen_now,
                metric_type="total_value",
                since=d.since,
                until=d.until,
            )
        )
        for d in days
    }


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
