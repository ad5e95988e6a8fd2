"""Prometheus exposition of the store: a custom collector over one store snapshot.

:class:`InsightsCollector` turns one :meth:`collectord.store.store.Store.snapshot` into
metric families: the samples the plugins collected (built by
:class:`~collectord.exporter.families.FamilyBuilder`), then collectord's self-metrics
(README "Metrics"). It does no I/O and never awaits. :func:`make_registry` builds
the private registry; the HTTP server serves it through
:class:`~collectord.exporter.exposition.Exposition`, which caches the rendered samples.
"""

from __future__ import annotations

import platform
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from collectord.exporter.families import HELP_SUFFIX, FamilyBuilder
from collectord.graph.stats import GraphStats
from collectord.model import ERROR_REASONS
from collectord.sinks.stats import SinkStats
from collectord.store.status import SOURCE_STATES
from collectord.store.store import Snapshot, SourceView, Store

__all__ = ["HELP_SUFFIX", "InsightsCollector", "ReloadStats", "WebhookStats", "make_registry"]


@dataclass
class ReloadStats:
    """The outcome of the last config reload, as the daemon sets it (the start counts as
    the first successful one)."""

    successful: bool = True
    #: Unix time a config was last applied (0 until the daemon sets it).
    success_time: float = 0.0


#: Outcomes of a webhook request: ``accepted`` (signed, parsed, answered 200),
#: ``bad_signature`` (missing or wrong ``X-Hub-Signature-256``), ``malformed`` (not the JSON
#: of a delivery), ``too_large`` (over the body limit), ``too_slow`` (the body did not arrive
#: within the body timeout).
WEBHOOK_REQUEST_OUTCOMES = ("accepted", "bad_signature", "malformed", "too_large", "too_slow")
#: Outcomes of one change of an accepted delivery: ``recorded`` (a source took it),
#: ``forwarded`` / ``forward_failed`` (sharding: the replica polling the account took it /
#: could not be reached), ``unknown_account`` (no source follows the account),
#: ``unknown_field`` (a field collectord does not read).
WEBHOOK_CHANGE_OUTCOMES = (
    "recorded",
    "forwarded",
    "forward_failed",
    "unknown_account",
    "unknown_field",
)


@dataclass
class WebhookStats:
    """Counts of the ``[webhooks]`` listener, by outcome (the listener writes them)."""

    requests: Counter[str] = field(default_factory=Counter)
    changes: Counter[str] = field(default_factory=Counter)

    @classmethod
    def started(cls) -> WebhookStats:
        """Every outcome at 0, so that rates exist before the first delivery."""
        return cls(
            Counter(dict.fromkeys(WEBHOOK_REQUEST_OUTCOMES, 0)),
            Counter(dict.fromkeys(WEBHOOK_CHANGE_OUTCOMES, 0)),
        )


class InsightsCollector:
    """Exposes the store's samples and collectord's self-metrics.

    Every sample becomes a gauge series of the family ``Sample.metric``, with ``source``
    as its first label followed by the sample's own labels (sorted by name), and HELP from
    the plugin's catalogue. A family keeps the label names of the first sample seen; a
    sample with other label names, an invalid name or a reserved prefix is left out (logged
    once per family). Two samples of one series keep the one with the newest ``end_time``.

    Example exposition::

        # HELP facebook_page_views Page views. Collected from the Graph API on a schedule; ...
        # TYPE facebook_page_views gauge
        facebook_page_views{page_id="1234567890",period="day",source="acme-page"} 123.0
        collectord_build_info{python="3.11.9",version="0.1.0"} 1.0
        collectord_shard_info{shard="0/1"} 1.0
        collectord_source_up{plugin="facebook_page",source="acme-page"} 1.0
        collectord_source_state{plugin="facebook_page",source="acme-page",state="ok"} 1.0
        collectord_source_state{plugin="facebook_page",source="acme-page",state="failing"} 0.0
        collectord_source_last_success_timestamp_seconds{cadence="fast",plugin="facebook_page",source="acme-page"} 1.7639208e+09
        collectord_source_poll_duration_seconds_bucket{cadence="fast",le="0.5",plugin="facebook_page",source="acme-page"} 3.0
        collectord_source_poll_duration_seconds_count{cadence="fast",plugin="facebook_page",source="acme-page"} 4.0
        collectord_source_poll_duration_seconds_sum{cadence="fast",plugin="facebook_page",source="acme-page"} 1.9
        collectord_source_poll_errors_total{plugin="facebook_page",reason="throttled",source="acme-page"} 0.0
        collectord_source_newest_end_time_seconds{cadence="daily",plugin="facebook_page",source="acme-page"} 1.7638776e+09
        collectord_source_series{plugin="facebook_page",source="acme-page"} 42.0
        collectord_metric_disabled{metric="page_fans",reason="invalid_metric",source="acme-page"} 1.0
        collectord_graph_requests_total{code="200"} 118.0
        collectord_graph_usage_ratio{id="",kind="call_count",scope="app"} 0.12
        collectord_graph_calls_total{budget="app"} 0.0
        collectord_graph_calls_total{budget="token:3f2a9c0d11b4e5f6"} 2410.0
        collectord_graph_throttled_until_timestamp_seconds{budget="app"} 0.0
        collectord_graph_throttled_until_timestamp_seconds{budget="token:3f2a9c0d11b4e5f6"} 0.0
        collectord_graph_api_version_info{requested="v26.0",served="v26.0"} 1.0
        collectord_token_expiry_timestamp_seconds{source="acme-page"} 0.0
        collectord_token_data_access_expiry_timestamp_seconds{source="acme-page"} 1.7716896e+09
        collectord_token_valid{source="acme-page"} 1.0
        collectord_token_info{source="acme-page",type="PAGE"} 1.0
        collectord_token_missing_scope{scope="read_insights",source="acme-page"} 1.0
        collectord_sink_records_total{sink="jsonl"} 5012.0
        collectord_sink_errors_total{sink="jsonl"} 0.0
        collectord_sink_dropped_total{sink="jsonl"} 0.0
        collectord_config_last_reload_successful 1.0
        collectord_config_last_reload_success_timestamp_seconds 1.7639208e+09
    """

    def __init__(
        self,
        store: Store,
        graph_stats: GraphStats,
        sinks: Sequence[SinkStats],
        *,
        version: str,
        shard: str = "0/1",
        self_metrics: bool = True,
        reload: ReloadStats | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        #: Unix time now, for the sources' state (``stale``).
        self._clock = clock
        #: The daemon's reload outcome (it sets its own after the exposition is built).
        self.reload = reload if reload is not None else ReloadStats()
        #: The ``[webhooks]`` listener's counts (the daemon sets its own when it listens).
        self.webhooks = WebhookStats()
        self._with_self_metrics = self_metrics
        self._graph_stats = graph_stats
        self._sinks = tuple(sinks)
        self._version = version
        #: This process's shard, ``I/N`` (the daemon sets its own; the status page shows it).
        self.shard = shard
        self._python = platform.python_version()
        self.families = FamilyBuilder()

    def describe(self) -> list[Metric]:
        """Nothing: registering must not trigger a collection."""
        return []

    def collect(self) -> Iterator[Metric]:
        """Build every family from one snapshot of the store."""
        snapshot = self._store.snapshot()
        built = self.families.build(snapshot)
        yield from built.families
        yield from self.self_families(snapshot, built.series_per_source)

    def self_families(
        self, snapshot: Snapshot, series_per_source: Mapping[str, int]
    ) -> Iterator[Metric]:
        """collectord's self-metrics (none when built with ``self_metrics=False``).

        Reads the live graph and sink counters: call it on the event loop.
        """
        if self._with_self_metrics:
            yield from self._self_metrics(snapshot, series_per_source)

    # -- self-metrics ---------------------------------------------------------------------
    def _self_metrics(
        self, snapshot: Snapshot, series_per_source: Mapping[str, int]
    ) -> Iterator[Metric]:
        build = GaugeMetricFamily(
            "collectord_build_info",
            "collectord's version and Python version; always 1.",
            labels=("version", "python"),
        )
        build.add_metric((self._version, self._python), 1)
        yield build
        shard = GaugeMetricFamily(
            "collectord_shard_info",
            "The shard of this process, I/N (0/1 when not sharded); always 1.",
            labels=("shard",),
        )
        shard.add_metric((self.shard,), 1)
        yield shard
        yield from self._source_metrics(snapshot.sources, series_per_source)
        yield self._state_metric(snapshot.sources)
        yield from self._graph_metrics()
        yield from self._sink_metrics()
        yield from self._reload_metrics()
        yield from self._webhook_metrics()

    def _source_metrics(
        self, sources: Sequence[SourceView], series_per_source: Mapping[str, int]
    ) -> Iterator[Metric]:
        sp = ("source", "plugin")
        spc = ("source", "plugin", "cadence")
        up = GaugeMetricFamily(
            "collectord_source_up",
            "1 if the last poll of every cadence of the source succeeded.",
            labels=sp,
        )
        last_success = GaugeMetricFamily(
            "collectord_source_last_success_timestamp_seconds",
            "Unix time of the last successful poll.",
            labels=spc,
        )
        durations = HistogramMetricFamily(
            "collectord_source_poll_duration_seconds",
            "Histogram of poll durations in seconds.",
            labels=spc,
        )
        errors = CounterMetricFamily(
            "collectord_source_poll_errors",
            "Poll errors and skipped objects by reason.",
            labels=(*sp, "reason"),
        )
        newest = GaugeMetricFamily(
            "collectord_source_newest_end_time_seconds",
            "The newest Meta end_time among the source's samples, as unix time.",
            labels=spc,
        )
        series = GaugeMetricFamily(
            "collectord_source_series", "Series the source currently exposes.", labels=sp
        )
        disabled = GaugeMetricFamily(
            "collectord_metric_disabled",
            "1 for each metric Meta rejected for this source.",
            labels=("source", "metric", "reason"),
        )
        for status in sources:
            ids = (status.name, status.plugin)
            up.add_metric(ids, 1.0 if status.up else 0.0)
            for cadence, cs in status.per_cadence.items():
                if cs.last_success is not None:
                    last_success.add_metric((*ids, cadence), cs.last_success)
                if cs.newest_end_time is not None:
                    newest.add_metric((*ids, cadence), cs.newest_end_time)
                durations.add_metric(
                    (*ids, cadence), cs.durations.buckets(), sum_value=cs.durations.sum
                )
            for reason, count in _error_counts(status).items():
                errors.add_metric((*ids, reason), count)
            series.add_metric(ids, series_per_source.get(status.name, 0))
            for metric, reason in status.disabled.items():
                disabled.add_metric((status.name, metric, reason), 1.0)
        yield from (up, last_success, durations, errors, newest, series, disabled)
        yield from _token_metrics(sources)

    def _state_metric(self, sources: Sequence[SourceView]) -> Metric:
        """``collectord_source_state``: every state of every source, 1 for its current one."""
        family = GaugeMetricFamily(
            "collectord_source_state",
            "1 for the source's current state (ok, failing, needs_reauth, throttled, stale), "
            "0 for the others.",
            labels=("source", "plugin", "state"),
        )
        now = self._clock()
        for status in sources:
            current = status.state(now)
            for state in SOURCE_STATES:
                family.add_metric(
                    (status.name, status.plugin, state), 1.0 if state == current else 0.0
                )
        return family

    def _graph_metrics(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "collectord_graph_requests",
            "HTTP requests sent to the Graph API, by status code.",
            labels=("code",),
        )
        for code, count in sorted(self._graph_stats.requests.items()):
            requests.add_metric((code,), count)
        yield requests
        usage = GaugeMetricFamily(
            "collectord_graph_usage_ratio",
            "Latest rate-limit usage from Meta's usage headers, 0..1.",
            labels=("scope", "id", "kind"),
        )
        for key, ratio in sorted(self._graph_stats.usage.items()):
            usage.add_metric(key, ratio)
        yield usage
        yield from self._budget_metrics()

    def _budget_metrics(self) -> Iterator[Metric]:
        stats = self._graph_stats
        calls = CounterMetricFamily(
            "collectord_graph_calls",
            "Graph API calls sent, by rate-limit budget (each batch element is one call).",
            labels=("budget",),
        )
        until = GaugeMetricFamily(
            "collectord_graph_throttled_until_timestamp_seconds",
            "Unix time until which Meta throttled the budget and collectord sends nothing "
            "under it (0 when not throttled).",
            labels=("budget",),
        )
        budgets = sorted(set(stats.calls) | set(stats.throttled_until) | {"app"})
        for budget in budgets:
            calls.add_metric((budget,), stats.calls.get(budget, 0))
            until.add_metric((budget,), stats.throttled_until.get(budget, 0.0))
        yield calls
        yield until
        versions = GaugeMetricFamily(
            "collectord_graph_api_version_info",
            "The API version requested and the one Meta says served it "
            "(facebook-api-version answer header); always 1.",
            labels=("requested", "served"),
        )
        for pair, value in sorted(stats.api_versions.items()):
            versions.add_metric(pair, value)
        yield versions

    def _sink_metrics(self) -> Iterator[Metric]:
        records = CounterMetricFamily(
            "collectord_sink_records", "Records written by the sink.", labels=("sink",)
        )
        errors = CounterMetricFamily(
            "collectord_sink_errors", "Records the sink failed to write.", labels=("sink",)
        )
        dropped = CounterMetricFamily(
            "collectord_sink_dropped",
            "Records the sink dropped because its write queue was full.",
            labels=("sink",),
        )
        for sink in self._sinks:
            records.add_metric((sink.name,), sink.records)
            errors.add_metric((sink.name,), sink.errors)
            dropped.add_metric((sink.name,), sink.dropped)
        yield records
        yield errors
        yield dropped

    def _reload_metrics(self) -> Iterator[Metric]:
        ok = GaugeMetricFamily(
            "collectord_config_last_reload_successful",
            "1 if the last config reload (or the start) applied the config, 0 if it was refused.",
        )
        ok.add_metric((), 1.0 if self.reload.successful else 0.0)
        yield ok
        when = GaugeMetricFamily(
            "collectord_config_last_reload_success_timestamp_seconds",
            "Unix time a config was last applied (at start or by a reload).",
        )
        when.add_metric((), self.reload.success_time)
        yield when

    def _webhook_metrics(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "collectord_webhook_requests",
            "Webhook deliveries received on the [webhooks] path, by outcome.",
            labels=("outcome",),
        )
        for outcome, count in sorted(self.webhooks.requests.items()):
            requests.add_metric((outcome,), count)
        yield requests
        changes = CounterMetricFamily(
            "collectord_webhook_changes",
            "Changes carried by accepted webhook deliveries, by outcome.",
            labels=("outcome",),
        )
        for outcome, count in sorted(self.webhooks.changes.items()):
            changes.add_metric((outcome,), count)
        yield changes


def _token_metrics(sources: Sequence[SourceView]) -> Iterator[Metric]:
    """What ``debug_token`` last said about each source's token; nothing for a source
    whose token was never answered for (no app credentials, no check yet)."""
    src = ("source",)
    expiry = GaugeMetricFamily(
        "collectord_token_expiry_timestamp_seconds",
        "When the source's access token expires, as unix time (0 = never).",
        labels=src,
    )
    data_access = GaugeMetricFamily(
        "collectord_token_data_access_expiry_timestamp_seconds",
        "When the data access of the source's token expires, as unix time.",
        labels=src,
    )
    valid = GaugeMetricFamily(
        "collectord_token_valid", "1 if debug_token says the source's token is valid.", labels=src
    )
    info = GaugeMetricFamily(
        "collectord_token_info", "The type of the source's token; always 1.", labels=(*src, "type")
    )
    missing = GaugeMetricFamily(
        "collectord_token_missing_scope",
        "1 for each scope the source's plugin needs and its token lacks.",
        labels=(*src, "scope"),
    )
    for status in sources:
        token = status.token
        if token is None or token.valid is None:
            continue
        name = status.name
        valid.add_metric((name,), 1.0 if token.valid else 0.0)
        if token.expires_at is not None:
            expiry.add_metric((name,), token.expires_at)
        if token.data_access_expires_at is not None:
            data_access.add_metric((name,), token.data_access_expires_at)
        if token.type is not None:
            info.add_metric((name, token.type), 1.0)
        for scope in token.missing_scopes:
            missing.add_metric((name, scope), 1.0)
    yield from (expiry, data_access, valid, info, missing)


def _error_counts(status: SourceView) -> dict[str, float]:
    """Every reason of ERROR_REASONS (zero when unseen); unknown reasons count as ``other``."""
    counts = dict.fromkeys(ERROR_REASONS, 0.0)
    for reason, count in status.errors.items():
        counts[reason if reason in counts else "other"] += count
    return counts


def make_registry(
    store: Store,
    graph_stats: GraphStats,
    sinks: Sequence[SinkStats],
    *,
    version: str,
) -> CollectorRegistry:
    """A private registry with the insights collector and the standard process collectors."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(InsightsCollector(store, graph_stats, sinks, version=version))
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry
