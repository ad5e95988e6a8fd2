"""Hints for the names in a source's ``metrics`` list that a plugin's catalogue lacks.

A plugin that lets Meta decide on any name (its ``spec_for`` returns a spec for every name)
still knows three things a user wants to hear at ``collectord check`` time, and
:class:`MetricNames` says them the same way for every plugin:

- a Prometheus name (``facebook_page_views``) is a config error naming the Meta name;
- a name Meta retired is asked for all the same (Meta decides: a config written before
  Meta retired a metric keeps starting), with a warning that says when and what replaced it;
- any other name is asked for with a warning naming the nearest catalogue name.
"""

from __future__ import annotations

import difflib
import fnmatch
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from collectord.errors import ConfigError
from collectord.model import MetricSpec, breakdown_name

#: What happens to a retired name that is asked for, unless its entry says otherwise.
REJECTED = "Meta rejects it: it will be disabled"
#: The remark on an unknown name that resembles no catalogue name.
META_DECIDES = "Meta decides, and a name it rejects is disabled"


@dataclass(frozen=True)
class Retired:
    """Meta names (an fnmatch ``pattern``) that Meta retired ``when`` ("in November 2025"),
    what to ask for ``instead`` ("use 'page_media_view'"; ``None``: nothing replaced them),
    and what asking for one does (``outcome``; by default Meta rejects it)."""

    pattern: str
    when: str
    instead: str | None = None
    outcome: str = REJECTED

    def reason(self, graph_name: str) -> str:
        instead = self.instead or "it has no replacement"
        return f"{graph_name!r} was retired by Meta {self.when}; {instead}"


@dataclass(frozen=True)
class MetricNames:
    """One plugin's names: its catalogue, what Meta retired, its Prometheus prefixes.

    ``prefixes`` maps each Prometheus prefix of the plugin's families to the Meta prefix it
    stands for (``{"facebook_page_": "page_"}``); ``retired`` is searched in order, the first
    match wins (so specific names go before their families); ``elsewhere`` holds (pattern,
    remark) pairs for names another plugin reads (a name equal to a pattern gets its remark
    before any guess at a catalogue name; a family pattern only when none is near).
    ``kind`` and ``asked_as`` complete the warning on an unknown name: "'x' is not {kind}
    collectord knows; it is asked for as {asked_as} (...)".
    """

    catalogue: Sequence[MetricSpec]
    retired: Sequence[Retired]
    prefixes: Mapping[str, str]
    kind: str
    asked_as: str
    elsewhere: Sequence[tuple[str, str]] = ()
    _meta: Mapping[str, str] = field(init=False, repr=False, compare=False)
    _prom: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        meta = {s.graph_name: s.graph_name for s in self.catalogue}
        # Every family a catalogue metric is exported as, to the metric's Meta name.
        prom = {
            name: s.graph_name
            for s in self.catalogue
            for name in (s.prom_name, *(breakdown_name(s.prom_name, b) for b in s.breakdowns))
        }
        object.__setattr__(self, "_meta", meta)
        object.__setattr__(self, "_prom", prom)

    def retired_entry(self, graph_name: str) -> Retired | None:
        for entry in self.retired:
            if fnmatch.fnmatchcase(graph_name, entry.pattern):
                return entry
        return None

    def retired_reason(self, graph_name: str) -> str | None:
        """Why ``graph_name`` cannot be asked for, if Meta retired it."""
        entry = self.retired_entry(graph_name)
        return entry.reason(graph_name) if entry else None

    def check(self, graph_name: str) -> None:
        """What ``spec_for`` says about a name outside the catalogue before asking for it:
        a :class:`ConfigError` for a Prometheus name, else a ``warnings.warn``."""
        entry = self.retired_entry(graph_name)
        if entry:
            # Not an error: a config that ran before Meta retired the metric keeps running.
            warnings.warn(f"{entry.reason(graph_name)} ({entry.outcome})", stacklevel=3)
            return
        self._reject_prometheus_name(graph_name)
        warnings.warn(
            f"{graph_name!r} is not {self.kind} collectord knows; it is asked for as "
            f"{self.asked_as} ({self._remark(graph_name)})",
            stacklevel=3,
        )

    def _reject_prometheus_name(self, graph_name: str) -> None:
        for prefix, meta_prefix in self.prefixes.items():
            if not graph_name.startswith(prefix):
                continue
            retired = self.retired_reason(meta_prefix + graph_name.removeprefix(prefix))
            if retired:
                hint = f" ({retired})"
            else:
                # the family itself, the family without its unit, else the nearest one
                near = (
                    self._prom.get(graph_name)
                    or self._prom.get(f"{graph_name}_seconds")
                    or nearest(graph_name, self._prom)
                )
                hint = f" (did you mean {near!r}?)" if near else ""
            raise ConfigError(
                [f"unknown metric {graph_name!r}: list metrics by their Graph API name{hint}"]
            )

    def _remark(self, graph_name: str) -> str:
        """A name another plugin reads by that very name is sent there; else the nearest
        catalogue name, else a family another plugin reads, else Meta decides."""
        exact = dict(self.elsewhere)
        if graph_name in exact:
            return exact[graph_name]
        near = nearest(graph_name, self._meta)
        if near:
            return f"did you mean {near!r}?"
        for pattern, remark in self.elsewhere:
            if fnmatch.fnmatchcase(graph_name, pattern):
                return remark
        return META_DECIDES


def nearest(word: str, names: Mapping[str, str]) -> str | None:
    """The value of the key of ``names`` nearest to ``word`` (difflib, as the config's
    other suggestions), or ``None``."""
    close = difflib.get_close_matches(word, list(names), n=1, cutoff=0.6)
    return names[close[0]] if close else None
