"""`promtool check metrics` on collectord's exposition: a user who lints exporters in CI gets
a green build.

The exposition is that of every built-in plugin with every metric of its catalogue (the
default set and the metrics a source must list), polled once from the built-in simulator
(`collectord once --demo`), so every family and every breakdown family a plugin can export
is checked, not only the default ones.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import REPO, exposition_names, require_tool, run_tool

#: The metric name prefixes of each built-in plugin.
PLUGIN_PREFIXES: dict[str, tuple[str, ...]] = {
    "facebook_page": ("facebook_page_",),
    "facebook_post": ("facebook_post_",),
    "facebook_app": ("facebook_app_",),
    "instagram_user": ("instagram_user_",),
    "instagram_media": ("instagram_media_", "instagram_story_"),
}


def _collectord(args: list[str], cwd: Path) -> str:
    """The stdout of the venv's ``collectord`` run with ``args``; fails the test on a
    non-zero exit."""
    script = Path(sys.executable).parent / "collectord"
    done = subprocess.run(
        [str(script), *args], cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"`collectord {' '.join(args)}` exited {done.returncode}: {done.stderr[-2000:]}"
        )
    return done.stdout


def _catalogues(cwd: Path) -> dict[str, list[str]]:
    """Every built-in plugin's catalogue: plugin name -> Meta names of all its metrics."""
    listing = json.loads(_collectord(["plugins", "--format", "json"], cwd))
    return {
        p["name"]: [m["graph_name"] for m in p["metrics"]]
        for p in listing["plugins"]
        if p["name"] in PLUGIN_PREFIXES
    }


def _every_metric_config(tmp_path: Path) -> Path:
    """The shipped collector.toml with each source listing every metric of its plugin."""
    catalogues = _catalogues(tmp_path)
    assert set(catalogues) == set(PLUGIN_PREFIXES), "every built-in plugin is listed"
    text = (REPO / "collector.toml").read_text(encoding="utf-8")
    plugins = re.findall(r'^plugin = "(\w+)"', text, flags=re.M)
    assert set(plugins) == set(PLUGIN_PREFIXES), "collector.toml has a source of each plugin"
    text = re.sub(
        r'^plugin = "(\w+)"$',
        lambda m: f"{m.group(0)}\nmetrics = {json.dumps(catalogues[m.group(1)])}",
        text,
        flags=re.M,
    )
    path = tmp_path / "collector.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def exposition(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One demo poll of every built-in plugin's every metric, as Prometheus text."""
    tmp_path = tmp_path_factory.mktemp("exposition")
    config = _every_metric_config(tmp_path)
    return _collectord(["once", "--demo", "--format", "prom", "-c", str(config)], tmp_path)


def test_every_built_in_plugin_is_in_the_exposition(exposition: str) -> None:
    names = exposition_names(exposition)
    for plugin, prefixes in PLUGIN_PREFIXES.items():
        for prefix in prefixes:
            assert any(n.startswith(prefix) for n in names), f"{plugin}: no {prefix}* series"
    assert any("_by_" in n for n in names), "breakdown families are checked too"


def test_promtool_check_metrics_passes_without_a_warning(exposition: str, tmp_path: Path) -> None:
    """No gauge ends in `_count` (or any other name promtool's linter refuses): exit 0 and
    nothing printed."""
    promtool = require_tool("promtool")
    path = tmp_path / "exposition.prom"
    path.write_text(exposition, encoding="utf-8")
    done = subprocess.run(
        [promtool, "check", "metrics"],
        stdin=path.open(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_promtool_check_metrics_refuses_a_count_gauge(tmp_path: Path) -> None:
    """The check above can fail: a gauge named like the old `facebook_page_fan_count` is a
    warning and exit status 3."""
    promtool = require_tool("promtool")
    path = tmp_path / "old.prom"
    path.write_text(
        "# HELP facebook_page_fan_count x\n# TYPE facebook_page_fan_count gauge\n"
        'facebook_page_fan_count{source="a"} 1\n',
        encoding="utf-8",
    )
    status, output = run_tool(["sh", "-c", f'"{promtool}" check metrics < "{path}"'])
    assert status == 3
    assert '"_count" suffix' in output
