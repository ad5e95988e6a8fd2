"""The simulator as an aiohttp application: HTTP front end, batches, faults, request log.

``Simulator(world, faults)`` serves Graph API calls on ``sim.url`` (no version: callers
add ``/v26.0``) once ``await sim.start()`` returns; ``sim.app`` is the aiohttp
application, ``serve()`` runs it until an event is set (``collectord simulate``).

Batches (docs/meta-facts.md 8): ``POST`` to the root (``/`` or ``/vNN.0/``) with form fields
``batch`` (a JSON array of at most 50 ``{method, relative_url, body?, headers?}``),
``access_token`` (fallback for elements without their own) and ``include_headers``.
Each element goes through the same router as a plain request and comes back as
``{"code", "headers"?, "body": "<JSON string>"}`` (``null`` for a simulated timeout
with ``faults.batch_null_rate``); the outer status is 200.

The Instagram API with Instagram Login is served under ``/graph.instagram.com/`` (see
:mod:`collectord.simulator.instagram_login`).

Control endpoints (for out-of-process tests; not part of the Graph API):
``GET|POST|DELETE /_sim/faults`` (see :mod:`collectord.simulator.faults`),
``GET|DELETE /_sim/requests`` (the request log and stats; DELETE resets them),
``GET /_sim/stats``, ``GET /_sim/world`` (demo ids and tokens).

The login dialog ``GET [/vNN.0]/dialog/oauth`` answers with a redirect (see
:mod:`collectord.simulator.auth`); on Meta it lives on www.facebook.com, here beside the API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from collectord.simulator import webhooks
from collectord.simulator.auth import oauth_dialog
from collectord.simulator.base import SimError
from collectord.simulator.errors import batch_too_large, invalid_parameter, server_error
from collectord.simulator.faults import Faults
from collectord.simulator.instagram_login import HOST_PREFIX as IG_HOST
from collectord.simulator.router import CallResult, Router, parse_version
from collectord.simulator.world import World

MAX_BATCH = 50
JSON_TYPE = "application/json; charset=UTF-8"
#: The most an ``endless`` answer sends before it ends after all.
ENDLESS_BYTES = 1 << 30
SECRET_PARAMS = frozenset(
    {
        "access_token",
        "appsecret_proof",
        "appsecret_time",
        "client_secret",
        "code",
        "fb_exchange_token",
        "input_token",
        "batch",
    }
)
_HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>Facebook | Error</title></head>"
    "<body><h1>Sorry, something went wrong.</h1><p>We're working on it.</p></body></html>"
)


@dataclass
class RequestLogEntry:
    """One HTTP request the simulator answered (parameters without secrets)."""

    method: str
    path: str
    params: dict[str, str]
    batch_size: int | None = None  # elements of a batch request; None for a plain call
    status: int = 0
    elements: list[str] = field(default_factory=list)  # batch elements' paths

    @property
    def graph_calls(self) -> int:
        return 1 if self.batch_size is None else self.batch_size


def scrub(params: dict[str, str]) -> dict[str, str]:
    """``params`` without tokens, secrets and proofs."""
    return {k: v for k, v in params.items() if k not in SECRET_PARAMS}


def _json_response(result: CallResult) -> web.Response:
    return web.Response(
        text=json.dumps(result.body),
        status=result.status,
        headers={**result.headers, "Content-Type": JSON_TYPE},
    )


class Simulator:
    """Meta's Graph API, simulated, on a loopback port."""

    def __init__(self, world: World | None = None, faults: Faults | None = None) -> None:
        self.world = world or World()
        self.faults = faults or Faults(seed=self.world.seed)
        self.router = Router(self.world, self.faults)
        self.requests: list[RequestLogEntry] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/_sim/{what}", self._control)
        self.app.router.add_get("/dialog/oauth", self._dialog)
        self.app.router.add_get("/{version}/dialog/oauth", self._dialog)
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.url = ""
        self._runner: web.AppRunner | None = None

    # -- lifetime ----------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on ``host:port`` (0: a free port); returns the base URL (no version)."""
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        bound = runner.addresses[0][1]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"http://{shown}:{bound}"
        return self.url

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- webhooks (Meta calling the app's callback URL) ---------------------------------

    async def send_story_insights(
        self, url: str, story_id: str, *, secret: str | None = None, at: datetime | None = None
    ) -> tuple[dict[str, Any], int, str]:
        """POST the signed ``story_insights`` delivery of ``story_id`` to ``url`` as Meta
        does after the story expired (:mod:`collectord.simulator.webhooks`); ``secret``
        replaces the app secret (a bad signature). Returns the delivery, status and body."""
        return await webhooks.send_story_insights(self.world, url, story_id, secret=secret, at=at)

    async def verify_webhook(
        self, url: str, verify_token: str, challenge: str = webhooks.CHALLENGE
    ) -> tuple[int, str]:
        """The verification request the App Dashboard sends to a callback URL."""
        return await webhooks.verification(url, verify_token, challenge)

    # -- counting ----------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """HTTP requests answered and Graph calls made (a batch of k is 1 and k)."""
        return {
            "http_requests": len(self.requests),
            "graph_calls": sum(entry.graph_calls for entry in self.requests),
        }

    def reset_stats(self) -> None:
        """Forget the request log (usage counters are kept)."""
        self.requests.clear()

    # -- HTTP --------------------------------------------------------------------------

    async def _dialog(self, request: web.Request) -> web.StreamResponse:
        """The login dialog (``/dialog/oauth``): consents at once and redirects back."""
        params: dict[str, str] = dict(request.query.items())
        entry = RequestLogEntry(request.method, request.path, scrub(params))
        self.requests.append(entry)
        try:
            location = oauth_dialog(self.world, params)
        except SimError as error:
            entry.status = error.http_status
            return _json_response(CallResult(error.http_status, error.envelope(), {}))
        entry.status = 302
        raise web.HTTPFound(location)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        params: dict[str, str] = dict(request.query.items())
        if request.method == "POST":
            params.update(await _body_params(request))
        parts = [p for p in request.path.split("/") if p]
        instagram = parts[:1] == [IG_HOST]  # graph.instagram.com: no batch requests there
        path = "/" + "/".join(parts[1:]) if instagram else request.path
        is_batch = request.method == "POST" and "batch" in params and _is_root(parts)
        is_batch = is_batch and not instagram
        entry = RequestLogEntry(request.method, request.path, scrub(params))
        items: Any = None
        if is_batch:
            items = _batch_items(params["batch"])
            entry.batch_size = (
                len(items) if isinstance(items, list) and len(items) <= MAX_BATCH else 0
            )
            entry.elements = [_element_path(i) for i in items] if isinstance(items, list) else []
        self.requests.append(entry)
        paths = [request.path, *entry.elements]
        if self.faults.take("reset", paths) is not None:
            entry.status = 0
            if request.transport is not None:
                request.transport.abort()  # no answer at all: the connection just ends
            return web.Response(status=500)  # never reaches the client
        delay = self.faults.take("delay", paths)
        if delay is not None:
            await asyncio.sleep(float(delay.options["seconds"]))
        broken = self.faults.take("server_error", paths)
        if broken is not None and broken.options["html"]:
            entry.status = 502
            return web.Response(text=_HTML_ERROR, status=502, content_type="text/html")
        if broken is not None:
            entry.status = 500
            return _json_response(CallResult(500, server_error().envelope(), {}))
        endless = self.faults.take("endless", paths)
        huge = self.faults.take("huge", paths)
        if endless is not None or huge is not None:
            entry.status = 200
            size = ENDLESS_BYTES if endless is not None else _megabytes(huge)
            return await _stream_json(request, size)
        base_url = f"{request.scheme}://{request.host}" + (f"/{IG_HOST}" if instagram else "")
        auth = request.headers.get("Authorization")
        if is_batch:
            result = self._batch(parts, items, params, base_url, auth)
        else:
            result = self.router.call(
                request.method,
                path,
                params,
                base_url=base_url,
                auth_header=auth,
                instagram=instagram,
            )
        entry.status = result.status
        if self.faults.take("malformed_json", paths) is not None:
            text = json.dumps(result.body)
            return web.Response(
                text=text[: max(1, len(text) // 2)],
                status=200,
                headers={**result.headers, "Content-Type": JSON_TYPE},
            )
        return _json_response(result)

    def _batch(
        self, parts: list[str], items: Any, params: dict[str, str], base_url: str, auth: str | None
    ) -> CallResult:
        try:
            version, _ = parse_version(parts)
            if not isinstance(items, list):
                raise invalid_parameter("(#100) The parameter batch must be a JSON array")
            if len(items) > MAX_BATCH:
                raise batch_too_large()
        except SimError as error:
            return CallResult(error.http_status, error.envelope(), {})
        include_headers = params.get("include_headers", "true").lower() != "false"
        top = {
            k: params[k]
            for k in ("access_token", "appsecret_proof", "appsecret_time")
            if k in params
        }
        out: list[Any] = []
        for item, null in zip(items, self.faults.null_elements(len(items)), strict=True):
            if null:
                out.append(None)
                continue
            result = self._element(item, version, top, base_url, auth)
            element: dict[str, Any] = {"code": result.status, "body": json.dumps(result.body)}
            if include_headers:
                shown = {"Content-Type": JSON_TYPE, **result.headers}
                element["headers"] = [{"name": k, "value": v} for k, v in shown.items()]
            out.append(element)
        return CallResult(200, out, {"facebook-api-version": version})

    def _element(
        self, item: Any, version: str, top: dict[str, str], base_url: str, auth: str | None
    ) -> CallResult:
        if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
            error = invalid_parameter("(#100) Each batch element needs a relative_url")
            return CallResult(error.http_status, error.envelope(), {})
        url = urlsplit(item["relative_url"])
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if isinstance(item.get("body"), str):
            params.update(parse_qsl(item["body"], keep_blank_values=True))
        if "access_token" not in params:
            params.update(top)
        parts = [p for p in url.path.split("/") if p]
        path = "/" + "/".join(
            parts if parts and parts[0].startswith("v") and "." in parts[0] else [version, *parts]
        )
        method = str(item.get("method") or "GET")
        return self.router.call(method, path, params, base_url=base_url, auth_header=auth)

    # -- control -----------------------------------------------------------------------

    async def _control(self, request: web.Request) -> web.Response:
        what, method = request.match_info["what"], request.method
        if what == "faults":
            if method == "POST":
                try:
                    added = self.faults.apply_json(await request.json())
                except (ValueError, TypeError) as error:
                    return web.json_response({"error": str(error)}, status=400)
                return web.json_response({"added": len(added), **self.faults.describe()})
            if method == "DELETE":
                self.faults.clear()
            return web.json_response(self.faults.describe())
        if what == "requests":
            if method == "DELETE":
                self.reset_stats()
            log = [asdict(entry) for entry in self.requests]
            return web.json_response({"requests": log, "stats": self.stats()})
        if what == "stats":
            return web.json_response(self.stats())
        if what == "world":
            world = self.world
            plugins = (
                "facebook_page",
                "facebook_post",
                "facebook_app",
                "instagram_user",
                "instagram_media",
            )
            return web.json_response(
                {
                    "ids": world.demo_ids(),
                    "page_ids": sorted(world.pages),
                    "tokens": {name: world.demo_token(name) for name in plugins},
                    "ig_login_token": world.ig_login_token,
                }
            )
        return web.json_response({"error": f"unknown control endpoint /_sim/{what}"}, status=404)


async def _body_params(request: web.Request) -> dict[str, str]:
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return {}
        return (
            {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in body.items()}
            if isinstance(body, dict)
            else {}
        )
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _is_root(parts: list[str]) -> bool:
    return (
        not parts
        or (len(parts) == 1 and parts[0].startswith("v"))
        or (parts[-1:] == ["me"] and len(parts) <= 2)
    )


def _batch_items(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _element_path(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("relative_url"), str):
        return "/" + urlsplit(item["relative_url"]).path.lstrip("/")
    return ""


async def serve(
    host: str,
    port: int,
    stop: asyncio.Event,
    *,
    world: World | None = None,
    faults: Faults | None = None,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve a simulator on ``host:port`` until ``stop`` is set; ``ready(url)`` is called
    once it listens (``collectord simulate``)."""
    sim = Simulator(world, faults)
    url = await sim.start(host, port)
    if ready is not None:
        ready(url)
    try:
        await stop.wait()
    finally:
        await sim.stop()


def _megabytes(rule: Any) -> int:
    return int(float(rule.options["megabytes"]) * 1024 * 1024)


async def _stream_json(request: web.Request, size: int) -> web.StreamResponse:
    """A JSON answer of about ``size`` bytes (``{"data": [...]}``), sent in chunks without a
    ``Content-Length``; it stops early when the client hangs up."""
    resp = web.StreamResponse(status=200, headers={"Content-Type": JSON_TYPE})
    await resp.prepare(request)
    chunk = b'{"name":"padding","values":[]},' * 2048
    sent = 0
    try:
        await resp.write(b'{"data":[')
        while sent < size:
            await resp.write(chunk)
            sent += len(chunk)
        await resp.write(b'{"name":"padding","values":[]}]}')
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the client hung up, as it should on an endless answer
    return resp
