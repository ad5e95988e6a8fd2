"""The efficiency benchmark (tests/bench/bench_cycle.py) runs, follows every object and
shows batching at work: fewer HTTP requests than a naive client would send."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_cycle.py"
PLUGINS = {"facebook_page", "facebook_post", "facebook_app", "instagram_user", "instagram_media"}


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("collectord_bench_cycle", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return _load_bench()


def test_small_cycle_follows_every_object_in_fewer_requests_than_naive(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    report = bench.main(["--posts", "20", "--media", "30"])

    assert report.all_ok, [r.error for r in report.rows if not r.ok]
    assert {row.plugin for row in report.rows} == PLUGINS
    assert (report.window.posts, report.window.media) == (20, 30)
    by_poll = {(row.plugin, row.cadence): row for row in report.rows}
    assert by_poll["facebook_post", "fast"].objects == 20
    assert by_poll["facebook_post", "daily"].objects == 20
    assert by_poll["instagram_media", "fast"].objects >= 30  # media, plus the live stories
    for key in (("facebook_post", "daily"), ("instagram_media", "fast")):
        assert by_poll[key].http_requests < by_poll[key].naive_requests, by_poll[key]
    assert report.http_requests < report.naive_requests
    assert report.http_requests <= report.graph_calls <= report.naive_requests

    out = capsys.readouterr().out
    total = next(line for line in out.splitlines() if line.startswith("total"))
    assert total.split()[1:] == [
        str(report.objects),
        str(report.http_requests),
        str(report.graph_calls),
        str(report.naive_requests),
    ]
    assert "peak RSS" in out
    assert "wall time" in out


def test_negative_sizes_are_refused(bench: ModuleType) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--posts", "-1"])
