"""The post insights catalogue (docs/meta-facts.md 3.1) and the values the simulator gives them.

Post values are lifetime totals that grow as a post ages (fast at first, then
levelling off), scaled by a stable per-post popularity. Video metrics have data only
for video posts: other posts get 0 for counts and nothing (the metric is left out) for
milliseconds, dicts and the retention graph. ``day`` values, where a metric has them,
are the growth of the lifetime total over that Pacific day. Dict values leave out
zero keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from collectord.simulator.base import unit_hash
from collectord.simulator.series import weights

if TYPE_CHECKING:
    from collectord.simulator.world_view import Post, WorldView

Kind = Literal["int", "dict", "ms", "ms_fixed", "retention", "nodata"]
LD = ("lifetime", "day")
REACTIONS = ("like", "love", "wow", "haha", "sorry", "anger")
_REACTION_BASE = (320, 40, 9, 14, 3, 2)
_VIDEO_ONLY_KEYS = {"video play"}


@dataclass(frozen=True)
class PostMetric:
    """One post metric: periods, kind, typical lifetime size, video-only flag, keys."""

    name: str
    periods: tuple[str, ...] = ("lifetime",)
    base: float = 0.0
    kind: Kind = "int"
    video: bool = False
    keys: tuple[str, ...] = ()
    of: str = ""  # dict keys are the values of metric f"{of}{key}_total"
    breakdowns: tuple[str, ...] = ()


def _m(name: str, base: float = 0.0, **kw: Any) -> PostMetric:
    return PostMetric(name, base=base, **kw)


def _v(name: str, base: float = 0.0, **kw: Any) -> PostMetric:
    return PostMetric(name, base=base, video=True, **kw)


_CLICK_KEYS = ("other clicks", "link clicks", "photo view", "video play")
_CATALOGUE: list[PostMetric] = [
    _m("post_media_view", 1800, breakdowns=("is_from_ads", "is_from_followers")),
    _m("post_total_media_view_unique", 1200),
    _m("post_clicks", 90),
    _m("post_clicks_unique", 70),
    _m("post_clicks_by_type", 90, kind="dict", keys=_CLICK_KEYS),
    _m("post_clicks_by_type_unique", 70, kind="dict", keys=_CLICK_KEYS),
    *(_m(f"post_reactions_{r}_total", b) for r, b in zip(REACTIONS, _REACTION_BASE, strict=True)),
    _m("post_reactions_by_type_total", kind="dict", keys=REACTIONS, of="post_reactions_"),
    _m("post_activity_by_action_type", 150, kind="dict", keys=("like", "comment", "share")),
    _m("post_activity_by_action_type_unique", 120, kind="dict", keys=("like", "comment", "share")),
    _v("post_video_views", 900, periods=LD),
    _v("post_video_views_organic", 760, periods=LD),
    _v("post_video_views_paid", 140, periods=LD),
    _v("post_video_views_autoplayed", 600),
    _v("post_video_views_clicked_to_play", 300),
    _v("post_video_views_sound_on", 350),
    _v("post_video_views_15s", 380),
    _v("post_video_views_60s_excludes_shorter", 120, periods=LD),
    _v("post_video_avg_time_watched", 5_000, kind="ms_fixed"),
    _v("post_video_length", 15_000, kind="ms_fixed"),
    _v("post_video_view_time", 9_000_000, kind="ms", periods=LD),
    _v("post_video_view_time_organic", 7_500_000, kind="ms", periods=LD),
    _v("post_video_complete_views_organic", 150),
    _v("post_video_complete_views_paid", 30),
    _v("post_video_complete_views_organic_unique", 130),
    _v("post_video_complete_views_paid_unique", 25),
    _v("post_video_complete_views_30s_autoplayed", 90),
    _v("post_video_complete_views_30s_clicked_to_play", 50),
    _v("post_video_complete_views_30s_organic", 110),
    _v("post_video_complete_views_30s_paid", 30),
    _v("post_video_complete_views_30s_unique", 120),
    _v("post_video_retention_graph", kind="retention"),
    _v("post_video_retention_graph_autoplayed", kind="retention"),
    _v("post_video_retention_graph_clicked_to_play", kind="retention"),
    _v("post_video_views_by_distribution_type", 900, kind="dict", keys=("page_owned", "shared")),
    _v(
        "post_video_view_time_by_distribution_type",
        9_000_000,
        kind="dict",
        keys=("page_owned", "shared"),
    ),
    _v(
        "post_video_view_time_by_age_bucket_and_gender",
        9_000_000,
        kind="dict",
        keys=("F.18-24", "F.25-34", "M.18-24", "M.25-34", "U.35-44"),
    ),
    _v("post_video_view_time_by_region_id", 9_000_000, kind="dict", keys=("3843", "3847", "3875")),
    _v("post_video_view_time_by_country_id", 9_000_000, kind="dict", keys=("US", "CA", "GB", "DE")),
    _v("post_video_social_actions_count_unique", 40, periods=LD),
    _v("post_video_views_live", kind="nodata"),
    _v("post_video_live_current_viewers", kind="nodata"),
    *(
        _v(f"post_video_ad_break_{x}", kind="nodata", periods=LD)
        for x in ("ad_impressions", "earnings", "ad_cpm")
    ),
]

POST_METRICS: dict[str, PostMetric] = {m.name: m for m in _CATALOGUE}

#: A sample of retired post metrics (docs/meta-facts.md 2.4, 3.1); all answer "invalid metric".
RETIRED_POST_METRICS: tuple[str, ...] = (
    "post_impressions",
    "post_impressions_unique",
    "post_impressions_paid",
    "post_impressions_fan",
    "post_impressions_organic",
    "post_impressions_viral",
    "post_engaged_users",
    "post_consumptions",
    "post_negative_feedback",
    "post_video_views_unique",
    "post_video_views_10s",
)


def _popularity(world: WorldView, post: Post) -> float:
    return 0.3 + 1.7 * unit_hash(world.seed, post.id, "popularity")


def _saturation(post: Post, at: datetime) -> float:
    hours = (at - post.created_time).total_seconds() / 3600
    return 0.0 if hours <= 0 else 1 - math.exp(-hours / 20)


def _lifetime_count(world: WorldView, post: Post, name: str, base: float, at: datetime) -> float:
    noise = 0.8 + 0.4 * unit_hash(world.seed, post.id, name)
    return base * _popularity(world, post) * noise * _saturation(post, at)


def _lifetime(
    world: WorldView, post: Post, metric: PostMetric, at: datetime
) -> int | float | dict[str, Any] | None:
    if metric.kind == "nodata" or (metric.video and not post.is_video and metric.kind != "int"):
        return None
    if metric.video and not post.is_video:
        return 0
    if metric.kind == "ms_fixed":
        return round(metric.base * (1 + 8 * unit_hash(world.seed, post.id, metric.name)))
    if metric.kind == "retention":
        return {
            str(i): round(math.exp(-i / 12) * (0.9 + 0.1 * unit_hash(post.id, metric.name, i)), 4)
            for i in range(40)
        }
    if metric.kind == "dict":
        if metric.of:
            values = {
                k: _lifetime(world, post, POST_METRICS[f"{metric.of}{k}_total"], at)
                for k in metric.keys
            }
        else:
            w = weights(world, (post.id, metric.name), metric.keys)
            values = {
                k: 0
                if k in _VIDEO_ONLY_KEYS and not post.is_video
                else round(
                    _lifetime_count(world, post, f"{metric.name}.{k}", metric.base * w[k], at)
                )
                for k in metric.keys
            }
        return {k: v for k, v in values.items() if isinstance(v, int) and v > 0}
    return round(_lifetime_count(world, post, metric.name, metric.base, at))


def post_value(
    world: WorldView, post: Post, name: str, period: str = "lifetime", end: datetime | None = None
) -> int | float | dict[str, Any] | None:
    """The value of ``name`` for ``post``; ``None`` means the metric is left out.

    ``lifetime`` values are taken at the world's (quantized) now; ``day`` values are the
    growth over the Pacific day ending at ``end``.
    """
    metric = POST_METRICS[name]
    if period == "lifetime":
        return _lifetime(world, post, metric, world.now_q())
    assert end is not None, "a day value needs its end_time"
    after = _lifetime(world, post, metric, end)
    before = _lifetime(world, post, metric, end - timedelta(days=1))
    if isinstance(after, int) and isinstance(before, int):
        return after - before
    return None


def split_value(
    world: WorldView, post: Post, name: str, breakdown: str, total: int
) -> dict[str, int]:
    """``total`` split by a flag breakdown (``is_from_ads``): ``{"0": ..., "1": ...}``."""
    flagged = round(total * (0.1 + 0.3 * unit_hash(world.seed, post.id, name, breakdown)))
    return {"0": total - flagged, "1": flagged}


def title(name: str, period: str) -> tuple[str, str]:
    """Meta-style ``title`` and ``description`` for a post metric."""
    words = name.removeprefix("post_").replace("_", " ")
    prefix = "Lifetime" if period == "lifetime" else "Daily"
    return f"{prefix} {words.title()}", f"{prefix}: {words[0].upper()}{words[1:]}"
