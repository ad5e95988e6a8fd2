"""Tokens and who is calling: token checks, ``appsecret_proof``, ``/debug_token``,
``/me``, ``/me/accounts``, ``/oauth/access_token`` and the login dialog
``/dialog/oauth`` (docs/meta-facts.md 10).

The login dialog (docs/meta-facts.md 10.7) has no person in front of it: it consents at
once (or, with ``world.consent = False``, refuses as a person pressing "Cancel" would) and
redirects to ``redirect_uri`` with a one-time ``code`` and the caller's ``state``. The code is
exchanged at ``/oauth/access_token`` (``client_id``, ``client_secret``, ``redirect_uri``,
``code``) for a short-lived user token with the scopes asked for; ``fb_exchange_token``
turns that into a long-lived one with the same scopes.

``appsecret_proof`` is checked whenever it is sent, in both forms: classic
``HMAC-SHA256(app_secret, token)`` and time-stamped ``HMAC-SHA256(app_secret,
token|appsecret_time)`` with ``appsecret_time`` within 5 minutes of the world's
``proof_clock``. A wrong or stale proof fails the call with code 100;
``World(require_proof=True)`` also fails calls without one.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from collectord.simulator.base import SimError, SimRequest, TokenInfo, require, split_csv
from collectord.simulator.cursors import decode_cursor, encode_cursor, parse_limit
from collectord.simulator.errors import (
    bad_proof,
    graph_error,
    invalid_parameter,
    nonexisting_field,
    proof_required,
    token_error,
    unknown_path,
    unparsable_token,
)
from collectord.simulator.fields import parse_fields
from collectord.simulator.page import page_node
from collectord.simulator.timewin import graph_url, request_path

if TYPE_CHECKING:
    from collectord.simulator.world import World

PROOF_WINDOW = 300  # seconds
LONG_LIVED_SECONDS = 5183944
SHORT_LIVED_SECONDS = 5400
DATA_ACCESS = 90 * 86400  # a user's data access lapses ~90 days after they used the app
DEFAULT_ACCOUNT_FIELDS = "access_token,category,name,id,tasks"


def resolve_token(world: World, raw: str, now: datetime) -> TokenInfo:
    """The :class:`TokenInfo` of ``raw``, or the 190 error Meta gives for it."""
    info = world.tokens.get(raw)
    if info is None:
        raise unparsable_token()
    if raw in world.revoked:
        raise token_error(world.revoked[raw])
    if info.expires_at and now.timestamp() >= info.expires_at:
        raise token_error(463)
    return info


def check_proof(world: World, raw: str, proof: str | None, proof_time: str | None) -> None:
    """Check ``appsecret_proof`` (and ``appsecret_time``) for token ``raw``."""
    if not proof:
        if world.require_proof:
            raise proof_required()
        return
    message = raw
    if proof_time:
        if not proof_time.isdigit():
            raise bad_proof()
        if abs(world.proof_clock().timestamp() - int(proof_time)) > PROOF_WINDOW:
            raise bad_proof()
        message = f"{raw}|{proof_time}"
    expected = hmac.new(world.app_secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, proof.strip().lower()):
        raise bad_proof()


# -- /debug_token ------------------------------------------------------------------------


def _token_state(world: World, info: TokenInfo, now: datetime) -> SimError | None:
    if info.token in world.revoked:
        return token_error(world.revoked[info.token])
    if info.expires_at and now.timestamp() >= info.expires_at:
        return token_error(463)
    return None


def debug_token(world: World, req: SimRequest) -> dict[str, Any]:
    """``GET /debug_token?input_token=...`` (shape of docs/meta-facts.md 10.4).

    A token Meta cannot read answers ``is_valid: false`` with an ``error`` and no scopes; an
    expired or revoked one keeps its fields, with ``is_valid: false`` and the 190 error it
    would get on use. A token whose data access lapsed stays valid (``data_access_expires_at``
    in the past).
    """
    raw = require(req.params, "input_token")
    info = world.tokens.get(raw)
    if info is None or info.kind == "IG_USER":  # Instagram-Login tokens are not Facebook's
        error = {"code": 190, "message": "Invalid OAuth access token - Cannot parse access token"}
        return {"data": {"error": error, "is_valid": False, "scopes": []}}
    data: dict[str, Any] = {
        "app_id": info.app_id,
        "type": info.kind,
        "application": world.app_name,
        "expires_at": info.expires_at,
        "is_valid": True,
        "scopes": list(info.scopes),
    }
    if info.kind != "APP":
        data["issued_at"] = world.issued_at if info.issued_at is None else info.issued_at
        lapses = info.data_access_expires_at
        data["data_access_expires_at"] = world.issued_at + DATA_ACCESS if lapses is None else lapses
        data["user_id"] = info.user_id
        data["granular_scopes"] = _granular_scopes(world, info)
    if info.page_id:
        data["profile_id"] = info.page_id
    problem = _token_state(world, info, req.now)
    if problem is not None:
        data["is_valid"] = False
        data["error"] = {
            "code": problem.code,
            "message": problem.message,
            "subcode": problem.subcode,
        }
    return {"data": data}


def _granular_scopes(world: World, info: TokenInfo) -> list[dict[str, Any]]:
    pages = [info.page_id] if info.page_id else list(world.pages)
    ig_ids = list(world.instagram.user_ids) if world.instagram else []
    targets = {
        "pages_show_list": pages,
        "pages_read_engagement": pages,
        "pages_read_user_content": pages,
        "instagram_basic": ig_ids,
        "instagram_manage_insights": ig_ids,
    }
    out: list[dict[str, Any]] = []
    for scope in info.scopes:
        entry: dict[str, Any] = {"scope": scope}
        if targets.get(scope):
            entry["target_ids"] = targets[scope]
        out.append(entry)
    return out


# -- /me and /me/accounts ----------------------------------------------------------------


def handle_me(world: World, req: SimRequest) -> dict[str, Any]:
    """``/me`` and ``/me/accounts`` for user and system-user tokens (Page tokens are
    routed to their Page before this)."""
    if req.token.kind == "APP":
        raise graph_error(
            2500, "An active access token must be used to query information about the current user."
        )
    user_id = req.token.user_id or ""
    if req.edge is None:
        fields = parse_fields(req.params.get("fields") or "id,name")
        name = "Demo System User" if req.token.kind == "SYSTEM_USER" else "Demo User"
        node = {"id": user_id, "name": name}
        for spec in fields:
            if spec.name not in node:
                raise nonexisting_field(spec.name, "User")
        return {spec.name: node[spec.name] for spec in fields}
    if req.edge != "accounts":
        raise unknown_path(req.edge)
    return accounts(world, req)


def accounts(world: World, req: SimRequest) -> dict[str, Any]:
    """``/me/accounts``: the Pages the user manages, with their Page tokens, cursor-paged
    (``limit`` at most 100); Pages a Business Manager owns are left out unless the token
    was granted ``business_management``."""
    params = req.params
    limit = parse_limit(params)
    specs = parse_fields(params.get("fields") or DEFAULT_ACCOUNT_FIELDS)
    offset = decode_cursor(params["after"]).get("o", 0) if params.get("after") else 0
    if params.get("before"):
        offset = max(0, decode_cursor(params["before"]).get("o", 0) - limit)
    pages = list(world.pages.values())
    if "business_management" not in req.token.scopes:  # docs/meta-facts.md 10.5
        pages = [p for p in pages if p.id not in world.business_pages]
    chunk = pages[offset : offset + limit]
    end = offset + len(chunk)
    data = [page_node(world, req, page, specs) for page in chunk]
    paging: dict[str, Any] = {
        "cursors": {"before": encode_cursor(o=offset), "after": encode_cursor(o=end)}
    }
    base = {k: v for k, v in params.items() if k not in ("after", "before")}
    if end < len(pages):
        paging["next"] = graph_url(req, request_path(req), {**base, "after": encode_cursor(o=end)})
    if offset > 0:
        paging["previous"] = graph_url(
            req, request_path(req), {**base, "before": encode_cursor(o=offset)}
        )
    return {"data": data, "paging": paging}


# -- /oauth/access_token -----------------------------------------------------------------


def oauth_dialog(world: World, params: dict[str, str]) -> str:
    """``GET /dialog/oauth``: where the browser is sent next (``redirect_uri`` with
    ``code`` and ``state``, or with ``error=access_denied`` when ``world.consent`` is off)."""
    if require(params, "client_id") != world.app_id:
        raise graph_error(101, "Error validating application. Invalid application ID.")
    redirect_uri = require(params, "redirect_uri")
    if urlsplit(redirect_uri).scheme not in ("http", "https"):
        raise invalid_parameter("(#100) redirect_uri must be an absolute http(s) URL")
    if params.get("response_type", "code") != "code":
        raise invalid_parameter("(#100) response_type must be code")
    answer: dict[str, str]
    if world.consent:
        answer = {"code": world.issue_code(redirect_uri, tuple(split_csv(params.get("scope"))))}
    else:
        answer = {
            "error": "access_denied",
            "error_reason": "user_denied",
            "error_description": "Permissions error",
        }
    if "state" in params:
        answer["state"] = params["state"]
    joiner = "&" if urlsplit(redirect_uri).query else "?"
    return f"{redirect_uri}{joiner}{urlencode(answer)}"


def _code_exchange(world: World, params: dict[str, str]) -> dict[str, Any]:
    """A login ``code`` for a short-lived user token (once; the same ``redirect_uri``)."""
    code = require(params, "code")
    granted = world.codes.pop(code, None)
    if granted is None or granted[0] != require(params, "redirect_uri"):
        raise SimError(100, "This authorization code has been used or is invalid.", subcode=36009)
    info = world.issue_user_token(SHORT_LIVED_SECONDS, scopes=granted[1], kind="SHORT-LIVED")
    return {"access_token": info.token, "token_type": "bearer", "expires_in": SHORT_LIVED_SECONDS}


def oauth_access_token(world: World, params: dict[str, str], now: datetime) -> dict[str, Any]:
    """Token exchange (``fb_exchange_token``), app tokens (``client_credentials``) and
    login codes (``code`` with ``redirect_uri``)."""
    grant = params.get("grant_type") or ("" if "code" in params else require(params, "grant_type"))
    if require(params, "client_id") != world.app_id:
        raise graph_error(101, "Error validating application. Invalid application ID.")
    if not hmac.compare_digest(require(params, "client_secret"), world.app_secret):
        raise SimError(1, "Error validating client secret.", http_status=400)
    if "code" in params and "grant_type" not in params:
        return _code_exchange(world, params)
    if grant == "client_credentials":
        return {"access_token": world.app_token, "token_type": "bearer"}
    if grant != "fb_exchange_token":
        raise invalid_parameter(
            "(#100) grant_type must be one of the following values: fb_exchange_token, "
            "client_credentials"
        )
    short = resolve_token(world, require(params, "fb_exchange_token"), now)
    if short.kind != "USER":
        raise invalid_parameter("(#100) fb_exchange_token must be a user access token")
    info = world.issue_user_token(LONG_LIVED_SECONDS, scopes=short.scopes)
    expires_in = int(info.expires_at - now.timestamp())
    return {"access_token": info.token, "token_type": "bearer", "expires_in": expires_in}
