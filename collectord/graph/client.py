"""collectord's Graph API client: the one module that knows Meta's transport.

One :class:`GraphClient` per process wraps the shared ``aiohttp.ClientSession``; each source
gets a :class:`BoundGraph` from :meth:`GraphClient.bind` (its token and its ``[graph]``
settings), which is the :class:`~collectord.plugin.api.SourceGraph` a plugin sees. The client
builds versioned URLs, adds the token and ``appsecret_proof``, follows cursor paging without
sending the token elsewhere, sends batches of 50, retries transient failures with
full-jitter backoff, reads the usage headers into :class:`~collectord.graph.stats.GraphStats` and
the :class:`~collectord.graph.governor.RateGovernor`, and raises the typed errors of
:mod:`collectord.errors` with every secret scrubbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode

import aiohttp
import structlog
from yarl import URL

from collectord.config.types import GraphConfig
from collectord.errors import (
    BadResponseError,
    GraphError,
    GraphTimeoutError,
    NetworkError,
    ServerError,
    ThrottledError,
    TransientError,
)
from collectord.graph.answers import (
    answer_to,
    classify_error,
    decode_answer,
    decode_batch_element,
    scrub,
)
from collectord.graph.api import GraphApi, settings_for
from collectord.graph.governor import RateGovernor
from collectord.graph.stats import GraphStats
from collectord.graph.usage import parse_usage
from collectord.secret import Secret

__all__ = [
    "AUTH_PARAMS",
    "BATCH_LIMIT",
    "METRICS_PER_REQUEST",
    "BoundGraph",
    "GraphClient",
    "appsecret_proof",
    "classify_error",
    "encode_params",
    "get_many",
    "scrub",
]

#: Parameters the client adds itself; never copied from a ``paging.next`` URL.
AUTH_PARAMS: frozenset[str] = frozenset({"access_token", "appsecret_proof", "appsecret_time"})
#: Meta's maximum number of requests in one batch.
BATCH_LIMIT = 50
#: Metrics per insights request; Meta answers "reduce the amount of data" to long lists.
METRICS_PER_REQUEST = 25

#: One GET request: a path and its query parameters.
Call = tuple[str, Mapping[str, Any] | None]


class _GetsAndBatches(Protocol):
    """What :func:`get_many` needs of a graph: a plain GET and a batch of GETs."""

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]: ...

    async def batch(self, requests: Sequence[Call]) -> list[dict[str, Any] | GraphError]: ...


async def get_many(
    graph: _GetsAndBatches, calls: Sequence[Call]
) -> list[dict[str, Any] | GraphError]:
    """The client's batching policy: one call goes out as a plain GET, several as batch
    requests (``graph.batch``, which sends one GET each for an API without batch
    requests). One answer per call, in order: the body, or the error (returned, not
    raised). :class:`BoundGraph` follows it; test doubles of a
    :class:`~collectord.plugin.api.SourceGraph` may use it as their ``get_many``."""
    if len(calls) != 1:
        answers = await graph.batch(calls) if calls else []
        return [
            answer_to(a, params) if isinstance(a, GraphError) else a
            for a, (_, params) in zip(answers, calls, strict=True)
        ]
    path, params = calls[0]
    try:
        return [await graph.get(path, params)]
    except GraphError as err:
        return [answer_to(err, params)]


def appsecret_proof(token: str, app_secret: str, now: float) -> tuple[str, str]:
    """The time-stamped ``(appsecret_proof, appsecret_time)`` pair (docs/meta-graph-api.md 10.3)."""
    stamp = str(int(now))
    digest = hmac.new(app_secret.encode(), f"{token}|{stamp}".encode(), hashlib.sha256)
    return digest.hexdigest(), stamp


def encode_params(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Query parameters as strings: lists joined by commas, booleans ``true``/``false``,
    mappings as JSON, :class:`Secret` revealed, ``None`` dropped."""
    out: dict[str, str] = {}
    for key, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, Secret):
            text = value.reveal()
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple | set | frozenset):
            text = ",".join(str(v) for v in value)
        elif isinstance(value, Mapping):
            text = json.dumps(value, separators=(",", ":"))
        else:
            text = str(value)
        out[str(key)] = text
    return out


def _split(path: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    """``path`` without a leading ``/`` or query, and its query merged with ``params``."""
    path, _, query = path.lstrip("/").partition("?")
    merged = dict(parse_qsl(query, keep_blank_values=True))
    merged.update(encode_params(params))
    return path, merged


def _budget(token: Secret | None) -> str:
    """An opaque rate-limit budget key for a token (a hash prefix, never the token)."""
    if not token:
        return "token:none"
    return "token:" + hashlib.sha256(token.reveal().encode()).hexdigest()[:16]


def _chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class _Binding:
    """What one source's requests are made with. ``limit`` caps the source's own requests
    in flight when its ``[source.graph] max_concurrency`` is below the process-wide one."""

    token: Secret | None
    graph: GraphConfig
    source: str | None
    budget: str
    extra_secrets: tuple[Secret, ...] = ()
    limit: asyncio.Semaphore | None = None
    batching: bool = True

    def secrets(self) -> tuple[Secret | None, ...]:
        return (self.token, self.graph.app_secret, *self.extra_secrets)


class GraphClient:
    """The process-wide Graph API client (the caller owns ``session``).

    At most ``config.max_concurrency`` requests are in flight across all bound sources; a
    source bound with its own ``[source.graph]`` settings also keeps to its own
    ``max_concurrency``, ``usage_ceiling``, ``timeout``, ``version``, ``base_url`` and app
    (``app_id``/``app_secret``: appsecret_proof, usage headers, ``debug_token``).
    Transient failures are retried ``max_retries`` times after
    ``min(backoff_cap, backoff_base * 2**attempt) * rng()`` seconds. ``sleep``, ``clock``
    and ``rng`` are injectable for tests.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        config: GraphConfig,
        *,
        stats: GraphStats | None = None,
        log: Any = None,
        max_retries: int = 3,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.config = config
        self.stats = stats if stats is not None else GraphStats()
        self.log = log if log is not None else structlog.get_logger("collectord.graph.client")
        self.max_retries = max_retries
        self._session = session
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._semaphore = asyncio.Semaphore(max(1, config.max_concurrency))
        self.governor = RateGovernor(config.usage_ceiling, clock=clock, sleep=sleep, log=self.log)

    def bind(
        self,
        token: Secret | str | None,
        *,
        graph: GraphConfig | None = None,
        source: str | None = None,
        api: GraphApi | None = None,
    ) -> BoundGraph:
        """The :class:`~collectord.plugin.api.SourceGraph` of one source: its token and its
        ``[graph]`` settings (``graph``, default the client's), for a plugin speaking
        ``api`` (its declaration and the user's settings merged by
        :func:`~collectord.graph.api.settings_for`; without one, ``graph`` as it is)."""
        secret = Secret(token) if token is not None else None
        graph = graph or self.config
        if api is not None:
            graph = settings_for(api, graph)
        limit = None
        if graph.max_concurrency < self.config.max_concurrency:
            limit = asyncio.Semaphore(max(1, graph.max_concurrency))
        batching = api.batching if api is not None else True
        binding = _Binding(
            secret or None, graph, source, _budget(secret), limit=limit, batching=batching
        )
        return BoundGraph(self, binding)

    async def debug_token(
        self,
        input_token: Secret | str,
        *,
        graph: GraphConfig | None = None,
        source: str | None = None,
    ) -> dict[str, Any]:
        """``GET /debug_token`` with the app token ``app_id|app_secret`` of ``graph``
        (default the client's settings); returns ``data``. ``source`` names the source
        whose token it is, in the request log."""
        graph = graph or self.config
        app_id, app_secret = graph.app_id, graph.app_secret
        if not app_id or not app_secret:
            raise GraphError("debug_token needs [graph] app_id and app_secret")
        app_token = Secret(f"{app_id}|{app_secret.reveal()}")
        inspected = Secret(input_token)
        binding = _Binding(
            app_token,
            graph,
            source or "debug_token",
            _budget(app_token),
            extra_secrets=(inspected,),
        )
        body = await BoundGraph(self, binding).get("debug_token", {"input_token": inspected})
        data = body.get("data")
        if not isinstance(data, dict):
            raise BadResponseError("debug_token answered without a data object")
        return data

    def backoff(self, attempt: int) -> float:
        """Full-jitter delay before retry number ``attempt + 1``."""
        return min(self._backoff_cap, self._backoff_base * 2**attempt) * self._rng()

    async def pause(self, attempt: int) -> None:
        """Sleep :meth:`backoff` seconds (with the injected sleep)."""
        await self._sleep(self.backoff(attempt))

    async def _request(
        self,
        binding: _Binding,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request (query ``params`` or ``form`` body), retrying transient errors,
        and return the decoded JSON answer."""
        attempt = 0
        while True:
            try:
                return await self._attempt(binding, method, url, params, form, attempt)
            except TransientError as err:
                if attempt >= self.max_retries:
                    raise
                delay = self.backoff(attempt)
                self.log.debug(
                    "graph request retried",
                    source=binding.source,
                    reason=err.reason,
                    attempt=attempt + 1,
                    delay=round(delay, 3),
                )
                await self._sleep(delay)
                attempt += 1

    def _auth(self, binding: _Binding) -> dict[str, str]:
        if not binding.token:
            return {}
        token = binding.token.reveal()
        out = {"access_token": token}
        if binding.graph.app_secret:
            proof, stamp = appsecret_proof(token, binding.graph.app_secret.reveal(), self._clock())
            out |= {"appsecret_proof": proof, "appsecret_time": stamp}
        return out

    async def _attempt(
        self,
        binding: _Binding,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        attempt: int,
    ) -> Any:
        await self.governor.admit(binding.budget, ceiling=binding.graph.usage_ceiling)
        auth = self._auth(binding)
        query = dict(params or {}) if form is not None else {**(params or {}), **auth}
        data = {**form, **auth} if form is not None else None
        secrets = binding.secrets()
        where = f"{method} {scrub(URL(url).path, secrets)}"
        timeout = binding.graph.timeout
        status: int | None = None
        started = time.perf_counter()
        try:
            async with (
                binding.limit or contextlib.nullcontext(),
                self._semaphore,
                self._session.request(
                    method,
                    url,
                    params=query or None,
                    data=data,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                    allow_redirects=False,
                ) as resp,
            ):
                status = resp.status
                self.stats.requests[str(status)] += 1
                raw = await resp.read()
                headers = resp.headers
        except TimeoutError:
            self._count_failure(status, "timeout")
            self._log_request(binding, where, status or "timeout", started, attempt)
            raise GraphTimeoutError(f"{where}: no answer within {timeout:g}s") from None
        except aiohttp.ClientPayloadError:
            self._log_request(binding, where, status or "network", started, attempt)
            raise BadResponseError(
                f"{where}: the answer was cut short", http_status=status
            ) from None
        except aiohttp.ClientError as exc:
            self._count_failure(status, "network")
            self._log_request(binding, where, status or "network", started, attempt)
            detail = scrub(f"{type(exc).__name__}: {exc}", secrets)
            raise NetworkError(f"{where}: {detail}", http_status=status) from None
        self._log_request(binding, where, status, started, attempt)

        readings = parse_usage(headers, app_id=binding.graph.app_id or "", log=self.log)
        for reading in readings:
            self.stats.usage[reading.key] = reading.ratio
        self.governor.observe_usage(binding.budget, readings)

        try:
            return decode_answer(raw, status, headers=headers, secrets=secrets)
        except ThrottledError as err:
            self.governor.observe_throttle(binding.budget, err)
            raise

    def _count_failure(self, status: int | None, label: str) -> None:
        if status is None:  # an answer that came is already counted by its status
            self.stats.requests[label] += 1

    def _log_request(
        self, binding: _Binding, where: str, status: int | str, started: float, attempt: int
    ) -> None:
        method, _, path = where.partition(" ")
        self.log.debug(
            "graph request",
            source=binding.source,
            method=method,
            path=path,
            status=status,
            duration=round(time.perf_counter() - started, 4),
            attempt=attempt + 1,
        )


class BoundGraph:
    """One source's view of the Graph API (implements :class:`~collectord.plugin.api.SourceGraph`)."""

    def __init__(self, client: GraphClient, binding: _Binding) -> None:
        self._client = client
        self._binding = binding
        self._base = URL(binding.graph.base_url.rstrip("/"))

    @property
    def version(self) -> str:
        """The API version in use, such as ``v26.0``."""
        return self._binding.graph.version

    @property
    def source(self) -> str | None:
        return self._binding.source

    def url(self, path: str = "") -> str:
        """``{base_url}/{version}/{path}``."""
        return f"{str(self._base).rstrip('/')}/{self.version}/{path.lstrip('/')}"

    def scrub(self, text: str) -> str:
        """``text`` with secret parameters and this source's token and app secret masked."""
        return scrub(text, self._binding.secrets())

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET /{version}/{path}?{params}`` and return the decoded JSON object."""
        clean, query = _split(path, params)
        try:
            body = await self._client._request(self._binding, "GET", self.url(clean), params=query)
        except GraphError as err:
            raise answer_to(err, query) from None
        if not isinstance(body, dict):
            raise BadResponseError(f"GET {self.scrub(clean)}: the answer is not a JSON object")
        return body

    async def get_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_items: int | None = None,
        max_pages: int = 100,
    ) -> list[dict[str, Any]]:
        """Follow cursor paging and return the ``data`` items of all pages (see
        :class:`~collectord.plugin.api.SourceGraph`). ``next`` on a foreign host raises
        :class:`BadResponseError`; our token goes only to ``base_url``'s host."""
        clean, query = _split(path, params)
        url = self.url(clean)
        items: list[dict[str, Any]] = []
        pages = 0
        while True:
            body = await self._client._request(self._binding, "GET", url, params=query)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise BadResponseError(f"GET {self.scrub(clean)}: a page without a data list")
            items.extend(data)
            pages += 1
            if max_items is not None and len(items) >= max_items:
                return items[:max_items]
            following = self._next_page(body, url, query)
            if following is None:
                return items
            if pages >= max_pages:
                self._client.log.debug(
                    "paging stopped at the page cap", source=self.source, pages=pages
                )
                return items
            url, query = following

    def _next_page(
        self, body: Mapping[str, Any], url: str, query: Mapping[str, str]
    ) -> tuple[str, dict[str, str]] | None:
        """The URL and query of the page after ``body``, or ``None`` on the last page."""
        paging = body.get("paging")
        nxt = paging.get("next") if isinstance(paging, Mapping) else None
        if not isinstance(nxt, str) or not nxt:
            return None
        target = URL(nxt)
        if not target.is_absolute() or (target.scheme, target.host, target.port) != (
            self._base.scheme,
            self._base.host,
            self._base.port,
        ):
            raise BadResponseError(
                f"paging.next points to another host ({target.host}); not following it"
            )
        cursors = paging.get("cursors") if isinstance(paging, Mapping) else None
        after = cursors.get("after") if isinstance(cursors, Mapping) else None
        if isinstance(after, str) and after:
            rebuilt = {k: v for k, v in query.items() if k not in ("after", "before")}
            rebuilt["after"] = after
            return url, rebuilt
        kept = {k: v for k, v in target.query.items() if k not in AUTH_PARAMS}
        return str(target.with_query(None).with_fragment(None)), kept

    @property
    def batching(self) -> bool:
        """Whether this source's API has batch requests."""
        return self._binding.batching

    async def get_many(self, calls: Sequence[Call]) -> list[dict[str, Any] | GraphError]:
        """One answer per ``(path, params)`` call, in order (see :func:`get_many`): one call
        is a plain GET, several are batch requests of 50 (one GET each for an API without
        batch requests)."""
        return await get_many(self, calls)

    async def batch(self, requests: Sequence[Call]) -> list[dict[str, Any] | GraphError]:
        """Send ``GET`` requests as batches of at most 50; one result per request, in order:
        the decoded body or the element's classified error. ``null`` and transient elements
        are retried in new batches (``max_retries`` rounds, with backoff). For an API
        without batch requests, each request is a GET of its own (run concurrently)."""
        if not self._binding.batching:
            return list(await asyncio.gather(*(self._get_one(p, q) for p, q in requests)))
        relative: list[str] = []
        queries: list[dict[str, str]] = []
        for path, params in requests:
            clean, query = _split(path, params)
            queries.append(query)
            relative.append(clean + ("?" + urlencode(query) if query else ""))
        results: list[dict[str, Any] | GraphError | None] = [None] * len(relative)
        pending = list(range(len(relative)))
        for round_ in range(self._client.max_retries + 1):
            if not pending:
                break
            if round_:
                self._client.log.debug(
                    "batch elements retried", source=self.source, count=len(pending)
                )
                await self._client.pause(round_ - 1)
            retry: list[int] = []
            for chunk in _chunks(pending, BATCH_LIMIT):
                answers = await self._send_batch([relative[i] for i in chunk])
                for index, answer in zip(chunk, answers, strict=True):
                    outcome = self._element(answer, queries[index])
                    results[index] = outcome
                    if outcome is None or (isinstance(outcome, GraphError) and outcome.retryable):
                        retry.append(index)
            pending = retry
        for index in pending:
            if results[index] is None:
                results[index] = ServerError("the batch request was not completed by Meta")
        return [r for r in results if r is not None]

    async def _send_batch(self, relative_urls: list[str]) -> list[Any]:
        """POST one batch; returns one answer per element (``None`` for missing ones)."""
        form = {
            "batch": json.dumps(
                [{"method": "GET", "relative_url": rel} for rel in relative_urls],
                separators=(",", ":"),
            ),
            "include_headers": "false",
        }
        answers = await self._client._request(self._binding, "POST", self.url(), form=form)
        if not isinstance(answers, list):
            raise BadResponseError("the batch answer is not a JSON array")
        if len(answers) != len(relative_urls):
            self._client.log.debug(
                "batch answer of unexpected length",
                source=self.source,
                sent=len(relative_urls),
                received=len(answers),
            )
        answers = answers[: len(relative_urls)]
        return answers + [None] * (len(relative_urls) - len(answers))

    async def _get_one(
        self, path: str, params: Mapping[str, Any] | None
    ) -> dict[str, Any] | GraphError:
        try:
            return await self.get(path, params)
        except GraphError as err:
            return err

    def _element(self, answer: Any, query: Mapping[str, str]) -> dict[str, Any] | GraphError | None:
        outcome = decode_batch_element(answer, secrets=self._binding.secrets())
        if isinstance(outcome, ThrottledError):
            self._client.governor.observe_throttle(self._binding.budget, outcome)
        if isinstance(outcome, GraphError):
            return answer_to(outcome, query)
        return outcome
