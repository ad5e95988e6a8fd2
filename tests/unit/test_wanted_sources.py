"""Which sources one process runs (``Collector.wanted``): discovered children stand in for
their discovering source, a shard keeps only its own, ``--source`` names sources or parents."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from collectord.config.types import (
    CollectorConfig,
    Config,
    GraphConfig,
    ScheduleConfig,
    SourceConfig,
)
from collectord.daemon import Collector
from collectord.secret import Secret


def _source(name: str, **kw: object) -> SourceConfig:
    return SourceConfig(
        name=name,
        plugin="facebook_page",
        access_token=Secret("not-a-token"),
        metrics=None,
        schedule=ScheduleConfig(),
        graph=GraphConfig(),
        **kw,  # type: ignore[arg-type]
    )


def _config(*sources: SourceConfig) -> Config:
    return Config(
        path=Path("collector.toml"),
        collector=CollectorConfig(),
        graph=GraphConfig(),
        schedule=ScheduleConfig(),
        sources=sources,
    )


PARENT = _source("agency", discover=True)
CHILDREN = tuple(
    dataclasses.replace(_source(f"agency/{i}"), parent="agency", options={"page_id": str(i)})
    for i in (101, 102, 103)
)
CONFIG = _config(_source("first"), PARENT, _source("last"))


def test_a_discovering_source_runs_as_its_children_in_config_order() -> None:
    col = Collector(CONFIG, {})
    assert list(col.wanted(CONFIG)) == ["first", "last"]  # nothing found yet
    col.discovered["agency"] = CHILDREN
    assert list(col.wanted(CONFIG)) == ["first", "agency/101", "agency/102", "agency/103", "last"]


def test_a_shard_keeps_only_the_sources_and_children_it_owns() -> None:
    col = Collector(CONFIG, {})
    col.discovered["agency"] = CHILDREN
    col.owns = lambda name: name in {"last", "agency/102"}
    assert list(col.wanted(CONFIG)) == ["agency/102", "last"]


def test_source_option_names_a_source_or_a_discovering_parent() -> None:
    by_parent = Collector(CONFIG, {}, sources=["agency"])
    by_parent.discovered["agency"] = CHILDREN
    assert list(by_parent.wanted(CONFIG)) == ["agency/101", "agency/102", "agency/103"]
    by_child = Collector(CONFIG, {}, sources=["agency/103", "first"])
    by_child.discovered["agency"] = CHILDREN
    assert list(by_child.wanted(CONFIG)) == ["first", "agency/103"]
