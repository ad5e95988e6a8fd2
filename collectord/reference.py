"""The metrics reference (``docs/metrics.md``), generated from what collectord really exposes.

The plugin tables come from the loaded plugins' catalogues (:class:`~collectord.MetricSpec`:
Graph name, Prometheus name, kind, cadence, periods, unit, default, breakdown families and
help); the self-metrics table from the exporter's own families (name, type and HELP) joined
with :data:`SELF_METRIC_NOTES` (labels and what to read from each). Regenerate after
changing a catalogue or a self-metric::

    python -m collectord.reference > docs/metrics.md

``tests/unit/test_docs.py`` fails when the checked-in file differs from this output.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import Metric

import collectord
from collectord.exporter.registry import InsightsCollector
from collectord.graph.stats import GraphStats
from collectord.model import MetricSpec, breakdown_name
from collectord.plugin.manager import LoadedPlugin, load_source_plugins
from collectord.store.store import Store

#: The origin :func:`~collectord.plugin.manager.load_source_plugins` gives the plugins
#: that ship with collectord.
BUILT_IN = "built-in"

#: The command that regenerates the file; printed in its header and by the drift test.
COMMAND = "python -m collectord.reference > docs/metrics.md"


@dataclass(frozen=True, slots=True)
class SelfMetricNote:
    """What the exporter's HELP text does not say about a self-metric: its labels and how
    to read it."""

    labels: tuple[str, ...]
    notes: str


#: Labels and reading notes of every self-metric family, keyed by the exposed family name
#: (counters without ``_total``, as ``prometheus_client`` names them). The generator fails
#: when the exporter and this table disagree on which families exist.
SELF_METRIC_NOTES: Mapping[str, SelfMetricNote] = {
    "collectord_build_info": SelfMetricNote(("version", "python"), ""),
    "collectord_shard_info": SelfMetricNote(
        ("shard",),
        "`[collector] shard` or `--shard` as resolved (`auto/N` shows the ordinal taken from "
        "the hostname); sum over the replicas' `collectord_source_up` to see every source once",
    ),
    "collectord_source_up": SelfMetricNote(
        ("source", "plugin"),
        "0 while the last poll of any cadence failed, or the source waits for a new token; "
        "the last good values stay exposed",
    ),
    "collectord_source_state": SelfMetricNote(
        ("source", "plugin", "state"),
        "`state`: `ok`, `failing`, `needs_reauth`, `throttled`, `stale`, all five present "
        'for every source, 1 for the current one (docs/operations.md "Source states")',
    ),
    "collectord_source_last_success_timestamp_seconds": SelfMetricNote(
        ("source", "plugin", "cadence"), "absent until the first successful poll"
    ),
    "collectord_source_poll_duration_seconds": SelfMetricNote(
        ("source", "plugin", "cadence"), "histogram (`_bucket`, `_sum`, `_count`)"
    ),
    "collectord_source_poll_errors": SelfMetricNote(
        ("source", "plugin", "reason"),
        "`reason`: `throttled`, `auth`, `permission`, `not_found`, `invalid_metric`, `server`, "
        "`timeout`, `network`, `bad_response`, `skipped_object`, `other` (all present from the "
        "start); `not_found` is the source's own object missing (a wrong id, or one its token "
        "cannot read); `invalid_metric` counts each metric once, when Meta's rejection "
        "disables it; `skipped_object` each skipped object of each poll; `bad_response` also "
        "counts what a poll that succeeded left out (a value, series or page over a limit)",
    ),
    "collectord_source_newest_end_time_seconds": SelfMetricNote(
        ("source", "plugin", "cadence"),
        "tells stale data (Meta has not published the day yet) from a real drop",
    ),
    "collectord_source_series": SelfMetricNote(("source", "plugin"), ""),
    "collectord_metric_disabled": SelfMetricNote(
        ("source", "metric", "reason"),
        "`reason`: `invalid_metric`, `unsupported`, `unsupported_breakdown`, "
        "`unsupported_period`; `metric` is Meta's name, `metric:breakdown` for a breakdown "
        "(`reach:follow_type`), `KIND/metric` for a kind of media (`STORY/shares`, "
        "`FEED/IMAGE/shares`), `KIND/metric@object` for one object (`FEED/IMAGE/shares@1789...`, "
        "until Meta rejects it for 3 objects of the kind); asked for again a day later, "
        "and dropped when Meta answers",
    ),
    "collectord_token_expiry_timestamp_seconds": SelfMetricNote(
        ("source",),
        "0 = never; like every `collectord_token_*` metric, needs `[graph] app_id` and "
        "`app_secret` (read with `debug_token` at start and every `token_check_interval`, 6 h)",
    ),
    "collectord_token_data_access_expiry_timestamp_seconds": SelfMetricNote(
        ("source",),
        "after it the token may still authenticate but read no data; absent when Meta omits it",
    ),
    "collectord_token_valid": SelfMetricNote(("source",), "0: expired, revoked or unreadable"),
    "collectord_token_info": SelfMetricNote(
        ("source", "type"), "`type` as Meta says: `PAGE`, `USER`, `SYSTEM_USER`, `APP`, `INSTAGRAM`"
    ),
    "collectord_token_missing_scope": SelfMetricNote(
        ("source", "scope"),
        "the scopes come from the plugin (`collectord plugins` lists them); checked for valid "
        "tokens only",
    ),
    "collectord_graph_requests": SelfMetricNote(
        ("code",), "`code` is the HTTP status, or `timeout` / `network` without an answer"
    ),
    "collectord_graph_usage_ratio": SelfMetricNote(
        ("scope", "id", "kind"),
        "`scope`: `app` (`X-App-Usage`), `page` (`X-Page-Usage`) or the `type` of an "
        "`X-Business-Use-Case-Usage` entry (`pages`, `instagram`, ...); `kind`: "
        "`call_count`, `total_cputime`, `total_time`",
    ),
    "collectord_graph_calls": SelfMetricNote(
        ("budget",),
        "`budget`: `app`, or `token:<hash>` (a token's own budgets); a batch of n is n calls",
    ),
    "collectord_graph_throttled_until_timestamp_seconds": SelfMetricNote(
        ("budget",), "no request goes out under a blocked budget until then (0: not blocked)"
    ),
    "collectord_graph_api_version_info": SelfMetricNote(
        ("requested", "served"), "from Meta's `facebook-api-version` answer header"
    ),
    "collectord_sink_records": SelfMetricNote(("sink",), ""),
    "collectord_sink_errors": SelfMetricNote(
        ("sink",), "write errors never stop collection; records are written once it works"
    ),
    "collectord_sink_dropped": SelfMetricNote(
        ("sink",), "the write queue was full: the disk is slower than the polls"
    ),
    "collectord_config_last_reload_successful": SelfMetricNote(
        (), "0 after a SIGHUP or `POST /-/reload` whose config was refused (the old one runs on)"
    ),
    "collectord_config_last_reload_success_timestamp_seconds": SelfMetricNote(
        (), "set at start, then by each reload that applied a config"
    ),
    "collectord_webhook_requests": SelfMetricNote(
        ("outcome",),
        "`outcome`: `accepted`, `bad_signature`, `malformed`, `too_large`, `too_slow`; "
        "no series without a `[webhooks]` table (docs/webhooks.md)",
    ),
    "collectord_webhook_changes": SelfMetricNote(
        ("outcome",),
        "`outcome`: `recorded`, `forwarded` / `forward_failed` (sharding: passed on to the "
        "replica polling the account / it could not be reached), `unknown_account` (no "
        "source follows the account), `unknown_field`; one delivery may carry several changes",
    ),
}


def _cell(text: str) -> str:
    """Make ``text`` safe inside a markdown table cell (one line, no bare ``|``)."""
    return " ".join(text.split()).replace("|", "\\|")


def _code(items: Iterable[str]) -> str:
    return ", ".join(f"`{i}`" for i in items) or "-"


def _families(spec: MetricSpec) -> str:
    return _code(breakdown_name(spec.prom_name, b) for b in spec.breakdowns)


def render_plugin(name: str, loaded: LoadedPlugin) -> str:
    """The section of one plugin: its description, options and catalogue table."""
    plugin = loaded.plugin
    lines = [f"## `{name}`", ""]
    if plugin.description:
        lines += [_cell(plugin.description) + ".", ""]
    lines += [
        "Config keys: [configuration.md](configuration.md#built-in-plugins); what it "
        "collects and how: [sources.md](sources.md).",
        "",
    ]
    default = [m for m in plugin.catalogue if m.default]
    lines += [
        f"{len(plugin.catalogue)} metrics, {len(default)} collected by default (the others "
        "only when listed in the source's `metrics`).",
        "",
        "| Graph name | Prometheus name | kind | cadence | periods | unit | default "
        "| breakdown families | help |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for m in plugin.catalogue:
        lines.append(
            f"| `{m.graph_name}` | `{m.prom_name}` | {m.kind} | {m.cadence} "
            f"| {_code(m.periods)} | {m.unit} | {'yes' if m.default else 'no'} "
            f"| {_families(m)} | {_cell(m.help)} |"
        )
    return "\n".join(lines) + "\n"


def self_metric_families() -> list[Metric]:
    """The self-metric families the exporter builds (from an empty store: names, types and
    HELP only)."""
    collector = InsightsCollector(Store(), GraphStats(), (), version=collectord.__version__)
    return [m for m in collector.collect() if m.name.startswith("collectord_")]


def render_self_metrics(families: Iterable[Metric]) -> str:
    """The self-metrics table. Raises :class:`ValueError` when :data:`SELF_METRIC_NOTES`
    and the exporter disagree on the families."""
    families = list(families)
    exposed = {m.name for m in families}
    missing = exposed - SELF_METRIC_NOTES.keys()
    extra = SELF_METRIC_NOTES.keys() - exposed
    if missing or extra:
        raise ValueError(
            "SELF_METRIC_NOTES is out of date: "
            f"not described {sorted(missing)}, no longer exposed {sorted(extra)}"
        )
    lines = [
        "## Self-metrics",
        "",
        "Exposed by every daemon, next to the standard `process_*` and `python_info` metrics.",
        "",
        "| name | type | labels | help | notes |",
        "| --- | --- | --- | --- | --- |",
    ]
    for m in families:
        note = SELF_METRIC_NOTES[m.name]
        name = f"{m.name}_total" if m.type == "counter" else m.name
        lines.append(
            f"| `{name}` | {m.type} | {_code(note.labels)} | {_cell(m.documentation)} "
            f"| {_cell(note.notes)} |"
        )
    return "\n".join(lines) + "\n"


def render(plugins: Mapping[str, LoadedPlugin], self_metrics: Iterable[Metric]) -> str:
    """The whole of ``docs/metrics.md``."""
    head = [
        "# Metrics reference",
        "",
        f"<!-- Generated by `{COMMAND}`; do not edit by hand. -->",
        "",
        "Every metric the loaded plugins know, from their catalogues, and collectord's own "
        "metrics. How names are built and what the labels mean: [operations.md]"
        "(operations.md#metric-names-and-labels). `collectord plugins --format json` prints "
        "the same catalogue for the plugins installed where you run it.",
        "",
        "Columns: *Graph name* is Meta's name (what you list in a source's `metrics`); "
        "*kind* is `insight` (an insights metric) or `field` (a node field); *cadence* is "
        "`fast` or `daily` (`[schedule]`); *periods* are the periods requested; *unit* is "
        "after collectord's scaling (milliseconds become seconds); *default* says whether it "
        "is collected when a source does not set `metrics`; *breakdown families* are the "
        "extra families of the breakdowns requested besides the plain value.",
        "",
        "Plugins: " + ", ".join(f"[`{n}`](#{n})" for n in plugins) + "; "
        "[self-metrics](#self-metrics).",
        "",
    ]
    sections = [render_plugin(name, lp) for name, lp in plugins.items()]
    return "\n".join(head) + "\n" + "\n".join([*sections, render_self_metrics(self_metrics)])


def builtin_plugins() -> dict[str, LoadedPlugin]:
    """The plugins that ship with collectord (third-party ones installed beside it are left
    out, so the reference does not depend on the machine it is generated on)."""
    return {name: lp for name, lp in load_source_plugins().items() if lp.origin == BUILT_IN}


def generate() -> str:
    """Render the reference for the built-in plugins."""
    return render(builtin_plugins(), self_metric_families())


def main() -> int:
    """Print the reference to stdout."""
    sys.stdout.write(generate())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
