"""The plugins' samples as Prometheus gauge families, built from one store snapshot.

Series identity is :func:`collectord.model.series_key` (labels as a mapping), with the
source in front: two samples of one family whose labels come in another order are one
series. Every family exposes ``source`` then its own label names in sorted order. Names
and label names are checked once per family shape (the verdict is cached), not per sample.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily

from collectord.logs import get_logger
from collectord.model import Sample, series_key
from collectord.store.store import Snapshot

log = get_logger("collectord.exporter.registry")

#: Appended to the HELP text of every family read from the Graph API.
HELP_SUFFIX = "Collected from the Graph API on a schedule; the value is the newest one read."

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Name prefixes a plugin's family may not use: collectord's own and the process collectors'.
RESERVED_PREFIXES = ("collectord_", "process_", "python_")


@dataclass
class _Family:
    """The series of one sample family gathered from a snapshot."""

    name: str
    help: str
    label_names: tuple[str, ...]
    series: dict[tuple[str, ...], Sample] = field(default_factory=dict)


#: Put in place of a character a label value may not carry raw (see :func:`label_value`).
REPLACEMENT = "\ufffd"
#: Unicode categories replaced in label values: controls, lone surrogates (not encodable
#: as UTF-8), line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def label_value(value: str) -> str:
    """``value`` as it may appear in the exposition: a control character (CR, NUL, tab,
    DEL, ...), a lone surrogate or a line separator becomes U+FFFD. A newline, a backslash
    and a double quote stay: prometheus_client escapes those three as the text format
    requires. Breakdown keys come from Meta and may hold anything."""
    if value.isprintable():
        return value
    return "".join(
        REPLACEMENT if ch != "\n" and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
        for ch in value
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _family_help(sample: Sample) -> str:
    base = _one_line(sample.help) or sample.metric
    if not base.endswith((".", "!", "?")):
        base += "."
    return f"{base} {HELP_SUFFIX}"


def _newer(candidate: Sample, current: Sample) -> bool:
    """True when ``candidate`` measures a later period than ``current`` (ties keep current)."""
    if candidate.end_time is None:
        return False
    return current.end_time is None or candidate.end_time > current.end_time


@dataclass(frozen=True)
class SampleFamilies:
    """The gauge families of one snapshot and how many series each source exposes."""

    families: tuple[GaugeMetricFamily, ...]
    series_per_source: Mapping[str, int]


class FamilyBuilder:
    """Turns snapshots into :class:`SampleFamilies`; remembers its name checks and warnings.

    A family keeps the label names of the first sample seen; a sample with other label
    names, an invalid name or a reserved prefix is left out (logged once per family). Two
    samples of one series keep the one with the newest ``end_time``. Safe to call from a
    worker thread: it reads only the frozen snapshot.
    """

    def __init__(self) -> None:
        self._warned: set[tuple[str, str]] = set()
        self._name_ok: dict[str, bool] = {}
        self._labels_ok: dict[tuple[str, ...], bool] = {}

    def build(self, snapshot: Snapshot) -> SampleFamilies:
        families: dict[str, _Family] = {}
        for source in snapshot.sources:
            for sample in snapshot.samples.get(source.name, ()):
                self._add_sample(families, source.name, sample)
        per_source: dict[str, int] = {}
        out = []
        for name in sorted(families):
            family = families[name]
            gauge = GaugeMetricFamily(family.name, family.help, labels=family.label_names)
            for values, sample in family.series.items():
                gauge.add_metric(values, sample.value)
                per_source[values[0]] = per_source.get(values[0], 0) + 1
            out.append(gauge)
        return SampleFamilies(tuple(out), per_source)

    def _warn_once(self, event: str, family: str, **details: object) -> None:
        if (event, family) in self._warned:
            return
        self._warned.add((event, family))
        log.warning(event, family=family, **details)

    def _valid_name(self, name: str) -> bool:
        ok = self._name_ok.get(name)
        if ok is None:
            ok = self._name_ok[name] = bool(_METRIC_NAME.match(name)) and not name.startswith(
                RESERVED_PREFIXES
            )
        return ok

    def _valid_labels(self, label_names: tuple[str, ...]) -> bool:
        ok = self._labels_ok.get(label_names)
        if ok is None:
            ok = self._labels_ok[label_names] = len(set(label_names)) == len(label_names) and all(
                _LABEL_NAME.match(n) and not n.startswith("__") for n in label_names
            )
        return ok

    def _add_sample(self, families: dict[str, _Family], source: str, sample: Sample) -> None:
        name, labels = series_key(sample.metric, sample.labels)
        family = families.get(name)
        label_names = ("source", *(k for k, _ in labels))
        if family is None:
            if not self._valid_name(name):
                self._warn_once("metric_family_name_invalid", name, source=source)
                return
            if not self._valid_labels(label_names):
                self._warn_once(
                    "metric_label_names_invalid", name, source=source, labels=list(label_names)
                )
                return
            family = families[name] = _Family(name, _family_help(sample), label_names)
        elif family.label_names != label_names:
            if not self._valid_labels(label_names):
                self._warn_once(
                    "metric_label_names_invalid", name, source=source, labels=list(label_names)
                )
            else:
                self._warn_once(
                    "metric_label_names_differ",
                    name,
                    source=source,
                    kept=list(family.label_names),
                    dropped=list(label_names),
                )
            return
        values = (source, *(label_value(v) for _, v in labels))
        current = family.series.get(values)
        if current is None or _newer(sample, current):
            family.series[values] = sample
