"""The simulator's Instagram world: accounts, their media and stories, and values over time.

One world is deterministic for a given ``seed`` and ``epoch``. Before the epoch each
account has ``n_media`` feed posts and reels; the oldest fifth goes back to before
2024-07-02 (so ``impressions`` still answers for them) and half of those predate the
account's conversion to a business account (their insights fail with subcode 2108006).
After the epoch a new post appears every 0.5 to 3 days. Stories come at a steady pace,
``n_stories`` per 24 hours, and each lives 24 hours, so a long-running demo always has
live stories and sees them expire.

All values are computed at ``now`` rounded down to ``value_step`` seconds, so they are
constant within a step and move across steps. The request handlers live in
:mod:`collectord.simulator.instagram`; the public ``user_*``/``media*``/``stor*`` methods
here are the ground truth that tests compare answers with.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from collectord.simulator.base import SimError, SimRequest, fb_time, quantize, unit_hash
from collectord.simulator.instagram import handle
from collectord.simulator.instagram_insights import user_metric_value
from collectord.simulator.instagram_model import (
    IdCodec,
    IgAccount,
    IgChild,
    IgMedia,
    Timeline,
    Value,
    caption_for,
    media_values,
    shortcode_for,
)
from collectord.simulator.instagram_user_values import AccountValues

MAIN_ACCOUNT_ID = "17841400000000001"
SMALL_ACCOUNT_ID = "17841400000000002"
STORY_LIFETIME = timedelta(hours=24)
#: Positions of stories placed with :meth:`InstagramWorld.add_story` start here, far from
#: the regular ones (four a day from the epoch).
EXTRA_STORY_BASE = 400_000_000


def _accounts(small_account: bool) -> tuple[IgAccount, ...]:
    main = IgAccount(
        0,
        MAIN_ACCOUNT_ID,
        "northwind.outfitters",
        "Northwind Outfitters",
        "Outdoor clothing, made to last. Repairs for life.",
        "https://northwind.example.com",
        12_000.0,
        381,
        0.0008,
    )
    if not small_account:
        return (main,)
    small = IgAccount(
        1,
        SMALL_ACCOUNT_ID,
        "tiny.pottery.studio",
        "Tiny Pottery Studio",
        "Small-batch ceramics.",
        "https://tinypottery.example.com",
        62.0,
        140,
        0.0004,
    )
    return (main, small)


class InstagramWorld:
    """Instagram professional accounts with media and stories, served as the Graph API does."""

    def __init__(
        self,
        *,
        seed: int,
        epoch: datetime,
        page_id: str,
        n_media: int,
        n_stories: int,
        clock: Callable[[], datetime] | None = None,
        value_step: float = 60.0,
        small_account: bool = False,
        empty_pages: bool = True,
    ) -> None:
        """``small_account`` adds a second account (not linked to a Page) with about 60
        followers, which answers follower metrics with empty data. ``empty_pages=False``
        turns off the occasional empty ``/media`` page that still carries ``next``."""
        self.seed = seed
        self.epoch = epoch.astimezone(UTC)
        self.page_id = page_id
        self.value_step = value_step
        self.empty_pages = empty_pages
        self.n_stories = n_stories
        self._clock = clock or (lambda: datetime.now(UTC))
        self.n_media = n_media
        self._accounts = {a.id: a for a in _accounts(small_account)}
        self.user_ids: tuple[str, ...] = tuple(self._accounts)
        self.ids = IdCodec(seed)
        self.values = AccountValues(seed, self.epoch)
        self._timelines = [
            Timeline(seed, a.index, self.epoch, n_media) for a in self._accounts.values()
        ]
        self._media_cache: dict[tuple[int, int], IgMedia] = {}
        self._extra_stories: dict[tuple[int, int], IgMedia] = {}

    # -- objects ------------------------------------------------------------------------------

    def account(self, ig_user_id: str) -> IgAccount:
        return self._accounts[ig_user_id]

    def account_at(self, index: int) -> IgAccount:
        return next(a for a in self._accounts.values() if a.index == index)

    def add_account(self, ig_user_id: str, username: str, name: str) -> IgAccount:
        """A new professional account with its own media and stories (for a Page linked
        to one); at most ten accounts in all, as media ids hold one digit of the index."""
        index = len(self._timelines)
        if index > 9:
            raise ValueError("the simulated Instagram world holds at most ten accounts")
        acct = IgAccount(
            index,
            ig_user_id,
            username,
            name,
            f"{name}, simulated.",
            f"https://{username.replace('.', '-')}.example.com",
            900.0 + 350.0 * index,
            120 + index,
            0.0006,
        )
        self._accounts[ig_user_id] = acct
        self.user_ids = tuple(self._accounts)
        self._timelines.append(Timeline(self.seed, index, self.epoch, self.n_media))
        return acct

    def remove_account(self, ig_user_id: str) -> None:
        """The account is gone: it and its media answer as unknown objects from now on."""
        self._accounts.pop(ig_user_id, None)
        self.user_ids = tuple(self._accounts)

    def step(self, now: datetime) -> datetime:
        """``now`` rounded down to the value step: the instant all values are computed at."""
        return quantize(now, self.value_step)

    def converted_at(self, ig_user_id: str) -> datetime:
        """When the account became a business account."""
        return self._timelines[self.account(ig_user_id).index].converted_at

    def media_count(self, ig_user_id: str, now: datetime) -> int:
        return self._timelines[self.account(ig_user_id).index].count_at(now)

    def feed_media(self, acct: int, k: int) -> IgMedia:
        """Feed post or reel number ``k`` of account ``acct`` (0 = the oldest)."""
        key = (acct, k)
        if key not in self._media_cache:
            tl = self._timelines[acct]
            h = unit_hash(self.seed, acct, "kind", k)
            if h < 0.40:
                media_type, product = "VIDEO", "REELS"
            elif h < 0.75:
                media_type, product = "IMAGE", "FEED"
            elif h < 0.95:
                media_type, product = "CAROUSEL_ALBUM", "FEED"
            else:
                media_type, product = "VIDEO", "FEED"
            self._media_cache[key] = IgMedia(
                id=self.ids.media(acct, k),
                account=acct,
                k=k,
                created_at=tl.time(k),
                media_type=media_type,
                product_type=product,
                pre_conversion=k < tl.n_pre,
                crossposted=unit_hash(self.seed, acct, "xpost", k) < (0.5 if h < 0.4 else 0.25),
                weight=math.exp((unit_hash(self.seed, acct, "weight", k) - 0.5) * 1.4),
                boost=0.25 if unit_hash(self.seed, acct, "boost", k) < 0.15 else 0.0,
                caption=caption_for(self.seed, acct, k),
                shortcode=shortcode_for(self.seed, "media", acct, k),
                n_children=2 + int(unit_hash(self.seed, acct, "kids", k) * 4)
                if media_type == "CAROUSEL_ALBUM"
                else 0,
            )
        return self._media_cache[key]

    def child(self, parent: IgMedia, index: int) -> IgChild:
        video = unit_hash(self.seed, parent.id, "child", index) < 0.2
        return IgChild(
            self.ids.child(parent.account, parent.k, index),
            parent,
            index,
            "VIDEO" if video else "IMAGE",
        )

    def children(self, parent: IgMedia) -> list[IgChild]:
        return [self.child(parent, i) for i in range(parent.n_children)]

    def _story_interval(self) -> timedelta:
        return STORY_LIFETIME / self.n_stories

    def story_media(self, acct: int, k: int) -> IgMedia:
        """Story number ``k`` of account ``acct`` (k = 0 is the first of the epoch's last day)."""
        extra = self._extra_stories.get((acct, k))
        if extra is not None:
            return extra
        jitter = 0.2 + 0.6 * unit_hash(self.seed, acct, "story-at", k)
        created = self.epoch - STORY_LIFETIME + self._story_interval() * (k + jitter)
        quiet = unit_hash(self.seed, acct, "story-quiet", k) < 0.25
        return self._story(acct, k, created, quiet=quiet)

    def add_story(self, ig_user_id: str, created_at: datetime, *, quiet: bool = False) -> str:
        """Place one more story on the account, posted at ``created_at`` (aware), and return
        its id. It is listed and answers like the others while it lives (24 hours from
        ``created_at``); ``quiet`` makes it one seen by fewer than 5 accounts. For tests
        that need a story at a chosen time, such as one about to expire."""
        acct = self.account(ig_user_id).index
        k = EXTRA_STORY_BASE + sum(1 for a, _ in self._extra_stories if a == acct)
        story = self._story(acct, k, created_at.astimezone(UTC), quiet=quiet)
        self._extra_stories[(acct, k)] = story
        return story.id

    def _story(self, acct: int, k: int, created: datetime, *, quiet: bool) -> IgMedia:
        video = unit_hash(self.seed, acct, "story-kind", k) < 0.4
        return IgMedia(
            id=self.ids.story(acct, k),
            account=acct,
            k=k,
            created_at=created,
            media_type="VIDEO" if video else "IMAGE",
            product_type="STORY",
            pre_conversion=False,
            crossposted=unit_hash(self.seed, acct, "story-xpost", k) < 0.3,
            weight=math.exp((unit_hash(self.seed, acct, "story-weight", k) - 0.5) * 1.2),
            boost=0.0,
            caption=None,
            shortcode=shortcode_for(self.seed, "story", acct, k),
            quiet=quiet,
            has_link=unit_hash(self.seed, acct, "story-link", k) < 0.3,
        )

    def live_stories(self, acct: int, now: datetime) -> list[IgMedia]:
        """Stories created in ``(now - 24h, now]``, newest first."""
        found = [s for (a, _), s in self._extra_stories.items() if a == acct]
        if self.n_stories > 0:
            interval = self._story_interval()
            first = math.floor((now - self.epoch) / interval) - 1
            last = math.floor((now - self.epoch + STORY_LIFETIME) / interval) + 1
            found += [self.story_media(acct, k) for k in range(first, last + 1)]
        live = [s for s in found if now - STORY_LIFETIME < s.created_at <= now]
        return sorted(live, key=lambda s: s.created_at, reverse=True)

    def is_live(self, story: IgMedia, now: datetime) -> bool:
        return now - STORY_LIFETIME < story.created_at <= now

    def resolve(self, node_id: str, now: datetime) -> IgAccount | IgMedia | IgChild | None:
        """The account, media, story or carousel child ``node_id`` names, if it exists at
        ``now`` (expired stories included), else None."""
        if node_id in self._accounts:
            return self._accounts[node_id]
        parsed = self.ids.parse(node_id)
        if parsed is None:
            return None
        kind, acct, k, index = parsed
        if acct >= len(self._timelines) or all(a.index != acct for a in self._accounts.values()):
            return None
        if kind == "story":
            if self.n_stories <= 0 and (acct, k) not in self._extra_stories:
                return None
            story = self.story_media(acct, k)
            return story if story.created_at <= now else None
        if k < 0 or k >= self._timelines[acct].count_at(now):
            return None
        media = self.feed_media(acct, k)
        if kind == "media":
            return media
        return self.child(media, index) if index < media.n_children else None

    def owns(self, node_id: str) -> bool:
        """True for the accounts, media, carousel children and stories (also expired) of this
        world that exist at the clock's time."""
        return self.resolve(node_id, self._clock()) is not None

    def handle(self, req: SimRequest) -> dict[str, Any]:
        """Answer one Graph API call on an object this world owns (or raise SimError)."""
        return handle(self, req)

    # -- ground truth ---------------------------------------------------------------------

    def profile(self, ig_user_id: str) -> dict[str, str]:
        """``id``, ``username`` and ``name``: what a Page shows of its linked account."""
        a = self.account(ig_user_id)
        return {"id": a.id, "username": a.username, "name": a.name}

    def user_field(self, ig_user_id: str, name: str, now: datetime) -> int:
        """``followers_count``, ``follows_count`` or ``media_count`` at ``now``."""
        acct, at = self.account(ig_user_id), self.step(now)
        if name == "followers_count":
            return self.values.followers_count(acct, at, self.value_step)
        if name == "follows_count":
            return self.values.follows_count(acct, at)
        if name == "media_count":
            return self.media_count(ig_user_id, now)
        raise KeyError(name)

    def user_insight(
        self,
        ig_user_id: str,
        metric: str,
        *,
        now: datetime,
        period: str = "day",
        metric_type: str | None = None,
        breakdown: str | None = None,
        timeframe: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> Any:
        """The value ``/{ig-user}/insights`` reports for one valid metric (see
        :func:`collectord.simulator.instagram_insights.user_metric_value` for shapes)."""
        del period  # each metric has exactly one period
        return user_metric_value(
            self,
            self.account(ig_user_id),
            metric,
            now=now,
            metric_type=metric_type,
            breakdown=breakdown,
            timeframe=timeframe,
            since=since,
            until=until,
        )

    def media(self, ig_user_id: str, now: datetime) -> list[dict[str, Any]]:
        """The account's media at ``now``, newest first, with their counts."""
        acct = self.account(ig_user_id)
        out = []
        for k in reversed(range(self.media_count(ig_user_id, now))):
            m = self.feed_media(acct.index, k)
            vals = self.media_values(m, now)
            out.append(
                {
                    "id": m.id,
                    "media_type": m.media_type,
                    "media_product_type": m.product_type,
                    "timestamp": fb_time(m.created_at),
                    "created_at": m.created_at,
                    "like_count": vals["likes"],
                    "comments_count": vals["comments"],
                    "pre_conversion": m.pre_conversion,
                    "crossposted": m.crossposted,
                    "children": [c.id for c in self.children(m)],
                }
            )
        return out

    def media_values(self, m: IgMedia, now: datetime) -> dict[str, Value]:
        acct = self.account_at(m.account)
        followers = self.values.followers(acct, m.created_at)
        return media_values(self.seed, m, followers, self.step(now))

    def media_insight(
        self, media_id: str, metric: str, now: datetime, breakdown: str | None = None
    ) -> Value:
        """A media or story insight at ``now``; with ``breakdown``, the dict by action."""
        node = self.resolve(media_id, now)
        if not isinstance(node, IgMedia):
            raise SimError(100, f"no media {media_id}")
        vals = self.media_values(node, now)
        return vals[f"{metric}_by"] if breakdown else vals[metric]

    def stories(self, ig_user_id: str, now: datetime) -> list[dict[str, Any]]:
        """The live stories at ``now``, newest first."""
        acct = self.account(ig_user_id)
        return [
            {
                "id": s.id,
                "media_type": s.media_type,
                "media_product_type": "STORY",
                "timestamp": fb_time(s.created_at),
                "created_at": s.created_at,
                "expires_at": s.created_at + STORY_LIFETIME,
                "reach": self.media_values(s, now)["reach"],
            }
            for s in self.live_stories(acct.index, now)
        ]

    def story_insight(
        self, story_id: str, metric: str, now: datetime, breakdown: str | None = None
    ) -> Value:
        return self.media_insight(story_id, metric, now, breakdown)
