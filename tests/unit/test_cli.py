"""The command line in-process: exit codes, error output, the plugin listing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from collectord.cli import main

VALID = """
[collector]
listen = "127.0.0.1:9464"

[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "${TOKEN}"
page_id = "1234567890"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "collector.toml"
    path.write_text(text)
    return path


def test_check_valid_prints_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "EAAtesttokenvalue1234567890")
    assert main(["check", "-c", str(write(tmp_path, VALID))]) == 0
    out = capsys.readouterr().out
    assert 'source "acme-page" (plugin facebook_page)' in out
    assert "fast  every 15m" in out
    assert "EAAtest" not in out


def test_invalid_config_exits_2_with_one_line_per_problem_and_no_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TOKEN", raising=False)
    bad = VALID.replace('page_id = "1234567890"', 'page_idd = "1"') + "\n[graph]\ntimeout = 30\n"
    assert main(["check", "-c", str(write(tmp_path, bad))]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert any("page_idd" in line and "did you mean 'page_id'" in line for line in lines)
    assert any("[graph]" in line and "timeout" in line for line in lines)
    assert any("TOKEN" in line for line in lines)
    assert all(line.startswith(str(tmp_path / "collector.toml")) for line in lines)


def test_object_ids_must_be_numeric(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = write(tmp_path, VALID.replace('"1234567890"', '"acme"').replace("${TOKEN}", "t"))
    assert main(["check", "-c", str(cfg)]) == 2
    assert "page_id: expected a numeric id, got 'acme'" in capsys.readouterr().err


def test_config_from_environment_variable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "x")
    monkeypatch.setenv("COLLECTORD_CONFIG", str(write(tmp_path, VALID)))
    assert main(["check"]) == 0


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "-c", str(tmp_path / "nope.toml")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_plugins_json_has_exactly_the_documented_fields(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no collector.toml here: `plugins` still works
    assert main(["plugins", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    page = next(p for p in doc["plugins"] if p["name"] == "facebook_page")
    assert set(page) == {"name", "version", "origin", "description", "scopes", "options", "metrics"}
    assert page["scopes"] == ["pages_read_engagement", "read_insights"]
    assert page["origin"] == "built-in"
    assert page["description"]
    page_id = next(o for o in page["options"] if o["name"] == "page_id")
    assert set(page_id) == {"name", "type", "required", "default", "help"}
    assert (page_id["type"], page_id["required"], page_id["default"]) == ("id", True, None)
    assert page_id["help"]
    views = next(m for m in page["metrics"] if m["graph_name"] == "page_views_total")
    assert views == {
        "graph_name": "page_views_total",
        "prometheus_name": "facebook_page_views",
        "cadence": "daily",  # issue 8: a Page day query has completed days only
        "periods": ["day", "week", "days_28"],
        "unit": "count",
    }


def test_plugin_dirs_are_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    plugins = tmp_path / "my-plugins"
    plugins.mkdir()
    (plugins / "weather.py").write_text(
        "import collectord\n"
        "class Weather(collectord.SourcePlugin):\n"
        "    name = 'weather'\n"
        "    catalogue = (collectord.MetricSpec('temp', 'weather_temp', 'fast', kind='field'),)\n"
        "    async def collect(self, ctx):\n"
        "        return []\n"
        "@collectord.hookimpl\n"
        "def register_source_plugins():\n"
        "    return [Weather()]\n"
    )
    cfg = write(
        tmp_path,
        '[collector]\nplugin_dirs = ["my-plugins"]\n'
        '[[source]]\nname = "w"\nplugin = "weather"\naccess_token = "t"\n',
    )
    assert main(["check", "-c", str(cfg)]) == 0
    assert main(["plugins", "-c", str(cfg)]) == 0, "plugins reads the plugin_dirs of -c"
    assert f"weather 0 ({plugins / 'weather.py'})" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert f"weather 0 ({plugins / 'weather.py'})" in out


def test_misspelt_hook_in_a_plugin_is_a_start_up_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = tmp_path / "p"
    plugins.mkdir()
    (plugins / "typo.py").write_text(
        "import collectord\n@collectord.hookimpl\ndef register_source_plugin():\n    return []\n"
    )
    cfg = write(tmp_path, '[collector]\nplugin_dirs = ["p"]\n')
    assert main(["check", "-c", str(cfg)]) == 2
    assert "register_source_plugin" in capsys.readouterr().err


def test_a_plugin_that_fails_to_register_is_a_start_up_error_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plugins = tmp_path / "p"
    plugins.mkdir()
    (plugins / "broken.py").write_text(
        "import collectord\n"
        "@collectord.hookimpl\n"
        "def register_source_plugins():\n"
        "    raise RuntimeError('needs a licence key')\n"
    )
    cfg = write(tmp_path, '[collector]\nplugin_dirs = ["p"]\n')
    assert main(["check", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "register_source_plugins failed: RuntimeError: needs a licence key" in err
    assert "Traceback" not in err


def test_once_logs_config_warnings_on_stderr_and_keeps_stdout_for_samples(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = write(tmp_path, '[schedule]\nfast_interval = "1m"\n' + VALID)
    assert main(["once", "--demo", "-c", str(cfg), "--log-format", "json"]) == 0
    out, err = capsys.readouterr()
    warnings = [
        json.loads(line)
        for line in err.splitlines()
        if line.startswith("{") and '"config warning"' in line
    ]
    assert len(warnings) == 1
    assert "fast_interval: 1m is shorter" in warnings[0]["detail"]
    assert "config warning" not in out
    assert "facebook_page_followers{" in out


def test_a_state_dir_that_cannot_be_made_is_one_problem_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN", "EAAtesttokenvalue1234567890")
    (tmp_path / "occupied").write_text("a file where the state folder should be")
    text = VALID.replace("[collector]\n", '[collector]\nstate_dir = "occupied/state"\n')
    cfg = write(tmp_path, text + '\n[sink.jsonl]\npath = "samples.jsonl"\n')
    # (the daemon stops at the state_dir, before it listens anywhere)
    assert main(["run", "-c", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{cfg}: [collector]: state_dir: cannot create '{tmp_path / 'occupied' / 'state'}'" in err
    )
    assert "Traceback" not in err


def test_ctrl_c_during_once_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import collectord.cli

    def interrupted(*_args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setenv("TOKEN", "EAAtesttokenvalue1234567890")
    monkeypatch.setattr(collectord.cli, "_once", interrupted)
    assert main(["once", "-c", str(write(tmp_path, VALID))]) == 130


def test_a_reader_that_goes_away_gets_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectord", "plugins"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line, as with `| head -0`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert "Traceback" not in err
    assert "BrokenPipeError" not in err


def test_once_demo_without_a_config_file_uses_the_built_in_demo_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COLLECTORD_CONFIG", raising=False)
    assert main(["once", "--demo"]) == 0
    out = capsys.readouterr().out
    for family in (
        "facebook_page_followers{",
        "facebook_post_",
        "facebook_app_",
        "instagram_user_",
        "instagram_media_",
    ):
        assert family in out, family
    assert 'source="demo-page"' in out
    assert not list(tmp_path.iterdir()), "once writes no state"


def test_demo_with_a_chosen_config_file_that_is_missing_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["once", "--demo", "-c", str(tmp_path / "nope.toml")]) == 2
    err = capsys.readouterr().err
    assert "nope.toml: cannot read the config file" in err
    assert "Traceback" not in err
