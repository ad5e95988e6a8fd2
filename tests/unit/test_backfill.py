"""collectord backfill's parts: the OpenMetrics text, JSONL records kept one per series and
time, Meta's day windows, the plugins' history requests, and the progress kept to resume."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collectord_plugins.facebook_page import FacebookPage
from collectord_plugins.instagram_user import InstagramUser

from collectord import PACIFIC, days_between, windows
from collectord.backfill.command import (
    BadArguments,
    Report,
    parse_moment,
    read_jsonl_inputs,
    steps,
)
from collectord.backfill.points import Point, Points, make_point, read_jsonl, write_openmetrics
from collectord.backfill.state import FOLDER, Progress
from collectord.cli import main
from collectord.testing import FakeGraph, PluginHost

NOW = datetime(2026, 12, 4, 5, 30, tzinfo=UTC)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _om(points: list[Point]) -> str:
    out = io.StringIO()
    write_openmetrics(points, out)
    return out.getvalue()


# -- OpenMetrics -----------------------------------------------------------------------------


def test_families_are_grouped_series_kept_together_and_times_ascending() -> None:
    points = [
        make_point("b_views", {"source": "s", "page_id": "2"}, _at("2026-11-02T08:00"), 3),
        make_point("a_reach", {"source": "s"}, _at("2026-11-02T08:00"), 2),
        make_point("b_views", {"source": "s", "page_id": "1"}, _at("2026-11-02T08:00"), 5),
        make_point("b_views", {"source": "s", "page_id": "1"}, _at("2026-11-01T07:00"), 4),
        make_point("a_reach", {"source": "s"}, _at("2026-11-01T07:00"), 1),
    ]
    assert _om(points) == (
        "# TYPE a_reach gauge\n"
        'a_reach{source="s"} 1.0 1793516400\n'
        'a_reach{source="s"} 2.0 1793606400\n'
        "# TYPE b_views gauge\n"
        'b_views{page_id="1",source="s"} 4.0 1793516400\n'
        'b_views{page_id="1",source="s"} 5.0 1793606400\n'
        'b_views{page_id="2",source="s"} 3.0 1793606400\n'
        "# EOF\n"
    )


def test_label_values_are_escaped_and_odd_values_spelled_as_openmetrics_does() -> None:
    at = _at("2026-11-01T07:00")
    text = _om(
        [
            make_point("m", {"city": 'Back\\slash "quoted"\nline'}, at, float("nan")),
            make_point("n", {}, at, float("inf")),
            make_point("o", {}, at, 1e20),
        ]
    )
    assert 'm{city="Back\\\\slash \\"quoted\\"\\nline"} NaN 1793516400\n' in text
    assert "n{} +Inf 1793516400\n" not in text  # no empty braces
    assert "n +Inf 1793516400\n" in text
    assert "o 1e+20 1793516400\n" in text
    assert text.endswith("# EOF\n")


def test_an_empty_file_still_ends_with_eof() -> None:
    assert _om([]) == "# EOF\n"


# -- JSONL -----------------------------------------------------------------------------------


def _record(collected: str, end: str | None, value: Any, **extra: Any) -> str:
    rec = {
        "collected_at": collected,
        "source": "p",
        "plugin": "facebook_page",
        "metric": "facebook_page_views",
        "graph_metric": "page_views_total",
        "object_id": "1",
        "period": "day",
        "end_time": end,
        "value": value,
        "labels": {"source": "p", "page_id": "1", "period": "day"},
        **extra,
    }
    return json.dumps(rec) + "\n"


def test_jsonl_keeps_the_value_collected_last_whatever_the_order_of_files_and_lines(
    tmp_path: Path,
) -> None:
    old, new = tmp_path / "s.jsonl.1", tmp_path / "s.jsonl"
    old.write_text(
        _record("2026-11-02T10:00:00.000Z", "2026-11-02T08:00:00Z", 5)
        + _record("2026-11-01T10:00:00.000Z", "2026-11-01T07:00:00Z", 4)
    )
    new.write_text(
        _record("2026-11-03T10:00:00.000Z", "2026-11-02T08:00:00Z", 6)
        + _record("2026-11-02T10:00:00.000Z", "2026-11-02T08:00:00Z", 5)
    )
    points = read_jsonl_inputs([str(new), str(old)], Report(0, io.StringIO()))
    got = [(p.timestamp, p.value) for p in points.sorted()]
    assert got == [(1793516400, 4.0), (1793606400, 6.0)]


def test_jsonl_reports_lines_that_are_not_records_and_skips_null_values(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text(
        _record("2026-11-02T10:00:00.000Z", None, 7)  # a field: dated when collected
        + '{"torn\n'
        + _record("2026-11-02T10:00:00.000Z", "2026-11-02T08:00:00Z", None)
        + _record("2026-11-02T10:00:00.000Z", "2026-11-02T08:00:00Z", 1, metric="bad name")
    )
    read = read_jsonl(path)
    assert (read.bad_lines, read.first_bad, read.no_value) == (2, 2, 1)
    ((_, point),) = read.points
    assert point.timestamp == _at("2026-11-02T10:00").timestamp()


def test_a_fifo_is_refused_rather_than_read(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        read_jsonl(fifo)


def test_points_keep_one_per_series_and_time() -> None:
    at = _at("2026-11-01T07:00")
    points = Points()
    points.add(make_point("m", {"b": "1", "a": "2"}, at, 1))
    points.add(make_point("m", {"a": "2", "b": "1"}, at, 2))  # the same series
    points.add(make_point("m", {"a": "2", "b": "1"}, at, 3), keep_first=True)
    assert [p.value for p in points.sorted()] == [2.0]


# -- days and windows ------------------------------------------------------------------------


def test_days_between_are_whole_pacific_days_and_windows_respect_metas_limit() -> None:
    until = datetime(2026, 12, 1, 8, tzinfo=UTC)  # a Pacific midnight (PST)
    days = days_between(until - timedelta(days=100, hours=3), until)
    assert len(days) == 100
    assert days[-1].until == until
    assert all(d.since.astimezone(PACIFIC).hour == 0 for d in days)
    lengths = {(d.until - d.since) / timedelta(hours=1) for d in days}
    assert lengths == {24, 25}  # 2026-11-01: the clocks went back
    spans = windows(days, 30)
    assert len(spans) == 4
    # never longer than 30 x 24 hours, even with the 25-hour day in it (Meta counts seconds)
    assert all(w.until - w.since <= timedelta(days=30) for w in spans)
    assert [w.since for w in spans[1:]] == [w.until for w in spans[:-1]]  # no day lost
    assert spans[0].since == days[0].since
    assert spans[-1].until == until


def test_steps_start_at_the_midnight_of_the_first_day_and_end_at_the_last_completed() -> None:
    got = steps(NOW - timedelta(days=40), NOW)
    assert got[0][0].astimezone(PACIFIC).hour == 0
    assert got[0][0] <= NOW - timedelta(days=40)
    assert got[-1][1] <= NOW
    assert NOW - got[-1][1] < timedelta(days=1)
    assert len(got) == 2
    assert sum(round((b - a) / timedelta(days=1)) for a, b in got) == 40


# -- the plugins' history ----------------------------------------------------------------------


class EmptyInsights(FakeGraph):
    """Answers every insights call with no data; records the calls."""

    def respond(self, path: str, params: dict[str, str]) -> Any:
        return {"data": []}


def _windows(graph: FakeGraph) -> list[tuple[int, int]]:
    return sorted(
        {(int(p["since"]), int(p["until"])) for path, p in graph.calls if "since" in p},
    )


async def test_page_history_asks_for_at_most_90_days_a_call() -> None:
    graph = EmptyInsights()
    host = PluginHost(FacebookPage(), {"page_id": "1"}, graph=graph, now=NOW)
    plugin = FacebookPage()
    assert await plugin.history(host.context("daily"), NOW - timedelta(days=120), NOW) == []
    spans = _windows(graph)
    assert len(spans) == 2
    assert all(u - s <= 90 * 86400 for s, u in spans)
    assert spans[0][1] == spans[1][0]
    assert all(path.endswith("insights") for path, _ in graph.calls)  # no fields


async def test_instagram_history_asks_totals_per_day_and_series_per_30_days() -> None:
    graph = EmptyInsights()
    host = PluginHost(InstagramUser(), {"ig_user_id": "17841400000000001"}, graph=graph, now=NOW)
    ctx = host.context("daily")
    await InstagramUser().history(ctx, NOW - timedelta(days=45), NOW)
    series = [p for _, p in graph.calls if p.get("metric_type") == "time_series"]
    totals = [p for _, p in graph.calls if p.get("metric_type") == "total_value"]
    spans = [(int(p["since"]), int(p["until"])) for p in series]
    assert len(spans) == 2
    assert all(u - s <= 30 * 86400 for s, u in spans)
    assert spans[0][1] == spans[1][0]
    assert {round((int(p["until"]) - int(p["since"])) / 86400) for p in totals} == {1}
    assert not [p for _, p in graph.calls if "timeframe" in p]  # demographics: no history
    assert "online_followers" not in {m for _, p in graph.calls for m in p["metric"].split(",")}


# -- resume ----------------------------------------------------------------------------------


def test_progress_resumes_the_first_runs_range_and_parts(tmp_path: Path) -> None:
    notes: list[str] = []
    ident = {"out": "/x.om", "since": "90d"}
    first = Progress.open(tmp_path, ident, NOW - timedelta(days=90), NOW, notes.append)
    assert not first.resumed
    point = make_point("m", {"source": "s"}, _at("2026-11-01T07:00"), 3)
    first.save("s", first.since, [point])

    later = NOW + timedelta(days=1)  # `--until now` a day later: still the first range
    again = Progress.open(tmp_path, ident, later - timedelta(days=90), later, notes.append)
    assert again.resumed
    assert (again.since, again.until) == (first.since, first.until)
    assert again.load("s", again.since, notes.append) == [point]
    assert again.load("other", again.since, notes.append) is None
    assert notes == []

    other = Progress.open(tmp_path, {**ident, "since": "10d"}, NOW, later, notes.append)
    assert not other.resumed  # another command: its own progress

    again.finish()
    assert not again.folder.exists()


def test_damaged_progress_is_reported_and_read_again(tmp_path: Path) -> None:
    notes: list[str] = []
    ident = {"out": "/x.om"}
    progress = Progress.open(tmp_path, ident, NOW - timedelta(days=9), NOW, notes.append)
    progress.save("s", progress.since, [make_point("m", {}, NOW, 1)])
    (part,) = [p for p in progress.folder.iterdir() if p.suffix == ".jsonl"]
    part.write_text('{"metric": "m", "tor')
    assert progress.load("s", progress.since, notes.append) is None
    assert "damaged backfill progress" in notes[-1]

    (progress.folder / "run.json").write_text("{not json")
    fresh = Progress.open(tmp_path, ident, NOW - timedelta(days=3), NOW, notes.append)
    assert not fresh.resumed
    assert fresh.since == NOW - timedelta(days=3)
    assert "starting over" in notes[-1]
    assert (tmp_path / FOLDER).is_dir()


# -- arguments -------------------------------------------------------------------------------


def test_moments_people_write() -> None:
    assert parse_moment("now", NOW, "--until") == NOW
    assert parse_moment("90d", NOW, "--since") == NOW - timedelta(days=90)
    assert parse_moment("2w", NOW, "--since") == NOW - timedelta(days=14)
    assert parse_moment("2026-09-01", NOW, "--since") == datetime(2026, 9, 1, tzinfo=UTC)
    with pytest.raises(BadArguments, match="--since yesterday: expected now"):
        parse_moment("yesterday", NOW, "--since")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "soon"], "--since soon: expected"),
        (["--since", "1d", "--until", "2d"], "must come before"),
        (["--until", "2999-01-01"], "lies in the future"),
        (["--from-jsonl", "missing.jsonl"], "no such file"),
        (["--demo", "--source", "nope"], "--source nope: no such source"),
    ],
)
def test_bad_arguments_exit_2_with_one_clear_line(
    args: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["backfill", *args, "--out", str(tmp_path / "o.om")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o.om").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_elsewhere() -> None:
    term = Terminal()
    bar = Report(2, term)
    bar.step("sim-page 2026-11-01..2026-12-01")
    bar.note("a note")
    bar.close()
    assert "50%" in term.getvalue()
    assert "a note" in term.getvalue()

    plain = io.StringIO()
    lines = Report(2, plain)
    lines.step("sim-page 2026-11-01..2026-12-01")
    assert plain.getvalue() == "backfill: sim-page 2026-11-01..2026-12-01 (1/2)\n"
