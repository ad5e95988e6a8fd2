"""Hostile and unlucky config input: a config on a pipe, absurd sizes and depths, values
``run`` could not use, and values that must never be echoed in a problem line."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from collectord import Option, SourcePlugin
from collectord.cli import main
from collectord.config.checks import MAX_DURATION
from collectord.config.document import CONFIG_MAX_BYTES, ConfigReadError, read_config_bytes
from collectord.config.loader import load_config
from collectord.errors import ConfigError
from collectord.plugin.manager import load_source_plugins, plugin_map

PLUGINS = plugin_map(load_source_plugins(()))
#: Token-shaped values: neither may appear in any output.
PAGE_TOKEN = "EAAGm0PX4ZCpsBAKZCZCZBZBverysecretPAGEtoken42"
APP_SECRET = "9f3c2a71be04d5e6c8a1f2b3d4e5f6a7"

SOURCE = """
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "t"
page_id = "1234567890"
"""
MEDIA_SOURCE = """
[[source]]
name = "acme-media"
plugin = "instagram_media"
access_token = "t"
ig_user_id = "17841400000000000"
"""


def run_cli(*argv: str) -> tuple[int, str, str]:
    """``collectord ARGV`` in-process: exit status, stdout, stderr (logs included)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def problems(tmp_path: Path, text: str, environ: Mapping[str, str] | None = None) -> list[str]:
    path = tmp_path / "collector.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, PLUGINS, environ=environ or {})
    lines = info.value.problems
    assert lines
    assert all(line.startswith(f"{path}: ") and "\n" not in line for line in lines), lines
    return lines


@contextlib.contextmanager
def fifo_writer(path: Path, data: bytes, *, endless: bool = False) -> Iterator[threading.Thread]:
    """A FIFO at ``path`` fed by a thread: ``data`` once, or ``data`` again and again
    until the reader goes away."""
    os.mkfifo(path)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), path.open("wb") as fifo:
            fifo.write(data)
            while endless:
                fifo.write(data)

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield thread
    thread.join(timeout=10)
    assert not thread.is_alive()


# -- read once, whatever the file is --------------------------------------------------


def test_check_reads_a_config_given_on_a_pipe_once() -> None:
    read_end, write_end = os.pipe()

    def feed() -> None:
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(SOURCE.encode())

    thread = threading.Thread(target=feed)
    thread.start()
    try:
        code, out, err = run_cli("check", "-c", f"/dev/fd/{read_end}")
    finally:
        thread.join()
        os.close(read_end)
    assert code == 0, err
    # Read twice, the second read found nothing: "valid, 0 source(s)".
    assert "valid, 1 source(s)" in out
    assert 'source "acme-page" (plugin facebook_page)' in out


def test_the_loader_and_check_read_a_fifo_fed_by_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "collector.toml"
    with fifo_writer(fifo, SOURCE.encode()):
        config = load_config(fifo, PLUGINS, environ={})
    assert [s.name for s in config.sources] == ["acme-page"]
    fifo.unlink()
    with fifo_writer(fifo, SOURCE.encode()):
        code, out, _ = run_cli("check", "-c", str(fifo))
    assert code == 0
    assert "valid, 1 source(s)" in out


def test_a_writer_that_never_stops_is_an_error_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "endless.toml"
    with fifo_writer(fifo, b"# filler line\n" * 4096, endless=True):
        code, _, err = run_cli("check", "-c", str(fifo))
    assert code == 2
    assert err.strip() == f"{fifo}: cannot read the config file: it is larger than 1 MiB"


def test_a_fifo_without_a_writer_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "silent.toml"
    os.mkfifo(fifo)
    with pytest.raises(ConfigReadError, match=r"took longer than 0\.2s"):
        read_config_bytes(fifo, timeout=0.2)


def test_a_writer_that_stalls_times_out(tmp_path: Path) -> None:
    fifo = tmp_path / "stalled.toml"
    os.mkfifo(fifo)
    release = threading.Event()

    def stall() -> None:
        with fifo.open("wb") as pipe:
            pipe.write(b"[collector]\n")
            pipe.flush()
            release.wait(10)

    thread = threading.Thread(target=stall, daemon=True)
    thread.start()
    try:
        with pytest.raises(ConfigReadError, match="took longer than"):
            read_config_bytes(fifo, timeout=0.3)
    finally:
        release.set()
        thread.join(10)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("/dev/zero", "it is larger than 1 MiB"),
        ("/dev/urandom", "it is larger than 1 MiB"),
        ("big.toml", "it is larger than 1 MiB"),
        ("folder", "it is a directory"),
    ],
)
def test_absurd_config_files_are_one_clear_line(tmp_path: Path, name: str, expected: str) -> None:
    (tmp_path / "big.toml").write_bytes(b"#" * (CONFIG_MAX_BYTES + 1))
    (tmp_path / "folder").mkdir()
    path = name if name.startswith("/") else str(tmp_path / name)
    code, out, err = run_cli("check", "-c", path)
    assert (code, out) == (2, "")
    assert err.strip() == f"{path}: cannot read the config file: {expected}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a = " + "[" * 500 + "]" * 500, "nested more than 16 deep"),
        ("a = " + "{b = " * 500 + "1" + "}" * 500, "nested more than 16 deep"),
        ("[" + ".".join(["t"] * 5000) + "]", "nested more than 16 deep"),
        ("a = " + "9" * 5000, "a number too long to read"),
    ],
)
def test_deep_and_huge_toml_is_exit_2_without_a_traceback(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(text)
    code, _, err = run_cli("check", "-c", str(path))
    assert code == 2
    assert err.strip() == f"{path}: invalid TOML: " + (
        "tables or arrays nested more than 16 deep" if "nested" in expected else expected
    )


def test_a_real_check_reads_stdin_once() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "collectord", "check", "-c", "/dev/stdin"],
        input=SOURCE,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "/dev/stdin: valid, 1 source(s)" in proc.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def test_run_serves_a_config_from_a_pipe_on_the_listen_flag(tmp_path: Path) -> None:
    """The daemon reads its config from stdin once (its source is there) and serves on
    ``--listen``, not on the ``listen`` of the file."""
    port = _free_port()
    config = (
        f'[collector]\nlisten = "127.0.0.1:1"\nstate_dir = "{tmp_path / "state"}"\n'
        '[graph]\nbase_url = "http://127.0.0.1:9"\n' + SOURCE
    )
    args = ["run", "-c", "/dev/stdin", "--listen", f"127.0.0.1:{port}", "--log-format", "json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "collectord", *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    try:
        assert proc.stdin is not None
        proc.stdin.write(config.encode())
        proc.stdin.close()
        deadline = time.monotonic() + 30
        metrics = None
        while metrics is None and proc.poll() is None and time.monotonic() < deadline:
            metrics = _get(f"http://127.0.0.1:{port}/metrics")
            if metrics is None:
                time.sleep(0.05)  # not listening yet (as the integration helpers poll)
        assert metrics is not None, "collectord did not serve on --listen"
        assert 'collectord_source_up{plugin="facebook_page",source="acme-page"}' in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


# -- values run cannot use --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[collector]\nlisten = "127.0.0.1:0"', "[collector]: listen: port must be between"),
        ('[collector]\nlisten = "127.0.0.1:99999999999999999999"', "listen: port must be"),
        ('[collector]\nlisten = "bad host:9464"', "listen: expected HOST:PORT"),
        ('[collector]\nlisten = "[::1:9464"', "listen: expected HOST:PORT"),
        ('[graph]\nbase_url = "http://h:99999"', "base_url: expected an http:// or https:// URL: its port is not between 1 and 65535"),
        ('[graph]\nbase_url = "http://[::1"', "base_url: expected an http:// or https:// URL: it does not parse"),
        ('[graph]\nbase_url = "http://h:abc"', "base_url: expected an http:// or https:// URL"),
        ('[graph]\nbase_url = "http://:80"', "base_url: expected an http:// or https:// URL"),
        ('[graph]\nbase_url = "http://exa mple.com"', "base_url: expected an http:// or https:// URL without spaces"),
        ('[graph]\ntimeout = "2h"', "[graph]: timeout: must be at most 1h"),
        ("[graph]\nusage_ceiling = nan", "[graph]: usage_ceiling: expected a finite number"),
        ("[graph]\nusage_ceiling = 1" + "0" * 400, "[graph]: usage_ceiling: expected a finite number"),
        ("[graph]\nmax_concurrency = 1" + "0" * 30, "[graph]: max_concurrency: is too large"),
        ('[schedule]\nfast_interval = "10000000d"', "[schedule]: fast_interval: must be at most 3650d"),
        ('[schedule]\ndaily_interval = "' + "9" * 400 + 'd"', "[schedule]: daily_interval: must be at most 3650d"),
        ('[schedule]\njitter = "3651d"', "[schedule]: jitter: must be at most 3650d"),
        ('[sink.jsonl]\npath = "x"\nbackups = 1000000000', "[sink.jsonl]: backups: must be between 0 and 1000, got 1000000000"),
        ('[sink.jsonl]\npath = "x"\nmax_bytes = 10', "[sink.jsonl]: max_bytes: must be between 65536 and"),
        ('[sink.jsonl]\npath = "x"\nmax_bytes = 1' + "0" * 15, "[sink.jsonl]: max_bytes: must be between 65536 and"),
        ('[sink.jsonl]\npath = "/dev/full"', "[sink.jsonl]: path: expected a regular file, found a device"),
        ('[sink.jsonl]\npath = "folder"', "[sink.jsonl]: path: expected a regular file, found a directory"),
        ('[sink.jsonl]\npath = "fifo"', "[sink.jsonl]: path: expected a regular file, found a FIFO"),
        ('[sink.jsonl]\npath = "link"', "[sink.jsonl]: path: is a symbolic link"),
        ('[sink.jsonl]\npath = "plain/x.jsonl"', "[sink.jsonl]: path: its folder is a regular file, not a directory"),
        ('[collector]\nstate_dir = "plain"', "[collector]: state_dir: expected a directory, found a regular file"),
    ],
)  # fmt: skip
def test_check_refuses_what_run_cannot_use(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere.jsonl")
    (tmp_path / "plain").write_text("")
    found = problems(tmp_path, text + "\n" + SOURCE)
    assert any(expected in line for line in found), found


def test_plugin_durations_have_the_same_ceiling(tmp_path: Path) -> None:
    found = problems(tmp_path, MEDIA_SOURCE + 'max_age = "1000000d"\n')
    assert found == [
        f'{tmp_path / "collector.toml"}: source "acme-media": max_age: must be at most 3650d'
    ]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("fifo", "it is a FIFO (named pipe), not a regular file"),
        ("/dev/urandom", "it is a device, not a regular file"),
        ("folder", "it is a directory, not a regular file"),
        ("big", "it is larger than 64 KiB"),
        ("missing", "No such file or directory"),
    ],
)
def test_value_files_that_are_not_small_regular_files(
    tmp_path: Path, target: str, expected: str
) -> None:
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo")  # nobody writes: reading it would hang
    (tmp_path / "big").write_text("x" * (64 * 1024 + 1))
    text = SOURCE.replace('access_token = "t"', f'access_token_file = "{target}"')
    found = problems(tmp_path, text)
    named = target if target.startswith("/") else tmp_path / target
    assert found == [
        f'{tmp_path / "collector.toml"}: source "acme-page": access_token_file: '
        f"cannot read {named}: {expected}"
    ]


def test_the_maxima_are_values_run_can_use() -> None:
    """What check lets through, the scheduler and the clock arithmetic accept."""
    now = datetime(2026, 12, 4, tzinfo=UTC)
    trigger = IntervalTrigger(seconds=MAX_DURATION, jitter=MAX_DURATION, timezone=UTC)
    assert trigger.get_next_fire_time(None, now) is not None
    assert now - timedelta(seconds=MAX_DURATION) < now
    assert now + timedelta(seconds=2 * MAX_DURATION) > now


# -- never echo a secret ----------------------------------------------------------------

ECHO_CONFIG = """
[collector]
listen = "${PAGE_TOKEN}"
log_level = "${FB_APP_SECRET}"

[graph]
version = "${FB_APP_SECRET}"
base_url = "https://${PAGE_TOKEN}:99999"

[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "t"
page_id = "${PAGE_TOKEN}"

[[source]]
name = "acme-app"
plugin = "facebook_app"
app_id_file = "secret.txt"
period = "${FB_APP_SECRET}"
"""


def _assert_no_secret(text: str) -> None:
    for secret in (PAGE_TOKEN, APP_SECRET):
        assert secret not in text
        assert secret[8:24] not in text  # not even a part


def test_values_from_variables_and_files_are_never_echoed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGE_TOKEN", PAGE_TOKEN)
    monkeypatch.setenv("FB_APP_SECRET", APP_SECRET)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text(APP_SECRET + "\n")
    path = tmp_path / "collector.toml"
    path.write_text(ECHO_CONFIG)
    code, out, err = run_cli("check", "-c", str(path))
    assert code == 2
    _assert_no_secret(out + err)
    lines = err.strip().splitlines()
    expected = [
        "[collector]: listen: expected HOST:PORT such as",
        "(the value comes from ${PAGE_TOKEN}, not shown)",
        "[collector]: log_level: expected one of debug, info, warning, error "
        "(the value comes from ${FB_APP_SECRET}, not shown)",
        '[graph]: version: expected a Graph API version such as "v26.0" '
        "(the value comes from ${FB_APP_SECRET}, not shown)",
        "[graph]: base_url: expected an http:// or https:// URL: its port is not between 1 "
        "and 65535 (the value comes from https://${PAGE_TOKEN}:99999, not shown)",
        'source "acme-page": page_id: expected a numeric id '
        "(the value comes from ${PAGE_TOKEN}, not shown)",
        f'source "acme-app": app_id: expected a numeric id (the value comes from the file '
        f"{tmp_path / 'secret.txt'}, not shown)",
        'source "acme-app": period: expected one of',
    ]
    for fragment in expected:
        assert any(fragment in line for line in lines), (fragment, lines)
    # The same through a real process, whose logs go to stderr too.
    proc = subprocess.run(
        [sys.executable, "-m", "collectord", "run", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    _assert_no_secret(proc.stdout + proc.stderr)
    assert "not shown" in proc.stderr


class EchoingPlugin(SourcePlugin):
    """A plugin whose own check repeats the values it got (as careless plugins do)."""

    name = "echoing"
    options = (Option("label", "str"), Option("webhook_key", "str", secret=True))

    def validate(self, options: Mapping[str, Any]) -> list[str]:
        key = options["webhook_key"]
        return [f"label {options['label']!r} does not go with {key.reveal()!r}"]

    async def collect(self, ctx: Any) -> Any:
        raise NotImplementedError


def test_a_plugin_message_that_repeats_a_value_is_masked(tmp_path: Path) -> None:
    text = (
        '[[source]]\nname = "e"\nplugin = "echoing"\naccess_token = "t"\n'
        'label = "${PAGE_TOKEN}"\nwebhook_key = "literal-webhook-key-value"\n'
    )
    path = tmp_path / "collector.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, {"echoing": EchoingPlugin()}, environ={"PAGE_TOKEN": PAGE_TOKEN})
    (line,) = info.value.problems
    assert line.startswith(f'{path}: source "e": label ')
    assert PAGE_TOKEN not in line
    assert "literal-webhook-key-value" not in line


def test_listen_override_from_the_flag_and_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text('[collector]\nlisten = "127.0.0.1:9464"\n' + SOURCE)
    assert run_cli("check", "-c", str(path))[1].splitlines()[1] == "listen 127.0.0.1:9464"
    monkeypatch.setenv("COLLECTORD_LISTEN", "[::1]:9999")
    assert run_cli("check", "-c", str(path))[1].splitlines()[1] == "listen [::1]:9999"
    monkeypatch.setenv("COLLECTORD_LISTEN", "0.0.0.0:70000")
    code, out, err = run_cli("check", "-c", str(path))
    assert (code, out) == (2, "")
    assert err.strip() == (
        "$COLLECTORD_LISTEN: port must be between 1 and 65535, got '0.0.0.0:70000'"
    )
    code, out, err = run_cli("run", "-c", str(path), "--listen", "nohost")
    assert (code, out) == (2, "")
    assert err.strip().startswith("--listen: expected HOST:PORT")


def test_plugin_dirs_from_a_file_are_not_shown_by_the_plugin_loader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text(PAGE_TOKEN + "\n")
    path = tmp_path / "collector.toml"
    path.write_text('[collector]\nplugin_dirs_file = "secret.txt"\n' + SOURCE)
    code, out, err = run_cli("check", "-c", str(path))
    assert (code, out) == (2, "")
    _assert_no_secret(err)
    assert err.strip() == (
        f"{path}: [collector]: plugin_dirs: item 1 is not a directory "
        f"(the value comes from the file {tmp_path / 'secret.txt'}, not shown)"
    )


def test_short_values_from_variables_do_not_garble_other_messages(tmp_path: Path) -> None:
    text = '[collector]\nlog_level = "loud"\n' + SOURCE.replace('"acme-page"', '"${NAME}"')
    found = problems(tmp_path, text, environ={"NAME": "info"})
    assert found == [
        f"{tmp_path / 'collector.toml'}: [collector]: log_level: "
        "expected one of debug, info, warning, error, got 'loud'"
    ]


def test_a_huge_key_or_value_stays_one_short_line(tmp_path: Path) -> None:
    key, value = "k" * 200_000, "v" * 200_000
    found = problems(tmp_path, f'{key} = 1\n[collector]\nlog_level = "{value}"\n' + SOURCE)
    assert len(found) == 2
    assert all(len(line) < 1000 for line in found)
    assert found[1].endswith("vvv... (200000 characters)")
