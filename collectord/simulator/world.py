"""The simulated world: Pages and their posts, the app, tokens, the clock, Instagram.

A :class:`World` is deterministic for a given ``seed`` and clock. Its public methods are
the ground truth tests compare the simulator's answers (and collectord's metrics) with.

Demo identities (all obviously fake):

- Pages ``105000000000001``, ``105000000000002``, ... (``page_count`` of them); Page
  tokens ``DEMO-PAGE-TOKEN-not-a-real-token`` (first Page), ``DEMO-PAGE-TOKEN-2-...``.
- The user ``100000000000001`` with the long-lived token
  ``DEMO-USER-TOKEN-not-a-real-token`` (manages every Page), a short-lived token
  ``DEMO-SHORT-LIVED-USER-TOKEN-not-a-real-token`` (for the ``oauth/access_token``
  exchange), and an already expired ``DEMO-EXPIRED-USER-TOKEN-not-a-real-token``.
- A system user token ``DEMO-SYSTEM-USER-TOKEN-not-a-real-token`` (every Page).
- The app ``900000000000001`` with secret ``DEMO-APP-SECRET-not-a-real-secret``; its app
  token is ``900000000000001|DEMO-APP-SECRET-not-a-real-secret``.
- The Instagram professional account linked to the first Page: the first of
  ``world.instagram.user_ids`` (the Instagram world is asked to use
  :data:`DEFAULT_IG_USER_ID`, ``17841400000000001``). Other Pages have none, unless
  ``linked_accounts`` asks for more: then the second to ``linked_accounts``-th Pages each
  have one too, ``17841400000000102``, ``...103``, ...

For discovery (docs/meta-facts.md 10.5), Pages can be added and removed while the world
serves (:meth:`World.add_page`, :meth:`World.remove_page`), and a Page can be owned by a
Business Manager (``business_pages``): ``/me/accounts`` leaves it out unless the token was
granted ``business_management``, but it can be read by id and ``debug_token`` names it in
``granular_scopes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from collectord.simulator.app_metrics import app_field_value, point_value
from collectord.simulator.base import TokenInfo, TokenKind, quantize, unit_hash
from collectord.simulator.page import page_field_value
from collectord.simulator.page_metrics import page_value
from collectord.simulator.page_metrics import split_value as split_page_value
from collectord.simulator.post_metrics import post_value
from collectord.simulator.world_view import PageInfo, Post

DEFAULT_IG_USER_ID = "17841400000000001"
FIRST_PAGE_ID = 105000000000001
APP_ID = "900000000000001"
APP_SECRET = "DEMO-APP-SECRET-not-a-real-secret"
APP_NAME = "Collectord Demo App"
USER_ID = "100000000000001"
SYSTEM_USER_ID = "100000000000777"
USER_TOKEN = "DEMO-USER-TOKEN-not-a-real-token"
SHORT_USER_TOKEN = "DEMO-SHORT-LIVED-USER-TOKEN-not-a-real-token"
EXPIRED_USER_TOKEN = "DEMO-EXPIRED-USER-TOKEN-not-a-real-token"
SYSTEM_USER_TOKEN = "DEMO-SYSTEM-USER-TOKEN-not-a-real-token"
#: Instagram-Login tokens of the demo account (graph.instagram.com): long-lived (issued a
#: day before the epoch, so refreshable at once) and short-lived.
IG_LOGIN_TOKEN = "DEMO-IG-LOGIN-TOKEN-not-a-real-token"
IG_SHORT_LOGIN_TOKEN = "DEMO-IG-SHORT-LIVED-LOGIN-TOKEN-not-a-real-token"
IG_SCOPES = ("instagram_business_basic", "instagram_business_manage_insights")
SCOPES = (
    "pages_show_list",
    "pages_read_engagement",
    "pages_read_user_content",
    "read_insights",
    "instagram_basic",
    "instagram_manage_insights",
)
_PAGE_NAMES = (
    ("Demo Coffee Roasters", "Coffee shop"),
    ("Demo Bike Repair", "Bicycle repair service"),
    ("Demo Book Club", "Community organization"),
    ("Demo Bakery", "Bakery"),
)
_MESSAGES = (
    "Fresh batch just out of the roaster.",
    "Our weekend hours are changing, details inside.",
    "Meet the team behind the counter.",
    "Behind the scenes: how we pick our beans.",
    "Thank you for 10 years with us!",
    "New seasonal menu starts Monday.",
)
_STATUS_TYPES = ("added_photos", "mobile_status_update", "added_video", "shared_story")


def _real_clock() -> datetime:
    return datetime.now(UTC)


class World:
    """Everything the simulator knows; deterministic for a given ``seed`` and ``clock``.

    ``clock`` returns an aware UTC datetime (default: real time). Values are stable
    within ``value_step`` seconds. ``require_proof`` demands ``appsecret_proof`` on
    every call; ``call_budget`` calls per ``usage_window`` seconds and per scope (app,
    user, Page, Instagram account) make the usage headers reach 100%;
    ``app_insights_retired`` makes ``app_insights`` answer as the retired edge does;
    ``empty_page`` serves the second page of ``/posts`` empty (with a ``next``).
    ``proof_clock`` is the clock ``appsecret_time`` is checked against (default: real
    time, the clock clients compute it from).
    """

    def __init__(
        self,
        *,
        seed: int = 1,
        clock: Callable[[], datetime] | None = None,
        n_posts: int = 30,
        n_media: int = 40,
        n_stories: int = 4,
        page_count: int = 1,
        value_step: float = 60.0,
        require_proof: bool = False,
        call_budget: int = 100_000,
        usage_window: float = 3600.0,
        app_insights_retired: bool = False,
        empty_page: bool = True,
        proof_clock: Callable[[], datetime] | None = None,
        linked_accounts: int = 1,
    ) -> None:
        if page_count < 1:
            raise ValueError("page_count must be at least 1")
        self.seed = seed
        self.clock = clock or _real_clock
        self.proof_clock = proof_clock or _real_clock
        self.value_step = value_step
        self.require_proof = require_proof
        self.call_budget = call_budget
        self.usage_window = usage_window
        self.app_insights_retired = app_insights_retired
        self.empty_page = empty_page
        self.epoch = quantize(self.now(), 3600)
        self.growth_epoch = self.epoch - timedelta(days=400)
        self.app_id = APP_ID
        self.app_secret = APP_SECRET
        self.app_name = APP_NAME
        self.user_id = USER_ID
        self.instagram: Any = self._make_instagram(n_media, n_stories)
        ig_id = self.instagram.user_ids[0] if self.instagram else None
        self.pages = self._make_pages(page_count, ig_id)
        self.n_posts = n_posts
        self._posts = {pid: self._make_posts(pid, n_posts) for pid in self.pages}
        #: Pages owned by a Business Manager (left out of ``/me/accounts`` without
        #: ``business_management``).
        self.business_pages: set[str] = set()
        self._page_serial = page_count
        self._ig_serial = 1  # accounts linked so far (the first Page's included)
        for page_id in list(self.pages)[1:linked_accounts]:
            self._link_account(page_id)
        self.deleted_posts: set[str] = set()
        self.tokens: dict[str, TokenInfo] = {}
        self.revoked: dict[str, int] = {}
        #: Whether the login dialog consents (False: the person pressed "Cancel").
        self.consent = True
        #: Login codes not yet exchanged: code -> (redirect_uri, scopes).
        self.codes: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._issued = 0
        self._make_tokens()

    # -- construction ------------------------------------------------------------------

    def _make_instagram(self, n_media: int, n_stories: int) -> Any:
        try:
            from collectord.simulator.instagram_world import InstagramWorld
        except ImportError:
            return None
        return InstagramWorld(
            seed=self.seed,
            epoch=self.epoch,
            page_id=str(FIRST_PAGE_ID),
            n_media=n_media,
            n_stories=n_stories,
            clock=self.clock,
            value_step=self.value_step,
            empty_pages=self.empty_page,
        )

    def _make_pages(self, page_count: int, ig_user_id: str | None) -> dict[str, PageInfo]:
        pages = {}
        for i in range(page_count):
            name, category = _PAGE_NAMES[i % len(_PAGE_NAMES)]
            name = name if i < len(_PAGE_NAMES) else f"{name} {i + 1}"
            page_id = str(FIRST_PAGE_ID + i)
            suffix = "" if i == 0 else f"{i + 1}-"
            token = f"DEMO-PAGE-TOKEN-{suffix}not-a-real-token"
            username = "demo" + "".join(name.split()[1:]).lower()
            linked = ig_user_id if i == 0 else None
            pages[page_id] = PageInfo(page_id, name, category, username, token, linked)
        return pages

    def _make_posts(self, page_id: str, n_posts: int) -> list[Post]:
        posts = []
        created = self.epoch - timedelta(hours=2)
        for number in range(n_posts, 0, -1):
            h = unit_hash(self.seed, page_id, number)
            created -= timedelta(seconds=round((4 + 40 * h) * 3600))
            msg = None if number % 7 == 0 else _MESSAGES[number % len(_MESSAGES)]
            kind = _STATUS_TYPES[int(unit_hash(self.seed, page_id, number, "type") * 4)]
            post_id = f"{page_id}_{1000000000 + number}"
            posts.append(Post(post_id, page_id, 1000000000 + number, created, msg, kind))
        return posts  # newest first

    def _make_tokens(self) -> None:
        self.issued_at = int((self.epoch - timedelta(days=1)).timestamp())
        long_lived = int((self.epoch + timedelta(days=60)).timestamp())
        short = int((self.epoch + timedelta(hours=2)).timestamp())
        self.add_token(self._user_token(USER_TOKEN, expires_at=long_lived))
        self.add_token(self._user_token(SHORT_USER_TOKEN, expires_at=short))
        self.add_token(self._user_token(EXPIRED_USER_TOKEN, expires_at=self.issued_at))
        for page in self.pages.values():
            self.add_token(self._user_token(page.token, kind="PAGE", page_id=page.id))
        self.add_token(
            TokenInfo(SYSTEM_USER_TOKEN, "SYSTEM_USER", self.app_id, SYSTEM_USER_ID, scopes=SCOPES)
        )
        self.add_token(TokenInfo(self.app_token, "APP", self.app_id))
        ig_long = int((self.epoch + timedelta(days=59)).timestamp())
        self.add_token(self._ig_token(IG_LOGIN_TOKEN, ig_long, self.issued_at, long_lived=True))
        self.add_token(
            self._ig_token(IG_SHORT_LOGIN_TOKEN, short, self.issued_at, long_lived=False)
        )

    def _ig_token(self, token: str, expires: int, issued: int, *, long_lived: bool) -> TokenInfo:
        ig_id = self.instagram.user_ids[0] if self.instagram else DEFAULT_IG_USER_ID
        return TokenInfo(
            token,
            "IG_USER",
            self.app_id,
            ig_id,
            scopes=IG_SCOPES,
            expires_at=expires,
            issued_at=issued,
            long_lived=long_lived,
        )

    def _user_token(self, token: str, kind: TokenKind = "USER", **kw: Any) -> TokenInfo:
        return TokenInfo(token, kind, self.app_id, self.user_id, scopes=SCOPES, **kw)

    # -- clock -------------------------------------------------------------------------

    def now(self) -> datetime:
        """The world clock (aware UTC)."""
        return self.clock().astimezone(UTC)

    def now_q(self) -> datetime:
        """The world clock rounded down to ``value_step``: values are stable within it."""
        return quantize(self.now(), self.value_step)

    # -- tokens ------------------------------------------------------------------------

    @property
    def app_token(self) -> str:
        return f"{self.app_id}|{self.app_secret}"

    def add_token(self, info: TokenInfo) -> None:
        """Make ``info.token`` known (tests add tokens with special scopes or expiry)."""
        self.tokens[info.token] = info

    def revoke_token(self, token: str, subcode: int = 460) -> None:
        """From now on ``token`` answers 190 with ``subcode`` (460 password changed, 492
        lost Page role, 458 app removed, ...)."""
        self.revoked[token] = subcode

    def issue_user_token(
        self, seconds: int, *, scopes: tuple[str, ...] = SCOPES, kind: str = "LONG-LIVED"
    ) -> TokenInfo:
        """A new user token valid for ``seconds`` with ``scopes`` (the result of a login
        code or a token exchange); ``kind`` names it (``SHORT-LIVED``, ``LONG-LIVED``)."""
        self._issued += 1
        expires = int(self.now().timestamp()) + seconds
        token = f"DEMO-{kind}-USER-TOKEN-{self._issued}-not-a-real-token"
        info = TokenInfo(
            token, "USER", self.app_id, self.user_id, scopes=scopes, expires_at=expires
        )
        self.add_token(info)
        return info

    def issue_ig_token(self, seconds: int, *, long_lived: bool = True) -> TokenInfo:
        """A new Instagram-Login token of the demo account, issued now, valid ``seconds``
        (the result of an ``ig_refresh_token`` or ``ig_exchange_token`` call)."""
        self._issued += 1
        now = int(self.now().timestamp())
        kind = "LONG-LIVED" if long_lived else "SHORT-LIVED"
        token = f"DEMO-IG-{kind}-LOGIN-TOKEN-{self._issued}-not-a-real-token"
        info = self._ig_token(token, now + seconds, now, long_lived=long_lived)
        self.add_token(info)
        return info

    def issue_code(self, redirect_uri: str, scopes: tuple[str, ...]) -> str:
        """A one-time login code for ``redirect_uri`` granting ``scopes``."""
        self._issued += 1
        code = f"DEMO-LOGIN-CODE-{self._issued}-{unit_hash(self.seed, 'code', self._issued):.12f}"
        self.codes[code] = (redirect_uri, scopes)
        return code

    def expire_token(self, token: str) -> None:
        """Make ``token`` expire now (it answers 190/463 from then on)."""
        info = self.tokens[token]
        self.tokens[token] = replace(info, expires_at=int(self.now().timestamp()))

    # -- Pages coming and going ---------------------------------------------------------

    def _link_account(self, page_id: str) -> str | None:
        """Give the Page a new Instagram professional account of its own; its id."""
        if self.instagram is None:
            return None
        page = self.pages[page_id]
        self._ig_serial += 1
        ig_id = str(int(DEFAULT_IG_USER_ID) + 99 + self._ig_serial)
        self.instagram.add_account(ig_id, f"{page.username}.ig", page.name)
        self.pages[page_id] = replace(page, ig_user_id=ig_id)
        return ig_id

    def add_page(self, *, instagram: bool = False, business: bool = False) -> PageInfo:
        """A new Page the users manage (with its Page token and posts); ``instagram``
        links a new professional account to it, ``business`` makes a Business Manager
        own it."""
        i = self._page_serial
        self._page_serial += 1
        name, category = _PAGE_NAMES[i % len(_PAGE_NAMES)]
        name = f"{name} {i + 1}"
        page_id = str(FIRST_PAGE_ID + i)
        username = "demo" + "".join(name.split()[1:]).lower()
        token = f"DEMO-PAGE-TOKEN-{i + 1}-not-a-real-token"
        self.pages[page_id] = PageInfo(page_id, name, category, username, token, None)
        self._posts[page_id] = self._make_posts(page_id, self.n_posts)
        self.add_token(self._user_token(token, kind="PAGE", page_id=page_id))
        if instagram:
            self._link_account(page_id)
        if business:
            self.business_pages.add(page_id)
        return self.pages[page_id]

    def remove_page(self, page_id: str) -> None:
        """The Page is gone (deleted, or the users lost their role): it leaves the lists
        and answers as an unknown object, and so does its Instagram account."""
        page = self.pages.pop(page_id)
        self._posts.pop(page_id, None)
        self.business_pages.discard(page_id)
        if page.ig_user_id and self.instagram is not None and page_id != str(FIRST_PAGE_ID):
            self.instagram.remove_account(page.ig_user_id)

    # -- objects -----------------------------------------------------------------------

    def posts(self, page_id: str) -> list[Post]:
        """The Page's posts, newest first, without deleted ones."""
        return [p for p in self._posts.get(page_id, []) if p.id not in self.deleted_posts]

    def post(self, post_id: str) -> Post | None:
        """The post with ``post_id``, or ``None`` when unknown or deleted."""
        page_id = post_id.partition("_")[0]
        return next((p for p in self.posts(page_id) if p.id == post_id), None)

    def delete_post(self, post_id: str) -> None:
        """Delete a post: it leaves the lists and answers 100/33 from then on."""
        self.deleted_posts.add(post_id)

    # -- ground truth ------------------------------------------------------------------

    def page_field(self, page_id: str, name: str) -> Any:
        """A Page node field as the simulator answers it now (``followers_count``, ...)."""
        return page_field_value(self, self.pages[page_id], name)

    def page_insight(
        self,
        page_id: str,
        metric: str,
        period: str,
        end_time: datetime,
        *,
        breakdown: str | None = None,
    ) -> Any:
        """A Page insight value at ``end_time`` (int, float or dict; ``None`` = no data).

        With ``breakdown`` (``is_from_ads``/``is_from_followers``) a dict ``{"0": .., "1": ..}``.
        """
        value = page_value(self, page_id, metric, period, end_time)
        if breakdown and isinstance(value, int):
            return split_page_value(self, page_id, metric, breakdown, value, end_time)
        return value

    def post_insight(
        self, post_id: str, metric: str, period: str = "lifetime", end_time: datetime | None = None
    ) -> Any:
        """A post insight value (lifetime by default; ``None`` = left out)."""
        post = self.post(post_id)
        if post is None:
            raise KeyError(post_id)
        return post_value(self, post, metric, period, end_time)

    def app_field(self, app_id: str, name: str) -> Any:
        """An app node field as the simulator answers it now."""
        return app_field_value(self, name)

    def app_insight(self, app_id: str, metric: str, period: str, time: datetime, **kw: Any) -> Any:
        """The value of one app insights data point (number); keyword arguments:
        ``breakdowns`` (dict of breakdown → value), ``aggregate_by``, ``until`` (for
        ``range``). See :func:`collectord.simulator.app_insights.point_value`."""
        return point_value(self, metric, period, time, **kw)

    # -- demo --------------------------------------------------------------------------

    @property
    def first_page(self) -> PageInfo:
        return next(iter(self.pages.values()))

    def demo_ids(self) -> dict[str, str]:
        """The ids ``--demo`` points sources at."""
        ig = self.first_page.ig_user_id or DEFAULT_IG_USER_ID
        return {"page_id": self.first_page.id, "ig_user_id": ig, "app_id": self.app_id}

    @property
    def ig_login_token(self) -> str:
        """The long-lived Instagram-Login token of the demo account."""
        return IG_LOGIN_TOKEN

    def known_ids(self, kind: str) -> set[str]:
        """The ids the simulator knows, for ``kind`` in page_id|ig_user_id|app_id."""
        if kind == "page_id":
            return set(self.pages)
        if kind == "ig_user_id":
            return set(self.instagram.user_ids) if self.instagram else set()
        if kind == "app_id":
            return {self.app_id}
        raise ValueError(f"unknown id kind {kind!r}")

    def demo_token(self, plugin_name: str) -> str:
        """The token ``--demo`` gives a source of ``plugin_name``: a Page token for
        ``facebook_page``/``facebook_post``, the app token for ``facebook_app``, else
        (Instagram and third-party plugins) the user token."""
        if plugin_name in ("facebook_page", "facebook_post"):
            return self.first_page.token
        if plugin_name == "facebook_app":
            return self.app_token
        return USER_TOKEN
