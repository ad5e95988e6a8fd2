"""One Graph call, from path and parameters to status, JSON body and headers.

Used for plain HTTP requests and for every element of a batch. The steps: version
prefix (``v20.0``..``v27.0``; an expired ``vN.x`` below 20 is served by ``v20.0``, as
Meta serves calls to expired versions; unversioned calls get ``v26.0``; anything else
is code 2500), access token (``access_token`` parameter or ``Authorization: OAuth|Bearer``
header), ``appsecret_proof``, token faults, routing by node id, rate-limit metering
(usage headers, throttling), invalid-metric faults, then the node kind's handler.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collectord.simulator.access import require_instagram_token
from collectord.simulator.app_insights import handle_app
from collectord.simulator.auth import (
    check_proof,
    debug_token,
    handle_me,
    oauth_access_token,
    resolve_token,
)
from collectord.simulator.base import (
    SimError,
    SimRequest,
    TokenInfo,
    invalid_metric_error,
    object_missing_error,
    split_csv,
)
from collectord.simulator.errors import (
    BUC_TYPE_OF_CODE,
    invalid_parameter,
    missing_token,
    throttled,
    token_error,
    unknown_path,
)
from collectord.simulator.faults import Faults
from collectord.simulator.fields import metric_names_in
from collectord.simulator.instagram_login import (
    FACEBOOK_ONLY_METRICS,
    TOKEN_ENDPOINTS,
    check_host,
    token_endpoint,
)
from collectord.simulator.page import handle_page
from collectord.simulator.posts import handle_post
from collectord.simulator.usage import Scope, UsageTracker
from collectord.simulator.world import World

VERSIONS = tuple(f"v{n}.0" for n in range(20, 28))
DEFAULT_VERSION = "v26.0"
_VERSION = re.compile(r"^v(\d+)\.(\d+)$")
_POST_ID = re.compile(r"^\d+_\d+$")
#: Throttle codes of the whole app (docs/meta-facts.md 7.3).
APP_CODES = (4, 341)


@dataclass
class CallResult:
    """The answer to one Graph call."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def parse_version(parts: list[str]) -> tuple[str, list[str]]:
    """The version that serves the call and the path components after it."""
    if not parts or not re.match(r"^v\d", parts[0]):
        return DEFAULT_VERSION, parts
    match = _VERSION.match(parts[0])
    if match and parts[0] in VERSIONS:
        return parts[0], parts[1:]
    if match and 2 <= int(match.group(1)) < 20:
        return VERSIONS[0], parts[1:]
    raise unknown_path(parts[0])


def bearer(header: str | None) -> str | None:
    """The token of an ``Authorization: OAuth <t>`` or ``Bearer <t>`` header."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    return value.strip() if scheme.lower() in ("oauth", "bearer") and value.strip() else None


def platform_scope(token: TokenInfo, *, pages_endpoint: bool = False) -> Scope:
    if token.kind == "APP":
        return Scope("app", token.app_id)
    return Scope("user", token.user_id or token.app_id, pages_endpoint)


def page_scope(token: TokenInfo, page_id: str) -> Scope:
    if token.kind in ("PAGE", "SYSTEM_USER"):
        return Scope("pages", page_id)
    return platform_scope(token, pages_endpoint=True)


def requested_metrics(req: SimRequest) -> list[str]:
    """Every metric a call names (parameters, path, field expansions)."""
    names = split_csv(req.params.get("metric")) + split_csv(req.params.get("metric_key"))
    if req.edge in ("insights", "app_insights") and req.rest:
        names.append(req.rest[0])
    return names + metric_names_in(req.params.get("fields"))


class Router:
    """Answers Graph calls from a :class:`World`, with :class:`Faults` applied."""

    def __init__(self, world: World, faults: Faults) -> None:
        self.world = world
        self.faults = faults
        self.usage = UsageTracker(world.call_budget, world.usage_window)
        self._serial = itertools.count(1)
        #: Blocks set by ``throttle(hold=True)`` faults: scope -> (until, code, fault); the
        #: fault's options carry ``since``, when the block began.
        self.blocks: dict[Scope, tuple[float, int, dict[str, Any]]] = {}
        #: Calls that reached a blocked budget after it was blocked (the other elements
        #: of the batch that got the throttle are answered at the same instant and are not
        #: counted): a client keeping Meta's rules makes none.
        self.calls_during_block = 0
        self._instagram = False

    def _trace_ids(self) -> tuple[str, str]:
        digest = hashlib.blake2b(f"{self.world.seed}|{next(self._serial)}".encode()).digest()
        trace = "A" + base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")[:22]
        debug = base64.b64encode(digest[16:64]).decode()
        return trace, debug

    def call(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        *,
        base_url: str,
        auth_header: str | None = None,
        instagram: bool = False,
    ) -> CallResult:
        """Answer one call; never raises for a Graph error (it becomes the envelope).
        ``instagram``: the call came to the Instagram host (graph.instagram.com)."""
        trace, debug = self._trace_ids()
        headers = {
            "x-fb-trace-id": trace,
            "X-FB-Debug": debug,
            "x-fb-rev": "1029384756",
            "facebook-api-version": DEFAULT_VERSION,
        }
        try:
            version, parts = parse_version([p for p in path.split("/") if p])
            headers["facebook-api-version"] = version
            self._instagram = instagram
            body = self._dispatch(
                method.upper(), version, parts, dict(params), base_url, auth_header, headers
            )
            return CallResult(200, body, headers)
        except SimError as error:
            return CallResult(error.http_status, error.envelope(trace), headers)

    def _dispatch(
        self,
        method: str,
        version: str,
        parts: list[str],
        params: dict[str, str],
        base_url: str,
        auth_header: str | None,
        headers: dict[str, str],
    ) -> Any:
        node = parts[0] if parts else ""
        if self._instagram and node in TOKEN_ENDPOINTS and method == "GET":
            return token_endpoint(self.world, node, params, self.world.now())
        if node == "oauth" and not self._instagram:
            if parts[1:] != ["access_token"]:
                raise unknown_path("/".join(parts[1:]) or "oauth")
            return oauth_access_token(self.world, params, self.world.now())
        if method == "POST" and params.get("method", "").upper() == "GET":
            params.pop("method")
        elif method != "GET":
            raise SimError(
                100,
                f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, "
                "cannot be loaded due to missing permissions, or does not support this operation",
                subcode=33,
                type="GraphMethodException",
            )
        if not node:
            raise invalid_parameter(
                "(#100) Missing node id: multi-id root requests are not supported"
            )
        call_paths = ["/" + "/".join([version, *parts])]
        req = self._authenticate(version, parts, params, base_url, auth_header, call_paths)
        check_host(req.token, self._instagram)
        handler, scope = self._route(req)
        self._meter(req, scope, call_paths, headers, self.world.now())
        names = set(requested_metrics(req))
        if self._instagram and names & FACEBOOK_ONLY_METRICS:
            raise invalid_metric_error()
        if names and self.faults.take(
            "invalid_metrics", call_paths, lambda r: bool(names & set(r.options["names"]))
        ):
            raise invalid_metric_error()
        return handler()

    def _authenticate(
        self,
        version: str,
        parts: list[str],
        params: dict[str, str],
        base_url: str,
        auth_header: str | None,
        call_paths: list[str],
    ) -> SimRequest:
        """Check the token, its proof and token faults; the request for the handlers."""
        world = self.world
        raw = params.pop("access_token", None) or bearer(auth_header)
        proof = params.pop("appsecret_proof", None)
        proof_time = params.pop("appsecret_time", None)
        if not raw:
            raise missing_token()
        token = resolve_token(world, raw, world.now())
        check_proof(world, raw, proof, proof_time)
        rule = self.faults.take("token_error", call_paths)
        if rule is not None:
            raise token_error(int(rule.options["subcode"]))
        return SimRequest(
            method="GET",
            version=version,
            node_id=parts[0],
            edge=parts[1] if len(parts) > 1 else None,
            rest=tuple(parts[2:]),
            params=params,
            token=token,
            now=world.now_q(),
            base_url=base_url,
            raw_token=raw,
        )

    def _route(self, req: SimRequest) -> tuple[Callable[[], dict[str, Any]], Scope]:
        world, token, node = self.world, req.token, req.node_id
        if token.kind == "IG_USER":  # the Instagram host: its account, nothing of Facebook's
            if node == "me":
                node = req.node_id = token.user_id or ""
            if world.instagram is None or not world.instagram.owns(node):
                raise object_missing_error(node)
        if node == "debug_token":
            return lambda: debug_token(world, req), platform_scope(token)
        if node == "me":
            if token.kind != "PAGE" or token.page_id not in world.pages:
                return lambda: handle_me(world, req), platform_scope(token)
            node = req.node_id = token.page_id
        page = world.pages.get(node)
        if page is not None:
            return lambda: handle_page(world, req, page), page_scope(token, page.id)
        if _POST_ID.match(node) and node.partition("_")[0] in world.pages:
            return lambda: handle_post(world, req), page_scope(token, node.partition("_")[0])
        if node == world.app_id:
            retired = world.app_insights_retired or self.faults.app_insights_retired
            return lambda: handle_app(world, req, retired=retired), platform_scope(token)
        instagram = world.instagram
        if instagram is not None and instagram.owns(node):
            key = node if node in instagram.user_ids else instagram.user_ids[0]
            linked = next((p.id for p in world.pages.values() if p.ig_user_id == key), None)
            require_instagram_token(req, linked or world.first_page.id)
            return lambda: instagram.handle(req), Scope("instagram", key)
        raise object_missing_error(node)

    def _meter(
        self,
        req: SimRequest,
        scope: Scope,
        call_paths: list[str],
        headers: dict[str, str],
        now: datetime,
    ) -> None:
        """Count the call, set its usage header, or throttle it."""
        ts = now.timestamp()
        held = self._held(req, scope, ts)
        if held is not None:
            shown, (until, code, options) = held
            self.calls_during_block += ts > options["since"]
            minutes = max(1, math.ceil((until - ts) / 60))
            self._throttle(shown, code, minutes, options, headers, ts)
        rule = self.faults.take("throttle", call_paths)
        if rule is not None:
            code, minutes = int(rule.options["code"]), int(rule.options["minutes"])
            shown = scope
            buc_type = BUC_TYPE_OF_CODE.get(code)
            if buc_type and scope.kind != buc_type:
                shown = Scope(buc_type, scope.key if scope.buc else req.node_id)
            elif buc_type is None and scope.buc:
                shown = platform_scope(req.token)
            if code in APP_CODES:
                shown = Scope("app", self.world.app_id)
            if rule.options.get("hold"):
                self.blocks[shown] = (ts + minutes * 60, code, {**rule.options, "since": ts})
            self._throttle(shown, code, minutes, rule.options, headers, ts)
        if self.usage.exhausted(scope, ts):
            headers.update(self.usage.headers(scope, ts))
            raise throttled(scope.throttle_code)
        self.usage.record(scope, ts)
        headers.update(self.usage.headers(scope, ts))

    def _held(
        self, req: SimRequest, scope: Scope, ts: float
    ) -> tuple[Scope, tuple[float, int, dict[str, Any]]] | None:
        """The active block a call falls under: its own budget's, its token's user's or
        the app's."""
        for blocked, entry in list(self.blocks.items()):
            if entry[0] <= ts:
                del self.blocks[blocked]
                continue
            if blocked.kind == "app" or blocked in (scope, platform_scope(req.token)):
                return blocked, entry
        return None

    def _throttle(
        self,
        shown: Scope,
        code: int,
        minutes: int,
        options: dict[str, Any],
        headers: dict[str, str],
        ts: float,
    ) -> None:
        """Answer throttle ``code`` with 100 % usage headers (and the regain time)."""
        regain = minutes if options.get("regain", True) else 0
        headers.update(self.usage.headers(shown, ts, forced_minutes=regain))
        if options.get("retry_after"):
            headers["Retry-After"] = str(minutes * 60)
        raise throttled(code)
