"""``--demo`` with the shipped ``collector.toml``: the README's first command shows all five
plugins, and ``once`` prints them, without any Meta account or variable."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

SHIPPED = Path(__file__).resolve().parents[2] / "collector.toml"
SOURCES = {
    "acme-page": "facebook_page",
    "acme-posts": "facebook_post",
    "acme-instagram": "instagram_user",
    "acme-instagram-media": "instagram_media",
    "acme-app": "facebook_app",
}
#: Family prefixes each plugin exports (instagram_media has media and stories).
PREFIXES = (
    "facebook_page_",
    "facebook_post_",
    "facebook_app_",
    "instagram_user_",
    "instagram_media_",
    "instagram_story_",
)
RECORD_KEYS = [
    "collected_at",
    "source",
    "plugin",
    "metric",
    "graph_metric",
    "object_id",
    "period",
    "end_time",
    "value",
    "labels",
]
#: Variables the shipped config reads; unset, as on a newcomer's machine.
VARIABLES = ("FB_APP_ID", "FB_APP_SECRET", "ACME_PAGE_TOKEN", "ACME_IG_TOKEN")


@pytest.fixture(autouse=True)
def _no_meta_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def shipped_text(listen: str) -> str:
    """The shipped config with only its ``listen`` line changed."""
    text, count = re.subn(
        r'^listen = "[^"]*"', f'listen = "{listen}"', SHIPPED.read_text(), flags=re.M
    )
    assert count == 1
    return text


def families(prom_text: str) -> dict[str, list[dict[str, str]]]:
    """Family name -> the label sets of its samples."""
    return {
        fam.name: [dict(s.labels) for s in fam.samples]
        for fam in text_string_to_metric_families(prom_text)
    }


def once(config: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "collectord", "once", "--demo", "-c", str(config), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture
def shipped_copy(tmp_path: Path) -> Path:
    """The shipped config, copied unchanged into a folder of its own."""
    folder = tmp_path / "conf"
    folder.mkdir()
    copy = folder / "collector.toml"
    copy.write_text(SHIPPED.read_text())
    return copy


async def test_run_demo_with_the_shipped_config_shows_all_five_plugins(
    start_daemon: Any, tmp_path: Path
) -> None:
    daemon = await start_daemon(shipped_text("127.0.0.1:@PORT@"), "--demo")
    await daemon.wait_ready(within=10.0)
    scrape = await daemon.scrape()
    names = scrape.names()
    for prefix in PREFIXES:
        assert [n for n in names if n.startswith(prefix)], prefix
    for source, plugin in SOURCES.items():
        assert scrape.value("collectord_source_up", source=source, plugin=plugin) == 1, source
        plugin_families = {n for n, lab, _ in scrape.samples if lab.get("source") == source}
        assert {n for n in plugin_families if not n.startswith("collectord_")}, source
    assert await daemon.stop() == 0
    # the demo's samples and state are kept apart from a real run's, under state_dir/demo
    assert not (tmp_path / "samples.jsonl").exists()
    assert (tmp_path / ".collectord" / "demo" / "samples.jsonl").stat().st_size > 0
    assert "Traceback" not in daemon.logs()


def test_once_demo_prints_every_plugin(shipped_copy: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = once(shipped_copy, "--format", "prom", cwd=elsewhere)
    assert out.returncode == 0, out.stderr
    found = families(out.stdout)
    for prefix in PREFIXES:
        assert [n for n in found if n.startswith(prefix)], prefix
    sources = {lab.get("source") for labels in found.values() for lab in labels}
    assert sources == set(SOURCES)
    # relative paths are relative to the config file, not to the working directory
    assert not list(elsewhere.iterdir())


def test_once_demo_jsonl_prints_valid_records(shipped_copy: Path, tmp_path: Path) -> None:
    out = once(shipped_copy, "--format", "jsonl", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert records
    for record in records:
        assert list(record) == RECORD_KEYS
        assert record["labels"]["source"] == record["source"]
        assert SOURCES[record["source"]] == record["plugin"]
        assert isinstance(record["value"], float)
        assert record["metric"].startswith(PREFIXES)
    assert {r["plugin"] for r in records} == set(SOURCES.values())


def test_once_demo_source_prints_only_that_source(shipped_copy: Path, tmp_path: Path) -> None:
    out = once(shipped_copy, "--format", "prom", "--source", "acme-page", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    found = families(out.stdout)
    assert found
    assert all(name.startswith("facebook_page_") for name in found), sorted(found)
    assert {lab["source"] for labels in found.values() for lab in labels} == {"acme-page"}
