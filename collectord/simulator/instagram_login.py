"""The Instagram API with Instagram Login, as the simulator serves it (docs/meta-facts.md 10.9).

On Meta this API lives on its own host, ``graph.instagram.com``; the simulator serves it
beside the Facebook Graph API under the path prefix :data:`HOST_PREFIX`
(``{sim.url}/graph.instagram.com/v26.0/me`` stands for
``https://graph.instagram.com/v26.0/me``). There:

- only Instagram-Login tokens (kind ``IG_USER``) are accepted; a Facebook token answers
  190 "Cannot parse access token", and an Instagram-Login token does the same on the
  Facebook paths;
- ``me`` is the token's Instagram account; Pages, apps and ``debug_token`` are not there;
- the media metrics about Facebook (:data:`FACEBOOK_ONLY_METRICS`) are invalid metrics;
- there are no batch requests (a ``POST`` is refused as Meta refuses unknown methods);
- ``GET /refresh_access_token?grant_type=ig_refresh_token`` renews a long-lived token that
  is at least 24 hours old and not expired, for another 60 days; ``GET
  /access_token?grant_type=ig_exchange_token&client_secret=...`` turns a short-lived one
  (1 hour) into a long-lived one.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Any

from collectord.simulator.auth import resolve_token
from collectord.simulator.base import SimError, TokenInfo, require
from collectord.simulator.errors import invalid_parameter, unparsable_token

if TYPE_CHECKING:
    from collectord.simulator.world import World

#: The path prefix under which the simulator serves graph.instagram.com.
HOST_PREFIX = "graph.instagram.com"
#: Lifetimes of Instagram-Login tokens, in seconds.
IG_SHORT_LIVED_SECONDS = 3600
IG_LONG_LIVED_SECONDS = 60 * 86400
#: A long-lived token can be refreshed once it is this old.
IG_REFRESH_MIN_AGE = 86400
#: Media metrics about Facebook that graph.instagram.com does not serve.
FACEBOOK_ONLY_METRICS = frozenset(
    {"facebook_views", "crossposted_views", "total_likes", "total_comments", "total_views"}
)
#: Nodes of the Instagram host that take their token as a parameter, without the usual
#: authentication step.
TOKEN_ENDPOINTS = ("refresh_access_token", "access_token")


def check_host(token: TokenInfo, instagram: bool) -> None:
    """Refuse a Facebook token on the Instagram host and an Instagram-Login token on the
    Facebook one, as Meta does (the other host cannot read it)."""
    if instagram != (token.kind == "IG_USER"):
        raise unparsable_token()


def token_endpoint(world: World, node: str, params: dict[str, str], now: datetime) -> Any:
    """``refresh_access_token`` or ``access_token`` on the Instagram host."""
    if node == "refresh_access_token":
        return refresh(world, params, now)
    return exchange(world, params, now)


def _resolved(world: World, raw: str, now: datetime) -> TokenInfo:
    info = resolve_token(world, raw, now)
    if info.kind != "IG_USER":
        raise unparsable_token()
    return info


def refresh(world: World, params: dict[str, str], now: datetime) -> dict[str, Any]:
    """``GET /refresh_access_token?grant_type=ig_refresh_token&access_token=...``."""
    if require(params, "grant_type") != "ig_refresh_token":
        raise invalid_parameter("(#100) grant_type must be ig_refresh_token")
    info = _resolved(world, require(params, "access_token"), now)
    if not info.long_lived:
        raise invalid_parameter("(#100) Only long-lived Instagram User tokens can be refreshed")
    issued = info.issued_at if info.issued_at is not None else world.issued_at
    if now.timestamp() - issued < IG_REFRESH_MIN_AGE:
        raise SimError(
            100,
            "(#100) The access token was issued less than 24 hours ago and cannot be refreshed yet",
        )
    new = world.issue_ig_token(IG_LONG_LIVED_SECONDS, long_lived=True)
    return {"access_token": new.token, "token_type": "bearer", "expires_in": IG_LONG_LIVED_SECONDS}


def exchange(world: World, params: dict[str, str], now: datetime) -> dict[str, Any]:
    """``GET /access_token?grant_type=ig_exchange_token&client_secret=...&access_token=...``."""
    if require(params, "grant_type") != "ig_exchange_token":
        raise invalid_parameter("(#100) grant_type must be ig_exchange_token")
    if not hmac.compare_digest(require(params, "client_secret"), world.app_secret):
        raise SimError(1, "Error validating client secret.", http_status=400)
    info = _resolved(world, require(params, "access_token"), now)
    if info.long_lived:
        raise invalid_parameter("(#100) access_token must be a short-lived Instagram User token")
    new = world.issue_ig_token(IG_LONG_LIVED_SECONDS, long_lived=True)
    return {"access_token": new.token, "token_type": "bearer", "expires_in": IG_LONG_LIVED_SECONDS}
