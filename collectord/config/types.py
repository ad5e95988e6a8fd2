"""The validated configuration, as the rest of collectord sees it (see ``config.py`` for
reading and checking ``collector.toml``). All durations are float seconds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collectord.model import Cadence, MetricSpec
from collectord.secret import Secret

if TYPE_CHECKING:  # config.web reads tables (config.reader), which use these types
    from collectord.config.web import WebConfig
    from collectord.config.webhooks import WebhooksConfig

DEFAULT_LISTEN = ("127.0.0.1", 9464)


@dataclass(frozen=True)
class CollectorConfig:
    listen_host: str = DEFAULT_LISTEN[0]
    listen_port: int = DEFAULT_LISTEN[1]
    log_level: str = "info"
    log_format: str = "console"
    state_dir: Path = Path(".collectord")
    plugin_dirs: tuple[Path, ...] = ()
    #: ``[collector.web]``: TLS and basic auth for the endpoints; None when not set.
    web: WebConfig | None = None
    #: ``shard``: ``"I/N"`` or ``"auto/N"`` as written (see :mod:`collectord.sharding`);
    #: None when not sharded.
    shard: str | None = None


@dataclass(frozen=True)
class GraphConfig:
    base_url: str = "https://graph.facebook.com"
    version: str = "v26.0"
    app_id: str | None = None
    app_secret: Secret | None = None
    timeout: float = 30.0
    max_concurrency: int = 8
    usage_ceiling: float = 0.75
    #: How often each source's token is checked with ``debug_token`` (with app_id/app_secret).
    token_check_interval: float = 6 * 3600.0
    #: The keys the user set in ``[graph]`` and in ``[source.graph]`` (see
    #: :func:`collectord.graph.api.settings_for`: a plugin's own API decides the rest).
    graph_keys: frozenset[str] = field(default=frozenset(), repr=False)
    source_keys: frozenset[str] = field(default=frozenset(), repr=False)


@dataclass(frozen=True)
class ScheduleConfig:
    fast_interval: float = 15 * 60.0
    daily_interval: float = 24 * 3600.0
    jitter: float = 30.0

    def interval(self, cadence: Cadence) -> float:
        return self.fast_interval if cadence == "fast" else self.daily_interval


@dataclass(frozen=True)
class SourceConfig:
    """One ``[[source]]`` table, with ``[graph]`` and ``[schedule]`` merged in.

    ``metrics`` is the user's list (``None`` = the plugin's default set); ``specs`` is the
    resolved catalogue this source collects. ``options`` holds the plugin's own keys.
    """

    name: str
    plugin: str
    access_token: Secret | None
    metrics: tuple[str, ...] | None
    schedule: ScheduleConfig
    graph: GraphConfig
    options: Mapping[str, Any] = field(default_factory=dict)
    specs: tuple[MetricSpec, ...] = ()
    #: ``discover = true``: the source stands for every object its token can see (minus
    #: ``exclude``, within ``include``); it runs as one child source per object found.
    discover: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: ``renew_token = true``: a long-lived user or Instagram-Login token is renewed before
    #: it expires and the new one kept in ``state_dir``.
    renew_token: bool = False
    #: For a child of a discovering source: the discovering source's name.
    parent: str | None = None

    def cadences(self) -> tuple[Cadence, ...]:
        """The cadences this source has metrics for, ``fast`` first."""
        present = {s.cadence for s in self.specs}
        return tuple(c for c in ("fast", "daily") if c in present)  # type: ignore[misc]


#: ``[sink.jsonl] fsync``: ``batch`` syncs the file to disk after every batch of records
#: written (a poll's worth), ``never`` leaves it to the operating system.
FSYNC_POLICIES = ("batch", "never")


@dataclass(frozen=True)
class JsonlSinkConfig:
    path: Path
    max_bytes: int = 104_857_600
    backups: int = 5
    fsync: str = "batch"


@dataclass(frozen=True)
class Config:
    path: Path
    collector: CollectorConfig
    graph: GraphConfig
    schedule: ScheduleConfig
    sources: tuple[SourceConfig, ...]
    jsonl: JsonlSinkConfig | None = None
    #: ``[webhooks]``: the listener for Meta's story-insights deliveries; None when not set.
    webhooks: WebhooksConfig | None = None
    #: Non-fatal remarks (an interval shorter than Meta refreshes), printed by ``check``.
    warnings: tuple[str, ...] = ()
