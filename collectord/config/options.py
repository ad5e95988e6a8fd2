"""Checking a ``[[source]]`` table against its plugin: token, metrics and the plugin's keys.

Part of the config loader (:mod:`collectord.config.loader`); problems go to the source's
:class:`~collectord.config.reader.Table`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from collectord.config.durations import format_duration, parse_duration
from collectord.config.reader import INVALID, MISSING, Kind, Table, suggestion
from collectord.config.types import GraphConfig
from collectord.errors import ConfigError
from collectord.model import MetricSpec, Option
from collectord.plugin.api import SourcePlugin
from collectord.secret import Secret

#: Keys of a ``[[source]]`` table that belong to the host, never to the plugin.
HOST_KEYS: Final = (
    "name",
    "plugin",
    "access_token",
    "metrics",
    "graph",
    "fast_interval",
    "daily_interval",
    "jitter",
    "renew_token",
)


def read_token(table: Table, plugin: SourcePlugin | None, graph: GraphConfig) -> Secret | None:
    """The source's token: its own, else the plugin's default (the app token); ``None``
    with a problem recorded when neither."""
    token = table.take("access_token", "str", secret=True)
    if isinstance(token, Secret):
        if not token:
            table.problem("access_token", "is empty")
        return token
    if token is INVALID or plugin is None:
        return None
    default = plugin.default_access_token(graph.app_id, graph.app_secret)
    if default:
        return Secret(default)
    hint = "set access_token or access_token_file"
    if type(plugin).default_access_token is not SourcePlugin.default_access_token:
        hint += ", or [graph] app_id and app_secret for the app token"
    table.problem("access_token", f"missing required key ({hint})")
    return None


def resolve_metrics(table: Table, plugin: SourcePlugin, metrics: Any) -> tuple[MetricSpec, ...]:
    """The specs a source collects: the listed ones in catalogue order (then the ones the
    plugin builds on request), or the plugin's default set."""
    if not isinstance(metrics, tuple):
        return tuple(spec for spec in plugin.catalogue if spec.default)
    if not metrics:
        table.problem("metrics", "is empty (leave it out for the plugin's default set)")
    known = {spec.graph_name: spec for spec in plugin.catalogue}
    by_prom_name = {spec.prom_name: spec.graph_name for spec in plugin.catalogue}
    chosen: set[str] = set()
    extra: dict[str, MetricSpec] = {}
    for metric in metrics:
        if metric in known:
            chosen.add(metric)
            continue
        if metric in by_prom_name:
            table.problem(
                "metrics",
                f"unknown metric {metric!r}: list metrics by their Graph API name "
                f"(did you mean {by_prom_name[metric]!r}?)",
            )
            continue
        try:
            spec = _spec_for(table, plugin, metric)
        except ConfigError as exc:  # the plugin knows why the name is wrong
            for line in exc.problems:
                table.problem("metrics", line)
            continue
        if spec is not None:
            extra.setdefault(spec.graph_name, spec)
        else:
            hint = suggestion(metric, known)
            table.problem("metrics", f"unknown metric {metric!r} for plugin {plugin.name!r}{hint}")
    listed = tuple(spec for spec in plugin.catalogue if spec.graph_name in chosen)
    return listed + tuple(spec for name, spec in extra.items() if name not in chosen)


def _spec_for(table: Table, plugin: SourcePlugin, metric: str) -> MetricSpec | None:
    """``plugin.spec_for(metric)``: a :class:`ConfigError` it raises rejects the name with
    its own words, and a warning it issues (``warnings.warn``: say, a name it does not
    know but lets Meta decide on) becomes a config warning, shown by ``collectord check``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spec = plugin.spec_for(metric)
    for warning in caught:
        table.ctx.warn(table.label, "metrics", str(warning.message))
    return spec


def read_options(
    table: Table, plugin: SourcePlugin, *, skip: str | None = None
) -> tuple[dict[str, Any], bool]:
    """The plugin's own keys, checked and with defaults filled in, and whether all are
    there and right (``validate`` is skipped otherwise). ``skip`` is a key left out
    (the object key of a discovering source: its children set it)."""
    options: dict[str, Any] = {}
    complete = True
    for option in plugin.options:
        if option.name in HOST_KEYS:
            continue
        if option.name == skip:
            table.accept(skip, f"{skip}_file")  # a value given is the discovery keys' problem
            continue
        kind: Kind = "str" if option.type == "id" else option.type
        value = table.take(option.name, kind, secret=option.secret, required=option.required)
        if value is MISSING:
            complete = complete and not option.required
            value = _default(table, option)
        elif value is not INVALID:
            value = _check_option(table, option, value)
        if value is INVALID:
            complete = False
        elif value is not MISSING:
            options[option.name] = value
    return options, complete


def validate_options(table: Table, plugin: SourcePlugin, options: dict[str, Any]) -> None:
    """Add the plugin's cross-key problems under the source's table."""
    try:
        problems = plugin.validate(MappingProxyType(options))
    except Exception as exc:  # a plugin bug must not become a traceback at start-up
        problems = [f"plugin {plugin.name!r} failed checking its keys ({type(exc).__name__})"]
    for problem in problems:
        table.problem(None, problem)


def _default(table: Table, option: Option) -> Any:
    default = option.default
    if option.required or default is None:
        return MISSING if option.required else None
    if option.type == "duration" and isinstance(default, str):
        try:
            return parse_duration(default)
        except ValueError:
            table.problem(option.name, f"the plugin's default {default!r} is not a duration")
            return INVALID
    if option.type == "str_list" and isinstance(default, list | tuple):
        return tuple(default)
    if option.secret and isinstance(default, str):
        return Secret(default)
    return default


def _check_option(table: Table, option: Option, value: Any) -> Any:
    """Apply ``choices``, ``minimum`` and non-emptiness to a value of the right type."""
    key = option.name
    plain = value.reveal() if isinstance(value, Secret) else value
    if option.required and option.type in ("str", "id") and not plain:
        table.problem(key, "is empty")
        return INVALID
    if option.type == "id" and plain and not (str(plain).isdigit() and str(plain).isascii()):
        table.problem(key, f"expected a numeric id{table.got(key, plain, secret=option.secret)}")
        return INVALID
    if option.choices is not None:
        items = plain if option.type == "str_list" else (plain,)
        wrong = [item for item in items if item not in option.choices]
        if wrong:
            listed = ", ".join(repr(choice) for choice in option.choices)
            got = table.got(key, wrong[0], secret=option.secret)
            shown = table.shown(key, secret=option.secret)
            hint = suggestion(str(wrong[0]), map(str, option.choices)) if shown else ""
            table.problem(key, f"expected one of {listed}{got}{hint}")
            return INVALID
    if option.type in ("int", "float", "duration"):
        if option.minimum is not None and value < option.minimum:
            limit = format_duration(option.minimum) if option.type == "duration" else option.minimum
            table.problem(key, f"must be at least {limit}")
            return INVALID
        if option.minimum is None and option.type == "duration" and value <= 0:
            table.problem(key, "must be positive")
            return INVALID
    return value


def check_renewal(
    table: Table, plugin: SourcePlugin, options: Mapping[str, Any], graph: GraphConfig
) -> None:
    """``renew_token`` on a source whose token is a Facebook one needs the app's id and
    secret (the exchange sends them): a problem without them."""
    if plugin.api_for(options).app != SourcePlugin.api.app:
        return  # an Instagram-Login token is refreshed with itself alone
    if not graph.app_id or not graph.app_secret:
        table.problem(
            "renew_token",
            "renewing a Facebook token needs [graph] app_id and app_secret (the exchange "
            "sends them to Meta); set them, or leave renew_token out",
        )
