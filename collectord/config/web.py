"""``[collector.web]``: TLS and basic auth for the HTTP endpoints (exporter-toolkit style).

The table is optional. ``tls_cert_file`` and ``tls_key_file`` turn on HTTPS (the files are
re-read by the server when they change, see :mod:`collectord.web.tls`); ``client_ca_file``
then asks every client for a certificate signed by that CA; ``basic_auth_users`` maps user
names to bcrypt hashes and protects ``/metrics``, ``/`` and ``/-/reload`` (``/healthz`` and
``/readyz`` stay open for probes). Problems are reported like every other table's, one line
each; a hash is never echoed.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from collectord.config.reader import Context, Table, optional_table, type_name
from collectord.files import read_limited

LABEL: Final = "[collector.web]"
#: Certificates, keys and CA bundles larger than this are refused (a PEM chain is a few KiB).
MAX_PEM_BYTES: Final = 1 << 20
#: bcrypt costs accepted: every check costs 2**cost rounds, and cost 16 already takes seconds.
MIN_COST: Final = 4
MAX_COST: Final = 15
_BCRYPT = re.compile(r"\$2[abxy]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}")
_USER = re.compile(r"[^\x00-\x20:\x7f]+")


@dataclass(frozen=True)
class WebConfig:
    """The checked ``[collector.web]`` table. Paths are absolute; hashes are not shown in
    the repr."""

    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None
    basic_auth_users: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False
    )

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @property
    def client_certs(self) -> bool:
        return self.tls and self.client_ca_file is not None

    @property
    def basic_auth(self) -> bool:
        return bool(self.basic_auth_users)

    def describe(self) -> str:
        """One line for ``collectord check``: what protects the endpoints."""
        tls = "off"
        if self.tls:
            tls = "on, client certificates required" if self.client_certs else "on"
        users = len(self.basic_auth_users)
        auth = f"on ({users} user{'s' if users != 1 else ''})" if users else "off"
        return f"TLS {tls}; basic auth {auth}"


class TLSFileError(ValueError):
    """A certificate, key or CA file that cannot be used; ``key`` names the config key."""

    def __init__(self, key: str, what: str) -> None:
        super().__init__(what)
        self.key = key


def _readable(key: str, path: Path) -> None:
    try:
        read_limited(path, MAX_PEM_BYTES)
    except OSError as exc:
        raise TLSFileError(key, f"cannot read {path}: {exc.strerror or exc}") from None


def build_ssl_context(web: WebConfig) -> ssl.SSLContext:
    """A server-side TLS context from the files ``web`` names, read now.

    Raises :class:`TLSFileError` naming the key at fault: an unreadable file, a file that is
    not PEM, a key that does not match the certificate (or is encrypted).
    """
    if web.tls_cert_file is None or web.tls_key_file is None:
        raise ValueError("TLS is not configured")
    _readable("tls_cert_file", web.tls_cert_file)
    _readable("tls_key_file", web.tls_key_file)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_verify_locations(cafile=str(web.tls_cert_file))
    except (ssl.SSLError, ValueError):
        raise TLSFileError("tls_cert_file", "not a PEM certificate") from None
    # A fresh context: the certificate was loaded above only to see that it parses.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # An empty password makes an encrypted key fail instead of prompting on a terminal.
        ctx.load_cert_chain(str(web.tls_cert_file), str(web.tls_key_file), password=b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
            raise TLSFileError("tls_key_file", "the key does not match the certificate") from None
        raise TLSFileError(
            "tls_key_file", "not an unencrypted PEM private key for the certificate"
        ) from None
    if web.client_ca_file is not None:
        _readable("client_ca_file", web.client_ca_file)
        try:
            ctx.load_verify_locations(cafile=str(web.client_ca_file))
        except (ssl.SSLError, ValueError):
            raise TLSFileError("client_ca_file", "not a PEM CA certificate") from None
        ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def read_web(ctx: Context, raw: Any) -> WebConfig | None:
    """The ``[collector.web]`` table ``raw`` (``None`` when absent); problems go to ``ctx``."""
    before = len(ctx.problems)
    table = optional_table(ctx, raw, LABEL)
    if table is None:
        return None
    paths: dict[str, Path] = {}
    for key in ("tls_cert_file", "tls_key_file", "client_ca_file"):
        value = table.take(key, "path")
        if isinstance(value, Path):
            paths[key] = value
    table.accept("basic_auth_users")
    users = _read_users(table, raw.get("basic_auth_users"))
    table.finish()
    if ("tls_cert_file" in paths) != ("tls_key_file" in paths):
        missing = "tls_key_file" if "tls_cert_file" in paths else "tls_cert_file"
        table.problem(missing, "missing: set both tls_cert_file and tls_key_file, or neither")
        return None
    if "client_ca_file" in paths and "tls_cert_file" not in paths:
        table.problem("client_ca_file", "needs tls_cert_file and tls_key_file (TLS)")
        return None
    web = WebConfig(**paths, basic_auth_users=MappingProxyType(users))
    if web.tls and len(ctx.problems) == before:
        try:
            build_ssl_context(web)
        except TLSFileError as exc:
            table.problem(exc.key, str(exc))
    return web


def _read_users(table: Table, raw: Any) -> dict[str, str]:
    key = "basic_auth_users"
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        table.problem(key, f'expected a table such as {{ name = "$2b$..." }}, got {type_name(raw)}')
        return {}
    users: dict[str, str] = {}
    for name, hashed in raw.items():
        if not _USER.fullmatch(name):
            table.problem(key, "a user name must not be empty or hold ':', spaces or controls")
            continue
        if not isinstance(hashed, str):
            table.problem(
                key, f"user {name!r}: expected a bcrypt hash string, got {type_name(hashed)}"
            )
            continue
        match = _BCRYPT.fullmatch(hashed)
        if match is None:
            table.problem(
                key,
                f"user {name!r}: not a bcrypt hash (expected $2b$, $2a$ or $2y$, a cost and "
                "53 characters, as `htpasswd -nB` or Python's bcrypt make)",
            )
            continue
        cost = int(match.group("cost"))
        if not MIN_COST <= cost <= MAX_COST:
            table.problem(
                key,
                f"user {name!r}: bcrypt cost {cost} is outside {MIN_COST}-{MAX_COST} "
                "(each login would take too long, or too little)",
            )
            continue
        users[name] = hashed
    return users
