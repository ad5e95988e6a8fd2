"""deploy/systemd: the unit passes `systemd-analyze verify` and scores an exposure of at
most 2.0 with `systemd-analyze security --offline=true`, and keeps what collectord needs."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from deploy_support import DEPLOY, require_tool, run_tool, supervisor_stop_timeout

SYSTEMD = DEPLOY / "systemd"
UNIT = SYSTEMD / "collectord.service"
CONFIG = SYSTEMD / "collector.toml"
#: The host's unit directory, copied into the temporary root so that the targets the unit
#: depends on (network-online.target, sysinit.target, ...) resolve.
HOST_UNITS = Path("/usr/lib/systemd/system")
MAX_EXPOSURE = 2.0


def _directives(section: str) -> list[tuple[str, str]]:
    """(key, value) pairs of one section of the unit, in order, repeated keys kept."""
    pairs: list[tuple[str, str]] = []
    current = ""
    for raw in UNIT.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
        elif current == section:
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def _service() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for key, value in _directives("Service"):
        values.setdefault(key, []).append(value)
    return values


def _exec_start() -> list[str]:
    (line,) = _service()["ExecStart"]
    return shlex.split(line)


def _root_with_unit(tmp_path: Path, *, with_binary: bool) -> tuple[Path, Path]:
    """A temporary root holding the host's units, the unit and (optionally) a stand-in
    for the collectord executable at ExecStart's path."""
    if not HOST_UNITS.is_dir():
        pytest.skip(f"{HOST_UNITS} is missing (Debian package 'systemd'; CI installs it)")
    root = tmp_path / "root"
    shutil.copytree(HOST_UNITS, root / HOST_UNITS.relative_to("/"), symlinks=True)
    unit = root / "etc" / "systemd" / "system" / UNIT.name
    unit.parent.mkdir(parents=True)
    shutil.copy(UNIT, unit)
    if with_binary:  # ExecStart's collectord and ExecReload's kill
        for line in (*_service()["ExecStart"], *_service()["ExecReload"]):
            binary = root / Path(shlex.split(line)[0]).relative_to("/")
            binary.parent.mkdir(parents=True, exist_ok=True)
            binary.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
            binary.chmod(0o755)
    return root, unit


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    root, unit = _root_with_unit(tmp_path, with_binary=True)
    status, output = run_tool([analyze, "verify", f"--root={root}", str(unit)])
    assert status == 0, output
    assert output.strip() == "", f"systemd-analyze verify warned:\n{output}"


def test_systemd_analyze_verify_sees_the_exec_start_binary(tmp_path: Path) -> None:
    """Without the stand-in executable the same check fails: the root really is used."""
    analyze = require_tool("systemd-analyze")
    root, unit = _root_with_unit(tmp_path, with_binary=False)
    status, output = run_tool([analyze, "verify", f"--root={root}", str(unit)])
    assert status != 0
    assert _exec_start()[0] in output


def test_security_exposure_is_at_most_2(tmp_path: Path) -> None:
    analyze = require_tool("systemd-analyze")
    status, output = run_tool([analyze, "security", "--offline=true", str(UNIT)], cwd=tmp_path)
    match = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?) (\w+)", output)
    assert match, output
    exposure, verdict = float(match.group(1)), match.group(2)
    assert exposure <= MAX_EXPOSURE, output
    assert verdict == "OK", output
    assert status == 0, output


def test_runs_collectord_with_json_logs_and_the_etc_config() -> None:
    argv = _exec_start()
    assert Path(argv[0]).name == "collectord"
    assert argv[1] == "run"
    assert argv[argv.index("-c") + 1] == "/etc/collectord/collector.toml"
    assert argv[argv.index("--log-format") + 1] == "json"


def test_restarts_on_failure_and_outwaits_the_daemon_shutdown() -> None:
    service = _service()
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # invalid config
    (timeout,) = service["TimeoutStopSec"]
    seconds = int(timeout.removesuffix("s"))
    assert seconds == supervisor_stop_timeout()


def test_reload_sends_sighup_and_file_descriptors_are_plenty() -> None:
    service = _service()
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    (limit,) = service["LimitNOFILE"]
    assert int(limit) >= 65536


def test_tokens_come_from_an_environment_file_or_credentials() -> None:
    service = _service()
    assert service["EnvironmentFile"] == ["-/etc/collectord/collectord.env"]
    assert service["LoadCredential"]


def test_state_lives_in_the_state_directory() -> None:
    assert _service()["StateDirectory"] == ["collectord"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("DynamicUser", "yes"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
        ("SystemCallArchitectures", "native"),
    ],
)
def test_hardening(key: str, value: str) -> None:
    assert _service()[key] == [value]


def test_syscall_filter_allows_a_normal_service_only() -> None:
    filters = _service()["SystemCallFilter"]
    assert "@system-service" in filters
    assert any(f.startswith("~") and "@privileged" in f for f in filters)


def test_network_access_is_kept() -> None:
    service = _service()
    families = " ".join(service["RestrictAddressFamilies"]).split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)
    assert service.get("PrivateNetwork", ["no"]) == ["no"]
    assert "any" not in " ".join(service.get("IPAddressDeny", []))


def test_example_config_matches_the_unit() -> None:
    """The example config keeps state in StateDirectory and reads its credential files
    from $CREDENTIALS_DIRECTORY under the names the unit loads."""
    config = tomllib.loads(CONFIG.read_text(encoding="utf-8"))
    assert config["collector"]["state_dir"] == "/var/lib/" + _service()["StateDirectory"][0]
    assert config["collector"]["log_format"] == "json"
    credentials = {entry.partition(":")[0] for entry in _service()["LoadCredential"]}
    files = [s["access_token_file"] for s in config["source"] if "access_token_file" in s]
    assert files, "no source reads its token from a credential"
    for path in files:
        prefix = "${CREDENTIALS_DIRECTORY}/"
        assert path.startswith(prefix), path
        assert path.removeprefix(prefix) in credentials, path


def test_example_config_passes_collectord_check(tmp_path: Path) -> None:
    """`collectord check` accepts the example config in the environment the unit gives it:
    $CREDENTIALS_DIRECTORY with the loaded credentials, variables from the EnvironmentFile."""
    text = CONFIG.read_text(encoding="utf-8")
    env = {name: "token" for name in re.findall(r"\$\{(\w+)\}", text)}
    env["CREDENTIALS_DIRECTORY"] = str(tmp_path)
    for entry in _service()["LoadCredential"]:
        (tmp_path / entry.partition(":")[0]).write_text("token", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "collectord", "check", "-c", str(CONFIG)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
