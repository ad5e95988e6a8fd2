"""Label values on ``/metrics`` are what the exposition format allows, whatever Meta sent as
a breakdown key: CR, NUL and the other control characters, lone surrogates and line
separators never reach a scraper raw, and both prometheus_client's parser and promtool
accept the page."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from collectord.exporter.exposition import make_exposition
from collectord.exporter.families import REPLACEMENT, label_value
from collectord.graph.stats import GraphStats
from collectord.model import Sample, make_labels
from collectord.store.store import Store

#: Breakdown keys as a hostile or broken Graph answer could carry them.
KEYS = [
    "plain",
    "café ünïcode ✓",
    "carriage\rreturn",
    "nul\x00byte",
    "tab\there",
    "bell\x07 esc\x1b[31m del\x7f c1\x85",
    "lone \ud800 surrogate",
    "line\u2028sep para\u2029sep",
    'quote " backslash \\ newline \n end',
]


def sample(key: str) -> Sample:
    return Sample(
        metric="instagram_user_follows_by_country",
        graph_metric="follows_and_unfollows",
        value=1.0,
        labels=make_labels({"ig_user_id": "1", "country": key}),
        object_id="1",
        cadence="daily",
        period="day",
        end_time=datetime(2026, 11, 23, 8, tzinfo=UTC),
        help="Follows by country.",
    )


async def exposition_text(openmetrics: bool = False) -> str:
    store = Store()
    store.register("acme-ig", "instagram_user", ("daily",))
    store.record_success("acme-ig", "daily", [sample(k) for k in KEYS], duration=0.1)
    exposition = make_exposition(store, GraphStats(), [], version="1.0")
    accept = "application/openmetrics-text; version=1.0.0" if openmetrics else ""
    body, _ = await exposition.body(accept, gzip=False)
    return body.decode("utf-8")


@pytest.mark.parametrize(
    ("raw", "exposed"),
    [
        ("plain", "plain"),
        ("café ✓", "café ✓"),
        ("a\rb", f"a{REPLACEMENT}b"),
        ("a\x00b", f"a{REPLACEMENT}b"),
        ("a\tb\x7f", f"a{REPLACEMENT}b{REPLACEMENT}"),
        ("a\ud800", f"a{REPLACEMENT}"),
        ("a\u2028b", f"a{REPLACEMENT}b"),
        ('a\n"\\', 'a\n"\\'),  # prometheus_client escapes these three
        ("non\u00a0breaking", "non\u00a0breaking"),
    ],
)
def test_label_value(raw: str, exposed: str) -> None:
    assert label_value(raw) == exposed


async def test_no_control_character_reaches_metrics_and_the_parser_reads_every_series() -> None:
    for openmetrics in (False, True):
        text = await exposition_text(openmetrics)
        assert not [ch for ch in text if ch in "\r\x00\t\x07\x1b\x7f\x85\u2028\u2029"]
        parse = parse_openmetrics if openmetrics else text_string_to_metric_families
        (family,) = [f for f in parse(text) if f.name == "instagram_user_follows_by_country"]
        countries = {s.labels["country"] for s in family.samples}
        assert len(countries) == len(KEYS)
        assert "café ünïcode ✓" in countries
        assert 'quote " backslash \\ newline \n end' in countries
        assert f"carriage{REPLACEMENT}return" in countries


def test_promtool_accepts_the_page() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("COLLECTORD_REQUIRE_TOOLS") == "1":
            pytest.fail("promtool is missing (Debian package 'prometheus'; CI installs it)")
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    text = asyncio.run(exposition_text())
    done = subprocess.run(
        [promtool, "check", "metrics"],
        input=text.encode("utf-8"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
