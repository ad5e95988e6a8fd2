"""``[collector] shard`` and ``--shard`` as a user meets them: in the config, in ``check``,
``once`` and the daemon's exposition and status page."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from collectord.cli import main
from collectord.config.loader import load_config
from collectord.daemon import Collector
from collectord.errors import ConfigError
from collectord.exporter.registry import InsightsCollector
from collectord.graph.stats import GraphStats
from collectord.plugin.manager import load_source_plugins, plugin_map
from collectord.reload import needs_restart
from collectord.sharding import shard_of
from collectord.store.store import Store
from collectord.web.status_page import render_status_page

SOURCES = "".join(
    f'\n[[source]]\nname = "page-{i}"\nplugin = "facebook_page"\naccess_token = "t"\n'
    f'page_id = "12345678{i}"\n'
    for i in range(6)
)
NAMES = [f"page-{i}" for i in range(6)]


def write(tmp_path: Path, collector: str = "") -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(f"[collector]\n{collector}\n{SOURCES}")
    return path


def load(path: Path):  # type: ignore[no-untyped-def]
    return load_config(path, plugin_map(load_source_plugins(())), environ={})


def test_the_shard_key_is_read_as_written(tmp_path: Path) -> None:
    assert load(write(tmp_path, 'shard = "1/3"')).collector.shard == "1/3"
    assert load(write(tmp_path, 'shard = "auto/3"')).collector.shard == "auto/3"
    assert load(write(tmp_path)).collector.shard is None


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('"3/3"', "[collector]: shard: the shard I must be between 0 and 2 (I/N counts from 0), got '3/3'"),
        ('"three"', """[collector]: shard: expected "I/N" (such as "0/3") or "auto/N" (such as "auto/3"), got 'three'"""),
        ("3", "[collector]: shard: expected a string"),
    ],
)  # fmt: skip
def test_a_wrong_shard_is_one_problem_naming_the_key(
    tmp_path: Path, value: str, problem: str
) -> None:
    path = write(tmp_path, f"shard = {value}")
    with pytest.raises(ConfigError) as info:
        load(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}: {problem}")


def test_check_says_how_many_sources_the_shard_polls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'shard = "1/3"')
    assert main(["check", "-c", str(path)]) == 0
    owned = sum(shard_of(n, 3) == 1 for n in NAMES)
    assert f"shard 1/3: polls {owned} of 6 configured source(s)" in capsys.readouterr().out
    # --shard overrides the file
    assert main(["check", "-c", str(path), "--shard", "2/3"]) == 0
    owned = sum(shard_of(n, 3) == 2 for n in NAMES)
    assert f"shard 2/3: polls {owned} of 6 configured source(s)" in capsys.readouterr().out


def test_check_of_an_auto_shard_off_the_cluster_is_no_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOSTNAME", "laptop")
    assert main(["check", "-c", str(write(tmp_path, 'shard = "auto/3"'))]) == 0
    assert "shard auto/3: taken from the hostname at start (not here:" in capsys.readouterr().out
    monkeypatch.setenv("HOSTNAME", "collectord-2")
    assert main(["check", "-c", str(write(tmp_path, 'shard = "auto/3"'))]) == 0
    assert "shard auto/3 (here 2/3): polls" in capsys.readouterr().out


def test_a_wrong_shard_flag_exits_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["once", "-c", str(write(tmp_path)), "--shard", "1/0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("--shard: the number of shards N must be between 1 and")
    assert "Traceback" not in err


def test_once_on_each_of_three_shards_polls_every_demo_source_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTORD_CONFIG", raising=False)
    assert main(["once", "--demo", "--format", "jsonl"]) == 0
    everyone = {json.loads(line)["source"] for line in capsys.readouterr().out.splitlines()}
    seen: list[str] = []
    for index in range(3):
        assert main(["once", "--demo", "--format", "jsonl", "--shard", f"{index}/3"]) == 0
        out = capsys.readouterr().out.splitlines()
        seen += sorted({json.loads(line)["source"] for line in out})
    assert len(everyone) >= 4
    assert sorted(seen) == sorted(everyone)


def test_auto_on_a_host_without_an_ordinal_refuses_to_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTORD_CONFIG", raising=False)
    monkeypatch.setenv("HOSTNAME", "laptop")
    assert main(["once", "--demo", "--shard", "auto/3"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("shard auto/3: the hostname 'laptop' does not end in '-<ordinal>'")


def test_the_exposition_carries_the_shard() -> None:
    insights = InsightsCollector(Store(), GraphStats(), (), version="1")
    [info] = [m for m in insights.collect() if m.name == "collectord_shard_info"]
    assert [(s.labels, s.value) for s in info.samples] == [({"shard": "0/1"}, 1.0)]
    insights.shard = "2/3"
    [info] = [m for m in insights.collect() if m.name == "collectord_shard_info"]
    assert [(s.labels, s.value) for s in info.samples] == [({"shard": "2/3"}, 1.0)]


def test_the_status_page_shows_the_shard() -> None:
    snapshot = Store().snapshot()
    page = render_status_page(snapshot, version="1", ready=True, now=0.0, shard="2/3")
    assert "Shard: 2/3." in page
    page = render_status_page(snapshot, version="1", ready=True, now=0.0)
    assert "Shard: 0/1 (not sharded)." in page


def test_a_changed_shard_needs_a_restart(tmp_path: Path) -> None:
    old = load(write(tmp_path, 'shard = "0/3"'))
    new = replace(old, collector=replace(old.collector, shard="0/4"))
    assert needs_restart(old, new) == ["[collector] shard"]


async def test_the_objects_a_discovering_source_finds_are_shared_out_one_by_one(
    tmp_path: Path,
) -> None:
    config = load(write(tmp_path, 'shard = "1/3"'))
    parent = replace(config.sources[0], discover=True)
    config = replace(config, sources=(parent,))
    children = tuple(
        replace(parent, name=f"{parent.name}/{10_000 + i}", parent=parent.name, discover=False)
        for i in range(30)
    )
    plugins = plugin_map(load_source_plugins(()))
    async with Collector(config, plugins, sinks_enabled=False) as col:
        assert col.shard.label == "1/3"
        col.discovered[parent.name] = children
        wanted = col.wanted(config)
    mine = {c.name for c in children if shard_of(c.name, 3) == 1}
    assert set(wanted) == mine
    assert 0 < len(mine) < len(children)
