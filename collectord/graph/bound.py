"""One source's view of the Graph API: the :class:`BoundGraph` a plugin's ``ctx.graph`` is.

It builds ``{base_url}/{version}/{path}`` URLs, follows cursor paging without sending the
token to another host, and sends batch requests of 50 (or one GET per call for an API
without batch requests), through the process-wide
:class:`~collectord.graph.client.GraphClient`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from yarl import URL

from collectord.errors import (
    BadResponseError,
    GraphError,
    ServerError,
    ThrottledError,
    count_problem,
)
from collectord.graph.answers import answer_to, decode_batch_element, scrub
from collectord.graph.calls import (
    AUTH_PARAMS,
    BATCH_LIMIT,
    Binding,
    Call,
    Transport,
    chunks,
    get_many,
    split_call,
)

#: The most items ``get_all`` returns when its caller sets no ``max_items`` (100 pages of
#: Meta's largest page size).
MAX_LIST_ITEMS = 10_000


T = TypeVar("T")


async def all_or_first_error(aws: Iterable[Awaitable[T]]) -> list[T]:
    """Run ``aws`` concurrently; their results in order. The first one to raise cancels
    the others and its exception is raised as it is (not in an ``ExceptionGroup``, so a
    caller's ``except GraphError`` still sees it)."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()  # a no-op for finished ones
        await asyncio.gather(*tasks, return_exceptions=True)


def element_headers(answer: Any) -> dict[str, str]:
    """A batch element's ``headers`` (``[{"name", "value"}]``, sent with
    ``include_headers``) as a mapping; empty when it has none or they cannot be read."""
    raw = answer.get("headers") if isinstance(answer, Mapping) else None
    if not isinstance(raw, list):
        return {}
    return {
        h["name"]: h["value"]
        for h in raw
        if isinstance(h, Mapping)
        and isinstance(h.get("name"), str)
        and isinstance(h.get("value"), str)
    }


class BoundGraph:
    """One source's view of the Graph API (implements :class:`~collectord.plugin.api.SourceGraph`)."""

    def __init__(self, client: Transport, binding: Binding) -> None:
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
        clean, query = split_call(path, params)
        try:
            body = await self._client.send(self._binding, "GET", self.url(clean), params=query)
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
        :class:`BadResponseError`; our token goes only to ``base_url``'s host.

        The caller's ``max_items`` ends the list quietly. Meta's answer ending it is not
        quiet: a page that leads back to one already read (a paging loop), ``max_pages``
        pages or :data:`MAX_LIST_ITEMS` items without a ``max_items`` each stop the list
        with one warning and a counted ``bad_response``; the items read so far are kept.
        Items that are not JSON objects are left out the same way."""
        clean, query = split_call(path, params)
        url = self.url(clean)
        limit = max_items if max_items is not None else MAX_LIST_ITEMS
        items: list[dict[str, Any]] = []
        seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        pages = 0
        while True:
            seen.add((url, tuple(sorted(query.items()))))
            body = await self._client.send(self._binding, "GET", url, params=query)
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise BadResponseError(f"GET {self.scrub(clean)}: a page without a data list")
            objects = [item for item in data if isinstance(item, dict)]
            if len(objects) != len(data):
                self._cut(
                    clean, "items that are not JSON objects left out", len(data) - len(objects)
                )
            items.extend(objects)
            pages += 1
            if len(items) >= limit:
                if max_items is None:
                    self._cut(clean, "the list stopped at the item cap", limit)
                return items[:limit]
            following = self._next_page(body, url, query)
            if following is None:
                return items
            if pages >= max_pages:
                self._cut(clean, "the list stopped at the page cap", pages)
                return items
            url, query = following
            if (url, tuple(sorted(query.items()))) in seen:
                self._cut(clean, "the list pages in a loop; stopped", pages)
                return items

    def _cut(self, path: str, event: str, count: int) -> None:
        """One warning and a counted ``bad_response`` for a list Meta's answer cut short."""
        self._client.log.warning(
            f"graph paging: {event}", source=self.source, path=self.scrub(path), count=count
        )
        count_problem("bad_response")

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
            clean, query = split_call(path, params)
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
            parts = list(chunks(pending, BATCH_LIMIT))
            # independent batches go out together: the client's semaphores (max_concurrency,
            # process-wide and per source) and the governor decide how many are in flight;
            # one that raises cancels the others (the poll fails as one)
            sent = await all_or_first_error(
                self._send_chunk([relative[i] for i in c], [queries[i] for i in c]) for c in parts
            )
            retry: list[int] = []
            for chunk, outcomes in zip(parts, sent, strict=True):
                for index, outcome in zip(chunk, outcomes, strict=True):
                    results[index] = outcome
                    if outcome is None or (isinstance(outcome, GraphError) and outcome.retryable):
                        retry.append(index)
            pending = retry
        for index in pending:
            if results[index] is None:
                results[index] = ServerError("the batch request was not completed by Meta")
        return [r for r in results if r is not None]

    async def _send_chunk(
        self, relative_urls: list[str], queries: list[dict[str, str]]
    ) -> list[dict[str, Any] | GraphError | None]:
        """One batch and its elements' outcomes, read as soon as it answers: its usage
        and throttles reach the governor before the batches still waiting go out."""
        answers = await self._send_batch(relative_urls)
        return [self._element(a, q) for a, q in zip(answers, queries, strict=True)]

    async def _send_batch(self, relative_urls: list[str]) -> list[Any]:
        """POST one batch; returns one answer per element (``None`` for missing ones)."""
        form = {
            "batch": json.dumps(
                [{"method": "GET", "relative_url": rel} for rel in relative_urls],
                separators=(",", ":"),
            ),
            # per-element headers carry each call's usage and a throttle's regain time
            # (docs/meta-facts.md 7.4, 8); Meta recommends leaving them out, but
            # without them a throttled element says nothing of when access returns
            "include_headers": "true",
        }
        answers = await self._client.send(
            self._binding, "POST", self.url(), form=form, calls=len(relative_urls)
        )
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
        headers = element_headers(answer)
        if headers:
            self._client.observe_usage(self._binding, headers)
        outcome = decode_batch_element(answer, secrets=self._binding.secrets(), headers=headers)
        if isinstance(outcome, ThrottledError):
            self._client.governor.observe_throttle(self._binding.budget, outcome)
        if isinstance(outcome, GraphError):
            return answer_to(outcome, query)
        return outcome
