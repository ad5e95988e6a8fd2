"""HTTPS for the endpoints, with certificates picked up when their files change.

:class:`ReloadingTLS` gives the listener one :class:`ssl.SSLContext` whose SNI callback runs
at the start of every TLS handshake: it looks at the certificate, key and CA files (a
``stat`` each, cheap) and, when one changed, loads a fresh context and hands it to that
connection and all later ones. A new pair that does not load (half-written, a key for
another certificate) is logged once and the previous certificate kept, so renewing a
certificate never takes the endpoints down.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable
from pathlib import Path

from collectord.config.web import TLSFileError, WebConfig, build_ssl_context
from collectord.logs import get_logger

log = get_logger("collectord.web.tls")

Signature = tuple[tuple[int, int, int], ...]


def _signature(paths: tuple[Path, ...]) -> Signature:
    """What changes when a file is replaced or rewritten: inode, size, modification time."""
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((0, -1, 0))
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class ReloadingTLS:
    """The listener's TLS context; :attr:`context` goes to ``create_server(ssl=...)``.

    Raises :class:`~collectord.config.web.TLSFileError` at construction when the files do
    not load (the daemon then refuses to start, as ``check`` would have said).
    """

    def __init__(
        self, web: WebConfig, *, build: Callable[[WebConfig], ssl.SSLContext] = build_ssl_context
    ) -> None:
        self._web = web
        self._build = build
        self._paths = tuple(
            p for p in (web.tls_cert_file, web.tls_key_file, web.client_ca_file) if p is not None
        )
        self._seen = _signature(self._paths)
        self.current = build(web)
        self.context = self.current
        self.context.sni_callback = self._on_handshake
        #: How many times new files were loaded since start (for tests and logs).
        self.reloads = 0

    def refresh(self) -> ssl.SSLContext:
        """The context to use now: a new one if the files changed and load, else the old."""
        seen = _signature(self._paths)
        if seen == self._seen:
            return self.current
        self._seen = seen
        try:
            fresh = self._build(self._web)
        except TLSFileError as exc:
            log.error(
                "new TLS files do not load; still serving the previous certificate",
                key=exc.key,
                error=str(exc),
            )
            return self.current
        self.current = fresh
        self.reloads += 1
        log.info("TLS certificate reloaded", cert=str(self._web.tls_cert_file))
        return fresh

    def _on_handshake(
        self, conn: ssl.SSLObject | ssl.SSLSocket, _server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        fresh = self.refresh()
        if fresh is not conn.context:
            conn.context = fresh
