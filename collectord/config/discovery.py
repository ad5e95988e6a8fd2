"""The discovery keys of a ``[[source]]`` table: ``discover``, ``include``, ``exclude``.

Only plugins that declare what they can discover (``SourcePlugin.discovers``) take them.
With ``discover = true`` the source stands for every object its token can see, so the key
that names one object (``page_id``, ``ig_user_id``) must be left out; ``include`` and
``exclude`` narrow the objects found and mean nothing without ``discover``. Part of the
config loader (:mod:`collectord.config.loader`); problems go to the source's table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from collectord.config.reader import Table
from collectord.plugin.api import DISCOVERY_KEYS, SourcePlugin

#: The keys read here (the host's, never a plugin's).
DISCOVERY_OPTION_KEYS: Final = ("discover", "include", "exclude")

#: What each kind of discovery finds, in words for problem lines.
_WHAT: Final = {
    "page": "every Page its token can see",
    "instagram": "every Instagram professional account linked to the Pages its token can see",
}


@dataclass(frozen=True)
class Discovery:
    """The discovery keys as read: ``key`` is the object key the plugin's options must not
    hold (``None`` when the source does not discover)."""

    discover: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    key: str | None = None


def read_discovery(table: Table, plugin: SourcePlugin | None) -> Discovery:
    """Read ``discover``, ``include`` and ``exclude`` from a source's ``table``."""
    discover = table.take("discover", "bool")
    include = table.take("include", "str_list")
    exclude = table.take("exclude", "str_list")
    if plugin is None:
        return Discovery()
    kind = plugin.discovers
    given = [k for k in DISCOVERY_OPTION_KEYS if table.given(k)]
    if kind is None:
        for key in given:
            table.problem(key, f"plugin {plugin.name!r} reads one object and cannot discover")
        return Discovery()
    on = discover is True
    if not on:
        for key in ("include", "exclude"):
            if table.given(key):
                table.problem(key, "only means something with discover = true")
    for key, values in (("include", include), ("exclude", exclude)):
        if isinstance(values, tuple) and any(not v.strip() for v in values):
            table.problem(key, "holds an empty entry (list ids or names)")
    if not on:
        return Discovery()
    object_key = DISCOVERY_KEYS.get(kind)
    if object_key is not None and table.given(object_key):
        table.problem(
            object_key,
            f"leave it out with discover = true (the source reads {_WHAT.get(kind, kind)}), "
            f"or set discover = false to read this one",
        )
    return Discovery(
        discover=True,
        include=include if isinstance(include, tuple) else (),
        exclude=exclude if isinstance(exclude, tuple) else (),
        key=object_key,
    )
