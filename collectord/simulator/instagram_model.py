"""The simulated Instagram objects, their timeline and their lifetime values.

Accounts, media (FEED and REELS, carousel children) and stories are immutable records;
:class:`Timeline` places an account's posts in time (and its business conversion);
their ids encode the account and the object's position so that any id can be resolved
without a table (see :class:`IdCodec`). :func:`media_values` gives every lifetime insight of
a media or story at an instant: reach climbs quickly after posting and then flattens
(stories within hours, feed posts within days, reels over a week), the other metrics are
stable ratios of reach, and breakdowns add up to their totals.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

from collectord.simulator.base import unit_hash
from collectord.simulator.instagram_catalog import (
    IMPRESSIONS_CUTOFF,
    NAVIGATION_ACTIONS,
    PROFILE_ACTIONS,
)

Value = int | float | dict[str, int]


@dataclass(frozen=True)
class IgAccount:
    """One Instagram professional account."""

    index: int
    id: str
    username: str
    name: str
    biography: str
    website: str
    followers_base: float  # followers at the world's epoch
    follows_base: int
    growth_per_day: float


@dataclass(frozen=True)
class IgMedia:
    """A feed post, reel or story. ``k`` is its position in the account's timeline."""

    id: str
    account: int
    k: int
    created_at: datetime
    media_type: str  # IMAGE, VIDEO, CAROUSEL_ALBUM
    product_type: str  # FEED, REELS, STORY
    pre_conversion: bool
    crossposted: bool
    weight: float  # popularity relative to the account's usual post
    boost: float  # share of extra (ad) likes, comments and views
    caption: str | None
    shortcode: str
    n_children: int = 0
    quiet: bool = False  # a story seen by fewer than 5 accounts
    has_link: bool = False  # a story with a link sticker

    @property
    def is_story(self) -> bool:
        return self.product_type == "STORY"

    @property
    def legacy(self) -> bool:
        """Created before 2024-07-02, so it still has ``impressions``."""
        return self.created_at < IMPRESSIONS_CUTOFF


@dataclass(frozen=True)
class IgChild:
    """One item of a carousel album: listed under the album, no insights of its own."""

    id: str
    parent: IgMedia
    index: int
    media_type: str


class IdCodec:
    """Turns (account, kind, position) into 18-digit IG media ids and back.

    Media ids start with ``18``, carousel children with ``176``, stories with ``179``;
    then the account index, five digits of the seed and the position.
    """

    STORY_OFFSET = 500_000_000  # story positions may be negative (before the epoch)

    def __init__(self, seed: int) -> None:
        self._s5 = f"{seed % 100_000:05d}"

    def media(self, account: int, k: int) -> str:
        return f"18{account}{self._s5}{k:010d}"

    def child(self, account: int, k: int, index: int) -> str:
        return f"176{account}{self._s5}{k:07d}{index:02d}"

    def story(self, account: int, k: int) -> str:
        return f"179{account}{self._s5}{k + self.STORY_OFFSET:09d}"

    def parse(self, node_id: str) -> tuple[str, int, int, int] | None:
        """``(kind, account, k, child_index)`` for one of our ids, else None."""
        if len(node_id) != 18 or not node_id.isdigit():
            return None
        if node_id.startswith("176"):
            kind, body = "child", node_id[3:]
        elif node_id.startswith("179"):
            kind, body = "story", node_id[3:]
        elif node_id.startswith("18"):
            kind, body = "media", node_id[2:]
        else:
            return None
        account, s5, rest = int(body[0]), body[1:6], body[6:]
        if s5 != self._s5:
            return None
        if kind == "child":
            return kind, account, int(rest[:7]), int(rest[7:])
        if kind == "story":
            return kind, account, int(rest) - self.STORY_OFFSET, 0
        return kind, account, int(rest), 0


class Timeline:
    """Creation times of one account's feed media (k = 0 is the oldest) and its conversion."""

    def __init__(self, seed: int, acct: int, epoch: datetime, n: int) -> None:
        self._seed, self._acct, self._epoch = seed, acct, epoch
        n_old = n // 5
        n_pre = (n_old + 1) // 2
        anchor = min(epoch, IMPRESSIONS_CUTOFF)
        span = timedelta(days=390) / max(n_old, 1)
        old = [
            anchor - timedelta(days=400) + span * (j + 0.2 + 0.6 * self._h("old", j))
            for j in range(n_old)
        ]
        recent_floor = anchor - timedelta(days=8)
        gaps = [self._gap(i) for i in range(n - n_old)]
        if gaps:
            gaps[0] *= 0.25  # the newest post is a few hours old at the epoch
        room = (epoch - recent_floor).total_seconds() / 86400
        scale = min(1.0, room * 0.98 / sum(gaps)) if gaps else 1.0
        recent: list[datetime] = []
        at = epoch
        for g in gaps:
            at -= timedelta(days=g * scale)
            recent.append(at)
        self.times: list[datetime] = old + recent[::-1]
        if n_pre == 0:
            self.converted_at = anchor - timedelta(days=420)
        elif n_pre < n_old:
            self.converted_at = old[n_pre - 1] + (old[n_pre] - old[n_pre - 1]) / 2
        else:
            self.converted_at = old[-1] + timedelta(days=1)
        self.n_pre = n_pre

    def _h(self, what: str, i: int) -> float:
        return unit_hash(self._seed, self._acct, what, i)

    def _gap(self, i: int) -> float:
        return 0.5 + 2.5 * self._h("gap", i)

    def time(self, k: int) -> datetime:
        """Creation time of media ``k``; posts after the epoch come every 0.5 to 3 days."""
        while k >= len(self.times):
            prev = self.times[-1] if self.times else self._epoch
            self.times.append(prev + timedelta(days=self._gap(len(self.times) + 7919)))
        return self.times[k]

    def count_at(self, now: datetime) -> int:
        """How many media exist at ``now``."""
        while not self.times or self.times[-1] <= now:
            self.time(len(self.times))
        return bisect_right(self.times, now)


# -- values -------------------------------------------------------------------------------

_CAPTIONS = (
    "New season, new colours. Which one is your favourite?",
    "Behind the scenes at the workshop this week #handmade",
    "Our team picked their favourites for the weekend",
    "Three ways to wear it, one reel #styletips",
    "Thank you for 10 years of support!",
    "Restock alert: the classics are back",
    "Meet the makers: a day in the studio",
    "Sunday mood #slowliving",
)


def caption_for(seed: int, account: int, k: int) -> str | None:
    h = unit_hash(seed, account, "caption", k)
    if h < 0.08:
        return None  # posted without a caption: the field is left out
    return _CAPTIONS[int(h * 1000) % len(_CAPTIONS)]


def shortcode_for(seed: int, kind: str, account: int, k: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
    n = int(unit_hash(seed, kind, account, k) * 2**60)
    chars = []
    for _ in range(11):
        n, r = divmod(n, 64)
        chars.append(alphabet[r])
    return "C" + "".join(chars)


def apportion(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``total`` into integers proportional to ``weights`` that add up to ``total``."""
    wsum = sum(weights.values())
    if total <= 0 or wsum <= 0:
        return dict.fromkeys(weights, 0)
    exact = {k: total * w / wsum for k, w in weights.items()}
    out = {k: math.floor(v) for k, v in exact.items()}
    left = total - sum(out.values())
    for k in sorted(exact, key=lambda k: exact[k] - out[k], reverse=True)[:left]:
        out[k] += 1
    return out


def _shares(seed: int, m: IgMedia, what: str, base: dict[str, float]) -> dict[str, float]:
    return {k: w * (0.8 + 0.4 * unit_hash(seed, m.id, what, k)) for k, w in base.items()}


def media_values(seed: int, m: IgMedia, followers: float, at: datetime) -> dict[str, Value]:
    """Every lifetime insight of media ``m`` at ``at`` (metrics it lacks are left out).

    ``followers`` is the account's follower count when ``m`` was posted. Values are
    integers except ``reels_skip_rate`` (a fraction); ``navigation`` and
    ``profile_activity`` also appear as ``<name>_by`` dicts that add up to the total.
    """
    age_h = max((at - m.created_at).total_seconds() / 3600, 0.0)
    h = unit_hash(seed, m.id, "rates")
    if m.is_story:
        tau, reach_ratio, view_ratio, tail = 2.5, 0.06, 1.25, 0.0
    elif m.product_type == "REELS":
        tau, reach_ratio, view_ratio = 96.0, 0.9, 2.2
        tail = 0.08 * math.log1p(age_h / 720)
    else:
        tau, reach_ratio = 30.0, 0.28
        view_ratio = 1.8 if m.media_type == "CAROUSEL_ALBUM" else 1.35
        tail = 0.08 * math.log1p(age_h / 720)
    grown = 1 - math.exp(-age_h / tau) + tail
    if m.quiet:
        final = 2 + int(unit_hash(seed, m.id, "quiet") * 3)  # 2..4 viewers
        reach = min(round(final * grown), 4)
    else:
        reach = round(followers * reach_ratio * m.weight * grown)
    views = round(reach * view_ratio)
    shares = round(reach * (0.004 if m.is_story else 0.009))
    out: dict[str, Value] = {
        "reach": reach,
        "views": views,
        "shares": shares,
        "reposts": round(reach * 0.0025),
        "total_views": round(views * (1 + m.boost) + (views * 0.18 if m.crossposted else 0)),
    }
    if m.crossposted:
        out["facebook_views"] = round(views * 0.18)
    if m.product_type != "REELS":
        visits = round(reach * 0.02)
        activity = round(reach * 0.007)
        out["follows"] = round(reach * 0.0025)
        out["profile_visits"] = visits
        out["profile_activity"] = activity
        out["profile_activity_by"] = apportion(activity, _shares(seed, m, "pa", PROFILE_ACTIONS))
        if m.legacy:
            out["impressions"] = round(views * 1.08)
    if m.is_story:
        replies = round(reach * 0.012)
        nav = round(views * 0.92)
        out["replies"] = replies
        out["total_interactions"] = replies + shares
        out["navigation"] = nav
        out["navigation_by"] = apportion(nav, _shares(seed, m, "nav", NAVIGATION_ACTIONS))
        out["link_clicks"] = round(reach * 0.03) if m.has_link else 0
        return out
    likes = round(reach * (0.05 + 0.04 * h))
    comments = round(likes * 0.045)
    saved = round(reach * 0.012)
    out.update(
        likes=likes,
        comments=comments,
        saved=saved,
        total_interactions=likes + comments + saved + shares,
        total_likes=round(likes * (1 + m.boost)),
        total_comments=round(comments * (1 + m.boost)),
    )
    if m.product_type == "REELS":
        avg_ms = round((3500 + 9000 * h) * (0.97 + 0.03 * min(grown, 1.0)))
        out["ig_reels_avg_watch_time"] = avg_ms
        out["ig_reels_video_view_total_time"] = round(views * avg_ms * 1.12)
        out["reels_skip_rate"] = round(0.18 + 0.35 * unit_hash(seed, m.id, "skip"), 4)
        if m.crossposted:
            out["crossposted_views"] = views + round(views * 0.18)
    return out
