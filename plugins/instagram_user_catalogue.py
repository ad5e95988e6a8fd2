"""The ``instagram_user`` catalogue: the account fields and insights Meta serves today,
how each is asked for (its ``group``), and the names Meta retired."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from collectord import (
    INSTAGRAM_LOGIN,
    GraphApi,
    MetricNames,
    MetricSpec,
    Option,
    Retired,
    SourcePlugin,
)

PREFIX = "instagram_user"

#: How a metric is requested (its ``MetricSpec.group``).
TOTAL = "total_value"
SERIES = "time_series"
DEMOGRAPHIC = "demographic"

#: Demographic timeframes Meta still serves (``last_*_days`` and ``prev_month`` ended in v20).
TIMEFRAMES: tuple[str, ...] = ("this_week", "this_month")
#: Demographic breakdowns asked for: age by gender (21 rows, below Meta's top-45 cut, so
#: age or gender alone are exact sums), the top cities and the top countries.
DEMOGRAPHIC_BREAKDOWNS: tuple[str, ...] = ("age,gender", "city", "country")
#: ``login``: which Meta login the source's token comes from, so which API it speaks
#: (docs/meta-facts.md 5.1, 10.8). Shared by ``instagram_user`` and ``instagram_media``.
LOGIN = Option(
    "login",
    "str",
    "facebook",
    help="Which login the token comes from: facebook (a Facebook user, system-user or Page "
    "token, graph.facebook.com) or instagram (an Instagram-Login token, graph.instagram.com; "
    "no Facebook Page needed).",
    choices=("facebook", "instagram"),
)
#: The permissions an Instagram-Login token needs (docs/meta-facts.md 10.6).
INSTAGRAM_LOGIN_SCOPES = ("instagram_business_basic", "instagram_business_manage_insights")


def login_api(options: Mapping[str, object]) -> GraphApi:
    """The API a source speaks, by its ``login`` option."""
    return INSTAGRAM_LOGIN if options.get("login") == "instagram" else SourcePlugin.api


#: Dict-valued metrics: the label their keys go under.
DICT_LABELS: Mapping[str, str] = {"online_followers": "hour"}

_MPT = ("media_product_type",)


def insight(
    graph_name: str,
    help: str,
    *,
    mode: str = TOTAL,
    period: str = "day",
    breakdowns: tuple[str, ...] = (),
    default: bool = True,
) -> MetricSpec:
    """A daily account insight, asked for as ``mode`` (its ``group``) for ``period``."""
    return MetricSpec.insight(
        PREFIX,
        graph_name,
        help,
        cadence="daily",
        periods=(period,),
        default=default,
        group=(mode,),
        breakdowns=breakdowns,
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    # Fields are named by what they count (``followers_count`` -> ``instagram_user_followers``):
    # a gauge ending in ``_count`` fails ``promtool check metrics``.
    MetricSpec.field(
        PREFIX,
        "followers_count",
        "Accounts following the account (current total).",
        name="followers",
    ),
    MetricSpec.field(
        PREFIX, "follows_count", "Accounts the account follows (current total).", name="follows"
    ),
    MetricSpec.field(
        PREFIX, "media_count", "Media the account has published (current total).", name="media"
    ),
    insight(
        "views",
        "Times the account's content was played or displayed (replaces impressions).",
        # follower_type (FOLLOWER, NON_FOLLOWER): views only, docs/meta-facts.md 5.2
        breakdowns=("media_product_type", "follower_type"),
    ),
    insight(
        "reach",
        "Accounts that saw the account's content (estimated; never sum daily values).",
        mode=SERIES,
        breakdowns=("media_product_type", "follow_type"),
    ),
    insight("accounts_engaged", "Accounts that interacted with the account's content."),
    insight(
        "total_interactions",
        "Likes, comments, saves, shares and replies on the account's content.",
        breakdowns=_MPT,
    ),
    insight("likes", "Likes on the account's posts, reels and videos.", breakdowns=_MPT),
    insight("comments", "Comments on the account's content.", breakdowns=_MPT),
    insight("saves", "Saves of the account's posts, reels and videos.", breakdowns=_MPT),
    insight("shares", "Shares of the account's content.", breakdowns=_MPT),
    insight("replies", "Replies to the account's stories."),
    insight("reposts", "Reposts of the account's content."),
    insight(
        "profile_links_taps",
        "Taps on the profile's contact buttons (replaces the retired *_clicks metrics).",
        breakdowns=("contact_button_type",),
    ),
    insight(
        "follows_and_unfollows",
        "Follows plus unfollows (by follow_type: FOLLOWER follows, NON_FOLLOWER unfollows); "
        "accounts of 100 or more followers only.",
        breakdowns=("follow_type",),
    ),
    insight(
        "follower_demographics",
        "Followers by age and gender, city and country (top 45; 100 or more followers).",
        mode=DEMOGRAPHIC,
        period="lifetime",
        breakdowns=DEMOGRAPHIC_BREAKDOWNS,
    ),
    insight(
        "engaged_audience_demographics",
        "Engaged accounts by age and gender, city and country (top 45).",
        mode=DEMOGRAPHIC,
        period="lifetime",
        breakdowns=DEMOGRAPHIC_BREAKDOWNS,
    ),
    insight(
        "online_followers",
        "Followers online, by hour of the day (Pacific time; 100 or more followers).",
        mode=SERIES,
        period="lifetime",
    ),
    replace(
        insight(
            "follower_count",
            "New followers per day (legacy time series; 100 or more followers).",
            mode=SERIES,
            default=False,
        ),
        prom_name=f"{PREFIX}_new_followers",  # what it counts; no ``_count`` on a gauge
    ),
    insight(
        "profile_views",
        "Profile views (total_value only; not in Meta's 2026 reference).",
        default=False,
    ),
)

# What Meta retired, when, and what to ask for instead (docs/meta-facts.md 5.5); fnmatch patterns,
# the first match wins.
CONTACT_CLICKS = (
    "email_contacts",
    "get_directions_clicks",
    "phone_call_clicks",
    "text_message_clicks",
    "website_clicks",
)
RETIRED: tuple[Retired, ...] = (
    Retired("impressions", "in April 2025 (Graph API v22.0)", "use 'views'"),
    Retired(
        "audience_*",
        "in December 2023 (Graph API v18.0)",
        "use 'follower_demographics' or 'engaged_audience_demographics'",
    ),
    *(
        Retired(
            name,
            "as a time series in January 2025 (Graph API v21.0)",
            "use 'profile_links_taps' (its contact_button_type breakdown)",
            outcome="it is asked for as total_value; if Meta rejects that, it is disabled",
        )
        for name in CONTACT_CLICKS
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{PREFIX}_": ""},
    kind="an Instagram account metric",
    asked_as="a daily total_value metric",
    elsewhere=(
        *(
            (pattern, "media metrics are read by the instagram_media plugin")
            for pattern in ("reels_skip_rate", "crossposted_views", "facebook_views", "ig_reels_*")
        ),
        *(
            (pattern, "story metrics are read by the instagram_media plugin")
            for pattern in ("navigation", "link_clicks")
        ),
    ),
)
