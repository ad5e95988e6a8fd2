"""deploy/prometheus: the scrape config and the rules, checked and unit-tested by promtool."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from deploy_support import (
    PROMETHEUS_DIR,
    RULE_TEST_FILES,
    RULES_FILE,
    SCRAPE_CONFIG,
    exported_names,
    iter_rules,
    load_yaml,
    metric_names,
    recorded_names,
    require_tool,
    run_tool,
    selectors,
    unknown_names,
)

#: The alerts the issue asks for.
REQUIRED_ALERTS = {
    "CollectordEngagementDrop",
    "CollectordFollowerLoss",
    "CollectordDailyDataStale",
    "CollectordSourceFailing",
    "CollectordSourceNeedsReauth",
    "CollectordTokenExpiringSoon",
    "CollectordTokenDataAccessExpiringSoon",
    "CollectordTokenInvalid",
    "CollectordTokenMissingScope",
    "CollectordRateLimitHigh",
    "CollectordDown",
}


def _alerts() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in iter_rules() if "alert" in rule}


def _rule_tests() -> list[dict[str, Any]]:
    return [test for path in RULE_TEST_FILES for test in load_yaml(path)["tests"]]


def test_promtool_check_rules_passes() -> None:
    promtool = require_tool("promtool")
    status, output = run_tool([promtool, "check", "rules", str(RULES_FILE)])
    assert status == 0, output
    assert "SUCCESS" in output


def test_promtool_check_config_passes_for_the_example_scrape_config() -> None:
    promtool = require_tool("promtool")
    status, output = run_tool([promtool, "check", "config", SCRAPE_CONFIG.name], cwd=PROMETHEUS_DIR)
    assert status == 0, output
    assert "1 rule files found" in output


def test_promtool_rule_unit_tests_pass() -> None:
    promtool = require_tool("promtool")
    files = [path.name for path in RULE_TEST_FILES]
    status, output = run_tool([promtool, "test", "rules", *files], cwd=PROMETHEUS_DIR)
    assert status == 0, output
    assert output.count("SUCCESS") == len(files), output


def test_every_required_alert_exists_with_severity_and_summary() -> None:
    alerts = _alerts()
    assert alerts.keys() >= REQUIRED_ALERTS
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for test in _rule_tests():
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    alerts = set(_alerts())
    assert alerts - firing == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"


def _sample_series(labels: str) -> tuple[str, dict[str, str]]:
    """Name and labels of an ``exp_samples`` entry's ``labels``: 'name{a="1",b="2"}'."""
    name, _, rest = labels.partition("{")
    return name.strip(), dict(_LABEL_PAIR.findall(rest))


_LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _recording_rules() -> list[dict[str, Any]]:
    return [rule for rule in iter_rules() if "record" in rule]


def test_every_recording_rule_has_its_value_checked() -> None:
    """Each recording rule (a record name plus its static labels: one per platform) shows
    up with a value in some case: an expected sample of that name carrying those labels."""
    expected: list[tuple[str, dict[str, str]]] = []
    for test in _rule_tests():
        for case in test.get("promql_expr_test", []):
            for sample in case.get("exp_samples") or []:
                expected.append(_sample_series(sample["labels"]))
    unchecked = [
        (rule["record"], rule.get("labels", {}))
        for rule in _recording_rules()
        if not any(
            name == rule["record"] and labels.items() >= rule.get("labels", {}).items()
            for name, labels in expected
        )
    ]
    assert unchecked == []


def test_every_recording_rule_has_a_case_without_series() -> None:
    """Each recorded name that reads series is also shown recording nothing (too little
    history, a zero divisor, no daily data), so a rule that records where it should not
    fails a case. The settings are constants (`vector(0.5)`): they read nothing and always
    have their one series, so they have no such case."""
    empty: set[str] = set()
    for test in _rule_tests():
        for case in test.get("promql_expr_test", []):
            if not case.get("exp_samples"):
                empty |= metric_names(case["expr"])
    reading = {rule["record"] for rule in _recording_rules() if metric_names(rule["expr"])}
    assert reading, "no recording rule reads a series"
    assert reading - empty == set(), "recorded names never shown without series"


def test_recording_rule_case_reader() -> None:
    assert _sample_series('a:b:c{source="x",page_id="1",note="say \\"hi\\""}') == (
        "a:b:c",
        {"source": "x", "page_id": "1", "note": 'say \\"hi\\"'},
    )
    assert _sample_series("collectord:follower_loss_share") == (
        "collectord:follower_loss_share",
        {},
    )


def test_engagement_drop_is_silent_on_stale_data() -> None:
    """The drop alert is gated on fresh daily data, so a stale source is not a drop."""
    expr = _alerts()["CollectordEngagementDrop"]["expr"]
    gates = [s for s in selectors(expr) if s.name == "collectord_source_newest_end_time_seconds"]
    assert gates, "CollectordEngagementDrop does not look at the age of the daily data"
    assert all(s.has_matcher("cadence", "=", "daily") for s in gates)
    assert "and on(source)" in " ".join(expr.split())


def test_collector_down_watches_the_job_of_the_scrape_config() -> None:
    jobs = {job["job_name"] for job in load_yaml(SCRAPE_CONFIG)["scrape_configs"]}
    down = selectors(_alerts()["CollectordDown"]["expr"])
    assert {s.name for s in down} == {"up"}
    for selector in down:
        assert any(selector.has_matcher("job", "=", job) for job in jobs), selector


def test_scrape_config_loads_the_shipped_rules() -> None:
    config = load_yaml(SCRAPE_CONFIG)
    assert [PROMETHEUS_DIR / path for path in config["rule_files"]] == [RULES_FILE]


def test_rule_metric_names_are_exported_by_collectord(tmp_path: Path) -> None:
    """Every series the rules read is one collectord exports (or one they record, or `up`).

    Needs the plugins: `collectord plugins --format json` lists their metrics.
    """
    used: set[str] = set()
    for rule in iter_rules():
        used |= metric_names(rule["expr"])
    exported = exported_names(tmp_path)
    assert unknown_names(used, exported, also={*recorded_names(), "up"}) == set()


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        (
            'sum by (source, reason) (increase(x_total{source=~"$source"}[1h]))',
            {"x_total"},
        ),
        ("a offset 7d + b offset 14d / on() group_left() c", {"a", "b", "c"}),
        ('topk(10, sum by (s) (a{l="}"})) and on(s, p) b{m!~"x|y"}', {"a", "b"}),
        ("histogram_quantile(0.9, sum by (le) (rate(h_bucket[5m]))) > bool 1e-3", {"h_bucket"}),
        (
            '-source:r:ratio1d > on() group_left() vector(0.5) unless {__name__="z"}',
            {"source:r:ratio1d", "z"},
        ),
    ],
)
def test_metric_name_reader(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
