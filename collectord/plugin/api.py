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
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from collectord.graph.api import FACEBOOK, GraphApi
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
        that element. ``null`` elements (not completed by Meta) are retried. For an API
        without batch requests (``GraphApi.batching`` false) each is a GET of its own.
        """
        ...

    async def get_many(
        self, calls: Sequence[tuple[str, Mapping[str, Any] | None]]
    ) -> list[dict[str, Any] | GraphError]:
        """``GET`` each ``(path, params)`` call the way the client sees fit (one call: a
        plain GET; several: batch requests where the API has them) and return one entry per
        call, in order: the decoded body or the call's classified error (not raised)."""
        ...


@dataclass(frozen=True, slots=True)
class Skip:
    """An object left out of a poll for an expected reason (media from before the business
    conversion, a story under five viewers, a vanished object)."""

    object_id: str
    reason: str


#: How long a metric Meta rejected stays disabled before it is asked for again (a re-probe:
#: Meta restores metrics, and a rejection for one object may pass).
REPROBE_AFTER = timedelta(days=1)
#: Each cadence's interval when the host gives none (the config's defaults).
DEFAULT_INTERVALS: Mapping[str, float] = {"fast": 15 * 60.0, "daily": 24 * 3600.0}

#: Separates a disabled name from the one object it is disabled for (``STORY/shares@1789``).
OBJECT_MARK = "@"


def object_key(key: str, object_id: str) -> str:
    """``key`` (a metric, maybe scoped) disabled for one object only: ``STORY/shares@1789``."""
    return f"{key}{OBJECT_MARK}{object_id}"


@dataclass(frozen=True, slots=True)
class Disable:
    """A metric Meta rejected for this source, no longer requested until its re-probe.

    ``metric`` is Meta's name, with its scope where the rejection is scoped
    (``reach:follow_type`` for a breakdown, ``STORY/shares`` for a kind of object,
    ``STORY/shares@1789`` for one object: :func:`object_key`). ``at`` is when the poll that
    rejected it ran (``None``: never re-probed); a day later (:data:`REPROBE_AFTER`) the
    metric is asked for again."""

    metric: str
    reason: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    """Everything one poll hands back; the host records it, the plugin keeps nothing.

    ``samples`` replace the source's samples of the cadence, unless ``partial`` is set (an
    extra poll that refreshed only some series: the store keeps the others). ``memory`` is
    the plugin's memory for the next poll of this source (``None``: unchanged).
    ``poll_again_at`` asks for one extra poll of this cadence at that time.
    ``disabled`` holds the metrics this poll rejected (new ones, and re-probed ones Meta
    still rejects: the host renews their date); ``reenabled`` the disabled names the host
    forgets (a re-probe Meta answered, an object-scoped one due again, object-scoped ones
    a kind-wide one replaced).
    """

    samples: tuple[Sample, ...] = ()
    skipped: tuple[Skip, ...] = ()
    disabled: tuple[Disable, ...] = ()
    reenabled: tuple[str, ...] = ()
    memory: Mapping[str, Any] | None = None
    poll_again_at: datetime | None = None
    partial: bool = False


@dataclass
class PollContext:
    """Everything a plugin gets for one poll of one source at one cadence.

    ``options`` holds the plugin's own keys, validated and with defaults filled in
    (durations in seconds). ``disabled_before`` holds the metrics Meta rejected for this
    source before this poll (Meta name, maybe scoped, to reason) and ``disabled_at`` when
    (a name missing there is never re-probed). A name disabled for
    :data:`REPROBE_AFTER` or longer is due: :meth:`is_disabled` answers False for it, so
    it is asked for again; when Meta answers, :meth:`result` re-enables it. ``memory`` is the plugin's own
    memory of this source from its last poll: a private copy, returned with the result.
    ``requested`` is True for an extra poll the plugin asked for with
    :meth:`poll_again_at` (not a scheduled one): such a poll may refresh only what it was
    asked for and return a ``partial`` result.

    :meth:`skip`, :meth:`disable_metric` and :meth:`poll_again_at` only note what the
    poll found; :meth:`result` hands it all back as one :class:`PollResult`.
    """

    source: str
    plugin: str
    cadence: Cadence
    options: Mapping[str, Any]
    graph: SourceGraph
    catalogue: Sequence[MetricSpec]
    now: datetime
    disabled_before: Mapping[str, str] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    log: Any = None
    requested: bool = False
    disabled_at: Mapping[str, datetime] = field(default_factory=dict)
    #: The samples this source held for this cadence after its last successful poll
    #: (restored from ``state_dir`` after a restart); empty before the first one.
    previous: Sequence[Sample] = ()
    #: The source's interval of each cadence, in seconds (see :meth:`interval`).
    intervals: Mapping[str, float] = field(default_factory=dict)
    _skipped: list[Skip] = field(default_factory=list, repr=False)
    _disabled: dict[str, str] = field(default_factory=dict, repr=False)
    _probed: set[str] = field(default_factory=set, repr=False)
    _again: datetime | None = field(default=None, repr=False)

    @property
    def disabled(self) -> Mapping[str, str]:
        """Metrics rejected for this source and not due for a re-probe: before this poll
        and during it."""
        before = {k: r for k, r in self.disabled_before.items() if not self.is_due(k)}
        return {**before, **self._disabled}

    @property
    def reprobing(self) -> bool:
        """Whether a disabled name is due for its re-probe in this poll (a plugin of many
        objects then sends a few objects first: :meth:`Requests.split_probe`)."""
        return any(self.is_due(k) for k in self.disabled_before)

    def is_due(self, key: str) -> bool:
        """Whether ``key``, disabled before this poll, is due for its daily re-probe."""
        at = self.disabled_at.get(key)
        return key in self.disabled_before and at is not None and self.now - at >= REPROBE_AFTER

    @property
    def newly_disabled(self) -> Mapping[str, str]:
        """Metrics this poll disabled so far."""
        return dict(self._disabled)

    @property
    def skipped(self) -> tuple[Skip, ...]:
        return tuple(self._skipped)

    def is_disabled(self, key: str) -> bool:
        """Whether ``key`` must not be asked for in this poll. A name due for its re-probe
        is not (it is noted as probed: re-enabled unless this poll rejects it again)."""
        if key in self._disabled:
            return True
        if key not in self.disabled_before:
            return False
        if self.is_due(key):
            self._probed.add(key)
            return False
        return True

    def interval(self, cadence: Cadence) -> float:
        """The source's interval of ``cadence`` in seconds (the defaults, 15 minutes and
        24 hours, when the host gave none)."""
        return float(self.intervals.get(cadence, DEFAULT_INTERVALS[cadence]))

    @staticmethod
    def object_key(key: str, object_id: str) -> str:
        """``key`` disabled for one object only (:func:`object_key`)."""
        return object_key(key, object_id)

    def disabled_objects(self, key: str) -> list[str]:
        """The objects ``key`` is disabled for one by one (:func:`object_key`), in force."""
        prefix = key + OBJECT_MARK
        return [k[len(prefix) :] for k in self.disabled if k.startswith(prefix)]

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
            and not self.is_disabled(m.graph_name)
            and (kind is None or m.kind == kind)
            and (group is None or group in m.group)
        )

    def disable_metric(self, graph_name: str, reason: str) -> None:
        """Stop requesting ``graph_name`` (maybe scoped) for this source; the host shows it
        in ``collectord_metric_disabled``, logs it once and counts it once in
        ``collectord_source_poll_errors_total{reason="invalid_metric"}``. A re-probed name
        Meta still rejects is disabled for another day (not logged or counted again)."""
        if graph_name in self._disabled:
            return
        if graph_name in self.disabled_before and not self.is_due(graph_name):
            return
        self._disabled[graph_name] = reason

    def skip(self, object_id: str, reason: str) -> None:
        """Note an expected per-object answer (pre-conversion media, a story under five
        viewers, a vanished object): counted, and the poll does not fail."""
        self._skipped.append(Skip(object_id, reason))

    def poll_again_at(self, when: datetime) -> None:
        """Ask for one extra poll of this cadence at ``when`` (for example just before a
        story expires); it comes with ``requested`` set. The earliest of several asks wins;
        the regular schedule is not changed."""
        if self._again is None or when < self._again:
            self._again = when

    def reenabled(self) -> tuple[str, ...]:
        """The disabled names the host forgets after this poll: those re-probed and not
        rejected again, object-scoped ones that are due (asked again when the object
        is), and object-scoped ones of a name now disabled kind-wide."""
        kinds = tuple(k + OBJECT_MARK for k in self._disabled if OBJECT_MARK not in k)
        out = set(self._probed)
        for key in self.disabled_before:
            if (OBJECT_MARK in key and self.is_due(key)) or (kinds and key.startswith(kinds)):
                out.add(key)
        return tuple(sorted(k for k in out if k not in self._disabled))

    def result(self, samples: Iterable[Sample] = (), *, partial: bool = False) -> PollResult:
        """The poll's result: ``samples`` plus everything noted on this context."""
        return PollResult(
            samples=tuple(samples),
            skipped=tuple(self._skipped),
            disabled=tuple(
                Disable(m, r, self.now)
                for m, r in self._disabled.items()
                if m.partition(OBJECT_MARK)[0] == m
                or m.partition(OBJECT_MARK)[0] not in self._disabled
            ),
            reenabled=self.reenabled(),
            memory=self.memory,
            poll_again_at=self._again,
            partial=partial,
        )

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


#: The config key that names a plugin's object, for each kind of object discovery finds
#: (``SourcePlugin.discovers``): a discovering source leaves it out; each child sets it.
DISCOVERY_KEYS: Mapping[str, str] = {"page": "page_id", "instagram": "ig_user_id"}


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
    #: The permissions (token scopes) a source of this plugin needs, as Meta names them
    #: (``read_insights``, ``instagram_manage_insights``, ...): shown by ``collectord
    #: plugins``, and a token lacking one is reported by ``collectord_token_missing_scope``.
    scopes: ClassVar[tuple[str, ...]] = ()
    #: The API the plugin speaks (where, which version, batch requests, appsecret_proof,
    #: whose app): the Facebook Graph API unless the plugin declares another one.
    api: ClassVar[GraphApi] = FACEBOOK
    #: What a source of this plugin can discover from a user or system-user token
    #: (``discover = true``): ``"page"`` (every Page it manages) or ``"instagram"`` (every
    #: professional account linked to those Pages); ``None``: the plugin reads one object
    #: named in its config. The object's key is :data:`DISCOVERY_KEYS` of it.
    discovers: ClassVar[str | None] = None

    def api_for(self, options: Mapping[str, Any]) -> GraphApi:
        """The API a source with these ``options`` speaks: :attr:`api` unless the plugin
        lets a source choose (the Instagram plugins' ``login = "instagram"``)."""
        return self.api

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

    def webhook_samples(
        self,
        field: str,
        object_id: str,
        value: Mapping[str, Any],
        *,
        options: Mapping[str, Any],
        catalogue: Sequence[MetricSpec],
    ) -> list[Sample] | None:
        """The samples one change of a signed webhook delivery brings to a source of this
        plugin, or ``None`` (the default) when the change is not this source's.

        ``field`` and ``value`` are the change's (``story_insights`` and its values),
        ``object_id`` the entry's id (the account it is about); ``options`` and
        ``catalogue`` are the source's, as :class:`PollContext` has them. The samples must
        carry exactly the names and labels a poll gives the same values: the host adds them
        to the source's series (the others stay) and hands them to the sinks.
        """
        return None

    @abc.abstractmethod
    async def collect(self, ctx: PollContext) -> PollResult | Sequence[Sample]:
        """Poll the source for ``ctx.cadence`` and return ``ctx.result(samples)``.

        Raise a :class:`~collectord.errors.GraphError` (let the Graph client's ones pass) when
        the source as a whole cannot deliver; call ``ctx.skip`` for expected per-object
        answers and ``ctx.disable_metric`` for metrics Meta rejects. A plain sequence of
        samples is taken as ``ctx.result(samples)``.
        """

    async def history(self, ctx: PollContext, since: datetime, until: datetime) -> Sequence[Sample]:
        """The daily values Meta still keeps for the completed days in ``[since, until]``
        (``collectord backfill``), each sample carrying Meta's ``end_time``, with the names
        and labels :meth:`collect` gives. ``ctx.cadence`` is ``daily`` and ``ctx.now`` the
        time of the backfill. Split the range into the windows Meta allows in one query;
        leave out what has no history (fields, lifetime values). Raise like
        :meth:`collect` when the source cannot deliver. The default: no history."""
        return ()
