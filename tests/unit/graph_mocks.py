"""aioresponses for collectord's tests: the aiohttp 3.14 shim, and a small Meta double.

aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp 3.14
requires (pnuckowski/aioresponses#289); :class:`Mocked` supplies a finished one.
:class:`MetaDouble` answers plain GETs and batch POSTs from one handler function, so a
plugin can be driven through the real :class:`~collectord.graph.client.GraphClient`;
:class:`OneSource` loads a one-source config and polls it as the daemon's poller does.
:class:`StateContext` is a poll context that writes what a poll notes straight into a
:class:`SourceState`, for the insights fetcher's tests (plugin tests use
:mod:`collectord.testing`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from collectord.config.loader import load_config
from collectord.graph.client import GraphClient
from collectord.graph.stats import GraphStats
from collectord.model import Sample
from collectord.plugin.api import PollContext
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.scheduling.scheduler import Poller, SourceRuntime
from collectord.store.store import SourceStatus, Store

BASE = "https://graph.test"
VERSION = "v26.0"


class CompatResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class Mocked(aioresponses):
    """aioresponses whose mocked answers are :class:`CompatResponse` objects."""

    def add(self, url: Any, method: str = "GET", **kwargs: Any) -> None:  # type: ignore[override]
        kwargs["response_class"] = kwargs.get("response_class") or CompatResponse
        super().add(url, method, **kwargs)


def envelope(code: int, message: str, **extra: Any) -> dict[str, Any]:
    """Meta's error envelope (docs/meta-facts.md 9.1)."""
    return {
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AK5w64sspf_nMUi",
            **extra,
        }
    }


#: What a handler returns: (HTTP status, JSON body).
Answer = tuple[int, Any]
Handler = Callable[[str, dict[str, str]], Answer]


class MetaDouble:
    """Routes ``GET {BASE}/{VERSION}/{path}`` and batch elements to ``handler(path, params)``.

    ``calls`` lists every Graph call (a batch element counts as one); ``http`` counts HTTP
    requests. Batch answers follow docs/meta-facts.md 8: a JSON array, string bodies, outer 200.
    """

    def __init__(self, mocked: aioresponses, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, dict[str, str]]] = []
        self.http = 0
        prefix = re.escape(f"{BASE}/{VERSION}/")
        mocked.get(re.compile(rf"^{prefix}.*"), callback=self._get, repeat=True)
        mocked.post(re.compile(rf"^{prefix}(\?.*)?$"), callback=self._batch, repeat=True)

    def _call(self, relative: str) -> Answer:
        parts = urlsplit(relative)
        params = {
            k: v
            for k, v in parse_qsl(parts.query)
            if k not in ("access_token", "appsecret_proof", "appsecret_time")
        }
        path = parts.path.strip("/")
        self.calls.append((path, params))
        return self.handler(path, params)

    def _get(self, url: URL, **_: Any) -> CallbackResult:
        self.http += 1
        relative = str(url).split(f"/{VERSION}/", 1)[1]
        status, body = self._call(relative)
        return CallbackResult(status=status, payload=body, response_class=CompatResponse)

    def _batch(self, url: URL, **kwargs: Any) -> CallbackResult:
        self.http += 1
        form: Mapping[str, str] = kwargs["data"]
        out = []
        for element in json.loads(form["batch"]):
            status, body = self._call(element["relative_url"])
            out.append({"code": status, "body": json.dumps(body)})
        return CallbackResult(status=200, payload=out, response_class=CompatResponse)


def fb_time(dt: datetime) -> str:
    """A timestamp as Meta writes it: ``2026-11-22T08:00:00+0000``."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S+0000")


async def _no_sleep(_: float) -> None:
    return None


class OneSource:
    """The source ``s`` of a one-source config (``source_toml`` is the body of its
    ``[[source]]`` table), polled through the real Graph client against ``BASE``, with a
    fresh store; backoff sleeps are skipped. ``now`` fixes the time every poll sees (the
    plugin's ``ctx.now``), so windows computed from it can be asserted exactly."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tmp_path: Path,
        source_toml: str,
        *,
        now: datetime | None = None,
    ) -> None:
        self.now = now
        cfg = tmp_path / "collector.toml"
        cfg.write_text(f'[graph]\nbase_url = "{BASE}"\n\n[[source]]\nname = "s"\n{source_toml}')
        plugins = plugin_map(load_source_plugins())
        config = load_config(cfg, plugins)
        (src,) = config.sources
        self.client = GraphClient(session, config.graph, stats=GraphStats(), sleep=_no_sleep)
        self.store = Store()
        self.status: SourceStatus = self.store.register(src.name, src.plugin, src.cadences())
        self.runtime = SourceRuntime(
            src, plugins[src.plugin], self.client.bind(src.access_token), self.status
        )

    async def poll(self, cadence: str, *, requested: bool = False) -> bool:
        """One poll of ``cadence``, as the scheduler runs it; True when it delivered."""
        poller = Poller(self.store) if self.now is None else Poller(self.store, clock=self._now)
        return await poller.poll(
            self.runtime,
            cadence,  # type: ignore[arg-type]
            requested=requested,
        )

    def _now(self) -> datetime:
        assert self.now is not None
        return self.now

    def samples(self) -> tuple[Sample, ...]:
        """What ``/metrics`` shows for the source now."""
        return self.store.samples("s")

    def series(self, metric: str) -> list[Sample]:
        return [s for s in self.samples() if s.metric == metric]

    def reason(self, cadence: str) -> str | None:
        return self.status.per_cadence[cadence].last_error_reason


# -- a write-through poll context, for tests of the insights fetcher --------------------


@dataclass
class SourceState:
    """What the host keeps of one source between polls (disabled metrics, memory, counts)."""

    name: str = "test"
    plugin: str = ""
    cadences: tuple[str, ...] = ("fast", "daily")
    disabled: dict[str, str] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)


def new_state(
    name: str = "test", plugin: str = "", cadences: Iterable[str] = ("fast", "daily")
) -> SourceState:
    return SourceState(name=name, plugin=plugin, cadences=tuple(cadences))


@dataclass
class StateContext(PollContext):
    """A poll context whose notes (disabled metrics, memory, skips) land in ``state`` at
    once, so that a test can call the fetcher several times and look in between."""

    state: SourceState = field(default_factory=SourceState)

    def __post_init__(self) -> None:
        self.disabled_before = self.state.disabled
        self.memory = self.state.memory

    def disable_metric(self, graph_name: str, reason: str) -> None:
        if graph_name not in self.state.disabled:
            self.state.disabled[graph_name] = reason
            self.state.errors["invalid_metric"] += 1

    def skip(self, object_id: str, reason: str) -> None:
        super().skip(object_id, reason)
        self.state.errors["skipped_object"] += 1
        self.state.skipped[reason] += 1
