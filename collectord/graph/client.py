"""collectord's Graph API client: the one module that knows Meta's transport.

One :class:`GraphClient` per process wraps the shared ``aiohttp.ClientSession``; each source
gets a :class:`BoundGraph` from :meth:`GraphClient.bind` (its token and its ``[graph]``
settings), which is the :class:`~collectord.plugin.api.SourceGraph` a plugin sees. The client
builds versioned URLs, adds the token and ``appsecret_proof``, follows cursor paging without
sending the token elsewhere, sends batches of 50, retries transient failures with
full-jitter backoff, reads the usage headers into :class:`~collectord.graph.stats.GraphStats`
and the :class:`~collectord.graph.governor.RateGovernor`, and raises the typed errors of
:mod:`collectord.errors` with every secret scrubbed. No answer is read past
:data:`MAX_ANSWER_BYTES`, and what is not Meta's JSON is a ``bad_response``. The pieces live in
:mod:`~collectord.graph.calls` (what a request is made of, the batching policy) and
:mod:`~collectord.graph.bound` (one source's view); this module re-exports them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import structlog
from yarl import URL

from collectord.config.types import GraphConfig
from collectord.errors import (
    AnswerTooLargeError,
    BadResponseError,
    GraphError,
    GraphTimeoutError,
    NetworkError,
    ThrottledError,
    TransientError,
)
from collectord.graph.answers import classify_error, decode_answer, scrub
from collectord.graph.api import GRAPH_APP, GraphApi, settings_for
from collectord.graph.bound import BoundGraph
from collectord.graph.calls import (
    AUTH_PARAMS,
    BATCH_LIMIT,
    METRICS_PER_REQUEST,
    Binding,
    appsecret_proof,
    budget_key,
    encode_params,
    get_many,
)
from collectord.graph.governor import RateGovernor
from collectord.graph.stats import GraphStats
from collectord.graph.usage import header_value, parse_usage
from collectord.secret import Secret

#: Meta's answer header naming the API version that served the request.
VERSION_HEADER = "facebook-api-version"
#: The largest answer body read from the Graph API (a batch answer included), in bytes.
#: Meta's biggest real answers (50 insights calls in a batch) are a few megabytes; a
#: longer body is read no further and the call fails as ``bad_response``, so an endless
#: or huge answer costs at most this much memory.
MAX_ANSWER_BYTES = 16 * 1024 * 1024
#: Read chunk of an answer body.
_CHUNK = 64 * 1024

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
        #: The answer size cap (:data:`MAX_ANSWER_BYTES`; tests lower it).
        self.max_answer_bytes = MAX_ANSWER_BYTES
        self._session = session
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._semaphore = asyncio.Semaphore(max(1, config.max_concurrency))
        self.governor = RateGovernor(
            config.usage_ceiling, clock=clock, sleep=sleep, log=self.log, stats=self.stats
        )

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
        budget = budget_key(secret, api.app if api is not None else GRAPH_APP)
        binding = Binding(secret or None, graph, source, budget, limit=limit, batching=batching)
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
        binding = Binding(
            app_token,
            graph,
            source or "debug_token",
            budget_key(app_token),
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

    async def send(
        self,
        binding: Binding,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        calls: int = 1,
    ) -> Any:
        """Send one request (query ``params`` or ``form`` body) of ``calls`` Graph calls
        (a batch of ``n`` is ``n``), retrying transient errors, and return the decoded JSON
        answer."""
        attempt = 0
        while True:
            try:
                return await self._attempt(binding, method, url, params, form, attempt, calls)
            except TransientError as err:
                if attempt >= self.max_retries or not err.retryable:
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

    def _auth(self, binding: Binding) -> dict[str, str]:
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
        binding: Binding,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        attempt: int,
        calls: int = 1,
    ) -> Any:
        probes = await self.governor.admit(
            binding.budget, ceiling=binding.graph.usage_ceiling, calls=calls
        )
        try:
            return await self._exchange(binding, method, url, params, form, attempt, calls)
        finally:
            self.governor.release(probes)

    async def _exchange(
        self,
        binding: Binding,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        form: Mapping[str, str] | None,
        attempt: int,
        calls: int,
    ) -> Any:
        """One HTTP request and its answer, read into the stats and the governor."""
        auth = self._auth(binding)
        query = dict(params or {}) if form is not None else {**(params or {}), **auth}
        data = {**form, **auth} if form is not None else None
        secrets = binding.secrets()
        where = f"{method} {scrub(URL(url).path, secrets)}"
        timeout = binding.graph.timeout
        status: int | None = None
        started = time.perf_counter()
        try:
            async with binding.limit or contextlib.nullcontext(), self._semaphore:
                # a block that began while this request waited for its slot (a batch
                # element of the same poll throttled) stops it here
                self.governor.check(binding.budget, ceiling=binding.graph.usage_ceiling)
                self.governor.count_calls(binding.budget, calls)
                async with self._session.request(
                    method,
                    url,
                    params=query or None,
                    data=data,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                    allow_redirects=False,
                ) as resp:
                    status = resp.status
                    self.stats.requests[str(status)] += 1
                    raw = await read_capped(resp, self.max_answer_bytes, where)
                    headers = resp.headers
        except AnswerTooLargeError:
            self._log_request(binding, where, status or "too_large", started, attempt)
            self.log.warning(
                "graph answer too large",
                source=binding.source,
                call=where,
                limit=self.max_answer_bytes,
            )
            raise
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
        self._check_version(binding.graph.version, header_value(headers, VERSION_HEADER))

        self.observe_usage(binding, headers)

        try:
            return decode_answer(raw, status, headers=headers, secrets=secrets, where=where)
        except ThrottledError as err:
            self.governor.observe_throttle(binding.budget, err)
            raise

    def observe_usage(self, binding: Binding, headers: Mapping[str, str]) -> None:
        """Read the usage headers of an answer (or of a batch element) under ``binding``
        into the stats and the governor."""
        readings = parse_usage(headers, app_id=binding.graph.app_id or "", log=self.log)
        for reading in readings:
            self.stats.usage[reading.key] = reading.ratio
        self.governor.observe_usage(binding.budget, readings)

    def _check_version(self, requested: str, served: str | None) -> None:
        """Record the version Meta says served a request (``facebook-api-version``,
        docs/meta-facts.md 1); a version other than the requested one (Meta serves a
        retired version's calls with the oldest live one) is logged once per pair."""
        if not served:
            return
        pair = (requested, served)
        if pair in self.stats.api_versions:
            return
        self.stats.api_versions[pair] = 1.0
        if served != requested:
            self.log.warning(
                "graph api served another version than the one requested",
                requested=requested,
                served=served,
                hint="Meta upgrades calls to a retired version silently; set [graph] version",
            )

    def _count_failure(self, status: int | None, label: str) -> None:
        if status is None:  # an answer that came is already counted by its status
            self.stats.requests[label] += 1

    def _log_request(
        self, binding: Binding, where: str, status: int | str, started: float, attempt: int
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


async def read_capped(resp: aiohttp.ClientResponse, limit: int, where: str) -> bytes:
    """The body of ``resp``, read in chunks and never more than ``limit`` bytes: a longer
    body (announced by ``Content-Length`` or found while reading) raises
    :class:`~collectord.errors.AnswerTooLargeError` naming the call ``where`` (a method
    and a scrubbed path)."""
    announced = resp.content_length
    if announced is not None and announced > limit:
        raise AnswerTooLargeError(f"{where}: the answer is {announced} bytes, over {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise AnswerTooLargeError(f"{where}: the answer is longer than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
