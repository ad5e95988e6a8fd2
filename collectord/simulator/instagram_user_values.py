"""Account-level Instagram values over time: the ground truth behind ``/{ig-user}/insights``.

Activity is modelled hour by hour: each metric has a daily volume per 12,000 followers,
scaled by the account's (slowly growing) follower count, shaped by a daily rhythm and a
little per-hour noise. A window's value is the sum of its hours (partial hours pro rata),
so values move as time passes; "unique" metrics (reach, accounts engaged) are
de-duplicated over windows longer than a day, so daily reach never sums to weekly reach.
Breakdowns split a total by stable per-account shares and always add up to it.

Values are late, as Meta's are (up to 48 hours, docs/meta-facts.md 5.3): asked with a
``now``, an hour younger than :data:`SETTLE` counts only in part (85 % when just over,
rising to all of it at 48 hours), so a completed day read again the next day is revised
upwards, and a reading that old is final.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import product

from collectord.simulator.base import (
    daily_rhythm,
    growing,
    pacific_midnight_on_or_before,
    unit_hash,
)
from collectord.simulator.instagram_catalog import DEMOGRAPHICS_TOP
from collectord.simulator.instagram_model import IgAccount, apportion

#: Daily volume of each account metric for 12,000 followers.
DAILY_PER_12K: dict[str, float] = {
    "views": 9500.0,
    "reach": 2600.0,
    "accounts_engaged": 330.0,
    "likes": 430.0,
    "comments": 24.0,
    "saves": 41.0,
    "shares": 33.0,
    "replies": 9.0,
    "reposts": 6.0,
    "profile_links_taps": 38.0,
    "profile_views": 190.0,
    "follows": 34.0,
    "unfollows": 21.0,
}
UNIQUE = frozenset({"reach", "accounts_engaged"})
#: How long Meta keeps revising an hour's activity.
SETTLE = timedelta(hours=48)
INTERACTION_PARTS = ("likes", "comments", "saves", "shares", "replies", "reposts")

DIMENSION_SHARES: dict[str, dict[str, float]] = {
    "media_product_type": {
        "POST": 0.22,
        "CAROUSEL_CONTAINER": 0.16,
        "REEL": 0.44,
        "STORY": 0.14,
        "AD": 0.04,
    },
    "follower_type": {"FOLLOWER": 0.38, "NON_FOLLOWER": 0.62},
    "follow_type": {"FOLLOWER": 0.36, "NON_FOLLOWER": 0.61, "UNKNOWN": 0.03},
    "contact_button_type": {
        "BOOK_NOW": 0.05,
        "CALL": 0.12,
        "DIRECTION": 0.18,
        "EMAIL": 0.10,
        "INSTANT_EXPERIENCE": 0.02,
        "TEXT": 0.08,
        "UNDEFINED": 0.45,
    },
    "age": {
        "13-17": 0.02,
        "18-24": 0.19,
        "25-34": 0.36,
        "35-44": 0.22,
        "45-54": 0.12,
        "55-64": 0.06,
        "65+": 0.03,
    },
    "gender": {"F": 0.56, "M": 0.41, "U": 0.03},
    "country": {
        "US": 0.31,
        "GB": 0.12,
        "DE": 0.08,
        "CA": 0.07,
        "FR": 0.06,
        "AU": 0.05,
        "BR": 0.045,
        "IN": 0.04,
        "ES": 0.035,
        "IT": 0.03,
        "NL": 0.025,
        "MX": 0.022,
        "SE": 0.018,
        "IE": 0.016,
        "PL": 0.014,
        "JP": 0.012,
        "PT": 0.011,
        "BE": 0.01,
        "CH": 0.009,
        "AT": 0.008,
        "NZ": 0.007,
        "DK": 0.006,
        "NO": 0.005,
        "ZA": 0.005,
        "AR": 0.004,
    },
    "city": {
        "Los Angeles, California": 0.07,
        "New York, New York": 0.065,
        "London, England": 0.06,
        "Berlin, Berlin": 0.03,
        "Toronto, Ontario": 0.028,
        "Paris, Ile-de-France": 0.026,
        "Sydney, New South Wales": 0.022,
        "Chicago, Illinois": 0.02,
        "Manchester, England": 0.018,
        "Melbourne, Victoria": 0.017,
        "San Francisco, California": 0.016,
        "Seattle, Washington": 0.015,
        "Hamburg, Hamburg": 0.013,
        "Austin, Texas": 0.012,
        "Madrid, Community of Madrid": 0.012,
        "Vancouver, British Columbia": 0.011,
        "Munich, Bavaria": 0.011,
        "Sao Paulo, Sao Paulo (state)": 0.01,
        "Amsterdam, North Holland": 0.01,
        "Dublin, Dublin": 0.009,
        "Mumbai, Maharashtra": 0.009,
        "Portland, Oregon": 0.008,
        "Boston, Massachusetts": 0.008,
        "Milan, Lombardy": 0.007,
        "Barcelona, Catalonia": 0.007,
        "Stockholm, Stockholm County": 0.006,
        "Mexico City, Distrito Federal": 0.006,
        "Denver, Colorado": 0.005,
        "Brooklyn, New York": 0.005,
        "Glasgow, Scotland": 0.004,
        "Lyon, Auvergne-Rhone-Alpes": 0.004,
        "Cologne, North Rhine-Westphalia": 0.004,
        "Atlanta, Georgia": 0.004,
        "Miami, Florida": 0.004,
        "Lisbon, Lisbon District": 0.003,
        "Auckland, Auckland Region": 0.003,
        "Vienna, Vienna": 0.003,
        "Zurich, Zurich": 0.003,
        "Copenhagen, Capital Region of Denmark": 0.003,
        "Oslo, Oslo": 0.002,
        "Rome, Lazio": 0.002,
        "Dallas, Texas": 0.002,
        "Houston, Texas": 0.002,
        "Phoenix, Arizona": 0.002,
        "Leeds, England": 0.002,
        "Bristol, England": 0.002,
        "Cape Town, Western Cape": 0.001,
        "Buenos Aires, Buenos Aires": 0.001,
    },
}

#: Share of followers whose age, gender and place Meta knows (demographics sum to less).
KNOWN_DEMOGRAPHICS = 0.92


@lru_cache(maxsize=4096)
def _hour_rhythm(hour_index: int) -> float:
    return daily_rhythm(datetime.fromtimestamp(hour_index * 3600 + 1800, UTC))


class AccountValues:
    """Deterministic account values of one world (``seed``, ``epoch``)."""

    def __init__(self, seed: int, epoch: datetime) -> None:
        self.seed = seed
        self.epoch = epoch

    # -- fields ---------------------------------------------------------------------------

    def followers(self, acct: IgAccount, at: datetime) -> float:
        """The follower count (unrounded, without the per-step wobble)."""
        return growing(acct.followers_base, at, per_day=acct.growth_per_day, epoch=self.epoch)

    def followers_count(self, acct: IgAccount, at: datetime, step: float) -> int:
        """``followers_count`` at ``at`` (already quantized): growth plus follow/unfollow jitter."""
        bucket = math.floor(at.timestamp() / step)
        wobble = (unit_hash(self.seed, acct.id, "wobble", bucket) - 0.5) * 6
        return max(0, round(self.followers(acct, at) + wobble))

    def follows_count(self, acct: IgAccount, at: datetime) -> int:
        days = max((at - self.epoch).total_seconds() / 86400, 0)
        return acct.follows_base + int(days / 9)

    # -- activity over windows -------------------------------------------------------------

    def _hourly(self, acct: IgAccount, key: str, hour_index: int) -> float:
        at = datetime.fromtimestamp(hour_index * 3600, UTC)
        scale = self.followers(acct, at) / 12000
        noise = 0.85 + 0.3 * unit_hash(self.seed, acct.id, key, hour_index)
        day = 0.8 + 0.4 * unit_hash(self.seed, acct.id, key, "day", hour_index // 24)
        return DAILY_PER_12K[key] / 24 * scale * _hour_rhythm(hour_index) * noise * day

    def raw_sum(
        self,
        acct: IgAccount,
        key: str,
        since: datetime,
        until: datetime,
        now: datetime | None = None,
    ) -> float:
        """The summed hourly volume of ``key`` in ``[since, until)``, partial hours pro rata;
        as known at ``now`` (hours younger than :data:`SETTLE` in part), final without it."""
        lo_ts, hi_ts = since.timestamp(), until.timestamp()
        settle = SETTLE.total_seconds()
        total = 0.0
        for hour in range(math.floor(lo_ts / 3600), math.ceil(hi_ts / 3600)):
            overlap = min((hour + 1) * 3600, hi_ts) - max(hour * 3600, lo_ts)
            if overlap > 0:
                known = 1.0
                if now is not None:
                    age = max(now.timestamp() - (hour + 1) * 3600, 0.0)
                    known = 0.85 + 0.15 * min(age / settle, 1.0)
                total += overlap / 3600 * self._hourly(acct, key, hour) * known
        return total

    def window_total(
        self,
        acct: IgAccount,
        metric: str,
        since: datetime,
        until: datetime,
        now: datetime | None = None,
    ) -> int:
        """The ``total_value`` of an account metric over ``[since, until)`` (as known at
        ``now``: see :meth:`raw_sum`)."""
        if until <= since:
            return 0
        if metric == "total_interactions":
            return sum(self.window_total(acct, m, since, until, now) for m in INTERACTION_PARTS)
        if metric == "follows_and_unfollows":
            return sum(self.follows_split(acct, since, until, now).values())
        raw = self.raw_sum(acct, metric, since, until, now)
        days = (until - since).total_seconds() / 86400
        if metric in UNIQUE and days > 1:
            raw *= days**-0.3
        return round(raw)

    def follows_split(
        self, acct: IgAccount, since: datetime, until: datetime, now: datetime | None = None
    ) -> dict[str, int]:
        """``follows_and_unfollows`` by ``follow_type``: FOLLOWER follows, NON_FOLLOWER left."""
        return {
            "FOLLOWER": round(self.raw_sum(acct, "follows", since, until, now)),
            "NON_FOLLOWER": round(self.raw_sum(acct, "unfollows", since, until, now)),
        }

    def shares(self, acct: IgAccount, metric: str, dimension: str) -> dict[str, float]:
        base = DIMENSION_SHARES[dimension]
        return {
            v: w * (0.8 + 0.4 * unit_hash(self.seed, acct.id, metric, dimension, v))
            for v, w in base.items()
        }

    def split(
        self, acct: IgAccount, metric: str, total: int, dimensions: list[str]
    ) -> dict[tuple[str, ...], int]:
        """``total`` broken down over the combined ``dimensions`` (zeros left out)."""
        per_dim = [self.shares(acct, metric, d) for d in dimensions]
        weights = {
            combo: math.prod(s[v] for s, v in zip(per_dim, combo, strict=True))
            for combo in product(*(s.keys() for s in per_dim))
        }
        keyed = {"\x1f".join(k): w for k, w in weights.items()}
        parts = apportion(total, keyed)
        return {tuple(k.split("\x1f")): v for k, v in parts.items() if v > 0}

    # -- time series -------------------------------------------------------------------------

    def daily_series(
        self, acct: IgAccount, metric: str, ends: list[datetime], now: datetime | None = None
    ) -> list[tuple[datetime, int]]:
        """One value per Pacific day ending at each of ``ends`` (reach or follower_count),
        as known at ``now``."""
        key = "follows" if metric == "follower_count" else metric
        out = []
        for end in ends:
            start = pacific_midnight_on_or_before(end - timedelta(hours=12))
            out.append((end, round(self.raw_sum(acct, key, start, end, now))))
        return out

    def online_followers(self, acct: IgAccount, day_end: datetime) -> dict[str, int]:
        """Followers online in each Pacific hour ``"0".."23"`` of the day ending ``day_end``."""
        start = pacific_midnight_on_or_before(day_end - timedelta(hours=12))
        followers = self.followers(acct, day_end)
        out: dict[str, int] = {}
        for hour in range(24):
            at = start + timedelta(hours=hour)
            rhythm = daily_rhythm(at)
            noise = 0.9 + 0.2 * unit_hash(self.seed, acct.id, "online", at.timestamp())
            out[str(hour)] = round(followers * 0.16 * rhythm**2 * noise)
        return out

    # -- demographics ----------------------------------------------------------------------

    def demographics(
        self, acct: IgAccount, metric: str, timeframe: str, at: datetime, dimensions: list[str]
    ) -> dict[tuple[str, ...], int]:
        """The top results of a demographic metric, keyed by dimension values."""
        if metric == "follower_demographics":
            base = self.followers(acct, at) * KNOWN_DEMOGRAPHICS
        else:
            days = 7 if timeframe == "this_week" else 30
            base = self.window_total(acct, "accounts_engaged", at - timedelta(days=days), at)
        base *= 0.97 + 0.03 * unit_hash(self.seed, acct.id, metric, timeframe)
        per_dim = [self.shares(acct, f"{metric}:{timeframe}", d) for d in dimensions]
        weights = {
            combo: math.prod(s[v] for s, v in zip(per_dim, combo, strict=True))
            for combo in product(*(s.keys() for s in per_dim))
        }
        top = sorted(weights, key=lambda c: weights[c], reverse=True)[:DEMOGRAPHICS_TOP]
        kept = sum(weights[c] for c in top) / sum(weights.values())
        parts = apportion(round(base * kept), {"\x1f".join(c): weights[c] for c in top})
        return {tuple(k.split("\x1f")): v for k, v in parts.items() if v > 0}
