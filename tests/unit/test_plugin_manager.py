"""Plugins are loaded through pluggy: built-ins registered by collectord itself (also from a
source checkout that is not installed), plugin_dirs modules, hooks called with keyword
arguments, and a broken plugin reported by name and origin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest

import collectord
from collectord.cli import main
from collectord.plugin.manager import PluginLoadError, load_source_plugins

REPO = Path(__file__).resolve().parents[2]
BUILTINS = {"facebook_page", "facebook_post", "facebook_app", "instagram_user", "instagram_media"}

#: A plugin whose hook takes the keyword argument the host passes, and declares an option.
VERSIONED = """
import collectord

class Weather(collectord.SourcePlugin):
    name = "weather"
    description = "Temperature of a place"
    options = (collectord.Option("city", "str", default="Oslo", help="Where to measure."),)
    catalogue = (collectord.MetricSpec("temp", "weather_temp", "fast", kind="field"),)

    def __init__(self, host: str) -> None:
        self.version = "for-" + host

    async def collect(self, ctx):
        return []

@collectord.hookimpl
def register_source_plugins(collectord_version):
    return [Weather(collectord_version)]
"""

BROKEN = """
import collectord

@collectord.hookimpl
def register_source_plugins():
    raise RuntimeError("needs a licence key")
"""


def plugin_dir(tmp_path: Path, **modules: str) -> Path:
    folder = tmp_path / "my-plugins"
    folder.mkdir(exist_ok=True)
    for name, text in modules.items():
        (folder / f"{name}.py").write_text(text)
    return folder


def test_a_hook_gets_the_keyword_argument_it_names(tmp_path: Path) -> None:
    folder = plugin_dir(tmp_path, weather=VERSIONED)
    loaded = load_source_plugins([folder])
    assert loaded["weather"].plugin.version == f"for-{collectord.__version__}"
    assert loaded["weather"].origin == str(folder / "weather.py")
    assert set(loaded) >= BUILTINS


def test_plugins_lists_a_plugin_dirs_plugin_with_description_and_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin_dir(tmp_path, weather=VERSIONED)
    (tmp_path / "collector.toml").write_text('[collector]\nplugin_dirs = ["my-plugins"]\n')
    monkeypatch.chdir(tmp_path)
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "  Temperature of a place\n" in text
    assert '  option city (str, default "Oslo"): Where to measure.\n' in text
    assert main(["plugins", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    weather = next(p for p in doc["plugins"] if p["name"] == "weather")
    assert weather["description"] == "Temperature of a place"
    assert weather["options"] == [
        {
            "name": "city",
            "type": "str",
            "required": False,
            "default": "Oslo",
            "help": "Where to measure.",
        }
    ]


def test_a_broken_plugin_is_reported_by_name_and_origin_and_does_not_hide_others(
    tmp_path: Path,
) -> None:
    folder = plugin_dir(tmp_path, broken=BROKEN, also_broken=BROKEN, weather=VERSIONED)
    with pytest.raises(PluginLoadError) as caught:
        load_source_plugins([folder])
    problems = caught.value.problems
    assert len(problems) == 2, problems
    for name in ("broken", "also_broken"):
        path = folder / f"{name}.py"
        assert (
            f"plugin module 'dir:{path}' ({path}): register_source_plugins failed: "
            "RuntimeError: needs a licence key" in problems
        )


def test_built_ins_are_registered_by_collectord_not_by_entry_points() -> None:
    from importlib.metadata import entry_points

    from collectord.plugin import hookspecs

    assert not [ep for ep in entry_points(group=hookspecs.ENTRY_POINT_GROUP) if ep.name in BUILTINS]
    loaded = load_source_plugins()
    assert set(loaded) == BUILTINS
    assert {lp.origin for lp in loaded.values()} == {"built-in"}


def test_a_source_checkout_that_is_not_installed_has_the_built_ins(tmp_path: Path) -> None:
    # Without site processing (-S) the editable install's import hook is not set up, so
    # ``collectord`` comes from the checkout on PYTHONPATH and ``collectord_plugins`` (the
    # installed name of plugins/) cannot be imported; the dependencies' folder is added.
    deps = Path(pluggy.__file__).resolve().parents[1]
    script = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('collectord_plugins') is None, 'installed'\n"
        "import collectord\n"
        f"assert collectord.__file__.startswith({str(REPO)!r}), collectord.__file__\n"
        "from collectord.cli import main\n"
        "sys.exit(main(['plugins', '--format', 'json']))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(deps)])}
    out = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert {p["name"]: p["origin"] for p in doc["plugins"]} == dict.fromkeys(BUILTINS, "built-in")


async def test_the_status_page_shows_each_plugin_with_its_options(tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from collectord.exporter.exposition import make_exposition
    from collectord.graph.stats import GraphStats
    from collectord.plugin.manager import describe_plugin
    from collectord.store.store import Store
    from collectord.web.server import make_app

    folder = plugin_dir(tmp_path, weather=VERSIONED.replace("Where to measure.", "<city> & co"))
    about = [describe_plugin(name, lp) for name, lp in load_source_plugins([folder]).items()]
    store = Store()
    exposition = make_exposition(store, GraphStats(), (), version="1")
    app = make_app(
        exposition=exposition, store=store, version="1", alive=lambda: True, plugins=about
    )
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/")
        assert resp.status == 200
        page = await resp.text()
    assert "<h2>Plugins</h2>" in page
    assert "Temperature of a place" in page
    assert "<code>city</code> (str): &lt;city&gt; &amp; co" in page
    assert f"<td>{folder / 'weather.py'}</td>" in page
    assert "<code>page_id</code> (id, required): " in page  # the built-ins too
