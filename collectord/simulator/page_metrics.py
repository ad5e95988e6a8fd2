"""The Page insights catalogue (docs/meta-facts.md 2.3) and the values the simulator gives them.

Every metric that still works in 2026 is here with its periods. Kinds of value:
``int`` (a daily count; ``week``/``days_28``/``month`` are rolling sums ending at
``end_time``, smaller for ``*_unique`` metrics; ``lifetime`` a running total), ``money``
(the same for an amount of money, a float with two decimals), ``dict`` (keys → counts or,
with ``money``, amounts; zero keys left out), ``cpm`` (ad-break CPM per key, consistent
with the ad-break impressions and earnings), ``followers`` (a lifetime total reported per
day), ``ratio`` (a float). Monetisation and ad-break metrics (``monetised``) have data
only on a monetised Page, the first one (the demo Page); on the others they are left out
of the answer, as Meta leaves out metrics without data. Anything else, retired metrics
included (:data:`RETIRED_PAGE_METRICS`), is invalid.

Meta documents no example for the monetisation breakdowns: ``earning_source`` and
``monetization_tool`` are served like ``is_from_ads`` (each day once per key, the key as a
string next to the value) and their keys are invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from collectord.simulator.base import growing, unit_hash
from collectord.simulator.series import GROWTH_PER_DAY, rolling, share, weights

if TYPE_CHECKING:
    from collectord.simulator.world_view import WorldView

Kind = Literal["int", "money", "dict", "cpm", "followers", "ratio"]
DWM = ("day", "week", "days_28")
ALL_PERIODS = ("day", "week", "days_28", "month", "lifetime", "total_over_range")
PERIOD_PREFIX = {
    "day": "Daily",
    "week": "Weekly",
    "days_28": "28 Days",
    "month": "Monthly",
    "lifetime": "Lifetime",
    "total_over_range": "Total Over Range",
}
ROLLING_DAYS = {"day": 1, "week": 7, "days_28": 28, "month": 30}
REACTIONS = ("like", "love", "wow", "haha", "sorry", "anger")
TABS = ("timeline", "photos", "about", "videos", "reviews", "community")
CROSSPOST = ("owned", "crossposted")
#: Keys of the breakdowns that are not a ``"0"``/``"1"`` flag (invented: see above).
BREAKDOWN_KEYS: dict[str, tuple[str, ...]] = {
    "earning_source": ("ads_on_reels", "in_stream_ads", "performance_bonus"),
    "monetization_tool": ("in_stream_ads", "ads_on_reels", "stars", "subscriptions"),
}
#: ``lifetime`` of an ``int`` metric: the last 90 days plus this many typical days before.
LIFETIME_HISTORY_DAYS = 600


@dataclass(frozen=True)
class PageMetric:
    """One Page metric: periods, kind of value, typical daily size, dict keys."""

    name: str
    periods: tuple[str, ...]
    base: float = 0.0
    kind: Kind = "int"
    keys: tuple[str, ...] = ()
    of: str = ""  # dict keys are the values of metric f"{of}{key}_total"
    breakdowns: tuple[str, ...] = ()
    money: bool = False  # amounts of money (floats with two decimals), not counts
    monetised: bool = False  # data only on a monetised Page

    @property
    def unique(self) -> bool:
        return "unique" in self.name


def _m(name: str, periods: tuple[str, ...] = DWM, base: float = 0.0, **kw: Any) -> PageMetric:
    return PageMetric(name, periods, base, **kw)


_VIDEO_30S = ("", "_paid", "_organic", "_autoplayed", "_click_to_play", "_unique")
_CATALOGUE: list[PageMetric] = [
    _m("page_media_view", base=2400, breakdowns=("is_from_ads", "is_from_followers")),
    _m("page_total_media_view_unique", base=1500),
    _m("page_post_engagements", base=180),
    _m("page_total_actions", base=12),
    _m("page_views_total", base=95),
    _m("page_follows", ("day",), kind="followers"),
    _m("page_daily_follows", ("day",), base=14),
    _m("page_daily_follows_unique", base=13),
    _m("page_daily_unfollows_unique", base=3),
    _m("page_lifetime_engaged_followers_unique", ("lifetime",), kind="followers"),
    _m("page_fan_adds_by_paid_non_paid_unique", ("day",), 14, kind="dict", keys=("paid", "unpaid")),
    *(
        _m(f"page_actions_post_reactions_{r}_total", base=b)
        for r, b in zip(REACTIONS, (60, 12, 4, 6, 2, 1), strict=True)
    ),
    _m(
        "page_actions_post_reactions_total",
        ("day",),
        kind="dict",
        keys=REACTIONS,
        of="page_actions_post_reactions_",
    ),
    _m("page_video_views", base=300),
    _m("page_video_views_paid", base=60),
    _m("page_video_views_organic", base=240),
    _m("page_video_views_autoplayed", base=190),
    _m("page_video_views_click_to_play", base=110),
    _m("page_video_views_by_paid_non_paid", base=300, kind="dict", keys=("unpaid", "paid")),
    _m(
        "page_video_views_by_uploaded_hosted",
        base=300,
        kind="dict",
        keys=("page_uploaded", "page_hosted"),
    ),
    _m("page_video_repeat_views", base=40),
    *(_m(f"page_video_complete_views_30s{s}", base=70) for s in _VIDEO_30S),
    _m("page_video_complete_views_30s_repeat_views", base=9),
    _m("page_video_view_time", ("day",), base=900_000),
    _m("page_uploaded_views_15s_count", ("day",), base=85),
    _m("page_uploaded_3s_to_15s_views_rate", ("day",), kind="ratio"),
    _m(
        "page_uploaded_views_60s_excludes_shorter_unique_count_by_is_60s_returning_viewer",
        ("day",),
        20,
        kind="dict",
        keys=("false", "true"),
    ),
    _m("page_tab_views_login_top", ("day", "week"), 40, kind="dict", keys=TABS),
    _m("page_tab_views_login_top_unique", ("day", "week"), 30, kind="dict", keys=TABS),
    _m("page_tab_views_logout_top", ("day",), 25, kind="dict", keys=TABS),
    _m(
        "page_daily_video_ad_break_ad_impressions_by_crosspost_status",
        ("day",),
        2200,
        kind="dict",
        keys=CROSSPOST,
        monetised=True,
    ),
    _m(
        "page_daily_video_ad_break_cpm_by_crosspost_status",
        ("day",),
        kind="cpm",
        keys=CROSSPOST,
        money=True,
        monetised=True,
    ),
    _m(
        "page_daily_video_ad_break_earnings_by_crosspost_status",
        ("day",),
        kind="cpm",
        keys=CROSSPOST,
        money=True,
        monetised=True,
    ),
    _m(
        "content_monetization_earnings",
        base=6.5,
        kind="money",
        money=True,
        monetised=True,
        breakdowns=("earning_source",),
    ),
    _m(
        "monetization_approximate_earnings",
        (*DWM, "month"),
        9.0,
        kind="money",
        money=True,
        monetised=True,
        breakdowns=("monetization_tool",),
    ),
    _m("creator_monetization_qualified_views", ("day", "lifetime"), 850, monetised=True),
]

PAGE_METRICS: dict[str, PageMetric] = {m.name: m for m in _CATALOGUE}

#: A sample of metrics Meta retired (docs/meta-facts.md 2.4); all answer "invalid metric".
RETIRED_PAGE_METRICS: tuple[str, ...] = (
    "page_impressions",
    "page_impressions_unique",
    "page_impressions_paid",
    "page_impressions_paid_unique",
    "page_impressions_viral",
    "page_impressions_nonviral",
    "page_impressions_organic_v2",
    "page_posts_impressions",
    "page_posts_impressions_unique",
    "page_fans",
    "page_fans_country",
    "page_fans_city",
    "page_fans_locale",
    "page_fans_gender_age",
    "page_fan_adds",
    "page_fan_removes",
    "page_fans_online_per_day",
    "page_engaged_users",
    "page_consumptions",
    "page_video_views_unique",
    "page_video_views_10s",
    "page_follows_country",
)

BREAKDOWN_VALUES = ("0", "1")


def followers_total(world: WorldView, page_id: str, at: datetime) -> int:
    """The Page's follower count at ``at`` (slow, steady growth)."""
    base = 3000 + 9000 * unit_hash(world.seed, page_id, "followers")
    return round(growing(base, at, per_day=GROWTH_PER_DAY / 2, epoch=world.growth_epoch))


def is_monetised(world: WorldView, page_id: str) -> bool:
    """Whether the Page earns money (ad breaks, content monetisation): the first one."""
    return page_id == world.first_page.id


def _sum(
    world: WorldView,
    page_id: str,
    metric: PageMetric,
    period: str,
    end: datetime,
    base: float,
    *key: object,
) -> float:
    series = (page_id, metric.name, *key)
    if period == "lifetime":
        return rolling(world, series, base, end, 90) + LIFETIME_HISTORY_DAYS * base
    days = ROLLING_DAYS[period]
    total = rolling(world, series, base, end, days)
    if metric.unique and days > 1:
        total *= 0.75 if days <= 7 else 0.55
    return total


def _count(
    world: WorldView,
    page_id: str,
    metric: PageMetric,
    period: str,
    end: datetime,
    base: float,
    *key: object,
) -> int | float:
    total = _sum(world, page_id, metric, period, end, base, *key)
    return round(total, 2) if metric.money else round(total)


def _ad_break(world: WorldView, page_id: str, name: str, end: datetime) -> dict[str, float]:
    """Ad-break CPM or earnings per crosspost status, from the ad-break impressions."""
    impressions = page_value(
        world, page_id, "page_daily_video_ad_break_ad_impressions_by_crosspost_status", "day", end
    )
    out: dict[str, float] = {}
    for key, count in (impressions or {}).items():
        cpm = round(2.0 + 6.0 * unit_hash(world.seed, page_id, "cpm", key, end.date()), 2)
        out[key] = cpm if "_cpm_" in name else round(count * cpm / 1000, 2)
    return out


def page_value(
    world: WorldView, page_id: str, name: str, period: str, end: datetime
) -> int | float | dict[str, int] | None:
    """The value of ``name`` for ``period`` at ``end_time`` ``end``; ``None`` = no data."""
    metric = PAGE_METRICS[name]
    if metric.monetised and not is_monetised(world, page_id):
        return None
    if metric.kind == "cpm":
        return _ad_break(world, page_id, name, end)
    if metric.kind == "followers":
        total = followers_total(world, page_id, end)
        return total if name == "page_follows" else round(total * 0.31)
    if metric.kind == "ratio":
        return round(0.2 + 0.4 * unit_hash(world.seed, page_id, name, end.date()), 4)
    if metric.kind == "dict":
        if metric.of:
            values = {
                k: page_value(world, page_id, f"{metric.of}{k}_total", period, end)
                for k in metric.keys
            }
        else:
            w = weights(world, (page_id, name), metric.keys)
            values = {
                k: _count(world, page_id, metric, period, end, metric.base * w[k], k)
                for k in metric.keys
            }
        return {
            k: v
            for k, v in values.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        }
    return _count(world, page_id, metric, period, end, metric.base)


def split_value(
    world: WorldView, page_id: str, name: str, breakdown: str, total: float, end: datetime
) -> dict[str, Any]:
    """``total`` split by a breakdown: ``{"0": ..., "1": ...}`` for a flag
    (``is_from_ads``), else one part per key of :data:`BREAKDOWN_KEYS` (amounts of money
    to the cent); the parts add up to ``total``."""
    keys = BREAKDOWN_KEYS.get(breakdown)
    if keys is None:
        flagged = round(total * share(world, page_id, name, breakdown, end.date()))
        return {"0": total - flagged, "1": flagged}
    w = weights(world, (page_id, name, breakdown, end.date()), keys)
    parts = {k: round(total * w[k], 2) for k in keys[:-1]}
    parts[keys[-1]] = round(total - sum(parts.values()), 2)
    return parts


def over_range(world: WorldView, page_id: str, name: str, ends: tuple[datetime, ...]) -> int | None:
    """``total_over_range``: the sum of the daily values (less for unique metrics)."""
    metric = PAGE_METRICS[name]
    if metric.kind != "int" or metric.monetised or "day" not in metric.periods or not ends:
        return None
    total = sum(_count(world, page_id, metric, "day", end, metric.base) for end in ends)
    return round(total * (0.7 if metric.unique else 1.0))


def title(name: str, period: str) -> tuple[str, str]:
    """Meta-style ``title`` and ``description`` (both start with the period's word)."""
    words = name.removeprefix("page_").replace("_", " ")
    prefix = PERIOD_PREFIX.get(period, period.title())
    return f"{prefix} {words.title()}", f"{prefix}: {words[0].upper()}{words[1:]}"
