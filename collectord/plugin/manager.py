"""Finding and loading source plugins (see :mod:`collectord.plugin.hookspecs` for the contract).

Nothing is loaded at import time: :func:`get_plugin_manager` builds a fresh manager, adds
the hookspecs, registers the built-in plugins itself (the modules of the package
``collectord_plugins``, installed or, in a source checkout, the ``plugins/`` folder next to
``collectord/``), then the ``collectord.plugins`` entry points and the modules in
``plugin_dirs``, and checks that every hook implementation matches a spec.

:func:`load_source_plugins` calls ``register_source_plugins`` through the manager's hook,
one plugin module at a time (``pm.subset_hook_caller``), so that a module whose hook raises
is reported by name and origin while the others still load.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from collectord import __version__
from collectord.errors import CollectordError
from collectord.model import Option
from collectord.plugin import hookspecs
from collectord.plugin.api import SourcePlugin

#: The package the built-in plugins are installed as.
BUILTIN_PACKAGE = "collectord_plugins"
#: Where the built-in plugins live in a source checkout (``plugins/`` beside ``collectord/``).
_CHECKOUT_FOLDER = Path(__file__).resolve().parents[2] / "plugins"
#: The origin shown for the built-in plugins.
BUILTIN = "built-in"


class PluginLoadError(CollectordError):
    """A plugin could not be imported or registered; ``problems`` has one line each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class LoadedPlugin:
    """A source plugin and where it came from."""

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

    for name, module_or_error in _builtin_modules():
        if isinstance(module_or_error, BaseException):
            problems.append(f"built-in plugin {name!r}: cannot import: {module_or_error}")
            continue
        _register(pm, module_or_error, f"builtin:{name}", origins, BUILTIN, problems)

    for ep in entry_points(group=entry_point_group):
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the others
            problems.append(f"plugin entry point {ep.name!r} ({ep.value}): cannot import: {exc}")
            continue
        dist = ep.dist
        if dist is not None:
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


def _builtin_package() -> ModuleType:
    """The package of the built-in plugins: installed, else the checkout's ``plugins/``."""
    try:
        return importlib.import_module(BUILTIN_PACKAGE)
    except ModuleNotFoundError as exc:
        if exc.name != BUILTIN_PACKAGE or not (_CHECKOUT_FOLDER / "__init__.py").is_file():
            raise
    spec = importlib.util.spec_from_file_location(
        BUILTIN_PACKAGE,
        _CHECKOUT_FOLDER / "__init__.py",
        submodule_search_locations=[str(_CHECKOUT_FOLDER)],
    )
    if spec is None or spec.loader is None:  # pragma: no cover - a folder with __init__.py
        raise ModuleNotFoundError(f"no package at {_CHECKOUT_FOLDER}", name=BUILTIN_PACKAGE)
    package = importlib.util.module_from_spec(spec)
    sys.modules[BUILTIN_PACKAGE] = package
    try:
        spec.loader.exec_module(package)
    except BaseException:
        del sys.modules[BUILTIN_PACKAGE]
        raise
    return package


def _builtin_modules() -> list[tuple[str, ModuleType | Exception]]:
    """Each built-in plugin module by name, or the error importing it."""
    try:
        package = _builtin_package()
    except Exception as exc:
        return [(BUILTIN_PACKAGE, exc)]
    found: list[tuple[str, ModuleType | Exception]] = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        try:
            found.append((info.name, importlib.import_module(f"{BUILTIN_PACKAGE}.{info.name}")))
        except Exception as exc:
            found.append((info.name, exc))
    return found


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


def register_source_plugins(pm: pluggy.PluginManager, module: object) -> list[Any]:
    """Call ``register_source_plugins`` of ``module`` alone, through the manager's hook
    (pluggy passes each implementation the keyword arguments it takes); the lists joined."""
    others = [p for p in pm.get_plugins() if p is not module]
    caller = pm.subset_hook_caller("register_source_plugins", remove_plugins=others)
    results = caller(collectord_version=__version__)
    return [plugin for result in results for plugin in (result or ())]


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
            result = register_source_plugins(pm, impl.plugin)
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


def describe_option(option: Option) -> dict[str, Any]:
    """One plugin option as ``collectord plugins --format json`` and the status page show it."""
    return {
        "name": option.name,
        "type": option.type,
        "required": option.required,
        "default": None if option.required else _plain(option.default),
        "help": option.help,
    }


def describe_plugin(name: str, lp: LoadedPlugin) -> dict[str, Any]:
    """A plugin as ``collectord plugins --format json`` documents it: name, version, origin,
    description, the token scopes it needs, its options with their help, and for each
    metric its Graph name, Prometheus name, cadence, periods and unit."""
    return {
        "name": name,
        "version": lp.plugin.version,
        "origin": lp.origin,
        "description": lp.plugin.description,
        "scopes": list(getattr(lp.plugin, "scopes", ())),
        "options": [describe_option(o) for o in lp.plugin.options],
        "metrics": [
            {
                "graph_name": m.graph_name,
                "prometheus_name": m.prom_name,
                "cadence": m.cadence,
                "periods": list(m.periods),
                "unit": m.unit,
            }
            for m in lp.plugin.catalogue
        ],
    }


def _plain(value: Any) -> Any:
    """``value`` as JSON can hold it (tuples become lists, other objects their text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def plugin_map(loaded: Mapping[str, LoadedPlugin]) -> dict[str, SourcePlugin]:
    """The plugins by name, without their origins."""
    return {name: lp.plugin for name, lp in loaded.items()}
