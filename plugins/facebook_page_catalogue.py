"""The ``facebook_page`` catalogue: the Page fields and insights Meta serves today, the
names Meta retired (with when and what replaced them), and the labels of dict-valued
metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from collectord import Cadence, MetricNames, MetricSpec, Retired

PREFIX = "facebook_page"
DAYS = ("day", "week", "days_28")

UPLOADED_60S = "page_uploaded_views_60s_excludes_shorter_unique_count_by_is_60s_returning_viewer"
AD_BREAK = "page_daily_video_ad_break_{}_by_crosspost_status"

# Dict-valued metrics: the label their keys go under; where Meta's name says what the keys
# are (``..._by_crosspost_status``), the label is that.
DICT_LABELS: Mapping[str, str] = {
    "page_actions_post_reactions_total": "reaction_type",
    "page_tab_views_login_top": "tab",
    "page_tab_views_login_top_unique": "tab",
    "page_tab_views_logout_top": "tab",
    UPLOADED_60S: "is_60s_returning_viewer",
    **{AD_BREAK.format(x): "crosspost_status" for x in ("ad_impressions", "cpm", "earnings")},
}


def insight(
    graph_name: str,
    cadence: Cadence,
    help: str,
    *,
    periods: tuple[str, ...] = DAYS,
    default: bool = True,
    unit: str = "count",
    breakdowns: tuple[str, ...] = (),
) -> MetricSpec:
    """A Page insight, ``facebook_page_<name without page_>``; ``unit="ms"``: seconds."""
    return MetricSpec.insight(
        PREFIX,
        graph_name,
        help,
        cadence=cadence,
        periods=periods,
        strip="page_",
        unit=unit,
        default=default,
        breakdowns=breakdowns,
    )


REACTIONS = ("like", "love", "wow", "haha", "sorry", "anger")

CATALOGUE: tuple[MetricSpec, ...] = (
    # Fields are named by what they count (``followers_count`` -> ``facebook_page_followers``):
    # a gauge ending in ``_count`` fails ``promtool check metrics``.
    MetricSpec.field(
        PREFIX, "followers_count", "People following the Page (current total).", name="followers"
    ),
    MetricSpec.field(PREFIX, "fan_count", "People who like the Page (current total).", name="fans"),
    insight(
        "page_media_view",
        "daily",
        "Times the Page's content was played or displayed (Views; replaces impressions).",
        breakdowns=("is_from_ads", "is_from_followers"),
    ),
    insight(
        "page_total_media_view_unique",
        "daily",
        "Unique viewers of the Page's content (replaces impressions_unique / reach).",
    ),
    insight("page_post_engagements", "daily", "Reactions, comments, shares and clicks on posts."),
    insight("page_total_actions", "daily", "Clicks on the Page's contact info and CTA button."),
    insight("page_views_total", "daily", "Times the Page's profile was viewed."),
    insight(
        "page_follows", "daily", "Lifetime total followers, reported per day.", periods=("day",)
    ),
    insight("page_daily_follows", "daily", "New followers.", periods=("day",)),
    insight("page_daily_follows_unique", "daily", "Unique new followers."),
    insight("page_daily_unfollows_unique", "daily", "Unique unfollows."),
    insight(
        "page_lifetime_engaged_followers_unique",
        "daily",
        "Followers who engaged with the Page.",
        periods=(),
        default=False,
    ),
    insight(
        "page_actions_post_reactions_total",
        "daily",
        "Reactions on the Page's posts, by reaction type.",
        periods=("day",),
    ),
    *(
        insight(
            f"page_actions_post_reactions_{r}_total",
            "daily",
            f"'{r}' reactions on the Page's posts.",
            default=False,
        )
        for r in REACTIONS
    ),
    insight(
        "page_fan_adds_by_paid_non_paid_unique",
        "daily",
        "New likes, paid and unpaid.",
        periods=("day",),
        default=False,
    ),
    insight("page_video_views", "daily", "3-second video views."),
    *(
        insight(f"page_video_views_{k}", "daily", f"3-second video views ({k}).", default=False)
        for k in ("paid", "organic", "autoplayed", "click_to_play")
    ),
    insight(
        "page_video_views_by_paid_non_paid", "daily", "Video views, paid and unpaid.", default=False
    ),
    insight(
        "page_video_views_by_uploaded_hosted",
        "daily",
        "Video views by uploaded/hosted.",
        default=False,
    ),
    insight("page_video_repeat_views", "daily", "Video replays.", default=False),
    insight("page_video_complete_views_30s", "daily", "30-second video views.", default=False),
    *(
        insight(
            f"page_video_complete_views_30s_{k}",
            "daily",
            f"30-second video views ({k.replace('_', ' ')}).",
            default=False,
        )
        for k in ("paid", "organic", "autoplayed", "click_to_play", "unique", "repeat_views")
    ),
    insight(
        "page_video_view_time",
        "daily",
        "Total time videos were viewed.",
        periods=("day",),
        unit="ms",
    ),
    # Meta lists no periods for the uploaded-video metrics: whatever it answers is kept.
    replace(
        insight(
            "page_uploaded_views_15s_count",
            "daily",
            "15-second views of videos uploaded to the Page.",
            periods=(),
            default=False,
        ),
        prom_name=f"{PREFIX}_uploaded_views_15s",  # no ``_count`` suffix on a gauge
    ),
    insight(
        "page_uploaded_3s_to_15s_views_rate",
        "daily",
        "Share of 3-second views of uploaded videos that reached 15 seconds.",
        periods=(),
        default=False,
        unit="ratio",
    ),
    insight(
        UPLOADED_60S,
        "daily",
        "Unique 60-second viewers of uploaded videos, new and returning.",
        periods=(),
        default=False,
    ),
    insight(
        "page_tab_views_login_top",
        "daily",
        "Tab views by logged-in people, by tab.",
        periods=("day", "week"),
        default=False,
    ),
    insight(
        "page_tab_views_login_top_unique",
        "daily",
        "Logged-in people viewing the Page's tabs, by tab.",
        periods=("day", "week"),
        default=False,
    ),
    insight(
        "page_tab_views_logout_top",
        "daily",
        "Tab views by logged-out people, by tab.",
        periods=("day",),
        default=False,
    ),
    # Ad breaks and monetisation are off by default: most Pages are not monetised, and Meta
    # then leaves these metrics out of its answer (no series, only a wasted request). A
    # monetised Page lists them in ``metrics``.
    insight(
        AD_BREAK.format("ad_impressions"),
        "daily",
        "Ad-break ad impressions, on the Page's own and on crossposted videos.",
        periods=("day",),
        default=False,
    ),
    insight(
        AD_BREAK.format("cpm"),
        "daily",
        "Ad-break CPM (earnings per 1000 ad impressions), own and crossposted videos.",
        periods=("day",),
        default=False,
        unit="currency",
    ),
    insight(
        AD_BREAK.format("earnings"),
        "daily",
        "Ad-break earnings, on the Page's own and on crossposted videos.",
        periods=("day",),
        default=False,
        unit="currency",
    ),
    insight(
        "content_monetization_earnings",
        "daily",
        "Earnings from Content Monetization.",
        default=False,
        unit="currency",
        breakdowns=("earning_source",),
    ),
    insight(
        "monetization_approximate_earnings",
        "daily",
        "Approximate earnings from every monetisation tool.",
        periods=(*DAYS, "month"),
        default=False,
        unit="currency",
        breakdowns=("monetization_tool",),
    ),
    insight(
        "creator_monetization_qualified_views",
        "daily",
        "Views that qualify for creator monetisation.",
        periods=("day", "lifetime"),
        default=False,
    ),
)

# What Meta retired, when, and what to ask for instead (docs/meta-facts.md 2.4); fnmatch patterns,
# the first match wins (so the specific names come before the families).
MARCH_2024 = "in March 2024"
SEPT_2024 = "in September 2024"
NOV_2025 = "in November 2025"
JUNE_2026 = "in June 2026 (with Graph API v26.0)"
NO_CITY = (
    "Meta named {!r} as its replacement, but had already retired that in March 2024; "
    "no Page demographics remain"
)
RETIRED: tuple[Retired, ...] = (
    Retired("page_impressions", NOV_2025, "use 'page_media_view'"),
    Retired("page_impressions_paid", NOV_2025, "use 'page_media_view' (its is_from_ads breakdown)"),
    Retired("page_impressions_viral", NOV_2025),
    Retired("page_impressions_nonviral", NOV_2025),
    Retired("page_fans", NOV_2025, "use 'page_follows' or the 'followers_count' field"),
    Retired("page_fans_locale", NOV_2025),
    Retired("page_fans_city", NOV_2025, NO_CITY.format("page_follows_city")),
    Retired("page_fans_country", NOV_2025, NO_CITY.format("page_follows_country")),
    Retired("page_fan_adds", NOV_2025, "the nearest live metric is 'page_daily_follows_unique'"),
    Retired(
        "page_fan_adds_unique", NOV_2025, "the nearest live metric is 'page_daily_follows_unique'"
    ),
    Retired(
        "page_fan_removes", NOV_2025, "the nearest live metric is 'page_daily_unfollows_unique'"
    ),
    Retired(
        "page_fan_removes_unique",
        NOV_2025,
        "the nearest live metric is 'page_daily_unfollows_unique'",
    ),
    Retired("page_impressions_unique", JUNE_2026, "use 'page_total_media_view_unique'"),
    Retired(
        "page_impressions_paid_unique",
        JUNE_2026,
        "use 'page_total_media_view_unique' (paid and organic: 'page_media_view' with its "
        "is_from_ads breakdown)",
    ),
    Retired("page_impressions_viral_unique", JUNE_2026),
    Retired("page_impressions_nonviral_unique", JUNE_2026),
    Retired("page_posts_impressions*", JUNE_2026),
    Retired("page_posts_served_impressions_organic_unique", JUNE_2026),
    Retired("page_video_views_unique", JUNE_2026, "use 'page_video_views'"),
    Retired(
        "page_impressions_organic_v2",
        SEPT_2024,
        "use 'page_media_view' (its is_from_ads breakdown)",
    ),
    Retired("page_impressions_organic_unique_v2", SEPT_2024),
    Retired("page_impressions_by_story_type*", SEPT_2024),
    Retired("page_impressions_by_*_unique", SEPT_2024),
    Retired("page_impressions_viral_frequency_distribution", SEPT_2024),
    Retired("page_consumptions_unique", SEPT_2024),
    Retired("page_consumptions_by_consumption_type*", SEPT_2024),
    Retired("page_places_checkin_*", SEPT_2024),
    Retired("page_negative_feedback*", SEPT_2024),
    Retired("page_fans_online", SEPT_2024),
    Retired("page_fans_online_per_day", SEPT_2024),
    Retired("page_engaged_users", MARCH_2024, "use 'page_post_engagements'"),
    Retired("page_consumptions", MARCH_2024),
    Retired("page_content_activity*", MARCH_2024),
    Retired("page_cta_clicks_*", MARCH_2024, "use 'page_total_actions'"),
    Retired("page_call_phone_clicks_*", MARCH_2024, "use 'page_total_actions'"),
    Retired("page_get_directions_clicks_*", MARCH_2024, "use 'page_total_actions'"),
    Retired("page_fans_by_like_source*", MARCH_2024),
    Retired("page_fans_gender_age", MARCH_2024),
    Retired("page_follows_city", MARCH_2024),
    Retired("page_follows_country", MARCH_2024),
    Retired("page_follows_gender_age", MARCH_2024),
    Retired("page_follows_locale", MARCH_2024),
    Retired("page_impressions_by_*", MARCH_2024),
    Retired(
        "page_video_views_10s*",
        "with Graph API v19.0",
        "use 'page_video_views' (3 seconds) or 'page_video_complete_views_30s'",
    ),
    # the rest of the two families Meta retired wholesale
    Retired(
        "page_impressions*",
        "with the other impressions metrics (November 2025 and June 2026)",
        "use 'page_media_view' or 'page_total_media_view_unique'",
    ),
    Retired(
        "page_fans*",
        "with the other page_fans metrics (March 2024 to November 2025)",
        "the follower total is 'page_follows'",
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{PREFIX}_": "page_"},
    kind="a Page metric",
    asked_as="a daily metric",
    elsewhere=(("post_*", "post metrics are read by the facebook_post plugin"),),
)
