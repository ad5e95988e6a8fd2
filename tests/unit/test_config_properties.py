"""Random and malformed config files (hypothesis): the loader and ``collectord check``
never show a traceback and never a secret; they accept the file (exit 0) or say what is
wrong, one line per problem (exit 2)."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectord.cli import main
from collectord.config.loader import load_config, read_document
from collectord.errors import ConfigError
from collectord.plugin.manager import load_source_plugins, plugin_map

PLUGINS = plugin_map(load_source_plugins(()))
PAGE_TOKEN = "EAAGm0PX4ZCpsBAKZCZCZBZBverysecretPAGEtoken42"
APP_SECRET = "9f3c2a71be04d5e6c8a1f2b3d4e5f6a7"
ENV = {"PAGE_TOKEN": PAGE_TOKEN, "FB_APP_SECRET": APP_SECRET}
SECRETS = (PAGE_TOKEN, APP_SECRET, PAGE_TOKEN[10:30], APP_SECRET[4:24])

COLLECTOR_KEYS = ("listen", "log_level", "log_format", "state_dir", "plugin_dirs")
GRAPH_KEYS = ("base_url", "version", "app_id", "app_secret", "timeout", "max_concurrency")
GRAPH_KEYS += ("usage_ceiling", "token_check_interval")
SCHEDULE_KEYS = ("fast_interval", "daily_interval", "jitter")
SINK_KEYS = ("path", "max_bytes", "backups")
PLUGIN_KEYS = sorted({option.name for plugin in PLUGINS.values() for option in plugin.options})
SOURCE_KEYS = ("access_token", "metrics", *SCHEDULE_KEYS, *PLUGIN_KEYS)
#: Values that come close to what the loader checks.
NEAR_MISSES = (
    *("10000000d", "3650d", "3651d", "1.5h", "0s", "500ms", "9" * 400 + "d", "1h30m", "15"),
    *("http://[::1", "http://h:99999", "https://graph.facebook.com", "ftp://x", "http://:80"),
    *("127.0.0.1:9464", "[::1]:0", "[::1]:9464", "h:99999999999999999999", "a b:1"),
    *("${PAGE_TOKEN}", "${FB_APP_SECRET}", "x${PAGE_TOKEN}y", "${UNSET}", "${", "${1x}", "$$"),
    *("v26.0", "26.0", "day", "days_28", "debug", "json", "", "1234567890", "17841400000000000"),
    *("/dev/zero", "/dev/null", "/dev/full", "fifo", "folder", "secret.txt", "big", "missing"),
    PAGE_TOKEN,
)
FILES = ("secret.txt", "fifo", "folder", "big", "missing", "/dev/zero", "/dev/urandom", "${UNSET}")

scalars = st.one_of(
    st.sampled_from(NEAR_MISSES),
    st.text(max_size=20),
    st.integers(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(),
    st.booleans(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def keys_of(keys: tuple[str, ...]) -> dict[str, st.SearchStrategy[tuple[str, Any]]]:
    """For each of ``keys``: a value, or its ``_file`` form naming one of :data:`FILES`."""
    either = st.one_of(
        values.map(lambda value: ("", value)),
        st.sampled_from(FILES).map(lambda name: ("_file", name)),
    )
    return {key: either for key in keys}


def named(drawn: dict[str, tuple[str, Any]]) -> dict[str, Any]:
    return {key + suffix: value for key, (suffix, value) in drawn.items()}


def table(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=keys_of(keys)).map(named)


sources = st.fixed_dictionaries(
    {
        "name": st.one_of(st.sampled_from(("acme", "acme", "b-2")), values),
        "plugin": st.sampled_from((*PLUGINS, "nope")),
    },
    optional={"graph": table(GRAPH_KEYS).map(lambda t: ("", t)), **keys_of(SOURCE_KEYS)},
).map(
    lambda d: {
        "name": d.pop("name"),
        "plugin": d.pop("plugin"),
        **named(d),
    }
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "collector": table(COLLECTOR_KEYS),
        "graph": table(GRAPH_KEYS),
        "schedule": table(SCHEDULE_KEYS),
        "sink": st.fixed_dictionaries({"jsonl": table(SINK_KEYS)}),
        "source": st.lists(sources, max_size=3),
        "stray": values,
    },
)


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string (JSON's escapes are TOML's, but DEL must be escaped)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """``value`` written as TOML (inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return "{" + ", ".join(f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(doc: Mapping[str, Any]) -> str:
    lines: list[str] = []
    for name, value in doc.items():
        if name == "source":
            for source in value:
                lines.append("[[source]]")
                lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in source.items()]
        elif name == "sink":
            lines.append("[sink.jsonl]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in value["jsonl"].items()]
        elif isinstance(value, dict):
            lines.append(f"[{name}]")
            lines += [f"{toml_string(k)} = {toml_value(v)}" for k, v in value.items()]
        else:
            lines.insert(0, f"{toml_string(name)} = {toml_value(value)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the files the random documents name: a secret, a FIFO nobody
    writes to, a folder, a file too big for a value."""
    path = tmp_path_factory.mktemp("hostile")
    (path / "secret.txt").write_text(PAGE_TOKEN + "\n")
    os.mkfifo(path / "fifo")
    (path / "folder").mkdir()
    (path / "big").write_text("1" * 70_000)
    return path


@contextlib.contextmanager
def environment(folder: Path) -> Iterator[None]:
    """The secrets in the environment and ``folder`` as the working directory."""
    old = Path.cwd()
    os.chdir(folder)
    try:
        with mock.patch.dict(os.environ, ENV):
            yield
    finally:
        os.chdir(old)


def assert_clean(path: Path, lines: list[str]) -> None:
    assert lines
    for line in lines:
        assert line.startswith(f"{path}: ") or line.startswith(f"{path.name}: "), line
        assert "\n" not in line
        assert "Traceback" not in line
        for secret in SECRETS:
            assert secret not in line


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=documents)
def test_the_loader_accepts_or_lists_problems(folder: Path, doc: dict[str, Any]) -> None:
    path = folder / "collector.toml"
    path.write_text(toml_document(doc), encoding="utf-8")
    try:
        config = load_config(path, PLUGINS, environ=ENV)
    except ConfigError as exc:
        assert_clean(path, exc.problems)
    else:
        assert_clean(path, list(config.warnings) or [f"{path}: valid"])


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(doc=documents)
def test_check_exits_0_or_2_without_traceback_or_secret(folder: Path, doc: dict[str, Any]) -> None:
    path = folder / "collector.toml"
    path.write_text(toml_document(doc), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with environment(folder), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", "-c", str(path)])
    for secret in SECRETS:
        assert secret not in out.getvalue() + err.getvalue()
    assert "Traceback" not in out.getvalue() + err.getvalue()
    if code == 0:
        assert out.getvalue().startswith(f"{path}: valid")
    else:
        assert (code, out.getvalue()) == (2, "")
        assert_clean(path, err.getvalue().splitlines())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(raw=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(str.encode)))
def test_random_bytes_are_a_document_or_one_problem(tmp_path_factory: Any, raw: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / "random.toml"
    path.write_bytes(raw)
    try:
        read_document(path)
    except ConfigError as exc:
        (line,) = exc.problems
        assert line.startswith(f"{path}: ")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    depth=st.integers(min_value=1, max_value=3000),
    kind=st.sampled_from(("array", "inline", "header")),
)
def test_nesting_of_any_depth_is_read_or_refused(
    tmp_path_factory: Any, depth: int, kind: str
) -> None:
    if kind == "array":
        text = "a = " + "[" * depth + "]" * depth
    elif kind == "inline":
        text = "a = " + "{b = " * depth + "1" + "}" * depth
    else:
        text = "[" + ".".join(["t"] * depth) + "]\nx = 1"
    path = tmp_path_factory.getbasetemp() / "deep.toml"
    path.write_text(text)
    if depth <= 16:
        read_document(path)
        return
    with pytest.raises(ConfigError) as info:
        read_document(path)
    assert info.value.problems == [
        f"{path}: invalid TOML: tables or arrays nested more than 16 deep"
    ]


def test_two_random_documents_through_a_real_check(folder: Path) -> None:
    """A real process, for the paths in-process tests cannot see (stderr, exit status)."""
    docs: list[dict[str, Any]] = []

    @settings(max_examples=2, deadline=None, derandomize=True, database=None)
    @given(doc=st.tuples(documents, st.lists(sources, min_size=1, max_size=2)))
    def collect(doc: tuple[dict[str, Any], list[dict[str, Any]]]) -> None:
        docs.append({**doc[0], "source": doc[1]})

    collect()
    for number, doc in enumerate(docs):
        path = folder / f"real-{number}.toml"
        path.write_text(toml_document(doc), encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "collectord", "check", "-c", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=folder,
            env={**os.environ, **ENV},
        )
        assert proc.returncode in (0, 2), proc.stderr
        assert "Traceback" not in proc.stderr
        for secret in SECRETS:
            assert secret not in proc.stdout + proc.stderr
        if proc.returncode == 2:
            assert_clean(path, proc.stderr.splitlines())


def test_the_generator_writes_toml() -> None:
    """The serialiser behind these tests produces TOML that reads back as written."""
    doc = {"t": {"s": 'a"b\\c\x7f\n\U0001f600', "n": [1, 2.5, True], "i": {"\U0001f600": "v"}}}
    assert tomllib.loads(toml_document(doc)) == doc
