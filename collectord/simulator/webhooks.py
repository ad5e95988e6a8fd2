"""Meta's side of the ``story_insights`` webhook (docs/meta-facts.md 6.8), for tests.

:func:`story_insights_delivery` builds the delivery Meta sends about an hour after a story
expires, with the simulator's own values of the story at its expiry, under the webhook's
names (``taps_forward``... for the ``navigation`` breakdown rows, -1 for a count below 5);
:func:`signed` makes the body and the ``X-Hub-Signature-256`` header with the app secret;
:func:`post_delivery` sends it and :func:`verification` makes the handshake call the App
Dashboard makes when the callback URL is saved. The signature is computed here on its own,
not with collectord's code, so that a test checks one against the other.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta
from typing import Any, Final

import aiohttp

from collectord.simulator.instagram_world import STORY_LIFETIME
from collectord.simulator.world import World

#: Meta sends the delivery about this long after the story expired.
DELIVERY_DELAY: Final = timedelta(hours=1)
SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
#: The challenge of Meta's documented example.
CHALLENGE: Final = "1158201444"
#: Webhook keys and the ``navigation`` breakdown rows they count.
NAVIGATION_KEYS: Final = {
    "taps_forward": "tap_forward",
    "taps_back": "tap_back",
    "exits": "tap_exit",
}


def _floored(value: Any) -> int:
    """Meta's webhook sends a count below 5 as -1."""
    return int(value) if int(value) >= 5 else -1


def story_insights_value(world: World, story_id: str, at: datetime | None = None) -> dict[str, Any]:
    """The ``value`` of a ``story_insights`` change: the story's insights at ``at`` (by
    default when it expires) under the webhook's names."""
    story = world.instagram.resolve(story_id, world.now())
    if story is None or getattr(story, "product_type", "") != "STORY":
        raise KeyError(f"no story {story_id}")
    when = at if at is not None else story.created_at + STORY_LIFETIME
    values = world.instagram.media_values(story, when)
    out: dict[str, Any] = {"media_id": story_id, "impressions": _floored(values["views"])}
    out["reach"] = _floored(values["reach"])
    for key, row in NAVIGATION_KEYS.items():
        out[key] = _floored(values["navigation_by"][row])
    out["replies"] = _floored(values["replies"])
    return out


def story_insights_delivery(
    world: World, story_id: str, at: datetime | None = None
) -> dict[str, Any]:
    """The whole delivery of one story's final insights (see :func:`story_insights_value`)."""
    value = story_insights_value(world, story_id, at)
    story = world.instagram.resolve(story_id, world.now())
    account = world.instagram.account_at(story.account)
    sent = story.created_at + STORY_LIFETIME + DELIVERY_DELAY
    change = {"field": "story_insights", "value": value}
    entry = {"id": account.id, "time": int(sent.timestamp()), "changes": [change]}
    return {"object": "instagram", "entry": [entry]}


def signed(payload: Any, secret: str) -> tuple[bytes, dict[str, str]]:
    """The body Meta posts (JSON, non-ASCII as ``\\u`` escapes) and its headers, signed
    with ``secret`` (the app secret; another one makes a bad signature)."""
    body = json.dumps(payload, ensure_ascii=True).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: f"sha256={digest}"}


async def post_delivery(
    url: str, body: bytes, headers: dict[str, str], *, ssl: Any = None
) -> tuple[int, str]:
    """POST a delivery to ``url``; the status and body of the answer."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers, ssl=ssl) as resp,
    ):
        return resp.status, await resp.text()


async def verification(
    url: str, verify_token: str, challenge: str = CHALLENGE, *, ssl: Any = None
) -> tuple[int, str]:
    """The App Dashboard's verification request; the status and body of the answer."""
    params = {"hub.mode": "subscribe", "hub.verify_token": verify_token, "hub.challenge": challenge}
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, params=params, ssl=ssl) as resp,
    ):
        return resp.status, await resp.text()


async def send_story_insights(
    world: World,
    url: str,
    story_id: str,
    *,
    secret: str | None = None,
    at: datetime | None = None,
) -> tuple[dict[str, Any], int, str]:
    """Build, sign (with the world's app secret unless ``secret`` is given) and POST one
    story's delivery; returns the delivery and the answer's status and body."""
    payload = story_insights_delivery(world, story_id, at)
    body, headers = signed(payload, world.app_secret if secret is None else secret)
    status, text = await post_delivery(url, body, headers)
    return payload, status, text
