"""deploy/container: the Dockerfile's conventions, read structurally (no container engine
runs in the test environment)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from deploy_support import DEPLOY, REPO

DOCKERFILE = DEPLOY / "container" / "Dockerfile"
IGNORE = DEPLOY / "container" / "Dockerfile.dockerignore"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    result: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _final_stage() -> list[tuple[str, str]]:
    instructions = _instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _args(keyword: str) -> list[str]:
    return [rest for k, rest in _final_stage() if k == keyword]


def test_stages_build_on_slim_python_3_11() -> None:
    bases = [rest.split()[0] for keyword, rest in _instructions() if keyword == "FROM"]
    assert bases
    assert all(base == "python:3.11-slim" for base in bases)


def test_runs_as_a_non_root_user() -> None:
    users = _args("USER")
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_healthcheck_asks_healthz_with_python() -> None:
    (healthcheck,) = _args("HEALTHCHECK")
    assert "CMD" in healthcheck
    command = healthcheck.split("CMD", 1)[1].strip()
    argv = json.loads(command) if command.startswith("[") else shlex.split(command)
    assert argv[0] == "python"
    env = " ".join(_args("ENV"))
    assert "/healthz" in command or re.search(r"COLLECTORD_HEALTHZ_URL=\S+/healthz", env)
    assert "curl" not in command
    assert "wget" not in command


def test_entrypoint_is_collectord_run_and_the_port_is_exposed() -> None:
    (entrypoint,) = _args("ENTRYPOINT")
    assert json.loads(entrypoint) == ["collectord", "run"]
    assert _args("EXPOSE") == ["9464"]


def test_config_and_secrets_locations() -> None:
    env = " ".join(_args("ENV"))
    assert "COLLECTORD_CONFIG=/etc/collectord/collector.toml" in env
    run = " ".join(_args("RUN"))
    assert "/etc/collectord" in run
    assert "/run/secrets/collectord" in run
    assert any("/var/lib/collectord" in volume for volume in _args("VOLUME"))


def test_copied_sources_exist_and_pass_the_ignore_file() -> None:
    """Every COPY from the build context names a path of the repository that the
    Dockerfile's ignore file lets through."""
    allowed = {
        line.removeprefix("!").rstrip("/")
        for line in IGNORE.read_text(encoding="utf-8").splitlines()
        if line.startswith("!")
    }
    copies = [rest for keyword, rest in _instructions() if keyword == "COPY"]
    sources = [src for rest in copies if not rest.startswith("--from") for src in rest.split()[:-1]]
    assert sources
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: no such file in the repository"
        assert Path(src).as_posix().rstrip("/") in allowed, f"{src} is excluded by {IGNORE.name}"


def test_the_container_config_is_valid_and_keeps_its_state_in_the_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/container/collector.toml, with its variables set as `--env-file` would set
    them: `check` accepts it, it listens where `-p 9464:9464` reaches, and what it writes
    goes to the image's volume."""
    from collectord.cli import main
    from collectord.config.loader import load_config
    from collectord.plugin.manager import load_source_plugins, plugin_map

    path = DEPLOY / "container" / "collector.toml"
    env = {
        "FB_PAGE_TOKEN": "EAAtest",
        "FB_PAGE_ID": "1234567890",
        "IG_USER_ID": "17841400000000001",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    config = load_config(path, plugin_map(load_source_plugins()), environ=env)
    collector = config.collector
    assert (collector.listen_host, collector.listen_port) == ("0.0.0.0", 9464)
    (volume,) = (json.loads(v)[0] for v in _args("VOLUME"))
    assert str(collector.state_dir) == volume
    assert config.jsonl is not None
    assert str(config.jsonl.path).startswith(volume + "/")
    assert {s.plugin for s in config.sources} == {
        "facebook_page",
        "facebook_post",
        "instagram_user",
        "instagram_media",
    }
    monkeypatch.chdir(tmp_path)
    assert main(["check", "-c", str(path)]) == 0
    assert "EAAtest" not in capsys.readouterr().out
