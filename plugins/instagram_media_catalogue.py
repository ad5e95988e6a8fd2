"""The ``instagram_media`` catalogue: the media and story insights Meta serves today, the
kinds of media each is valid for (its ``group``), and the names Meta retired."""

from __future__ import annotations

from collections.abc import Mapping

from collectord import MetricNames, MetricSpec, Retired

MEDIA_PREFIX = "instagram_media"
STORY_PREFIX = "instagram_story"
FEED, REELS, STORY = "FEED", "REELS", "STORY"
#: Product types whose media come from ``/media`` and get insights (AD has none here).
MEDIA_PRODUCTS: tuple[str, ...] = (FEED, REELS)


def media_insight(
    graph_name: str,
    help: str,
    products: tuple[str, ...] = MEDIA_PRODUCTS,
    *,
    default: bool = True,
    unit: str = "count",
    breakdowns: tuple[str, ...] = (),
) -> MetricSpec:
    """A lifetime insight of the media of ``products``; ``unit="ms"``: seconds."""
    return MetricSpec.insight(
        MEDIA_PREFIX,
        graph_name,
        help,
        cadence="fast",
        periods=("lifetime",),
        unit=unit,
        default=default,
        group=products,
        breakdowns=breakdowns,
    )


def story_insight(
    graph_name: str, help: str, *, default: bool = True, breakdowns: tuple[str, ...] = ()
) -> MetricSpec:
    """A lifetime insight of a story, ``instagram_story_<name>``."""
    return MetricSpec.insight(
        STORY_PREFIX,
        graph_name,
        help,
        cadence="fast",
        periods=("lifetime",),
        default=default,
        group=(STORY,),
        breakdowns=breakdowns,
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    # One measure of one object is one series: the ``like_count`` and ``comments_count``
    # fields come with the media list at no extra call, so they are exported (named by what
    # they count) and the ``likes`` and ``comments`` insights, the same counts, are not asked.
    MetricSpec.field(
        MEDIA_PREFIX,
        "like_count",
        "Likes of the media (organic; left out when likes are hidden).",
        name="likes",
    ),
    MetricSpec.field(
        MEDIA_PREFIX, "comments_count", "Comments on the media (organic).", name="comments"
    ),
    media_insight(
        "views", "Times the media was played or displayed (replaces impressions, plays)."
    ),
    media_insight("reach", "Accounts that saw the media (estimated)."),
    media_insight("total_interactions", "Likes, comments, saves and shares (organic)."),
    media_insight("saved", "Saves."),
    media_insight("shares", "Shares."),
    media_insight("reposts", "Reposts."),
    media_insight("follows", "Accounts that followed from the post.", (FEED,)),
    media_insight("profile_visits", "Profile visits from the post.", (FEED,)),
    media_insight(
        "ig_reels_avg_watch_time", "Average time the reel was watched.", (REELS,), unit="ms"
    ),
    media_insight(
        "ig_reels_video_view_total_time",
        "Total time the reel was watched, replays included.",
        (REELS,),
        unit="ms",
    ),
    media_insight(
        "reels_skip_rate",
        "Share of views skipped in the first 3 seconds (Meta: in development).",
        (REELS,),
        unit="ratio",
        default=False,
    ),
    media_insight(
        "profile_activity",
        "Actions on the profile after seeing the post, by action_type (one more call per media).",
        (FEED,),
        default=False,
        breakdowns=("action_type",),
    ),
    media_insight(
        "total_likes", "Likes including ads and crossposts (Facebook Login).", default=False
    ),
    media_insight("total_comments", "Comments including ads and crossposts.", default=False),
    media_insight("total_views", "Views including ads and crossposts.", default=False),
    media_insight(
        "facebook_views",
        "Views on Facebook (fails for media not shared to Facebook: then disabled).",
        default=False,
    ),
    media_insight(
        "crossposted_views",
        "Views on Instagram and Facebook (fails for reels not crossposted: then disabled).",
        (REELS,),
        default=False,
    ),
    media_insight(
        "impressions",
        "Legacy impressions, for media created before 2024-07-02 only.",
        (FEED,),
        default=False,
    ),
    story_insight("views", "Times the story was displayed."),
    story_insight("reach", "Accounts that saw the story (estimated)."),
    story_insight("replies", "Replies to the story (0 for viewers in the EU and Japan)."),
    story_insight("shares", "Shares of the story."),
    story_insight("total_interactions", "Replies and shares of the story."),
    story_insight("follows", "Accounts that followed from the story."),
    story_insight("profile_visits", "Profile visits from the story."),
    story_insight(
        "navigation",
        "Taps forward and back, exits and swipes (by story_navigation_action_type).",
        breakdowns=("story_navigation_action_type",),
    ),
    story_insight("reposts", "Reposts of the story.", default=False),
    story_insight("total_views", "Views including ads and crossposts.", default=False),
    story_insight("link_clicks", "Taps on the story's link sticker.", default=False),
    story_insight(
        "profile_activity",
        "Actions on the profile after seeing the story, by action_type.",
        default=False,
        breakdowns=("action_type",),
    ),
)

#: Media insights that count what a field of the media list counts: a source listing one
#: gets the field (one measure of one object is one series), with a config warning.
SAME_AS_FIELD: Mapping[str, str] = {"likes": "like_count", "comments": "comments_count"}

# What Meta retired, when, and what to ask for instead (docs/meta-facts.md 6.7); fnmatch patterns,
# the first match wins. ``impressions`` itself is in the catalogue: Meta still answers it for
# media created before 2024-07-02, and collectord asks for it for those media only.
DEC_2023 = "in December 2023"
APRIL_2025 = "in April 2025 (Graph API v22.0)"
RETIRED: tuple[Retired, ...] = (
    Retired("carousel_album_reach", DEC_2023, "use 'reach' on the carousel itself"),
    Retired("carousel_album_saved", DEC_2023, "use 'saved' on the carousel itself"),
    Retired("carousel_album_engagement", DEC_2023, "use 'total_interactions' on the carousel"),
    Retired("carousel_album_impressions", DEC_2023, "use 'views' on the carousel itself"),
    Retired("carousel_album_video_views", DEC_2023, "use 'views' on the carousel itself"),
    Retired("carousel_album_*", DEC_2023, "use 'reach', 'saved' or 'total_interactions'"),
    Retired("engagement", DEC_2023, "use 'total_interactions'"),
    *(
        Retired(
            name,
            f"for stories {DEC_2023}",
            "use 'navigation' (its story_navigation_action_type breakdown)",
        )
        for name in ("taps_forward", "taps_back", "exits")
    ),
    Retired("video_views", "in January 2025 (Graph API v21.0)", "use 'views'"),
    Retired(
        "impressions",
        f"{APRIL_2025} for media created from 2024-07-02 on (every live story among them)",
        "use 'views' ('impressions' still answers for posts created before 2024-07-02)",
    ),
    *(
        Retired(name, APRIL_2025, "use 'views'")
        for name in ("plays", "clips_replays_count", "ig_reels_aggregated_all_plays_count")
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{MEDIA_PREFIX}_": "", f"{STORY_PREFIX}_": ""},
    kind="an Instagram media metric",
    asked_as="a lifetime metric of posts and reels",
    elsewhere=tuple(
        (pattern, "account metrics are read by the instagram_user plugin")
        for pattern in (
            "accounts_engaged",
            "follower_count",
            "follower_demographics",
            "engaged_audience_demographics",
            "online_followers",
            "profile_links_taps",
            "follows_and_unfollows",
        )
    ),
)
