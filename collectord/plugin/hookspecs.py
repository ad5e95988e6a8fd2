"""The plugin author's manual: every hook collectord calls, and when.

collectord uses `pluggy <https://pluggy.readthedocs.io/>`_ with the project name
``collectord``. A plugin is a module (or any object) with functions marked
``@collectord.hookimpl``; it is found

* in the entry-point group ``collectord.plugins`` of an installed distribution
  (``[project.entry-points."collectord.plugins"] my_plugin = "my_package.my_module"``),
* as a ``*.py`` file or a package in a folder listed in ``[collector] plugin_dirs``.

(The built-in plugins, the package ``collectord_plugins``, are registered by collectord
itself, also from a source checkout that is not installed.)

Hooks are called through the plugin manager with keyword arguments only, and pluggy passes
each implementation just the arguments it names: later versions can add arguments without
breaking plugins that do not take them (``def register_source_plugins():`` and
``def register_source_plugins(collectord_version):`` are both fine). pluggy is
synchronous: hooks *register* objects, and collectord awaits those objects' async methods
itself. A misspelt hook name fails at start-up (``check_pending``).

Minimal plugin::

    import collectord

    class Weather(collectord.SourcePlugin):
        name = "weather"
        catalogue = (collectord.MetricSpec.field("weather", "temp", "The temperature."),)

        async def collect(self, ctx):
            body = await ctx.graph.get("me", {"fields": "temp"})
            spec = ctx.metrics()[0]
            return ctx.result([ctx.sample(spec, body["temp"], object_id="me", labels={})])

    @collectord.hookimpl
    def register_source_plugins():
        return [Weather()]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from collectord.plugin.api import SourcePlugin

PROJECT = "collectord"
ENTRY_POINT_GROUP = "collectord.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_source_plugins(collectord_version: str) -> Sequence[SourcePlugin]:
    """Return the source plugins this module provides.

    ``collectord_version`` is the running collectord's version (take it only if needed).

    Called once, when the plugin manager is built (before the config is read, so that the
    config can be validated against each plugin's keys). Each returned object is an instance
    of :class:`collectord.SourcePlugin` whose ``name`` is the value users write as
    ``plugin = "..."``. Two plugins with the same name are a start-up error.

    Not firstresult: every implementation is called (one module at a time, so that one that
    raises is reported by name and origin) and the lists are joined.
    """
    raise NotImplementedError
