"""Finding and loading source plugins (see :mod:`collectord.plugin.hookspecs` for the contract).

Nothing is loaded at import time: :func:`get_plugin_manager` builds a fresh manager, adds
the hookspecs, loads the ``collectord.plugins`` entry points (the built-in plugins are
registered there too) and the modules in ``plugin_dirs``, and checks that every hook
implementation matches a spec.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from collectord.errors import CollectordError
from collectord.plugin import hookspecs
from collectord.plugin.api import SourcePlugin


class PluginLoadError(CollectordError):
    """A plugin could not be imported or registered; ``problems`` has one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class LoadedPlugin:
    plugin: SourcePlugin
    origin: str  # "built-in", "entry point DIST VERSION" or a file path


def get_plugin_manager(
    plugin_dirs: Iterable[Path] = (), *, entry_point_group: str = hookspecs.ENTRY_POINT_GROUP
) -> tuple[pluggy.PluginManager, dict[object, str]]:
    """Build a plugin manager with every plugin registered; also return each registered
    module's origin. Raises :class:`PluginLoadError` listing every plugin that failed."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    origins: dict[object, str] = {}
    problems: list[str] = []

    for ep in entry_points(group=entry_point_group):
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the others
            problems.append(f"plugin entry point {ep.name!r} ({ep.value}): cannot import: {exc}")
            continue
        dist = ep.dist
        if dist is not None and dist.metadata["Name"] == "collectord":
            origin = "built-in"
        elif dist is not None:
            origin = f"entry point {dist.metadata['Name']} {dist.version}"
        else:
            origin = f"entry point {ep.value}"
        _register(pm, module, ep.name, origins, origin, problems)

    for folder in plugin_dirs:
        if not folder.is_dir():
            problems.append(f"plugin_dirs: {folder}: not a directory")
            continue
        for path in sorted(folder.iterdir()):
            if path.name.startswith(("_", ".")):
                continue
            if path.suffix == ".py" or (path / "__init__.py").is_file():
                try:
                    module = _import_path(path)
                except Exception as exc:
                    problems.append(f"plugin file {path}: cannot import: {exc}")
                    continue
                _register(pm, module, f"dir:{path}", origins, str(path), problems)

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        problems.append(f"plugin hook not in the spec: {exc}")
    if problems:
        raise PluginLoadError(problems)
    return pm, origins


def _register(
    pm: pluggy.PluginManager,
    module: Any,
    name: str,
    origins: dict[object, str],
    origin: str,
    problems: list[str],
) -> None:
    if pm.is_registered(module):
        return
    try:
        pm.register(module, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        problems.append(f"plugin {name!r} ({origin}): cannot register: {exc}")
        return
    origins[module] = origin


def _import_path(path: Path) -> ModuleType:
    mod_name = f"collectord_local_plugin_{path.stem}"
    location = path / "__init__.py" if path.is_dir() else path
    spec = importlib.util.spec_from_file_location(mod_name, location)
    if spec is None or spec.loader is None:
        raise ImportError(f"no importable module at {location}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[mod_name]
        raise
    return module


def load_source_plugins(plugin_dirs: Iterable[Path] = ()) -> dict[str, LoadedPlugin]:
    """Every source plugin by name. Raises :class:`PluginLoadError` on duplicates, objects
    that are not :class:`~collectord.SourcePlugin` instances, and a
    ``register_source_plugins`` that raises."""
    pm, origins = get_plugin_manager(plugin_dirs)
    loaded: dict[str, LoadedPlugin] = {}
    problems: list[str] = []
    for impl in pm.hook.register_source_plugins.get_hookimpls():
        origin = origins.get(impl.plugin, impl.plugin_name)
        try:
            result = list(impl.function() or ())
        except Exception as exc:  # a broken plugin is a clear start-up error, not a traceback
            problems.append(
                f"plugin module {impl.plugin_name!r} ({origin}): register_source_plugins "
                f"failed: {type(exc).__name__}: {exc}"
            )
            continue
        for plugin in result:
            if not isinstance(plugin, SourcePlugin):
                problems.append(
                    f"plugin module {impl.plugin_name!r} ({origin}): register_source_plugins "
                    f"returned {type(plugin).__name__}, not a collectord.SourcePlugin"
                )
                continue
            if plugin.name in loaded:
                problems.append(
                    f"plugin {plugin.name!r} is provided twice: by {loaded[plugin.name].origin} "
                    f"and by {origin}"
                )
                continue
            loaded[plugin.name] = LoadedPlugin(plugin, origin)
    if problems:
        raise PluginLoadError(problems)
    return dict(sorted(loaded.items()))


def plugin_map(loaded: Mapping[str, LoadedPlugin]) -> dict[str, SourcePlugin]:
    return {name: lp.plugin for name, lp in loaded.items()}
