"""What the simulated Instagram API knows: metric catalogues, breakdown values and errors.

User metrics follow docs/meta-facts.md 5.2 (which ``metric_type`` each accepts, its period, its
breakdowns, whether it needs 100 followers); media metrics follow the product-type matrix
of 6.2 and the breakdowns of 6.3. The error constructors build Meta's texts (section 9,
5.3, 5.5, 6.4, 6.5) so that every handler fails the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from collectord.simulator.base import SimError

#: Media created on or after this day have no ``impressions`` (docs/meta-facts.md 6.2, 6.7).
IMPRESSIONS_CUTOFF = datetime(2024, 7, 2, tzinfo=UTC)

#: The widest ``since``/``until`` window of IG user insights (docs/meta-facts.md 5.3).
MAX_WINDOW_DAYS = 30

#: Demographics return at most this many breakdown results (docs/meta-facts.md 5.3).
DEMOGRAPHICS_TOP = 45

UserMetricKind = Literal["total", "both", "series", "demographic"]


@dataclass(frozen=True)
class UserMetric:
    """One IG user insight: how it may be asked for and how it answers.

    ``kind``: ``total`` needs ``metric_type=total_value``; ``both`` (reach) also does
    ``time_series``; ``series`` (legacy follower_count, online_followers) is a time series
    only; ``demographic`` is total_value with a mandatory ``timeframe`` and breakdown.
    """

    name: str
    title: str
    description: str
    kind: UserMetricKind
    period: str
    breakdowns: frozenset[str] = frozenset()
    follower_gated: bool = False


def _um(
    name: str,
    title: str,
    description: str,
    kind: UserMetricKind,
    period: str = "day",
    breakdowns: tuple[str, ...] = (),
    gated: bool = False,
) -> UserMetric:
    return UserMetric(name, title, description, kind, period, frozenset(breakdowns), gated)


_MPT = ("media_product_type",)
_DEMO = ("age", "city", "country", "gender")

USER_METRICS: dict[str, UserMetric] = {
    m.name: m
    for m in (
        _um(
            "reach",
            "Accounts reached",
            "The number of unique accounts that have seen your "
            "content, at least once, including in ads.",
            "both",
            "day",
            ("media_product_type", "follow_type"),
        ),
        _um(
            "follower_count",
            "Follower count",
            "The number of new followers per day.",
            "series",
            "day",
            gated=True,
        ),
        _um(
            "online_followers",
            "Online followers",
            "The number of your followers online, by hour of the day.",
            "series",
            "lifetime",
            gated=True,
        ),
        _um(
            "accounts_engaged",
            "Accounts engaged",
            "The number of accounts that have interacted with your content, including in ads.",
            "total",
        ),
        _um(
            "total_interactions",
            "Content interactions",
            "The total number of post "
            "interactions, story interactions, reels interactions and live interactions.",
            "total",
            "day",
            _MPT,
        ),
        _um(
            "likes",
            "Likes",
            "The number of likes on your posts, reels and videos.",
            "total",
            "day",
            _MPT,
        ),
        _um(
            "comments",
            "Comments",
            "The number of comments on your posts, reels, videos and live videos.",
            "total",
            "day",
            _MPT,
        ),
        _um(
            "shares",
            "Shares",
            "The number of shares of your posts, stories, reels, videos and live videos.",
            "total",
            "day",
            _MPT,
        ),
        _um(
            "saves",
            "Saves",
            "The number of saves of your posts, reels and videos.",
            "total",
            "day",
            _MPT,
        ),
        _um("replies", "Replies", "The number of replies you received from your story.", "total"),
        _um("reposts", "Reposts", "The number of times your content was reposted.", "total"),
        _um(
            "engaged_audience_demographics",
            "Engaged audience demographics",
            "The demographic characteristics of the engaged audience.",
            "demographic",
            "lifetime",
            _DEMO,
            gated=True,
        ),
        _um(
            "follower_demographics",
            "Follower demographics",
            "The demographic characteristics of followers.",
            "demographic",
            "lifetime",
            _DEMO,
            gated=True,
        ),
        _um(
            "follows_and_unfollows",
            "Follows and unfollows",
            "The number of accounts that "
            "followed you and the number that unfollowed you or left Instagram.",
            "total",
            "day",
            ("follow_type",),
            gated=True,
        ),
        _um(
            "profile_links_taps",
            "Profile links taps",
            "The number of taps on your "
            "business address, call button, email button and text button.",
            "total",
            "day",
            ("contact_button_type",),
        ),
        _um(
            "views",
            "Views",
            "The number of times your content was played or displayed.",
            "total",
            "day",
            ("follower_type", "media_product_type"),
        ),
        _um(
            "profile_views",
            "Profile views",
            "The number of times your profile was viewed.",
            "total",
        ),
    )
}

#: Every breakdown dimension an IG user insight knows (any other name is a bad parameter).
USER_DIMENSIONS: tuple[str, ...] = (
    "media_product_type",
    "follow_type",
    "follower_type",
    "contact_button_type",
    "age",
    "city",
    "country",
    "gender",
)

DEMOGRAPHIC_DIMENSIONS: tuple[str, ...] = _DEMO
TIMEFRAMES: tuple[str, ...] = ("this_week", "this_month")
RETIRED_TIMEFRAMES: tuple[str, ...] = ("last_14_days", "last_30_days", "last_90_days", "prev_month")

MediaProduct = Literal["FEED", "REELS", "STORY"]


@dataclass(frozen=True)
class MediaMetric:
    """One IG media insight: the product types it exists for and its only breakdown."""

    name: str
    title: str
    products: frozenset[str]
    breakdown: str | None = None
    needs_crosspost: bool = False

    @property
    def description(self) -> str:
        return f"{self.title} of this media, over its lifetime."


_F, _R, _S = "FEED", "REELS", "STORY"


def _mm(
    name: str, title: str, products: str, breakdown: str | None = None, crosspost: bool = False
) -> MediaMetric:
    kinds = {"F": _F, "R": _R, "S": _S}
    return MediaMetric(name, title, frozenset(kinds[c] for c in products), breakdown, crosspost)


MEDIA_METRICS: dict[str, MediaMetric] = {
    m.name: m
    for m in (
        _mm("views", "Views", "FRS"),
        _mm("reach", "Accounts reached", "FRS"),
        _mm("total_interactions", "Interactions", "FRS"),
        _mm("shares", "Shares", "FRS"),
        _mm("reposts", "Reposts", "FRS"),
        _mm("facebook_views", "Facebook views", "FRS", crosspost=True),
        _mm("likes", "Likes", "FR"),
        _mm("comments", "Comments", "FR"),
        _mm("saved", "Saved", "FR"),
        _mm("total_likes", "Total likes", "FR"),
        _mm("total_comments", "Total comments", "FR"),
        _mm("total_views", "Total views", "FRS"),
        _mm("follows", "Follows", "FS"),
        _mm("profile_visits", "Profile visits", "FS"),
        _mm("profile_activity", "Profile activity", "FS", breakdown="action_type"),
        _mm("impressions", "Impressions", "FS"),
        _mm("ig_reels_avg_watch_time", "Average watch time (in milliseconds)", "R"),
        _mm("ig_reels_video_view_total_time", "Reels total watch time (in milliseconds)", "R"),
        _mm("reels_skip_rate", "Skip rate", "R"),
        _mm("crossposted_views", "Crossposted views", "R", crosspost=True),
        _mm("replies", "Replies", "S"),
        _mm("navigation", "Navigation", "S", breakdown="story_navigation_action_type"),
        _mm("link_clicks", "Link clicks", "S"),
    )
}

#: Breakdown values of media metrics, lower case as Meta answers them (docs/meta-facts.md 6.3).
NAVIGATION_ACTIONS: dict[str, float] = {
    "tap_forward": 0.71,
    "tap_back": 0.12,
    "tap_exit": 0.10,
    "swipe_forward": 0.07,
}
PROFILE_ACTIONS: dict[str, float] = {
    "bio_link_clicked": 0.38,
    "call": 0.08,
    "direction": 0.14,
    "email": 0.07,
    "text": 0.05,
    "other": 0.28,
}

# -- errors ------------------------------------------------------------------------------


def bad_enum_error(param: str, index: int | None, valid: tuple[str, ...] | list[str]) -> SimError:
    """``(#100) metric[2] must be one of the following values: ...`` (unknown or retired)."""
    where = param if index is None else f"{param}[{index}]"
    return SimError(100, f"(#100) {where} must be one of the following values: " + ", ".join(valid))


def user_impressions_error() -> SimError:
    return SimError(
        100,
        "(#100) Starting from version 22 and above, the impressions metric is no longer "
        "supported for the queried user. Please refer to the documentation at "
        "https://developers.facebook.com/docs/instagram-api/reference/ig-user/insights for a "
        "list of supported metrics.",
    )


def media_impressions_error() -> SimError:
    return SimError(
        100,
        "(#100) Starting from version 22 and above, the impressions metric is no longer "
        "supported for media created on or after July 2, 2024. Please use views instead.",
    )


def metric_type_error(names: list[str], wanted: str) -> SimError:
    return SimError(
        100,
        f"(#100) The following metrics ({', '.join(names)}) should be specified with "
        f"parameter metric_type={wanted}",
    )


def period_error(name: str, period: str) -> SimError:
    return SimError(100, f"(#100) The metric {name} does not support the period {period}")


def unknown_error() -> SimError:
    """Meta's answer to a breakdown that one of the requested metrics does not support."""
    return SimError(1, "An unknown error has occurred.", http_status=500)


def window_error() -> SimError:
    return SimError(
        100,
        f"(#100) There cannot be more than {MAX_WINDOW_DAYS} days "
        f"({MAX_WINDOW_DAYS * 86400} s) between since and until",
    )


def product_type_error(metric: str) -> SimError:
    return SimError(
        100,
        f"(#100) The Media Insights API does not support the {metric} metric for this media "
        "product type.",
    )


def not_crossposted_error(metric: str) -> SimError:
    return SimError(
        100,
        f"(#100) The metric {metric} is not available because this media was not shared "
        "to Facebook.",
    )


def pre_conversion_error() -> SimError:
    return SimError(
        100,
        "Invalid parameter",
        subcode=2108006,
        is_transient=False,
        user_title="Media posted before business account conversion",
        user_msg="The media was posted before the most recent time that the user's account "
        "was converted to a business account from a personal account.",
    )


def carousel_child_error() -> SimError:
    return SimError(
        100,
        "(#100) Insights are not available for a child of a carousel album; query the "
        "carousel album instead.",
    )


def not_enough_viewers_error() -> SimError:
    return SimError(10, "(#10) Not enough viewers for the media to show insights", http_status=403)


def nonexisting_field_error(field: str, node_type: str) -> SimError:
    return SimError(
        100, f"(#100) Tried accessing nonexisting field ({field}) on node type ({node_type})"
    )


def unknown_path_error(path: str) -> SimError:
    return SimError(2500, f"Unknown path components: /{path}")


def unsupported_method_error(method: str, node_id: str) -> SimError:
    return SimError(
        100,
        f"Unsupported {method.lower()} request. Object with ID '{node_id}' does not exist, "
        "cannot be loaded due to missing permissions, or does not support this operation.",
        subcode=33,
        type="GraphMethodException",
    )
