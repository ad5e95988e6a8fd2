"""A stand-in for the host's memory of one source, for plugin unit tests.

:class:`SourceState` keeps what the host keeps between polls (disabled metrics, the plugin's
memory, counted skips, requested extra polls); :class:`StateContext` is a
:class:`~collectord.PollContext` that writes what the poll notes straight into it, so a test
can run several polls in a row and look at the state in between.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collectord import PollContext


@dataclass
class SourceState:
    name: str = "test"
    plugin: str = ""
    cadences: tuple[str, ...] = ("fast", "daily")
    disabled: dict[str, str] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    on_poll_request: Callable[[str, str, datetime], None] | None = None


def new_state(
    name: str = "test", plugin: str = "", cadences: Iterable[str] = ("fast", "daily")
) -> SourceState:
    return SourceState(name=name, plugin=plugin, cadences=tuple(cadences))


@dataclass
class StateContext(PollContext):
    state: SourceState = field(default_factory=SourceState)

    def __post_init__(self) -> None:
        self.disabled_before = self.state.disabled
        self.memory = self.state.memory

    def disable_metric(self, graph_name: str, reason: str) -> None:
        if graph_name not in self.state.disabled:
            self.state.disabled[graph_name] = reason
            self.state.errors["invalid_metric"] += 1

    def skip(self, object_id: str, reason: str) -> None:
        super().skip(object_id, reason)
        self.state.errors["skipped_object"] += 1
        self.state.skipped[reason] += 1

    def poll_again_at(self, when: datetime) -> None:
        super().poll_again_at(when)
        if self.state.on_poll_request is not None:
            self.state.on_poll_request(self.state.name, self.cadence, when)
