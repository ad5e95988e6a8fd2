"""What a Graph API request is made of: the calls, their parameters, the token and proof.

Shared by :class:`~collectord.graph.client.GraphClient` (which sends requests) and
:class:`~collectord.graph.bound.BoundGraph` (one source's view): the constants of Meta's
limits, the encoding of query parameters, ``appsecret_proof``, what a source's requests are
made with (:class:`Binding`), and the client's batching policy (:func:`get_many`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from collectord.config.types import GraphConfig
from collectord.errors import GraphError
from collectord.graph.answers import answer_to
from collectord.graph.api import GRAPH_APP
from collectord.graph.governor import RateGovernor
from collectord.secret import Secret

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
    """The time-stamped ``(appsecret_proof, appsecret_time)`` pair (docs/meta-facts.md 10.3)."""
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


def split_call(path: str, params: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    """``path`` without a leading ``/`` or query, and its query merged with ``params``."""
    path, _, query = path.lstrip("/").partition("?")
    merged = dict(parse_qsl(query, keep_blank_values=True))
    merged.update(encode_params(params))
    return path, merged


def budget_key(token: Secret | None, app: str = GRAPH_APP) -> str:
    """An opaque rate-limit budget key for a token (a hash prefix, never the token); for a
    token of another app family than Facebook's, ``{app}/...``, so that its app-wide
    budget is that family's (:func:`~collectord.graph.governor.app_key`)."""
    key = (
        "token:" + hashlib.sha256(token.reveal().encode()).hexdigest()[:16]
        if token
        else "token:none"
    )
    return key if app == GRAPH_APP else f"{app}/{key}"


def chunks(items: Sequence[int], size: int) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True)
class Binding:
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


class Transport(Protocol):
    """What a :class:`~collectord.graph.bound.BoundGraph` needs of the client: sending one
    request with retries, the backoff pause, the governor, reading a batch element's usage
    headers, the retry count and the log."""

    max_retries: int
    governor: RateGovernor
    log: Any

    def send(
        self,
        binding: Binding,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        form: Mapping[str, str] | None = None,
        calls: int = 1,
    ) -> Awaitable[Any]: ...

    async def pause(self, attempt: int) -> None: ...

    def observe_usage(self, binding: Binding, headers: Mapping[str, str]) -> None: ...
