"""The permissions (scopes) each plugin's token needs (docs/meta-facts.md 10.6).

A plugin that declares ``scopes`` is taken at its word; for one that does not, the table
below (the built-in plugins, as docs/getting-tokens.md lists them) answers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: Scopes of the built-in plugins that declare none themselves.
BUILT_IN_SCOPES: dict[str, tuple[str, ...]] = {
    "facebook_page": ("read_insights", "pages_read_engagement"),
    "facebook_post": ("read_insights", "pages_read_engagement"),
    "instagram_user": ("instagram_basic", "instagram_manage_insights", "pages_read_engagement"),
    "instagram_media": ("instagram_basic", "instagram_manage_insights", "pages_read_engagement"),
    "facebook_app": (),
}
#: Always asked for at login: listing the Pages needs it (docs/meta-facts.md 10.5).
LOGIN_BASE_SCOPES = ("pages_show_list",)


def plugin_scopes(name: str, plugin: Any) -> tuple[str, ...]:
    """The scopes ``plugin`` (registered as ``name``) needs."""
    declared = getattr(plugin, "scopes", None)
    if declared is not None:
        return tuple(str(s) for s in declared)
    return BUILT_IN_SCOPES.get(name, ())


def login_scopes(plugins: Mapping[str, Any], names: Iterable[str] | None = None) -> list[str]:
    """The scopes to ask for at login: what ``names`` (default every plugin) need, plus
    ``pages_show_list``; sorted, without repeats."""
    chosen = plugins if names is None else {n: plugins[n] for n in names if n in plugins}
    wanted = set(LOGIN_BASE_SCOPES)
    for name, plugin in chosen.items():
        wanted.update(plugin_scopes(name, plugin))
    return sorted(wanted)
