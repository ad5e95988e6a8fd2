"""A real Prometheus scrapes a real `collectord run --demo` with the shipped scrape config
and rules: collectord's series and a recording rule over them get values.

Uses the `prometheus` binary when installed (CI installs Debian's `prometheus`); all
traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from deploy_support import RULES_FILE, SCRAPE_CONFIG, load_yaml, require_tool

pytestmark = pytest.mark.integration

#: How long collectord and Prometheus get to start, scrape and evaluate.
DEADLINE_SECONDS = 90.0
#: How long each process gets to exit after SIGTERM.
STOP_SECONDS = 30.0
SOURCE = "demo-page"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _collectord_config(path: Path, port: int) -> None:
    path.write_text(
        f"""\
[collector]
listen = "127.0.0.1:{port}"
log_format = "json"
state_dir = "{path.parent / "state"}"

[schedule]
fast_interval = "2s"
daily_interval = "5s"
jitter = "1s"

[[source]]
name = "{SOURCE}"
plugin = "facebook_page"
access_token = "x"
page_id = "1"
""",
        encoding="utf-8",
    )


def _prometheus_config(path: Path, collectord_port: int) -> None:
    """The shipped scrape config, pointed at the test's collectord, scraping every second."""
    config: dict[str, Any] = load_yaml(SCRAPE_CONFIG)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    (job,) = (j for j in config["scrape_configs"] if j["job_name"] == "collectord")
    job["scrape_timeout"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{collectord_port}"]}]
    config["rule_files"] = [str(RULES_FILE)]
    config.pop("alerting", None)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


class Process:
    """A child process whose output goes to a log file, stopped with SIGTERM."""

    def __init__(self, name: str, args: list[str], log: Path, cwd: Path) -> None:
        self.name = name
        self.log = log
        self._out: IO[bytes] = log.open("wb")
        self.popen = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, cwd=cwd)

    def tail(self) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.name} log (end) ---\n{text[-3000:]}"

    def check_running(self) -> None:
        if self.popen.poll() is not None:
            pytest.fail(f"{self.name} exited early with {self.popen.returncode}\n{self.tail()}")

    def stop(self) -> int:
        """SIGTERM, wait, and return the exit status (killed and failed after a timeout)."""
        try:
            if self.popen.poll() is None:
                self.popen.send_signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
                pytest.fail(f"{self.name} did not stop within {STOP_SECONDS} s\n{self.tail()}")
        finally:
            self._out.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:  # after a failure; a passing test stopped them already
        if process.popen.poll() is None:
            process.popen.kill()
            process.popen.wait()


def _query(prometheus_port: int, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr}
    )
    with urllib.request.urlopen(url, timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]["result"]


def _api(prometheus_port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{prometheus_port}{path}", timeout=5) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def _evaluated_rules(prometheus_port: int) -> list[dict[str, Any]]:
    """Every loaded rule once all have been evaluated at least once, else []."""
    groups = _api(prometheus_port, "/api/v1/rules")["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    return rules if all(rule["health"] != "unknown" for rule in rules) else []


def _wait_for(
    what: str, check: Any, processes: list[Process], deadline: float
) -> list[dict[str, Any]]:
    """Poll ``check()`` until it returns a non-empty result or the deadline passes."""
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        for process in processes:
            process.check_running()
        try:
            result = check()
            if result:
                return result
        except OSError as exc:  # not listening yet
            last_error = exc
        time.sleep(0.5)
    logs = "\n".join(p.tail() for p in processes)
    pytest.fail(f"timed out waiting for {what} (last error: {last_error})\n{logs}")


def test_prometheus_scrapes_collectord_and_evaluates_the_rules(
    tmp_path: Path, processes: list[Process]
) -> None:
    prometheus = require_tool("prometheus")
    collectord_port, prometheus_port = _free_port(), _free_port()
    collectord_config = tmp_path / "collector.toml"
    prometheus_config = tmp_path / "prometheus.yml"
    _collectord_config(collectord_config, collectord_port)
    _prometheus_config(prometheus_config, collectord_port)

    env_python = [sys.executable, "-m", "collectord"]
    collectord = Process(
        "collectord",
        [*env_python, "run", "--demo", "-c", str(collectord_config)],
        tmp_path / "collectord.log",
        tmp_path,
    )
    processes.append(collectord)
    server = Process(
        "prometheus",
        [
            prometheus,
            f"--config.file={prometheus_config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        tmp_path / "prometheus.log",
        tmp_path,
    )
    processes.append(server)
    deadline = time.monotonic() + DEADLINE_SECONDS

    up = _wait_for(
        "collectord_source_up in Prometheus",
        lambda: _query(prometheus_port, f'collectord_source_up{{source="{SOURCE}"}}'),
        processes,
        deadline,
    )
    assert up[0]["metric"]["job"] == "collectord"
    rate = _wait_for(
        "the recording rule source:engagement_rate:ratio",
        lambda: _query(prometheus_port, f'source:engagement_rate:ratio{{source="{SOURCE}"}}'),
        processes,
        deadline,
    )
    assert rate[0]["metric"]["platform"] == "facebook"
    assert float(rate[0]["value"][1]) >= 0

    # What Prometheus scrapes, self-metrics included, passes promtool's linter: no warning.
    with urllib.request.urlopen(f"http://127.0.0.1:{collectord_port}/metrics", timeout=5) as r:
        exposition = r.read()
    lint = subprocess.run(
        [require_tool("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (lint.returncode, lint.stdout + lint.stderr) == (0, b"")

    targets = _api(prometheus_port, "/api/v1/targets")["activeTargets"]
    assert [t["health"] for t in targets if t["labels"]["job"] == "collectord"] == ["up"]
    # Every shipped rule evaluates without error against collectord's real series.
    rules = _wait_for(
        "every rule's first evaluation",
        lambda: _evaluated_rules(prometheus_port),
        processes,
        deadline,
    )
    assert len(rules) == sum(len(g["rules"]) for g in load_yaml(RULES_FILE)["groups"])
    broken = {rule["name"]: rule.get("lastError") for rule in rules if rule["health"] != "ok"}
    assert broken == {}

    assert server.stop() == 0, server.tail()
    assert collectord.stop() == 0, collectord.tail()
