"""Protected endpoints: HTTPS with a real client, certificates renewed without a restart,
client certificates, basic auth with wrong and right credentials, and ``POST /-/reload``."""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
import ssl
import threading
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from structlog.testing import capture_logs
from web_support import HASH, PATIENCE, TLS, exchange, serve

from collectord.config.web import WebConfig
from collectord.web import auth as auth_module
from collectord.web.auth import BasicAuth, parse_basic
from collectord.web.server import AUTH_KEY, is_loopback, reload_config

CLIENT_TIMEOUT = aiohttp.ClientTimeout(total=PATIENCE)


def basic(user: str, password: str) -> str:
    """An ``Authorization`` header value for basic auth."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def client_ssl(cert: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(TLS / "ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(str(TLS / f"{cert}.crt"), str(TLS / f"{cert}.key"))
    return ctx


def install(src: str, dst: Path) -> None:
    """Replace ``dst`` by a copy of the test file ``src`` the way a renewal does (write
    beside, rename over)."""
    tmp = dst.with_suffix(".tmp")
    shutil.copy(TLS / src, tmp)
    os.replace(tmp, dst)


@pytest.fixture
def tls_files(tmp_path: Path) -> WebConfig:
    install("server.crt", tmp_path / "tls.crt")
    install("server.key", tmp_path / "tls.key")
    return WebConfig(tls_cert_file=tmp_path / "tls.crt", tls_key_file=tmp_path / "tls.key")


async def served_cn(port: int) -> str:
    """The common name of the certificate a new TLS connection is served."""
    ctx = client_ssl()
    _reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx), PATIENCE
    )
    try:
        cert = writer.get_extra_info("peercert")
        return dict(x[0] for x in cert["subject"])["commonName"]
    finally:
        writer.close()


async def test_https_serves_metrics_to_a_client_that_trusts_the_ca(tls_files: WebConfig) -> None:
    async with (
        serve(web_config=tls_files) as srv,
        aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s,
    ):
        async with s.get(f"https://{srv.url}/metrics", ssl=client_ssl()) as resp:
            assert resp.status == 200
            assert "collectord_build_info" in await resp.text()
        with pytest.raises(aiohttp.ClientSSLError):
            # a client that does not trust the CA refuses the certificate
            await s.get(f"https://{srv.url}/metrics", ssl=ssl.create_default_context())


async def test_a_renewed_certificate_is_served_without_a_restart_and_a_bad_one_is_not(
    tls_files: WebConfig,
) -> None:
    assert tls_files.tls_cert_file is not None
    assert tls_files.tls_key_file is not None
    async with serve(web_config=tls_files) as srv:
        assert await served_cn(srv.port) == "server"
        install("server2.crt", tls_files.tls_cert_file)
        install("server2.key", tls_files.tls_key_file)
        assert await served_cn(srv.port) == "server2"
        with capture_logs() as logs:
            # half a renewal: a certificate whose key is not there yet
            install("server.crt", tls_files.tls_cert_file)
            assert await served_cn(srv.port) == "server2"
            assert await served_cn(srv.port) == "server2"
        errors = [x for x in logs if x["log_level"] == "error"]
        assert len(errors) == 1  # once, not once per connection
        assert errors[0]["key"] == "tls_key_file"
        assert "BEGIN" not in str(errors)
        install("server.key", tls_files.tls_key_file)  # the renewal completes
        assert await served_cn(srv.port) == "server"


async def test_client_certificates_signed_by_the_ca_are_required(tls_files: WebConfig) -> None:
    web = WebConfig(
        tls_cert_file=tls_files.tls_cert_file,
        tls_key_file=tls_files.tls_key_file,
        client_ca_file=TLS / "ca.crt",
    )
    async with serve(web_config=web) as srv, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        async with s.get(f"https://{srv.url}/metrics", ssl=client_ssl("client")) as resp:
            assert resp.status == 200
        for refused in (None, "stranger"):
            with pytest.raises(aiohttp.ClientError):
                async with s.get(f"https://{srv.url}/metrics", ssl=client_ssl(refused)) as resp:
                    await resp.read()


@pytest.mark.parametrize(
    "header",
    [
        None,
        basic("prometheus", "wrong"),
        basic("nobody", "s3cret"),
        "Basic !!!notbase64",
        "Bearer s3cret",
    ],
)
async def test_wrong_credentials_get_a_bare_401_over_https(
    tls_files: WebConfig, header: str | None
) -> None:
    web = WebConfig(
        tls_cert_file=tls_files.tls_cert_file,
        tls_key_file=tls_files.tls_key_file,
        basic_auth_users={"prometheus": HASH},
    )
    headers = {"Authorization": header} if header else {}
    async with serve(web_config=web) as srv, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for path in ("/metrics", "/", "/nope"):
            async with s.get(f"https://{srv.url}{path}", ssl=client_ssl(), headers=headers) as r:
                assert r.status == 401
                assert r.headers["WWW-Authenticate"].startswith("Basic ")
                assert await r.text() == "401 Unauthorized\n"


async def test_right_credentials_open_metrics_and_the_page_and_probes_need_none(
    tls_files: WebConfig,
) -> None:
    web = WebConfig(
        tls_cert_file=tls_files.tls_cert_file,
        tls_key_file=tls_files.tls_key_file,
        basic_auth_users={"prometheus": HASH, "grafana": HASH},
    )
    auth = {"Authorization": basic("prometheus", "s3cret")}
    async with serve(web_config=web) as srv, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        for _ in range(3):  # a scraper's repeated visits
            async with s.get(f"https://{srv.url}/metrics", ssl=client_ssl(), headers=auth) as r:
                assert r.status == 200
        async with s.get(f"https://{srv.url}/", ssl=client_ssl(), headers=auth) as r:
            assert r.status == 200
            assert "acme-page" in await r.text()
        for probe in ("/healthz", "/readyz"):
            async with s.get(f"https://{srv.url}{probe}", ssl=client_ssl()) as r:
                assert r.status in (200, 503)
                assert "WWW-Authenticate" not in r.headers
        # bcrypt ran once for the four good requests: the success was remembered
        assert srv.app[AUTH_KEY].checks == 1


async def test_bcrypt_runs_off_the_event_loop_and_only_wrong_guesses_pay_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []
    original = auth_module._checkpw

    def spy(password: bytes, hashed: bytes) -> bool:
        threads.append(threading.get_ident())
        return original(password, hashed)

    monkeypatch.setattr(auth_module, "_checkpw", spy)
    auth = BasicAuth({"prometheus": HASH})
    good = basic("prometheus", "s3cret")
    wrong = basic("prometheus", "nope")
    assert await auth.allows(good)
    assert not await auth.allows(wrong)
    assert not await auth.allows(wrong)
    assert await auth.allows(good)
    assert len(threads) == 3  # the good one once (then remembered), each wrong one
    assert threading.get_ident() not in threads


def test_parse_basic() -> None:
    assert parse_basic(basic("a", "b:c")) == ("a", "b:c")
    assert parse_basic("basic " + basic("a", "").split()[1]) == ("a", "")
    assert parse_basic("Basic YWJj") is None  # "abc": no colon
    assert parse_basic("Basic " + "A" * 5000) is None


async def test_reload_from_loopback_calls_the_daemon_and_says_what_happened() -> None:
    outcomes = [(True, "reloaded"), (False, "collector.toml: [graph]: version: expected ...")]
    calls = []

    async def reload() -> tuple[bool, str]:
        calls.append(1)
        return outcomes[len(calls) - 1]

    async with serve(reload=reload) as srv, aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s:
        async with s.get(f"http://{srv.url}/-/reload") as r:
            assert r.status == 405
        assert calls == []
        async with s.post(f"http://{srv.url}/-/reload") as r:
            assert (r.status, await r.text()) == (200, "reloaded\n")
        async with s.post(f"http://{srv.url}/-/reload") as r:
            assert r.status == 500
            assert "[graph]: version: expected" in await r.text()
    async with (
        serve() as srv,
        aiohttp.ClientSession(timeout=CLIENT_TIMEOUT) as s,
        s.post(f"http://{srv.url}/-/reload") as r,
    ):
        assert (r.status, await r.text()) == (503, "reload not available\n")


async def test_reload_needs_credentials_when_auth_is_on() -> None:
    async def reload() -> tuple[bool, str]:
        return True, "reloaded"

    web = WebConfig(basic_auth_users={"prometheus": HASH})
    async with serve(web_config=web, reload=reload) as srv:
        answer = await exchange(
            srv.port, b"POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert answer.startswith(b"HTTP/1.1 401")


async def test_reload_from_another_host_is_forbidden() -> None:
    called = []

    async def reload() -> tuple[bool, str]:
        called.append(1)
        return True, "reloaded"

    async with serve(reload=reload) as srv:
        request = make_mocked_request("POST", "/-/reload", app=srv.app)
        request = request.clone(remote="192.0.2.10")  # a peer on another host
        response = await reload_config(request)
    assert response.status == 403
    assert called == []


@pytest.mark.parametrize(
    ("remote", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("192.0.2.10", False),
        ("::ffff:192.0.2.10", False),
        ("2001:db8::1", False),
        ("", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_is_loopback(remote: str | None, loopback: bool) -> None:
    assert is_loopback(remote) is loopback
