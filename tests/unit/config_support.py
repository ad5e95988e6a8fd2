"""Loading a one-source config the way a user writes it, for the tests of the names a
plugin accepts in ``metrics``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from collectord import ConfigError, SourcePlugin
from collectord.config.loader import load_config

SOURCE = "acme"


def write_source(
    tmp_path: Path, plugin: str, object_key: str, object_id: str, metrics: Sequence[str]
) -> Path:
    """``tmp_path/collector.toml`` with one source of ``plugin`` (``object_key =
    object_id``) that lists ``metrics``."""
    path = tmp_path / "collector.toml"
    path.write_text(
        f'[[source]]\nname = "{SOURCE}"\nplugin = "{plugin}"\naccess_token = "t"\n'
        f'{object_key} = "{object_id}"\nmetrics = {json.dumps(list(metrics))}\n',
        encoding="utf-8",
    )
    return path


def metrics_said(
    tmp_path: Path, plugin: SourcePlugin, object_key: str, object_id: str, metrics: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Load :func:`write_source`'s config; return the metrics the source collects and the
    config warnings, each without the ``FILE: source "acme": metrics: `` that starts it. A
    rejected name raises ConfigError."""
    path = write_source(tmp_path, plugin.name, object_key, object_id, metrics)
    config = load_config(path, {plugin.name: plugin}, environ={})
    prefix = f'{path}: source "{SOURCE}": metrics: '
    specs = [s.graph_name for s in config.sources[0].specs]
    return specs, [w.removeprefix(prefix) for w in config.warnings]


def metrics_rejected(
    tmp_path: Path, plugin: SourcePlugin, object_key: str, object_id: str, metrics: Sequence[str]
) -> list[str]:
    """The problems :func:`metrics_said` raises (it must raise), each without the
    ``FILE: source "acme": metrics: `` that starts it."""
    with pytest.raises(ConfigError) as info:
        metrics_said(tmp_path, plugin, object_key, object_id, metrics)
    return [p.split("metrics: ", 1)[1] for p in info.value.problems]
