"""deploy/grafana: the dashboard loads, its source selector works, and every query reads
series that collectord (or the shipped recording rules) produce."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    DASHBOARD,
    SELF_METRICS_WITHOUT_SOURCE,
    exported_names,
    exposition_names,
    metric_names,
    promtool_check_exprs,
    recorded_names,
    require_tool,
    selectors,
    unknown_names,
)

#: Sections the issue asks for, by row title, with a series each must show.
REQUIRED_ROWS = {
    "Facebook Page": "facebook_page_followers",
    "Instagram account": "instagram_user_followers",
    "Trends": "source:engagement_rate:ratio",
    "Top posts and media": "instagram_media_total_interactions",
    "Instagram stories": "instagram_story_views",
    "Collector health": "collectord_source_up",
}
#: What the collector-health row must show: up, last success, errors by reason, rate-limit
#: usage, token expiry.
HEALTH_SERIES = {
    "collectord_source_up",
    "collectord_source_last_success_timestamp_seconds",
    "collectord_source_poll_errors_total",
    "collectord_graph_usage_ratio",
    "collectord_token_expiry_timestamp_seconds",
}
#: Grafana's variables, as promtool should see them.
GRAFANA_VARIABLES = {
    "$source": ".*",
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1h",
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows hold their panels


def _rows(dashboard: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Panels grouped under the row above them."""
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], [])
            current.extend(panel.get("panels", []))
        else:
            current.append(panel)
    return rows


def _exprs(panels: Any) -> list[str]:
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def test_dashboard_is_a_recent_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] == "collectord"
    assert dashboard["title"]
    ids = [panel["id"] for panel in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    for panel in _panels(dashboard):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        pos = panel["gridPos"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in taken, f"{panel['title']!r} overlaps {taken[x, y]!r}"
                taken[x, y] = panel["title"]


def test_source_selector_lists_the_sources(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    source = variables["source"]
    assert source["type"] == "query"
    query = source["query"]["query"] if isinstance(source["query"], dict) else source["query"]
    assert re.sub(r"\s", "", query) == "label_values(collectord_source_up,source)"
    assert source["multi"]
    assert source["includeAll"]
    assert source["allValue"] == ".*"
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_every_panel_queries_through_the_prometheus_variable(dashboard: dict[str, Any]) -> None:
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"{panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert target["expr"].strip(), panel["title"]


def test_every_per_source_series_follows_the_source_selector(dashboard: dict[str, Any]) -> None:
    """Each selector of a series with a `source` label filters on the selected sources."""
    for expr in _exprs(_panels(dashboard)):
        for selector in selectors(expr):
            if selector.name in SELF_METRICS_WITHOUT_SOURCE:
                continue
            assert selector.has_matcher("source", "=~", "$source"), (selector, expr)


def test_dashboard_has_the_sections_of_the_issue(dashboard: dict[str, Any]) -> None:
    rows = _rows(dashboard)
    for title, series in REQUIRED_ROWS.items():
        assert title in rows, f"no row {title!r}"
        used = set().union(*(metric_names(e) for e in _exprs(rows[title])))
        assert series in used, f"row {title!r} does not show {series}"
    health = set().union(*(metric_names(e) for e in _exprs(rows["Collector health"])))
    assert health >= HEALTH_SERIES
    top = _exprs(rows["Top posts and media"])
    assert any("facebook_post_" in e and e.lstrip().startswith("topk(") for e in top)
    assert any("instagram_media_" in e and e.lstrip().startswith("topk(") for e in top)


def test_every_query_parses_with_promtool(dashboard: dict[str, Any], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    exprs: dict[str, str] = {}
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"unknown Grafana variable in {target['expr']!r}"
            exprs[f"{panel['title']} {target['refId']}"] = expr
    status, output = promtool_check_exprs(promtool, exprs, tmp_path)
    assert status == 0, output


def test_every_metric_name_is_exported_by_collectord(
    dashboard: dict[str, Any], tmp_path: Path
) -> None:
    """Names come from collectord's plugins and self-metrics, or the shipped recording rules.

    Needs the plugins: `collectord plugins --format json` lists their metrics.
    """
    used: set[str] = set()
    for expr in _exprs(_panels(dashboard)):
        used |= metric_names(expr)
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            used |= set(re.findall(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", text))
    exported = exported_names(tmp_path)
    assert unknown_names(used, exported, also=recorded_names()) == set()


def test_promtool_query_check_rejects_a_broken_query(tmp_path: Path) -> None:
    """The scratch-file check used above does fail on a query promtool cannot parse."""
    promtool = require_tool("promtool")
    status, output = promtool_check_exprs(promtool, {"broken": "sum by (source (x)"}, tmp_path)
    assert status != 0
    assert "parse error" in output


def test_a_misspelt_breakdown_name_is_refused(tmp_path: Path) -> None:
    """Breakdown families are checked against what the plugins produce, not any `_by_`."""
    exported = exported_names(tmp_path)
    assert exported.explains("facebook_page_media_view")
    assert exported.explains("facebook_page_media_view_by_is_from_ads")
    misspelt = {
        "facebook_page_media_view_by_is_from_adz",
        "facebook_page_media_view_by_",
        "instagram_user_reach_by_follow_types",
    }
    used = {"facebook_page_media_view_by_is_from_ads", *misspelt}
    assert unknown_names(used, exported) == misspelt


def test_exposition_names_reads_sample_lines_only() -> None:
    text = '# HELP a_by_x A.\n# TYPE a_by_x gauge\na_by_x{x="1",source="s"} 1.0\nb 2\n\n'
    assert exposition_names(text) == {"a_by_x", "b"}
