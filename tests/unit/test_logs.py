"""Logging: one chain for our logs and the libraries', JSON for services, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from collectord.logs import configure_logging, get_logger
from collectord.secret import MASK, Secret, scrub

TOKEN = "EAAGm0PX4ZCpsBAKZCZCZBZBverysecretTOKEN123"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    out = io.StringIO()
    yield out
    configure_logging("info", "console")  # leave the process as the CLI would


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_format_for_our_logs_and_stdlib_libraries(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream=stream)
    get_logger("collectord.test").info("poll done", source="acme", samples=3)
    logging.getLogger("apscheduler.jobstores").warning("job %s missed", "acme:fast")
    first, second = json_lines(stream)
    assert first["event"] == "poll done"
    assert first["source"] == "acme"
    assert first["level"] == "info"
    assert "timestamp" in first
    assert second["event"] == "job acme:fast missed"
    assert second["logger"] == "apscheduler.jobstores"
    assert second["level"] == "warning"


def test_secrets_are_redacted_everywhere(stream: io.StringIO) -> None:
    configure_logging("debug", "json", stream=stream)
    log = get_logger("collectord.test")
    log.info("request", url=f"https://graph.facebook.com/v26.0/me?access_token={TOKEN}&x=1")
    log.info("config", access_token="plain-value-here", app_secret=Secret("s3cr3t-value"))
    log.info(f"bare token {TOKEN} in the event text")
    logging.getLogger("aiohttp.client").warning("GET /me?access_token=%s failed", TOKEN)
    text = stream.getvalue()
    assert TOKEN not in text
    assert "plain-value-here" not in text
    assert "s3cr3t-value" not in text
    assert text.count(MASK) >= 5


def test_tracebacks_have_no_frame_locals(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream=stream)
    log = get_logger("collectord.test")

    def fail(token: str) -> None:
        raise RuntimeError("boom")

    try:
        fail(TOKEN)
    except RuntimeError:
        log.exception("poll crashed")
    (record,) = json_lines(stream)
    assert TOKEN not in stream.getvalue()
    frames = record["exception"][0]["frames"]  # type: ignore[index]
    assert frames
    assert all("locals" not in f or not f["locals"] for f in frames)


def test_console_format_is_for_people(stream: io.StringIO) -> None:
    configure_logging("warning", "console", stream=stream)
    log = get_logger("collectord.test")
    log.info("hidden at warning level")
    log.warning("source failing", source="acme")
    text = stream.getvalue()
    assert "hidden" not in text
    assert "source failing" in text
    assert "source=acme" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_secret_type_and_scrub() -> None:
    s = Secret(TOKEN)
    assert TOKEN not in f"{s} {s!r} {[s]} {s:>10}"
    assert s.reveal() == TOKEN
    assert scrub(f"next=https://h/v1/x?after=a&access_token={TOKEN}&limit=1") == (
        f"next=https://h/v1/x?after=a&access_token={MASK}&limit=1"
    )
    assert scrub('{"input_token": "abcdef"}') == f'{{"input_token": "{MASK}"}}'


def test_redaction_looks_inside_nested_dicts_lists_and_tuples(stream: io.StringIO) -> None:
    configure_logging("info", "json", stream=stream)
    cyclic: list[object] = ["start"]
    cyclic.append(cyclic)
    get_logger("collectord.test").warning(
        "reload",
        config={
            "graph": {"app_secret": "app-secret-literal", "version": "v26.0"},
            "sources": [{"name": "acme", "access_token": "page-token-literal"}],
        },
        tokens=("first-token-literal", "second-token-literal"),
        basic_auth_users={"prometheus": "$2b$12$bcrypthashliteral"},
        calls=[[f"https://graph.facebook.com/me?access_token={TOKEN}"], (Secret("held"),)],
        cyclic=cyclic,
    )
    text = stream.getvalue()
    for secret in (
        "app-secret-literal",
        "page-token-literal",
        "first-token-literal",
        "second-token-literal",
        "bcrypthashliteral",
        TOKEN,
        "held",
    ):
        assert secret not in text
    (record,) = json_lines(stream)
    config = record["config"]
    assert config["graph"] == {"app_secret": MASK, "version": "v26.0"}  # type: ignore[index]
    assert config["sources"] == [{"name": "acme", "access_token": MASK}]  # type: ignore[index]
    assert record["tokens"] == [MASK, MASK]
    assert record["basic_auth_users"] == {"prometheus": MASK}
    assert record["calls"] == [
        [f"https://graph.facebook.com/me?access_token={MASK}"],
        [MASK],
    ]
    assert "nested too deep" in json.dumps(record["cyclic"])
