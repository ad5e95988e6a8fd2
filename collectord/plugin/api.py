"""What a source plugin is, and what it is handed on each poll.

A plugin subclasses :class:`SourcePlugin`: it names itself, declares its own config keys
(:class:`~collectord.model.Option`) and its metric catalogue
(:class:`~collectord.model.MetricSpec`), and implements :meth:`SourcePlugin.collect`, which
receives a :class:`PollContext` and returns :class:`~collectord.model.Sample` objects. It
never opens HTTP sessions, touches Prometheus objects or writes files: the context's
``graph`` is its only way out.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from collectord.model import (
    Cadence,
    Labels,
    MetricKind,
    MetricSpec,
    Option,
    Sample,
    make_labels,
)

if TYPE_CHECKING:
    from collectord.errors import GraphError
    from collectord.secret import Secret


class SourceGraph(Protocol):
    """The Graph API as one source sees it: its token, its version, its settings.

    Every method raises a :class:`~collectord.errors.GraphError` subclass when Meta (or the
    way to Meta) fails; transient failures have already been retried by then.
    """

    @property
    def version(self) -> str:
        """The API version in use, such as ``v26.0``."""
        ...

    async def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``GET /{version}/{path}?{params}`` and return the decoded JSON object."""
        ...

    async def get_all(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        max_items: int | None = None,
        max_pages: int = 100,
    ) -> list[dict[str, Any]]:
        """Follow cursor paging (``paging.next``) and return the ``data`` items of all pages.

        Stops when ``next`` is absent, after ``max_pages`` pages, or once ``max_items`` items
        were read; empty pages that still carry ``next`` are followed.
        """
        ...

    async def batch(
        self, requests: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[dict[str, Any] | GraphError]:
        """Send ``GET`` requests ``(path, params)`` as batch requests (50 per HTTP request).

        Returns one entry per request, in order: the decoded body, or the classified error of
        that element. ``null`` elements (not completed by Meta) are retried.
        """
        ...


class SourceState(Protocol):
    """What the host remembers about a source between polls (see :class:`PollContext`)."""

    disabled: dict[str, str]
    memory: dict[str, Any]

    def count_skip(self, reason: str) -> None: ...

    def count_disabled(self, metric: str) -> None: ...

    def request_poll(self, cadence: Cadence, when: datetime) -> None: ...


@dataclass
class PollContext:
    """Everything a plugin gets for one poll of one source at one cadence.

    ``options`` holds the plugin's own keys, validated and with defaults filled in
    (durations in seconds). ``memory`` is a dict the plugin may keep state in between
    polls of the same source (it lives as long as the process). ``requested`` is True for
    an extra poll the plugin asked for with :meth:`poll_again_at` (not a scheduled one):
    such a poll may refresh only what it was asked for, and hand back the rest of the
    cadence's samples unchanged from its last poll.
    """

    source: str
    plugin: str
    cadence: Cadence
    options: Mapping[str, Any]
    graph: SourceGraph
    catalogue: Sequence[MetricSpec]
    state: SourceState
    now: datetime
    log: Any = None
    requested: bool = False

    @property
    def memory(self) -> dict[str, Any]:
        return self.state.memory

    def metrics(
        self, kind: MetricKind | None = None, group: str | None = None
    ) -> tuple[MetricSpec, ...]:
        """The source's metrics for this poll's cadence that Meta has not rejected.

        Filtered by ``kind`` (``insight`` or ``field``) and by ``group`` when given.
        """
        return tuple(
            m
            for m in self.catalogue
            if m.cadence == self.cadence
            and m.graph_name not in self.state.disabled
            and (kind is None or m.kind == kind)
            and (group is None or group in m.group)
        )

    def disable_metric(self, graph_name: str, reason: str) -> None:
        """Stop requesting ``graph_name`` for this source; it shows in
        ``collectord_metric_disabled``, is logged once by the host and counted once in
        ``collectord_source_poll_errors_total{reason="invalid_metric"}``."""
        if graph_name not in self.state.disabled:
            self.state.disabled[graph_name] = reason
            self.state.count_disabled(graph_name)
            if self.log is not None:
                self.log.warning(
                    "metric disabled", source=self.source, metric=graph_name, reason=reason
                )

    def skip(self, object_id: str, reason: str) -> None:
        """Count an expected per-object answer (pre-conversion media, a story under five
        viewers, a vanished object) without failing the poll."""
        self.state.count_skip(reason)
        if self.log is not None:
            self.log.debug("object skipped", source=self.source, object_id=object_id, why=reason)

    def poll_again_at(self, when: datetime) -> None:
        """Ask for one extra poll of this cadence at ``when`` (for example just before a
        story expires); it comes with ``requested`` set. The regular schedule is not
        changed."""
        self.state.request_poll(self.cadence, when)

    def sample(
        self,
        spec: MetricSpec,
        value: float | int,
        *,
        object_id: str,
        labels: Mapping[str, Any] | Iterable[tuple[str, Any]] | Labels,
        period: str | None = None,
        end_time: datetime | None = None,
        metric: str | None = None,
    ) -> Sample:
        """Build a sample of ``spec``: scales the value and copies name, cadence and help.

        ``metric`` overrides the family name (for ``<name>_by_<dimension>`` families).
        """
        return Sample(
            metric=metric or spec.prom_name,
            graph_metric=spec.graph_name,
            value=float(value) * spec.scale,
            labels=make_labels(labels),
            object_id=object_id,
            cadence=spec.cadence,
            period=period,
            end_time=end_time,
            help=spec.help,
        )


class SourcePlugin(abc.ABC):
    """A kind of source (``facebook_page``, ``instagram_media``, ...).

    Subclasses set the class attributes and implement :meth:`collect`. One instance serves
    every source of its kind: keep per-source state in ``ctx.memory``, not on ``self``.
    """

    #: The value of ``plugin =`` in a ``[[source]]`` table.
    name: ClassVar[str]
    #: Shown by ``collectord plugins``.
    version: ClassVar[str] = "0"
    description: ClassVar[str] = ""
    #: The plugin's own config keys (``name``, ``plugin``, ``access_token``, ``metrics`` and
    #: the interval keys are the host's and must not be declared here).
    options: ClassVar[tuple[Option, ...]] = ()
    #: Every metric the plugin knows, with its cadence.
    catalogue: ClassVar[tuple[MetricSpec, ...]] = ()

    def validate(self, options: Mapping[str, Any]) -> list[str]:
        """Cross-key checks after each key was validated on its own; return problems."""
        return []

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """The spec for a name a user put in ``metrics`` that the catalogue lacks.

        ``None`` (the default) makes it a config error. A plugin that can request any
        Meta metric by name returns a spec, and Meta decides (an invalid one is disabled).
        To reject a name with its own words (a Prometheus name, say), raise
        :class:`~collectord.errors.ConfigError` with one problem per line; to accept it with
        a remark for the user (a retired or unfamiliar name), call ``warnings.warn(text)``:
        ``collectord check`` prints it and the daemon logs it.
        """
        return None

    def default_access_token(self, app_id: str | None, app_secret: Secret | None) -> str | None:
        """The token to use when a source sets none (``facebook_app``: the app token)."""
        return None

    @abc.abstractmethod
    async def collect(self, ctx: PollContext) -> list[Sample]:
        """Poll the source for ``ctx.cadence`` and return its samples.

        Raise a :class:`~collectord.errors.GraphError` (let the Graph client's ones pass) when
        the source as a whole cannot deliver; call ``ctx.skip`` for expected per-object
        answers and ``ctx.disable_metric`` for metrics Meta rejects.
        """
