"""``[webhooks]``: the optional listener for Meta's webhook deliveries (story insights).

Four keys: ``listen`` (``HOST:PORT`` of a listener of its own; absent, or the same address
as the metrics endpoint, and the path is served by the metrics server), ``path`` (where Meta
posts, ``/webhooks/meta`` by default), ``verify_token`` (the secret typed in the App
Dashboard, answered in Meta's verification handshake) and ``forward_url`` (sharding: where
the replica of shard ``{shard}`` takes deliveries, see :mod:`collectord.web.forward`).
Deliveries are signed with the app secret, so the table needs ``[graph] app_secret``.
Problems are reported like every other table's; the token is never echoed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from collectord.config.checks import parse_listen
from collectord.config.reader import Context, optional_table
from collectord.config.types import GraphConfig
from collectord.secret import Secret

LABEL: Final = "[webhooks]"
DEFAULT_PATH: Final = "/webhooks/meta"
#: Paths the metrics server already answers: the webhook path must not hide one of them.
RESERVED_PATHS: Final = frozenset({"/", "/metrics", "/healthz", "/readyz", "/-/reload"})
_PATH = re.compile(r"(/[A-Za-z0-9._~-]+)+")
_MAX_PATH = 200
#: A verify token is typed into the App Dashboard: printable ASCII without spaces.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_MAX_TOKEN = 256
#: Where ``forward_url`` puts the owning replica's shard index.
SHARD_PLACEHOLDER: Final = "{shard}"
_MAX_URL = 1000


@dataclass(frozen=True)
class WebhooksConfig:
    """The checked ``[webhooks]`` table. ``listen`` is ``None`` when the metrics server
    serves the path; the token is not shown in the repr."""

    verify_token: Secret = field(repr=False)
    path: str = DEFAULT_PATH
    listen: tuple[str, int] | None = None
    #: With sharding, the URL of shard ``{shard}``'s webhook path (``None``: no forwarding).
    forward_url: str | None = None

    def forward_to(self, shard: int) -> str | None:
        """The URL that reaches the webhook path of the replica of ``shard``."""
        if self.forward_url is None:
            return None
        return self.forward_url.replace(SHARD_PLACEHOLDER, str(shard))

    def shared_with(self, host: str, port: int) -> bool:
        """Whether the path is served by the metrics server listening on ``host:port``."""
        return self.listen is None or self.listen == (host, port)

    def describe(self, host: str, port: int) -> str:
        """One line for ``collectord check``: where the path is served."""
        where = "the metrics listener"
        if not self.shared_with(host, port) and self.listen is not None:
            h, p = self.listen
            where = f"{f'[{h}]' if ':' in h else h}:{p}"
        line = f"webhooks: {self.path} on {where} (signed deliveries; no basic auth)"
        if self.forward_url is not None:
            line += f"; other shards' accounts go on to {self.forward_url}"
        return line


def read_webhooks(ctx: Context, raw: Any, graph: GraphConfig) -> WebhooksConfig | None:
    """The ``[webhooks]`` table ``raw`` (``None`` when absent); problems go to ``ctx``."""
    before = len(ctx.problems)
    table = optional_table(ctx, raw, LABEL)
    if table is None:
        return None
    listen: tuple[str, int] | None = None
    text = table.take("listen", "str")
    if isinstance(text, str):
        try:
            listen = parse_listen(text)
        except ValueError as exc:
            table.problem("listen", f"{exc}{table.got('listen', text)}")
    path = table.take("path", "str")
    if not isinstance(path, str):
        path = DEFAULT_PATH
    elif len(path) > _MAX_PATH or not _PATH.fullmatch(path):
        table.problem(
            "path",
            "expected a URL path such as \"/webhooks/meta\" (letters, digits, '.', '_', '~', "
            f"'-' between slashes, at most {_MAX_PATH} characters){table.got('path', path)}",
        )
    elif path in RESERVED_PATHS:
        table.problem("path", f"{path} is one of collectord's own endpoints: pick another path")
    forward = table.take("forward_url", "str")
    if isinstance(forward, str) and (wrong := forward_url_problem(forward)) is not None:
        table.problem("forward_url", wrong)
    token = table.take("verify_token", "str", secret=True, required=True)
    if isinstance(token, Secret) and not (
        len(token.reveal()) <= _MAX_TOKEN and _TOKEN.fullmatch(token.reveal())
    ):
        table.problem(
            "verify_token",
            f"expected 1 to {_MAX_TOKEN} printable characters without spaces "
            "(the value is a secret, not shown)",
        )
    table.finish()
    if graph.app_secret is None:
        table.problem(
            None,
            "needs [graph] app_secret: Meta signs every delivery with the app secret, and a "
            "delivery whose signature cannot be checked is refused",
        )
    if len(ctx.problems) != before or not isinstance(token, Secret):
        return None
    return WebhooksConfig(
        verify_token=token,
        path=path,
        listen=listen,
        forward_url=forward if isinstance(forward, str) else None,
    )


def forward_url_problem(url: str) -> str | None:
    """What is wrong with a ``forward_url`` (``None`` when it is usable). The URL is not
    echoed: it may hold a password."""
    expected = (
        'expected an http:// or https:// URL with "{shard}" where the replica\'s shard index '
        'goes, such as "http://collectord-{shard}.collectord:9464/webhooks/meta"'
    )
    if len(url) > _MAX_URL or url.count(SHARD_PLACEHOLDER) != 1:
        return expected
    try:
        parts = urlsplit(url.replace(SHARD_PLACEHOLDER, "0"))
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return expected
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or "{" in url.replace(SHARD_PLACEHOLDER, "")
    ):
        return expected
    if parts.username is not None or parts.password is not None:
        return "no user or password in the URL: the webhook path takes none (value not shown)"
    return None
