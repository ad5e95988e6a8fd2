"""Test a source plugin without collectord's internals: a fake Graph API and a host.

:class:`FakeGraph` stands in for the Graph client: it answers ``get``, ``get_all`` (cursor
paging) and ``batch`` from answers set per path (and query parameters) or from a
``respond(path, params)`` method of a subclass, records every call in :attr:`FakeGraph.calls`
with its parameters as the client sends them (strings), and fails exactly as the real client
would: :meth:`FakeGraph.fail` takes Meta's error envelope (``code``, ``subcode``, message)
and raises the error :func:`~collectord.graph.answers.classify_error` makes of it, with the
same :class:`~collectord.Outcome`. A path nobody answered gets Meta's "Unsupported get
request" (code 100, subcode 33), so the double is never kinder than Meta.

:class:`PluginHost` runs polls of one source the way collectord does: its options are read
and checked like a ``[[source]]`` table (defaults filled, durations in seconds, ``metrics``
resolved through the catalogue and ``spec_for``), and between polls it keeps what the host
keeps: disabled metrics, the plugin's memory (a private copy per poll), skip and error
counts, requested extra polls, and the samples ``/metrics`` shows (a ``partial`` result is
merged into the last one).

Example::

    from datetime import UTC, datetime

    from collectord.testing import FakeGraph, PluginHost

    async def test_weather_reads_the_temperature() -> None:
        graph = FakeGraph({"me": {"temp": 21.5}})
        host = PluginHost(Weather(), graph=graph, now=datetime(2026, 1, 1, tzinfo=UTC))
        await host.poll("fast")
        assert host.value("weather_temp") == 21.5
        assert graph.calls == [("me", {"fields": "temp"})]
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectord.config.options import read_options, resolve_metrics, validate_options
from collectord.config.reader import Context, Table
from collectord.errors import ConfigError, GraphError
from collectord.graph.answers import meta_error
from collectord.graph.client import BATCH_LIMIT, encode_params, get_many
from collectord.model import Cadence, MetricSpec, Sample
from collectord.plugin.api import (
    DEFAULT_INTERVALS,
    PollContext,
    PollResult,
    SourceGraph,
    SourcePlugin,
)
from collectord.store.store import newest_per_series

__all__ = ["Call", "FakeGraph", "PluginHost"]

#: One recorded Graph call: the path and its query parameters (strings, as sent).
Call = tuple[str, dict[str, str]]


class FakeGraph:
    """A Graph API double for one source (see the module docstring).

    ``answers`` maps a path to the JSON body it answers (a ``GraphError`` is raised
    instead). :meth:`answer` adds answers that only match some query parameters; the
    latest matching one wins. A subclass may override :meth:`respond` instead.
    """

    version = "v26.0"

    def __init__(self, answers: Mapping[str, Any] | None = None) -> None:
        self.calls: list[Call] = []
        #: The HTTP requests the real client would have sent: ``("GET", path, params)``, or
        #: ``("POST", "", {"batch": [(path, params), ...]})`` per batch of up to 50 calls.
        self.http: list[tuple[str, str, dict[str, Any]]] = []
        self._answers: list[tuple[str, dict[str, str], Any]] = []
        for path, body in (answers or {}).items():
            self.answer(path, body)

    def answer(self, path: str, body: Any, *, params: Mapping[str, Any] | None = None) -> None:
        """Answer ``GET path`` with ``body`` (when the query holds ``params``)."""
        self._answers.append((path.strip("/"), encode_params(params), body))

    def fail(
        self,
        path: str,
        message: str,
        *,
        code: int,
        subcode: int | None = None,
        http_status: int = 400,
        params: Mapping[str, Any] | None = None,
    ) -> GraphError:
        """Answer ``GET path`` with Meta's error envelope; returns the error it raises."""
        error = meta_error(message, code=code, subcode=subcode, http_status=http_status)
        self.answer(path, error, params=params)
        return error

    def respond(self, path: str, params: dict[str, str]) -> Any:
        """The body for one call (raise a :class:`GraphError` to fail it)."""
        for known, wanted, body in reversed(self._answers):
            if known == path and all(params.get(k) == v for k, v in wanted.items()):
                if isinstance(body, GraphError):
                    raise body
                return copy.deepcopy(body)
        raise meta_error(
            f"Unsupported get request. Object with ID '{path}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            code=100,
            subcode=33,
        )

    def paths(self) -> list[str]:
        """The paths called so far, in order."""
        return [path for path, _ in self.calls]

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET path``: the answer's body, or its error raised."""
        self.http.append(("GET", path.strip("/"), encode_params(params)))
        return self._call(path, params)

    def _call(self, path: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
        clean = path.strip("/")
        query = encode_params(params)
        self.calls.append((clean, query))
        body = self.respond(clean, dict(query))
        if not isinstance(body, dict):
            raise meta_error("the answer is not a JSON object", code=1, http_status=500)
        return body

    async def get_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_items: int | None = None,
        max_pages: int = 100,
    ) -> list[dict[str, Any]]:
        """Follow ``paging.next`` by its ``cursors.after`` (``after=`` in the next call)."""
        query = encode_params(params)
        items: list[dict[str, Any]] = []
        for _ in range(max_pages):
            body = await self.get(path, query)
            data = body.get("data")
            if not isinstance(data, list):
                raise meta_error("a page without a data list", code=1, http_status=500)
            items.extend(data)
            if max_items is not None and len(items) >= max_items:
                return items[:max_items]
            paging = body.get("paging")
            cursors = paging.get("cursors") if isinstance(paging, Mapping) else None
            after = cursors.get("after") if isinstance(cursors, Mapping) else None
            if not isinstance(paging, Mapping) or not paging.get("next"):
                break
            if not isinstance(after, str) or not after:
                break
            query = {**query, "after": after}
        return items

    async def batch(
        self, requests: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[dict[str, Any] | GraphError]:
        """Each request's body or error, in order (one call recorded per element)."""
        for start in range(0, len(requests), BATCH_LIMIT):
            part = [(p, encode_params(q)) for p, q in requests[start : start + BATCH_LIMIT]]
            self.http.append(("POST", "", {"batch": part}))
        out: list[dict[str, Any] | GraphError] = []
        for path, params in requests:
            try:
                out.append(self._call(path, params))
            except GraphError as err:
                out.append(err)
        return out

    async def get_many(
        self, calls: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[dict[str, Any] | GraphError]:
        """One answer per call, by the real client's batching policy (one call a GET,
        several a batch) and with its reading of the answers."""
        return await get_many(self, calls)


class PluginHost:
    """One source of ``plugin``, polled like collectord polls it (see the module docstring).

    ``options`` are the plugin's keys as a ``[[source]]`` table holds them (TOML values:
    durations as ``"28d"``, arrays as lists or tuples); ``metrics`` is the source's ``metrics`` list (``None``: the
    plugin's default set). An invalid table raises :class:`~collectord.ConfigError`.
    ``now`` is the time every poll sees unless a poll is given its own.
    """

    def __init__(
        self,
        plugin: SourcePlugin,
        options: Mapping[str, Any] | None = None,
        *,
        graph: SourceGraph,
        metrics: Sequence[str] | None = None,
        source: str = "test",
        now: datetime | None = None,
    ) -> None:
        self.plugin = plugin
        self.graph = graph
        self.source = source
        self.now = now or datetime(2026, 1, 1, tzinfo=UTC)
        self.options, self.specs = _read_source(plugin, source, options or {}, metrics)
        #: What the host keeps between polls.
        self.disabled: dict[str, str] = {}
        self.disabled_at: dict[str, datetime] = {}
        self.memory: dict[str, Any] = {}
        self.errors: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        #: ``(cadence, when)`` of every extra poll results asked for (each instant once).
        self.poll_requests: list[tuple[Cadence, datetime]] = []
        self.results: list[PollResult] = []
        self._samples: dict[Cadence, tuple[Sample, ...]] = {}
        #: The source's interval of each cadence, in seconds (the config's defaults).
        self.intervals: dict[str, float] = dict(DEFAULT_INTERVALS)

    def context(
        self, cadence: Cadence, *, now: datetime | None = None, requested: bool = False
    ) -> PollContext:
        """The context of one poll, as the host builds it (the memory is a private copy)."""
        return PollContext(
            source=self.source,
            plugin=self.plugin.name,
            cadence=cadence,
            options=dict(self.options),
            graph=self.graph,
            catalogue=self.specs,
            now=now or self.now,
            disabled_before=dict(self.disabled),
            disabled_at=dict(self.disabled_at),
            memory=copy.deepcopy(self.memory),
            requested=requested,
            previous=self._samples.get(cadence, ()),
            intervals=dict(self.intervals),
        )

    def record(self, cadence: Cadence, answer: PollResult | Sequence[Sample]) -> PollResult:
        """Keep what a poll returned, as the host's store does."""
        result = answer if isinstance(answer, PollResult) else PollResult(samples=tuple(answer))
        for skip in result.skipped:
            self.errors["skipped_object"] += 1
            self.skipped[skip.reason] += 1
        for key in result.reenabled:
            self.disabled.pop(key, None)
            self.disabled_at.pop(key, None)
        for d in result.disabled:
            if d.metric not in self.disabled:
                self.disabled[d.metric] = d.reason
                self.errors["invalid_metric"] += 1
            if d.at is not None:
                self.disabled_at[d.metric] = d.at
        if result.memory is not None:
            self.memory = copy.deepcopy(dict(result.memory))
        when = result.poll_again_at
        if when is not None and (cadence, when) not in self.poll_requests:
            self.poll_requests.append((cadence, when))  # one per instant, as the scheduler
        kept = self._samples.get(cadence, ()) if result.partial else ()
        self._samples[cadence] = newest_per_series((*kept, *result.samples))
        self.results.append(result)
        return result

    async def poll(
        self, cadence: Cadence, *, now: datetime | None = None, requested: bool = False
    ) -> PollResult:
        """One poll: its result is recorded and returned. A :class:`GraphError` the plugin
        raises is counted under its reason and raised again (the last samples stay)."""
        ctx = self.context(cadence, now=now, requested=requested)
        try:
            answer = await self.plugin.collect(ctx)
        except GraphError as err:
            self.errors[err.reason] += 1
            raise
        return self.record(
            cadence, answer if isinstance(answer, PollResult) else ctx.result(answer)
        )

    def samples(self, cadence: Cadence | None = None) -> tuple[Sample, ...]:
        """What ``/metrics`` shows for the source now (of one cadence, when given)."""
        cadences: Iterable[Cadence] = (cadence,) if cadence else tuple(self._samples)
        return tuple(s for c in cadences for s in self._samples.get(c, ()))

    def series(self, metric: str, **labels: str) -> list[Sample]:
        """The samples of family ``metric`` whose labels include ``labels``."""
        return [
            s
            for s in self.samples()
            if s.metric == metric and all(s.label_dict.get(k) == v for k, v in labels.items())
        ]

    def value(self, metric: str, **labels: str) -> float:
        """The value of the one series of ``metric`` with ``labels``; an error otherwise."""
        found = self.series(metric, **labels)
        if len(found) != 1:
            raise LookupError(f"{len(found)} series of {metric} with {labels}, not one")
        return found[0].value


def _read_source(
    plugin: SourcePlugin,
    source: str,
    options: Mapping[str, Any],
    metrics: Sequence[str] | None,
) -> tuple[dict[str, Any], tuple[MetricSpec, ...]]:
    """The plugin's options and the source's specs, read as the config loader reads a
    ``[[source]]`` table; every problem raises one :class:`ConfigError`."""
    ctx = Context(file="<test>", base_dir=Path.cwd(), environ={})
    data = {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}
    if metrics is not None:
        data["metrics"] = list(metrics)
    table = Table(ctx, f'source "{source}"', data)
    listed = table.take("metrics", "str_list")
    values, complete = read_options(table, plugin)
    table.finish(strict=True)
    specs = resolve_metrics(table, plugin, listed)
    if complete:
        validate_options(table, plugin, values)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return values, specs
