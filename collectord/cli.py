"""The ``collectord`` command line (README "Command line").

Exit status: 0 success; 1 a source failed (``once``, ``backfill``: resumable), the daemon
could not start (port in use), a token or permission problem (``check --online``) or Meta
refused (``auth``); 2 an invalid config or plugin set, or bad arguments (``auth``,
``backfill``); 130 a ``backfill`` interrupted by Ctrl-C. Invalid configs print one line per
problem and never a traceback. Logs go to stderr; ``once`` and ``plugins`` print their
output to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from collectord import __version__, daemon
from collectord.config.checks import parse_listen, with_listen, with_shard
from collectord.config.loader import (
    CONFIG_ENV,
    format_duration,
    load_document,
    read_document,
    read_plugin_dirs,
    resolve_config_path,
)
from collectord.config.types import Config
from collectord.config.web import WebConfig
from collectord.errors import ConfigError
from collectord.logs import configure_logging, get_logger
from collectord.plugin.api import SourcePlugin
from collectord.plugin.manager import (
    LoadedPlugin,
    PluginLoadError,
    describe_plugin,
    load_source_plugins,
    plugin_map,
)
from collectord.sharding import describe_shard

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2
#: Interrupted by Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: The variable that overrides ``[collector] listen`` (``--listen`` overrides both).
LISTEN_ENV = "COLLECTORD_LISTEN"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), help="override the config"
    )
    common.add_argument("--log-format", choices=("console", "json"), help="override the config")

    parser = argparse.ArgumentParser(
        prog="collectord",
        description="Prometheus exporter for Meta's Facebook and Instagram insights.",
    )
    parser.add_argument("--version", action="version", version=f"collectord {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "-c",
            "--config",
            metavar="FILE",
            help="config file (default: $COLLECTORD_CONFIG, else ./collector.toml)",
        )

    def with_shard(p: argparse.ArgumentParser) -> None:
        p.add_argument("--shard", metavar="I/N", help="poll only shard I of N, or auto/N")

    p = sub.add_parser("run", parents=[common], help="run the daemon")
    with_config(p)
    with_shard(p)
    p.add_argument("--demo", action="store_true", help="use the built-in Graph API simulator")
    p.add_argument(
        "--listen",
        metavar="HOST:PORT",
        help=f"serve HTTP here (default: ${LISTEN_ENV}, else [collector] listen)",
    )

    p = sub.add_parser("once", parents=[common], help="poll once and print the samples")
    with_config(p)
    with_shard(p)
    p.add_argument("--demo", action="store_true", help="use the built-in Graph API simulator")
    p.add_argument(
        "--source", action="append", metavar="NAME", help="poll only this source (repeatable)"
    )
    p.add_argument(
        "--format",
        choices=("prom", "jsonl"),
        default="prom",
        help="Prometheus text exposition, or JSONL records (default: prom)",
    )

    p = sub.add_parser("check", parents=[common], help="validate the config and the plugins")
    with_config(p)
    with_shard(p)
    p.add_argument(
        "--online",
        action="store_true",
        help="also check each source's token and permissions with Meta",
    )

    p = sub.add_parser("plugins", parents=[common], help="list the loaded plugins")
    with_config(p)  # its plugin_dirs
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="a table, or one JSON document (default: text)",
    )

    p = sub.add_parser("simulate", parents=[common], help="serve the Graph API simulator")
    p.add_argument(
        "--listen",
        default="127.0.0.1:8191",
        metavar="HOST:PORT",
        help="where to serve it (default: 127.0.0.1:8191)",
    )

    from collectord.auth.commands import add_auth_parser

    add_auth_parser(sub, [common])
    from collectord.backfill.command import add_backfill_parser

    add_backfill_parser(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level or "info", args.log_format or "console")
    try:
        return _dispatch(args)
    except KeyboardInterrupt:  # Ctrl-C outside the daemon's own signal handling (`once`)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`collectord plugins | head`): no traceback. Point stdout at
        # /dev/null so that Python's flush at exit does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "simulate":
        return _simulate(args.listen)
    if args.command == "auth":
        return _auth(args)
    if args.command == "backfill" and (early := _backfill(args)) is not None:
        return early  # bad arguments, or JSONL files alone: no config needed
    path: Path | None = resolve_config_path(getattr(args, "config", None), os.environ)
    demo = getattr(args, "demo", False)
    if demo and path is not None:
        from collectord.demo import config_file

        chosen = args.config is not None or CONFIG_ENV in os.environ
        path = config_file(path, chosen=chosen)
    document = None  # the config file is read once: it may be a pipe
    try:
        if path is not None:
            document = read_document(path)
            dirs = read_plugin_dirs(path, environ=os.environ, document=document)
        else:
            dirs = ()
    except ConfigError as exc:
        if args.command != "plugins":  # `plugins` works without a config file
            _problems(exc.problems)
            return EXIT_INVALID
        dirs = ()
    try:
        loaded = load_source_plugins(dirs)
    except PluginLoadError as exc:
        _problems(exc.problems)
        return EXIT_INVALID
    if args.command == "plugins":
        _print_plugins(loaded, args.format, sys.stdout)
        return EXIT_OK
    source: daemon.ConfigSource
    try:
        if demo:  # an ordinary config pointing at a simulator, which runs with the daemon
            from collectord.demo import Demo

            prepared = Demo(path, plugin_map(loaded), environ=os.environ, document=document)
            prepared.config = _listen(args, prepared.config)
            config, source = prepared.config, prepared.running()
        else:
            assert path is not None
            assert document is not None
            config = source = _listen(args, load_document(document, path, plugin_map(loaded)))
    except ConfigError as exc:
        _problems(exc.problems)
        return EXIT_INVALID
    except Exception as exc:  # a bug in checking: one line, no traceback that may show values
        _problems([f"{path}: cannot check the config ({type(exc).__name__}); please report it"])
        return EXIT_INVALID
    configure_logging(
        args.log_level or config.collector.log_level,
        args.log_format or config.collector.log_format,  # type: ignore[arg-type]
    )

    if args.command == "check":
        _print_check(config, sys.stdout)
        if not args.online:
            sys.stdout.write("did not contact Meta (add --online to check the tokens)\n")
            return EXIT_OK
        from collectord.auth.online import check_online

        ok = asyncio.run(check_online(config, plugin_map(loaded), sys.stdout))
        return EXIT_OK if ok else EXIT_FAILED
    log = get_logger("collectord.config.loader")
    for warning in config.warnings:  # `check` prints them; the daemon logs them once
        log.warning("config warning", detail=warning)
    try:
        if args.command == "run":
            about = [describe_plugin(name, lp) for name, lp in loaded.items()]
            loader = None if demo else _reader(args, path, plugin_map(loaded))
            return asyncio.run(
                daemon.run(source, plugin_map(loaded), about=about, loader=loader, hard_exit=True)
            )
        if args.command == "once":
            return _once(config, source, loaded, args)
        if args.command == "backfill":
            return _backfill(args, config, source, plugin_map(loaded))
    except ConfigError as exc:  # found at start-up, such as a state_dir that cannot be made
        _problems(exc.problems)
        return EXIT_INVALID
    raise AssertionError(args.command)


def _backfill(args: argparse.Namespace, *rest: Any) -> int | None:
    from collectord.backfill.command import before_config, run_backfill

    return run_backfill(args, *rest) if rest else before_config(args)


def _auth(args: argparse.Namespace) -> int:
    """``collectord auth ...``: the plugins say which scopes login asks for (with ``-c``,
    only those the config's sources use, its plugin_dirs loaded too)."""
    from collectord.auth.commands import EXIT_ARGS, run_auth

    dirs: tuple[Path, ...] = ()
    used: list[str] | None = None
    if getattr(args, "config", None):
        path = Path(args.config)
        try:
            document = read_document(path)
            dirs = read_plugin_dirs(path, environ=os.environ, document=document)
        except ConfigError as exc:
            _problems(exc.problems)
            return EXIT_ARGS
        sources = document.get("source")
        tables = sources if isinstance(sources, list) else []
        used = sorted({str(t["plugin"]) for t in tables if isinstance(t, dict) and "plugin" in t})
    try:
        loaded = load_source_plugins(dirs)
    except PluginLoadError as exc:
        _problems(exc.problems)
        return EXIT_ARGS
    return run_auth(args, plugin_map(loaded), used)


def _reader(
    args: argparse.Namespace, path: Path | None, plugins: Mapping[str, SourcePlugin]
) -> Callable[[], Config]:
    """How a reload reads the config again: as at start (the file, then ``--listen``)."""
    assert path is not None
    return lambda: _listen(args, load_document(read_document(path), path, plugins))


def _listen(args: argparse.Namespace, config: Config) -> Config:
    """``config`` with ``--shard``, and ``--listen`` or ``$COLLECTORD_LISTEN`` (``run`` and
    ``check``), applied; a wrong value is a :class:`ConfigError` naming where it came from."""
    if getattr(args, "shard", None) is not None:
        config = with_shard(config, args.shard)
    if args.command not in ("run", "check"):
        return config
    flag = getattr(args, "listen", None)
    origin, value = ("--listen", flag) if flag else (f"${LISTEN_ENV}", os.environ.get(LISTEN_ENV))
    if not value:
        return config
    try:
        return with_listen(config, *parse_listen(value))
    except ValueError as exc:
        raise ConfigError([f"{origin}: {exc}, got {value!r}"]) from None


def _problems(lines: Sequence[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def _print_plugins(loaded: Mapping[str, LoadedPlugin], fmt: str, out: TextIO) -> None:
    doc = [describe_plugin(name, lp) for name, lp in loaded.items()]
    if fmt == "json":
        json.dump({"plugins": doc}, out, indent=2)
        out.write("\n")
        return
    for p in doc:
        out.write(f"{p['name']} {p['version']} ({p['origin']})\n")
        if p["description"]:
            out.write(f"  {p['description']}\n")
        if p["scopes"]:
            out.write(f"  needs scopes: {', '.join(p['scopes'])}\n")
        for o in p["options"]:
            default = "required" if o["required"] else f"default {json.dumps(o['default'])}"
            out.write(f"  option {o['name']} ({o['type']}, {default})")
            out.write(f": {o['help']}\n" if o["help"] else "\n")
        for m in p["metrics"]:
            periods = ",".join(m["periods"]) or "-"
            out.write(
                f"  {m['graph_name']:<48} {m['prometheus_name']:<56} "
                f"{m['cadence']:<6} {periods:<18} {m['unit']}\n"
            )


def _print_check(config: Config, out: TextIO) -> None:
    out.write(f"{config.path}: valid, {len(config.sources)} source(s)\n")
    host, port = config.collector.listen_host, config.collector.listen_port
    out.write(f"listen {f'[{host}]' if ':' in host else host}:{port}\n")
    for src in config.sources:
        out.write(f'source "{src.name}" (plugin {src.plugin})\n')
        if src.discover:
            within = ", ".join(src.include) or "all"
            out.write(
                f"  discovers its objects at start and every "
                f'{format_duration(src.schedule.daily_interval)}, one source "{src.name}/<id>" '
                f"each; include: {within}; exclude: {', '.join(src.exclude) or 'none'}\n"
            )
        for cadence in src.cadences():
            n = sum(1 for s in src.specs if s.cadence == cadence)
            every = format_duration(src.schedule.interval(cadence))
            out.write(
                f"  {cadence:<5} every {every}, jitter {format_duration(src.schedule.jitter)}: "
                f"{n} metric(s)\n"
            )
    if (shard := config.collector.shard) is not None:
        fixed = [s.name for s in config.sources if not s.discover]  # discovered: one by one
        out.write(describe_shard(shard, fixed))
    if config.jsonl is not None:
        out.write(f"sink jsonl: {config.jsonl.path}\n")
    web = config.collector.web or WebConfig()
    out.write(f"http: {web.describe()} (/healthz and /readyz always open)\n")
    if config.webhooks is not None:
        out.write(config.webhooks.describe(host, port) + "\n")
    for warning in config.warnings:
        out.write(f"warning: {warning}\n")


def _once(
    config: Config,
    source: daemon.ConfigSource,
    loaded: Mapping[str, LoadedPlugin],
    args: argparse.Namespace,
) -> int:
    from collectord.exporter.registry import InsightsCollector

    if args.source:
        names = {s.name for s in config.sources}
        parents = {s.name for s in config.sources if s.discover}  # a child: "{parent}/{id}"
        unknown = sorted(n for n in set(args.source) - names if n.split("/")[0] not in parents)
        if unknown:
            _problems([f"--source {name}: no such source in {config.path}" for name in unknown])
            return EXIT_INVALID
    ok, col = asyncio.run(daemon.once(source, plugin_map(loaded), sources=args.source))
    if args.format == "prom":
        from prometheus_client import CollectorRegistry, generate_latest

        registry = CollectorRegistry(auto_describe=False)
        registry.register(
            InsightsCollector(
                col.store, col.graph_stats, [], version=__version__, self_metrics=False
            )
        )
        sys.stdout.write(generate_latest(registry).decode())
    else:
        from collectord.sinks.jsonl import record_line

        snapshot = col.store.snapshot()
        plugins = {s.name: s.plugin for s in snapshot.sources}
        collected_at = datetime.now(UTC)
        for source, samples in snapshot.samples.items():
            for sample in samples:
                sys.stdout.write(record_line(source, plugins[source], sample, collected_at))
    for status in col.store.sources:
        if not status.up:
            get_logger("collectord").error(
                "source failed", source=status.name, error=status.last_error
            )
    return EXIT_OK if ok else EXIT_FAILED


def _simulate(listen: str) -> int:
    host, _, port = listen.rpartition(":")
    try:
        port_number = int(port)
    except ValueError:
        _problems([f"--listen {listen}: expected HOST:PORT"])
        return EXIT_INVALID
    from collectord.simulator.standalone import serve_standalone

    return asyncio.run(serve_standalone(host.strip("[]") or "127.0.0.1", port_number))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
