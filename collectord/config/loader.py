"""Read and check ``collector.toml`` (README "Configuration") into a :class:`Config`.

:func:`load_config` reports every problem of a file at once, in one
:class:`~collectord.errors.ConfigError` whose ``problems`` are lines of the form
``{file}: {table}: {key}: {what is wrong}``. The key-by-key mechanics (``${VAR}``,
``X_file``, types, unknown keys) live in :mod:`collectord.config.reader`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from collectord.config.checks import (
    MAX_TIMEOUT,
    duration_problem,
    not_a_directory,
    parse_listen,
    url_problem,
)
from collectord.config.discovery import read_discovery
from collectord.config.document import (
    CONFIG_ENV,
    read_document,
    read_plugin_dirs,
    resolve_config_path,
)
from collectord.config.durations import format_duration, parse_duration
from collectord.config.options import (
    check_renewal,
    read_options,
    read_token,
    resolve_metrics,
    validate_options,
)
from collectord.config.reader import (
    INVALID,
    Context,
    Kind,
    Table,
    choice,
    keep,
    sub_table,
    suggestion,
    type_name,
)
from collectord.config.sink import read_sink
from collectord.config.types import (
    CollectorConfig,
    Config,
    GraphConfig,
    ScheduleConfig,
    SourceConfig,
)
from collectord.config.web import read_web
from collectord.config.webhooks import read_webhooks
from collectord.errors import ConfigError
from collectord.plugin.api import SourcePlugin
from collectord.secret import Secret
from collectord.sharding import check_spec

__all__ = [
    "CONFIG_ENV",
    "format_duration",
    "load_config",
    "load_document",
    "parse_duration",
    "read_document",
    "read_plugin_dirs",
    "resolve_config_path",
]

_TABLES: Final = ("collector", "graph", "schedule", "source", "sink", "webhooks")
_LOG_LEVELS: Final = ("debug", "info", "warning", "error")
_LOG_FORMATS: Final = ("console", "json")
_GRAPH_KEYS: Final = (
    "base_url",
    "version",
    "app_id",
    "app_secret",
    "timeout",
    "max_concurrency",
    "usage_ceiling",
    "token_check_interval",
)
_SCHEDULE_KEYS: Final = ("fast_interval", "daily_interval", "jitter")
_COLLECTOR_KEYS: Final = (
    "listen",
    "log_level",
    "log_format",
    "state_dir",
    "plugin_dirs",
    "shard",
)
_SOURCE_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_VERSION = re.compile(r"v\d+\.\d+")
#: Below these, an interval polls more often than Meta refreshes (a warning, not an error).
_FAST_FLOOR: Final = 15 * 60.0
_DAILY_FLOOR: Final = 3600.0
#: The shortest ``token_check_interval``: a token's expiry moves in days, not seconds.
MIN_TOKEN_CHECK: Final = 60.0


def load_config(
    path: Path,
    plugins: Mapping[str, SourcePlugin],
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read ``path``, check it against collectord's tables and the ``plugins``' own keys.

    ``environ`` (default ``os.environ``) resolves ``${VAR}``. Raises
    :class:`ConfigError` listing every problem found.
    """
    path = Path(path)
    return load_document(read_document(path), path, plugins, environ=environ)


def load_document(
    data: Mapping[str, Any],
    path: Path,
    plugins: Mapping[str, SourcePlugin],
    *,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """:func:`load_config` for a document already read (``path`` names it in messages, and
    relative paths are relative to its folder)."""
    path = Path(path)
    ctx = _context(path, environ)
    for key, value in data.items():
        if key not in _TABLES:
            _unknown_top_level(ctx, key, value)
    collector = _read_collector(sub_table(ctx, data, "collector", "[collector]"))
    graph_table = sub_table(ctx, data, "graph", "[graph]")
    graph = _read_graph(graph_table, GraphConfig())
    graph_table.finish()
    schedule_table = sub_table(ctx, data, "schedule", "[schedule]")
    schedule = _read_schedule(schedule_table, ScheduleConfig())
    schedule_table.finish()
    sources = _read_sources(ctx, data.get("source"), plugins, graph, schedule)
    jsonl = read_sink(ctx, data.get("sink"))
    webhooks = read_webhooks(ctx, data.get("webhooks"), graph)
    if ctx.problems:
        raise ConfigError(ctx.problems)
    return Config(
        path=path,
        collector=collector,
        graph=graph,
        schedule=schedule,
        sources=tuple(sources),
        jsonl=jsonl,
        webhooks=webhooks,
        warnings=tuple(ctx.warnings),
    )


def _context(path: Path, environ: Mapping[str, str] | None) -> Context:
    return Context(
        file=str(path),
        base_dir=path.expanduser().absolute().parent,
        environ=os.environ if environ is None else environ,
    )


def _unknown_top_level(ctx: Context, key: str, value: Any) -> None:
    if isinstance(value, dict | list):
        brackets = "[[{}]]" if isinstance(value, list) else "[{}]"
        hint = suggestion(key, _TABLES, fmt=f"'{brackets}'")
        ctx.problem(None, brackets.format(key), f"unknown table{hint}")
        return
    for table, keys in (
        ("collector", _COLLECTOR_KEYS),
        ("graph", _GRAPH_KEYS),
        ("schedule", _SCHEDULE_KEYS),
    ):
        if key in keys:
            ctx.problem(None, key, f"unknown top-level key (it belongs in the [{table}] table)")
            return
    ctx.problem(None, key, "unknown top-level key")


def _positive(table: Table, key: str, kind: Kind, *, allow_zero: bool = False) -> Any:
    value = table.take(key, kind)
    if isinstance(value, int | float) and (value < 0 or (value == 0 and not allow_zero)):
        table.problem(key, "must not be negative" if allow_zero else "must be positive")
        return INVALID
    return value


def _read_collector(table: Table) -> CollectorConfig:
    values: dict[str, Any] = {"state_dir": table.ctx.path(".collectord")}
    listen = table.take("listen", "str")
    if isinstance(listen, str):
        try:
            values["listen_host"], values["listen_port"] = parse_listen(listen)
        except ValueError as exc:
            table.problem("listen", f"{exc}{table.got('listen', listen)}")
    keep(values, "log_level", choice(table, "log_level", _LOG_LEVELS))
    keep(values, "log_format", choice(table, "log_format", _LOG_FORMATS))
    state_dir = table.take("state_dir", "path")
    kind = not_a_directory(state_dir) if isinstance(state_dir, Path) else None
    if kind is not None:
        table.problem("state_dir", f"expected a directory, found {kind}")
    else:
        keep(values, "state_dir", state_dir)
    keep(values, "plugin_dirs", table.take("plugin_dirs", "path_list"))
    shard = table.take("shard", "str")
    if isinstance(shard, str) and (wrong := check_spec(shard)):
        table.problem("shard", f"{wrong}{table.got('shard', shard)}")
    else:
        keep(values, "shard", shard)
    table.accept("web")
    values["web"] = read_web(table.ctx, table.data.get("web"))
    table.finish()
    return CollectorConfig(**values)


def _read_graph(table: Table, base: GraphConfig, *, keys: str = "graph_keys") -> GraphConfig:
    """``base`` with the keys set in ``table`` replaced (``[graph]`` or ``[source.graph]``)."""
    values: dict[str, Any] = {}
    base_url = table.take("base_url", "str")
    if isinstance(base_url, str):
        wrong = url_problem(base_url)
        if wrong:
            table.problem("base_url", f"{wrong}{table.got('base_url', base_url)}")
        else:
            values["base_url"] = base_url.rstrip("/")
    version = table.take("version", "str")
    if isinstance(version, str):
        if _VERSION.fullmatch(version):
            values["version"] = version
        else:
            table.problem(
                "version",
                f'expected a Graph API version such as "v26.0"{table.got("version", version)}',
            )
    app_id = table.take("app_id", "str")
    if isinstance(app_id, str):
        if app_id.isdigit() and app_id.isascii():
            values["app_id"] = app_id
        else:
            table.problem("app_id", "expected the app's numeric id as a string of digits")
    app_secret = table.take("app_secret", "str", secret=True)
    if isinstance(app_secret, Secret) and not app_secret:
        table.problem("app_secret", "is empty")
    else:
        keep(values, "app_secret", app_secret)
    timeout = _positive(table, "timeout", "duration")
    too_long = isinstance(timeout, float) and duration_problem(timeout, maximum=MAX_TIMEOUT)
    if too_long:
        table.problem("timeout", too_long)
    else:
        keep(values, "timeout", timeout)
    concurrency = table.take("max_concurrency", "int")
    if isinstance(concurrency, int) and concurrency < 1:
        table.problem(
            "max_concurrency", f"must be at least 1{table.got('max_concurrency', concurrency)}"
        )
    else:
        keep(values, "max_concurrency", concurrency)
    ceiling = table.take("usage_ceiling", "float")
    if isinstance(ceiling, float) and not 0 < ceiling <= 1:
        table.problem(
            "usage_ceiling", f"must be above 0 and at most 1{table.got('usage_ceiling', ceiling)}"
        )
    else:
        keep(values, "usage_ceiling", ceiling)
    interval = _positive(table, "token_check_interval", "duration")
    if isinstance(interval, float) and interval < MIN_TOKEN_CHECK:
        table.problem(
            "token_check_interval",
            f"must be at least {format_duration(MIN_TOKEN_CHECK)} (each check asks Meta once "
            f"per source){table.got('token_check_interval', interval)}",
        )
    else:
        keep(values, "token_check_interval", interval)
    return replace(base, **values, **{keys: getattr(base, keys) | frozenset(values)})


def _read_schedule(table: Table, base: ScheduleConfig) -> ScheduleConfig:
    """``base`` with the interval keys set in ``table`` replaced; warns about short ones."""
    values: dict[str, Any] = {}
    for key in _SCHEDULE_KEYS:
        keep(values, key, _positive(table, key, "duration", allow_zero=key == "jitter"))
    for key, floor, how_often in (
        ("fast_interval", _FAST_FLOOR, "about every 15 minutes"),
        ("daily_interval", _DAILY_FLOOR, "once a day"),
    ):
        if key in values and values[key] < floor:
            table.ctx.warn(
                table.label,
                key,
                f"{format_duration(values[key])} is shorter than Meta refreshes these metrics "
                f"({how_often}); polling more often reads the same values",
            )
    return replace(base, **values)


def _read_sources(
    ctx: Context,
    raw: Any,
    plugins: Mapping[str, SourcePlugin],
    graph: GraphConfig,
    schedule: ScheduleConfig,
) -> list[SourceConfig]:
    if raw is None:
        ctx.warn(None, None, "no [[source]] table: nothing will be collected")
        return []
    if not isinstance(raw, list):
        ctx.problem("[[source]]", None, f"expected an array of tables, got {type_name(raw)}")
        return []
    names: dict[str, str] = {}
    sources = []
    for index, item in enumerate(raw, 1):
        label = f"source #{index}"
        if not isinstance(item, dict):
            ctx.problem(label, None, f"expected a table, got {type_name(item)}")
            continue
        source = _read_source(Table(ctx, label, item), plugins, graph, schedule, names)
        if source is not None:
            sources.append(source)
    return sources


def _read_source(
    table: Table,
    plugins: Mapping[str, SourcePlugin],
    graph: GraphConfig,
    schedule: ScheduleConfig,
    names: dict[str, str],
) -> SourceConfig | None:
    """One ``[[source]]`` table; ``names`` maps the names seen so far to their tables."""
    name = table.take("name", "str", required=True)
    if isinstance(name, str):
        if not _SOURCE_NAME.fullmatch(name):
            what = "is empty" if not name else "may hold only letters, digits, '_', '.' and '-'"
            table.problem("name", what)
        elif name in names:
            table.problem("name", f"duplicate source name {name!r} (also {names[name]})")
        else:
            names[name] = table.label = f'source "{name}"'
    plugin_name = table.take("plugin", "str", required=True)
    plugin = plugins.get(plugin_name) if isinstance(plugin_name, str) else None
    if isinstance(plugin_name, str) and plugin is None:
        hint = suggestion(plugin_name, sorted(plugins))
        if not hint:
            hint = f" (loaded plugins: {', '.join(sorted(plugins)) or 'none'})"
        table.problem("plugin", f"unknown plugin {plugin_name!r}{hint}")

    table.accept("graph")
    source_graph = graph
    sub = table.data.get("graph")
    if isinstance(sub, dict):
        graph_table = Table(table.ctx, f"{table.label} [graph]", sub)
        source_graph = _read_graph(graph_table, graph, keys="source_keys")
        graph_table.finish()
    elif sub is not None:
        table.problem("graph", f"expected a table [source.graph], got {type_name(sub)}")
    source_schedule = _read_schedule(table, schedule)
    token = read_token(table, plugin, source_graph)
    metrics = table.take("metrics", "str_list")
    renew = table.take("renew_token", "bool") is True
    found = read_discovery(table, plugin)
    options, complete = ({}, False)
    if plugin is not None:
        options, complete = read_options(table, plugin, skip=found.key)
    table.finish(strict=plugin is not None)
    if plugin is None or not isinstance(name, str) or not isinstance(plugin_name, str):
        return None
    specs = resolve_metrics(table, plugin, metrics)
    if complete:
        validate_options(table, plugin, options)
        if renew:
            check_renewal(table, plugin, options, source_graph)
    return SourceConfig(
        name=name,
        plugin=plugin_name,
        access_token=token,
        metrics=tuple(dict.fromkeys(metrics)) if isinstance(metrics, tuple) else None,
        schedule=source_schedule,
        graph=source_graph,
        options=MappingProxyType(options),
        specs=specs,
        discover=found.discover,
        include=found.include,
        exclude=found.exclude,
        renew_token=renew,
    )
