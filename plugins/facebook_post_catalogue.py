"""The ``facebook_post`` catalogue: the post fields and lifetime insights Meta serves
today, the names Meta retired (with when and what replaced them), and the labels of
dict-valued metrics."""

from __future__ import annotations

from collections.abc import Mapping

from collectord import Cadence, MetricNames, MetricSpec, Retired

PREFIX = "facebook_post"
LIFETIME = ("lifetime",)

# Dict-valued metrics: the label their keys go under.
DICT_LABELS: Mapping[str, str] = {
    "post_reactions_by_type_total": "reaction_type",
    "post_clicks_by_type": "click_type",
    "post_activity_by_action_type": "action_type",
    "post_activity_by_action_type_unique": "action_type",
}


def insight(
    graph_name: str,
    cadence: Cadence,
    help: str,
    *,
    default: bool = False,
    unit: str = "count",
    breakdowns: tuple[str, ...] = (),
) -> MetricSpec:
    """A lifetime post insight; ``unit="ms"`` is Meta's milliseconds, exported in seconds."""
    return MetricSpec.insight(
        PREFIX,
        graph_name,
        help,
        cadence=cadence,
        periods=LIFETIME,
        strip="post_",
        unit=unit,
        default=default,
        breakdowns=breakdowns,
    )


# Lifetime post insights Meta serves today (docs/meta-facts.md 3.1), none of the retired ones:
# (Meta name, cadence, in the default set, unit, help). Starred metrics are fast.
_INSIGHTS: tuple[tuple[str, Cadence, bool, str, str], ...] = (
    ("post_clicks", "fast", True, "count", "Clicks anywhere on the post."),
    ("post_clicks_by_type", "fast", True, "count", "Clicks on the post, by click type."),
    ("post_activity_by_action_type", "fast", True, "count", "Stories about the post, by type."),
    ("post_activity_by_action_type_unique", "fast", False, "count", "People, by story type."),
    ("post_video_social_actions_count_unique", "fast", False, "count", "People who reacted."),
    ("post_video_views_live", "fast", False, "count", "Views of a live video."),
    ("post_video_live_current_viewers", "fast", False, "count", "Viewers of a live video."),
    ("post_video_retention_graph", "fast", False, "ratio", "Viewers left, by interval."),
    ("post_video_retention_graph_autoplayed", "fast", False, "ratio", "Same, autoplayed."),
    ("post_video_retention_graph_clicked_to_play", "fast", False, "ratio", "Same, clicked."),
    ("post_total_media_view_unique", "daily", True, "count", "Unique viewers (was reach)."),
    ("post_reactions_by_type_total", "daily", True, "count", "Reactions, by reaction type."),
    *(
        (f"post_reactions_{r}_total", "daily", False, "count", f"'{r}' reactions.")
        for r in ("like", "love", "wow", "haha", "sorry", "anger")
    ),
    ("post_video_views", "daily", True, "count", "3-second video views."),
    *(
        (f"post_video_views_{k}", "daily", False, "count", f"Video views ({k}).")
        for k in (
            "organic",
            "paid",
            "autoplayed",
            "clicked_to_play",
            "sound_on",
            "15s",
            "60s_excludes_shorter",
        )
    ),
    ("post_video_avg_time_watched", "daily", True, "ms", "Average time the video was watched."),
    ("post_video_length", "daily", False, "ms", "Length of the video."),
    ("post_video_view_time", "daily", True, "ms", "Total time the video was watched."),
    ("post_video_view_time_organic", "daily", False, "ms", "Same, organic."),
    *(
        (f"post_video_complete_views_{k}", "daily", False, "count", f"Complete views ({k}).")
        for k in ("organic", "organic_unique", "paid", "paid_unique")
    ),
    *(
        (f"post_video_complete_views_30s_{k}", "daily", False, "count", f"30-second views ({k}).")
        for k in ("autoplayed", "clicked_to_play", "organic", "paid", "unique")
    ),
    ("post_video_views_by_distribution_type", "daily", False, "count", "Views by distribution."),
    *(
        (f"post_video_view_time_by_{by}", "daily", False, "ms", f"View time by {by}.")
        for by in ("distribution_type", "age_bucket_and_gender", "region_id", "country_id")
    ),
    ("post_video_ad_break_ad_impressions", "daily", False, "count", "Ad-break impressions."),
    ("post_video_ad_break_earnings", "daily", False, "currency", "Ad-break earnings."),
    ("post_video_ad_break_ad_cpm", "daily", False, "currency", "Ad-break CPM."),
)

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec.field(
        PREFIX,
        "shares",
        name="shares",
        help="Times the post was shared (0 when Meta lists no shares).",
        default=True,
    ),
    MetricSpec.field(
        PREFIX,
        "comments",
        name="comments",
        help="Comments (Meta's approximate summary count).",
        default=False,
    ),
    MetricSpec.field(
        PREFIX,
        "reactions",
        name="reactions",
        help="Reactions (Meta's summary count).",
        default=False,
    ),
    insight(
        "post_media_view",
        "daily",
        "Times the post was played or displayed (Views; replaces post_impressions).",
        default=True,
        breakdowns=("is_from_ads", "is_from_followers"),
    ),
    *(insight(n, c, h, default=d, unit=u) for n, c, d, u, h in _INSIGHTS),
)

# What Meta retired, when, and what to ask for instead (docs/meta-facts.md 2.4, 3.1); fnmatch
# patterns, the first match wins (so the specific names come before the families).
NOV_2025 = "in November 2025"
JUNE_2026 = "in June 2026 (with Graph API v26.0)"
EARLIER = "before 2025, with the classic Page metrics"
CLOSEST = (
    "it has no replacement (the closest live metrics are 'post_clicks', "
    "'post_clicks_by_type' and 'post_activity_by_action_type')"
)
BY_ADS = "use 'post_media_view' (its is_from_ads breakdown)"
RETIRED: tuple[Retired, ...] = (
    Retired("post_impressions", NOV_2025, "use 'post_media_view'"),
    Retired("post_impressions_paid", NOV_2025, BY_ADS),
    Retired("post_impressions_organic", NOV_2025, BY_ADS),
    Retired(
        "post_impressions_fan", NOV_2025, "use 'post_media_view' (its is_from_followers breakdown)"
    ),
    Retired("post_impressions_viral", NOV_2025),
    Retired("post_impressions_nonviral", NOV_2025),
    Retired("post_impressions_unique", JUNE_2026, "use 'post_total_media_view_unique'"),
    Retired(
        "post_impressions_*_unique",
        JUNE_2026,
        "the nearest live metric is 'post_total_media_view_unique' (every viewer)",
    ),
    Retired("post_video_views_unique", JUNE_2026, "the nearest live metric is 'post_video_views'"),
    Retired(
        "post_video_views_organic_unique",
        JUNE_2026,
        "the nearest live metric is 'post_video_views_organic'",
    ),
    Retired(
        "post_video_views_paid_unique",
        JUNE_2026,
        "the nearest live metric is 'post_video_views_paid'",
    ),
    Retired("total_video_impressions*", JUNE_2026),
    Retired("total_video_views*_unique", JUNE_2026),
    Retired(
        "post_video_views_10s*",
        "with Graph API v19.0",
        "use 'post_video_views' (3 seconds), 'post_video_views_15s', "
        "'post_video_complete_views_30s_*' or 'post_video_views_60s_excludes_shorter'",
    ),
    Retired(
        "post_video_views_*unique",
        JUNE_2026,
        "the nearest live metric is 'post_video_views' (views, not viewers)",
    ),
    Retired("post_engaged_users", EARLIER, CLOSEST),
    Retired("post_consumptions*", EARLIER, CLOSEST),
    Retired("post_negative_feedback*", EARLIER),
    # the rest of the family Meta retired wholesale
    Retired(
        "post_impressions*",
        "with the other impressions metrics (November 2025 and June 2026)",
        "use 'post_media_view' or 'post_total_media_view_unique'",
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{PREFIX}_": "post_"},
    kind="a post metric",
    asked_as="a daily lifetime metric",
    elsewhere=(("page_*", "Page metrics are read by the facebook_page plugin"),),
)
