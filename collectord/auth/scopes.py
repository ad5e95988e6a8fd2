"""The permissions (scopes) to ask for at login: what the plugins declare
(``SourcePlugin.scopes``, docs/meta-facts.md 10.6), plus listing the Pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Always asked for at login: listing the Pages needs it (docs/meta-facts.md 10.5).
LOGIN_BASE_SCOPES = ("pages_show_list",)


def plugin_scopes(plugin: Any) -> tuple[str, ...]:
    """The scopes ``plugin`` declares it needs (none for an object without ``scopes``)."""
    return tuple(str(s) for s in getattr(plugin, "scopes", ()))


def login_scopes(plugins: Mapping[str, Any], names: Iterable[str] | None = None) -> list[str]:
    """The scopes to ask for at login: what ``names`` (default every plugin) need, plus
    ``pages_show_list``; sorted, without repeats."""
    chosen = plugins if names is None else {n: plugins[n] for n in names if n in plugins}
    wanted = set(LOGIN_BASE_SCOPES)
    for plugin in chosen.values():
        wanted.update(plugin_scopes(plugin))
    return sorted(wanted)
