"""Helpers shared by the deploy/ tests: paths, external tools, PromQL metric names and the
names collectord exports.

The PromQL reader here is deliberately small: it finds the vector selectors of an
expression (metric name plus label matchers). The real parser checks syntax: the tests
run every expression through ``promtool`` as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
PROMETHEUS_DIR = DEPLOY / "prometheus"
RULES_FILE = PROMETHEUS_DIR / "collectord-rules.yml"
RULE_TEST_FILES = (
    PROMETHEUS_DIR / "collectord-rules.test.yml",
    PROMETHEUS_DIR / "collectord-trends.test.yml",
)
SCRAPE_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "collectord.json"

#: The self-metrics of docs/metrics.md ("Self-metrics"), as exposed.
SELF_METRICS: frozenset[str] = frozenset(
    {
        "collectord_build_info",
        "collectord_source_up",
        "collectord_source_state",
        "collectord_source_last_success_timestamp_seconds",
        "collectord_source_poll_errors_total",
        "collectord_source_newest_end_time_seconds",
        "collectord_source_series",
        "collectord_metric_disabled",
        "collectord_graph_requests_total",
        "collectord_graph_usage_ratio",
        "collectord_token_expiry_timestamp_seconds",
        "collectord_token_data_access_expiry_timestamp_seconds",
        "collectord_token_valid",
        "collectord_token_info",
        "collectord_token_missing_scope",
        "collectord_sink_records_total",
        "collectord_sink_errors_total",
    }
)
#: Self-metric histograms: exposed as ``_bucket``, ``_sum`` and ``_count`` series.
SELF_HISTOGRAMS: frozenset[str] = frozenset({"collectord_source_poll_duration_seconds"})
#: Self-metrics without a ``source`` label.
SELF_METRICS_WITHOUT_SOURCE: frozenset[str] = frozenset(
    {
        "collectord_build_info",
        "collectord_graph_requests_total",
        "collectord_graph_usage_ratio",
        "collectord_sink_records_total",
        "collectord_sink_errors_total",
    }
)


#: Seconds a supervisor's stop timeout (systemd ``TimeoutStopSec``, Kubernetes
#: ``terminationGracePeriodSeconds``) waits beyond the daemon's shutdown bound.
STOP_MARGIN = 5


def supervisor_stop_timeout() -> float:
    """What the shipped unit and manifests must give the daemon to stop: its bound plus
    :data:`STOP_MARGIN` (change ``SHUTDOWN_BOUND`` and these tests say what to update)."""
    return daemon_shutdown_bound() + STOP_MARGIN


def daemon_shutdown_bound() -> float:
    """The longest ``collectord run`` takes from SIGTERM to exit, in seconds.

    ``run`` gives running polls ``daemon.SHUTDOWN_GRACE``, then waits up to
    ``scheduler.CANCEL_WAIT`` for the ones it cancelled, then stops the HTTP server, which
    lets requests in flight run for up to ``web.SHUTDOWN_TIMEOUT``, then the rest; all of it
    within ``daemon.SHUTDOWN_BOUND``. A supervisor's stop timeout must exceed it, or it
    kills the daemon in the middle of a clean shutdown.
    """
    from collectord.daemon import (
        EXIT_MARGIN,
        HARD_EXIT_MARGIN,
        SHUTDOWN_BOUND,
        SHUTDOWN_GRACE,
        TEARDOWN_RESERVE,
    )
    from collectord.scheduling.scheduler import CANCEL_WAIT
    from collectord.web.server import SHUTDOWN_TIMEOUT

    assert SHUTDOWN_GRACE > 0
    assert SHUTDOWN_GRACE + CANCEL_WAIT + SHUTDOWN_TIMEOUT < SHUTDOWN_BOUND
    assert SHUTDOWN_GRACE + TEARDOWN_RESERVE + EXIT_MARGIN <= SHUTDOWN_BOUND
    assert 0 < HARD_EXIT_MARGIN < EXIT_MARGIN
    return SHUTDOWN_BOUND


#: Which Debian package brings each external tool (for skip reasons).
_TOOL_PACKAGES = {
    "promtool": "prometheus",
    "prometheus": "prometheus",
    "systemd-analyze": "systemd",
    "kubectl": "kubernetes-client",
}


#: Tools that ``.ci/run`` installs: with ``COLLECTORD_REQUIRE_TOOLS=1`` (set by ``.ci/run``)
#: a missing one fails the test instead of skipping it, so CI can never pass by skipping.
_CI_TOOLS = frozenset({"promtool", "prometheus", "systemd-analyze", "kubectl"})


def require_tool(name: str) -> str:
    """Return the path of the executable ``name``, or skip the test saying what installs it."""
    path = shutil.which(name)
    if path is None:
        package = _TOOL_PACKAGES.get(name, name)
        reason = f"{name} is not installed (Debian package {package!r}; CI installs it)"
        if name in _CI_TOOLS and os.environ.get("COLLECTORD_REQUIRE_TOOLS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def run_tool(args: list[str], *, cwd: Path | None = None, timeout: float = 300) -> tuple[int, str]:
    """Run a command; return its exit status and its stdout and stderr together."""
    done = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.returncode, done.stdout + done.stderr


def load_yaml(path: Path) -> Any:
    """Load one YAML document."""
    with path.open(encoding="utf-8") as f:
        return yaml.safe_load(f)


def load_yaml_all(path: Path) -> list[dict[str, Any]]:
    """Load every non-empty document of a YAML file."""
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def rule_groups() -> list[dict[str, Any]]:
    """The groups of the shipped rules file."""
    return load_yaml(RULES_FILE)["groups"]


def iter_rules() -> Iterator[dict[str, Any]]:
    """Every rule (recording and alerting) of the shipped rules file."""
    for group in rule_groups():
        yield from group["rules"]


def recorded_names() -> frozenset[str]:
    """The series names recorded by the shipped rules."""
    return frozenset(rule["record"] for rule in iter_rules() if "record" in rule)


# --------------------------------------------------------------------------- PromQL


@dataclass(frozen=True)
class Selector:
    """A vector selector: metric name and the raw text of its label matchers."""

    name: str
    matchers: str = ""

    def has_matcher(self, label: str, op: str, value: str) -> bool:
        """Whether the selector has the matcher ``label op "value"``."""
        pattern = rf'(?:^|,)\s*{re.escape(label)}\s*{re.escape(op)}\s*"{re.escape(value)}"'
        return re.search(pattern, self.matchers) is not None


_TOKEN = re.compile(
    r"""
      (?P<ws>\s+)
    | (?P<comment>\#[^\n]*)
    | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    | (?P<open>[{\[(])
    | (?P<close>[}\])])
    | (?P<number>(?:0[xX][0-9a-fA-F]+|[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?|\.[0-9]+)
                 [a-zA-Z0-9_]*)
    | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    | (?P<var>\$\{[^}]*\}|\$[a-zA-Z0-9_]+)
    | (?P<op>[-+*/%^,=!<>~@]+)
    """,
    re.VERBOSE,
)
_CLOSING = {"{": "}", "[": "]", "(": ")"}
#: Keywords followed by a parenthesised list of label names.
_LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_KEYWORDS = frozenset({"and", "or", "unless", "offset", "bool", "atan2", "inf", "nan"})
_AGGREGATIONS = frozenset(
    {
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)


def _tokens(expr: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:
            raise ValueError(f"cannot read PromQL at {expr[pos : pos + 20]!r} in {expr!r}")
        kind = match.lastgroup or ""
        if kind not in ("ws", "comment"):
            tokens.append((kind, match.group()))
        pos = match.end()
    return tokens


def _skip_group(tokens: list[tuple[str, str]], start: int) -> int:
    """Index after the bracket group that opens at ``start``."""
    opener = tokens[start][1]
    depth = 0
    for i in range(start, len(tokens)):
        kind, text = tokens[i]
        if kind == "open" and text == opener:
            depth += 1
        elif kind == "close" and text == _CLOSING[opener]:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced {opener!r}")


def selectors(expr: str) -> list[Selector]:
    """The vector selectors of a PromQL expression, in order.

    Grafana variables may appear inside label matchers and range brackets only.

    >>> selectors('sum by (source) (rate(a_total{source=~"$source"}[5m])) / on(source) b')
    [Selector(name='a_total', matchers='source=~"$source"'), Selector(name='b', matchers='')]
    """
    tokens = _tokens(expr)
    found: list[Selector] = []
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else ("", "")
        if kind == "open" and text == "{":
            end = _skip_group(tokens, i)
            inner = expr_text(tokens[i + 1 : end - 1])
            name = re.search(r'__name__\s*=\s*"([^"]+)"', inner)
            if name is None:
                raise ValueError(f"selector without a metric name in {expr!r}")
            found.append(Selector(name.group(1), inner))
            i = end
        elif kind == "open" and text == "[":
            i = _skip_group(tokens, i)
        elif kind == "var":
            raise ValueError(f"Grafana variable {text} outside a matcher or range in {expr!r}")
        elif kind == "ident":
            lower = text.lower()
            if lower in _LABEL_LIST_KEYWORDS:
                i = _skip_group(tokens, i + 1) if nxt == ("open", "(") else i + 1
            elif lower in _KEYWORDS:
                i += 1
            elif nxt == ("open", "(") or (
                text in _AGGREGATIONS and nxt[0] == "ident" and nxt[1] in ("by", "without")
            ):
                i += 1  # a function or an aggregation
            elif nxt == ("open", "{"):
                end = _skip_group(tokens, i + 1)
                found.append(Selector(text, expr_text(tokens[i + 2 : end - 1])))
                i = end
            else:
                found.append(Selector(text))
                i += 1
        else:
            i += 1
    return found


def expr_text(tokens: Iterable[tuple[str, str]]) -> str:
    """Join tokens back into text (matchers keep their strings and operators)."""
    return "".join(text for _, text in tokens)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects."""
    return {s.name for s in selectors(expr)}


# --------------------------------------------------------------------------- exported names


@dataclass(frozen=True)
class ExportedNames:
    """The names collectord exports: its plugins' metrics, the breakdown families they
    really produce, and its self-metrics."""

    plugin_metrics: frozenset[str]
    #: ``<metric>_by_<dimensions>`` names seen in an exposition of every shipped source.
    breakdown_families: frozenset[str] = frozenset()

    def explains(self, name: str) -> bool:
        """Whether ``name`` is a series collectord exposes."""
        if name in self.plugin_metrics or name in SELF_METRICS:
            return True
        for histogram in SELF_HISTOGRAMS:
            if name in (f"{histogram}_bucket", f"{histogram}_sum", f"{histogram}_count"):
                return True
        # Breakdown families (docs/operations.md "Metric names and labels"): only those a plugin produces, so
        # a misspelt dimension (`..._by_is_from_adz`) is refused.
        return name in self.breakdown_families


def _prometheus_names(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            if key == "prometheus_name" and isinstance(value, str):
                yield value
            else:
                yield from _prometheus_names(value)
    elif isinstance(document, list):
        for item in document:
            yield from _prometheus_names(item)


#: The metric name of a sample line of the text exposition format.
_SAMPLE_NAME = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{|\s)")


def exposition_names(text: str) -> frozenset[str]:
    """The metric names of the samples in a Prometheus text exposition."""
    return frozenset(
        match.group(1)
        for line in text.splitlines()
        if not line.startswith("#") and (match := _SAMPLE_NAME.match(line))
    )


def _collectord(args: list[str], cwd: Path) -> str:
    """Run the venv's ``collectord`` (the console script beside the test's Python) with
    ``args``; its stdout. Fails the calling test when it exits non-zero."""
    script = Path(sys.executable).parent / "collectord"
    if not script.is_file():
        pytest.fail(f"no collectord console script at {script}: pip install -e '.[test]'")
    done = subprocess.run(
        [str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"`collectord {' '.join(args)}` exited {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()[-2000:]}"
        )
    return done.stdout


def exported_names(cwd: Path) -> ExportedNames:
    """What collectord exports, asked of collectord itself (run in ``cwd``).

    ``collectord plugins --format json`` lists the plugins' metrics. It names no breakdowns
    (its fields are a contract, see docs/operations.md "Command line"), so the breakdown families are read from what the plugins
    really produce: ``collectord once --demo --format prom`` with the shipped collector.toml,
    which polls every example source from the built-in simulator.

    Fails the calling test (it does not skip) when either command does not work: the deploy
    files must be checked against what collectord really exports.
    """
    listing = _collectord(["plugins", "--format", "json"], cwd)
    try:
        document = json.loads(listing)
    except json.JSONDecodeError as exc:
        pytest.fail(f"`collectord plugins --format json` printed no JSON document: {exc}")
    names = frozenset(_prometheus_names(document))
    if not names:
        pytest.fail("`collectord plugins --format json` lists no metric with a prometheus_name")
    config = REPO / "collector.toml"
    exposition = _collectord(["once", "--demo", "--format", "prom", "-c", str(config)], cwd)
    breakdowns = frozenset(
        name
        for name in exposition_names(exposition)
        if any(name.startswith(f"{metric}_by_") for metric in names)
    )
    if not breakdowns:
        pytest.fail("`collectord once --demo` with collector.toml exposed no breakdown family")
    return ExportedNames(plugin_metrics=names, breakdown_families=breakdowns)


def unknown_names(
    names: Iterable[str], exported: ExportedNames, also: Iterable[str] = ()
) -> set[str]:
    """The names in ``names`` that collectord does not export (``also`` lists extra allowed)."""
    allowed = set(also)
    return {name for name in names if name not in allowed and not exported.explains(name)}


def promtool_check_exprs(promtool: str, exprs: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    """Let promtool parse ``exprs`` (name -> PromQL) as recording rules of a scratch file."""
    rules = {
        "groups": [
            {
                "name": "check",
                "rules": [
                    {"record": f"check:{i}", "expr": expr, "labels": {"origin": origin[:60]}}
                    for i, (origin, expr) in enumerate(exprs.items())
                ],
            }
        ]
    }
    path = tmp_path / "exprs.rules.yml"
    path.write_text(yaml.safe_dump(rules, sort_keys=False), encoding="utf-8")
    return run_tool([promtool, "check", "rules", str(path)])
