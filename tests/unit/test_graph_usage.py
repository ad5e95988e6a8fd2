"""Reading Meta's rate-limit usage headers."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from collectord.graph.usage import UsageReading, header_value, parse_usage, regain_seconds


class Log:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def debug(self, event: str, **kw: object) -> None:
        self.lines.append((event, kw))


def test_app_and_page_usage() -> None:
    headers = {
        "x-app-usage": '{"call_count": 28, "total_cputime": 25, "total_time": 25}',
        "X-Page-Usage": '{"call_count": 85, "total_cputime": 56, "total_time": 60}',
    }
    readings = parse_usage(headers, app_id="99")
    assert UsageReading("app", "99", "call_count", 0.28) in readings
    assert UsageReading("page", "", "total_time", 0.6) in readings
    assert len(readings) == 6


def test_buc_usage_per_object_and_type() -> None:
    value = {
        "111": [
            {
                "type": "pages",
                "call_count": 97,
                "total_cputime": 23,
                "total_time": 23,
                "estimated_time_to_regain_access": 0,
            },
        ],
        "222": [
            {
                "type": "instagram",
                "call_count": 100,
                "total_cputime": 4,
                "total_time": 7,
                "estimated_time_to_regain_access": 12,
            },
            {"type": "ads_insights", "call_count": 1, "ads_api_access_tier": "standard_access"},
        ],
    }
    readings = parse_usage({"X-Business-Use-Case-Usage": json.dumps(value)})
    keyed = {r.key: r.ratio for r in readings}
    assert keyed[("pages", "111", "call_count")] == pytest.approx(0.97)
    assert keyed[("instagram", "222", "call_count")] == pytest.approx(1.0)
    assert keyed[("ads_insights", "222", "call_count")] == pytest.approx(0.01)
    assert len(keyed) == 7  # ads_api_access_tier and the regain time are not usage


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-App-Usage", "{not json"),
        ("X-App-Usage", "[28, 25]"),
        ("X-Business-Use-Case-Usage", '{"1": {"type": "pages"}}'),
        ("X-Business-Use-Case-Usage", '{"1": [{"call_count": 3}]}'),
        ("X-Business-Use-Case-Usage", '"text"'),
    ],
)
def test_malformed_headers_are_ignored_with_a_debug_line(name: str, value: str) -> None:
    log = Log()
    headers = {name: value, "X-Page-Usage": '{"call_count": 5}'}
    readings = parse_usage(headers, log=log)
    assert readings == [UsageReading("page", "", "call_count", 0.05)]
    assert log.lines[0][0] == "malformed usage header ignored"
    assert log.lines[0][1]["header"] == name


def test_non_numeric_values_are_skipped() -> None:
    headers = {"X-App-Usage": '{"call_count": "28", "total_cputime": true, "total_time": 3.5}'}
    assert parse_usage(headers) == [UsageReading("app", "", "total_time", 0.035)]


def test_no_headers_no_readings() -> None:
    with capture_logs() as logs:
        assert parse_usage({"Content-Type": "application/json"}) == []
        assert parse_usage(None) == []
    assert logs == []


def test_regain_seconds() -> None:
    value = {
        "1": [{"type": "pages", "estimated_time_to_regain_access": 3}],
        "2": [{"type": "instagram", "estimated_time_to_regain_access": 10}],
    }
    headers = {"X-Business-Use-Case-Usage": json.dumps(value)}
    assert regain_seconds(headers, buc_type="pages") == 180.0
    assert regain_seconds(headers) == 600.0
    assert regain_seconds(headers, buc_type="leadgen") is None
    assert regain_seconds({"X-Business-Use-Case-Usage": "nope"}) is None
    assert regain_seconds(None) is None


def test_header_value_is_case_insensitive() -> None:
    assert header_value({"x-app-usage": "a"}, "X-App-Usage") == "a"
    assert header_value({"X-APP-USAGE": "b"}, "x-app-usage") == "b"
    assert header_value({}, "X-App-Usage") is None
