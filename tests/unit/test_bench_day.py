"""The day and latency benchmarks (tests/bench/bench_day.py, bench_latency.py) still run,
on tiny worlds: they poll without failing and count what the simulator saw."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def _load(name: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH_DIR))
    return importlib.import_module(name)


def test_a_short_day_counts_fewer_calls_than_flat_polling(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("bench_day", monkeypatch)
    report = bench.main(["--posts", "5", "--media", "5", "--hours", "1"])

    assert report.failed == []
    assert report.fast_polls == 4
    assert {source for source, _ in report.calls} == set(bench.SOURCES)
    # the daily polls ran once, not on every fast poll: fewer calls than flat polling
    assert 0 < report.total < report.flat
    out = capsys.readouterr().out
    assert f"{report.ratio:.1%}" in out


def test_a_cycle_at_latency_runs_spread_and_in_one_account(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = _load("bench_latency", monkeypatch)
    spread, single = bench.main(["--media", "40", "--accounts", "2", "--latency", "0.01"])

    assert (spread.sources, spread.media_per_source) == (2, 20)
    assert (single.sources, single.media_per_source) == (1, 40)
    for run in (spread, single):
        assert run.failed == ()
        assert run.graph_calls >= 40
        assert run.http_requests < run.graph_calls  # batches
    assert "one account / spread" in capsys.readouterr().out
