"""The data types a plugin speaks: metric catalogue entries, options and samples.

Everything here is immutable. A plugin declares its catalogue with :class:`MetricSpec`
and its own config keys with :class:`Option`; each poll hands back :class:`Sample` objects.
:class:`TokenView` is what collectord learnt about a source's token (Graph layer to store).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, get_args

from collectord.errors import count_problem

Cadence = Literal["fast", "daily"]
CADENCES: tuple[Cadence, ...] = get_args(Cadence)

MetricKind = Literal["insight", "field"]
OptionType = Literal["str", "id", "int", "float", "bool", "duration", "str_list"]

#: Reasons a poll error or a skipped object is counted under
#: (``collectord_source_poll_errors_total{reason}``).
ERROR_REASONS: tuple[str, ...] = (
    "throttled",
    "auth",
    "permission",
    "invalid_metric",
    "server",
    "timeout",
    "network",
    "bad_response",
    "not_found",
    "skipped_object",
    "other",
)

_INVALID_CHARS = re.compile(r"[^a-z0-9_]")


def sanitize(name: str) -> str:
    """Lower-case ``name`` and turn every character outside ``[a-z0-9_]`` into ``_``."""
    return _INVALID_CHARS.sub("_", name.lower())


def prom_name(prefix: str, graph_name: str, *, strip: str = "", milliseconds: bool = False) -> str:
    """Build a Prometheus family name from a Meta metric name.

    ``prefix`` is the platform and object (``facebook_page``); ``strip`` is the prefix Meta
    puts on its own names for that object (``page_``), removed when present. A trailing
    ``_total`` is dropped because every collectord metric is a gauge; values Meta reports
    in milliseconds get ``_seconds``.

    >>> prom_name("facebook_page", "page_views_total", strip="page_")
    'facebook_page_views'
    >>> prom_name("facebook_post", "post_video_avg_time_watched", strip="post_", milliseconds=True)
    'facebook_post_video_avg_time_watched_seconds'
    """
    name = sanitize(graph_name)
    if strip and name.startswith(strip):
        name = name[len(strip) :]
    if name.endswith("_total"):
        name = name[: -len("_total")]
    full = f"{prefix}_{name}"
    if milliseconds and not full.endswith("_seconds"):
        full += "_seconds"
    return full


def breakdown_name(family: str, breakdown: str) -> str:
    """The family of a requested breakdown: ``breakdown_name("x", "age,gender")`` is
    ``"x_by_age_gender"``."""
    dims = "_".join(sanitize(d.strip()) for d in breakdown.split(","))
    return f"{family}_by_{dims}"


#: The longest numeric string :func:`number` reads (a float needs far fewer characters).
_MAX_NUMBER_TEXT = 64

#: The ``unit`` a catalogue gives for values Meta reports in milliseconds.
MILLISECONDS = "ms"


def number(value: Any) -> float | None:
    """Meta's number as a float: JSON numbers and numeric strings (App Insights sends
    ``"1520"``). A JSON boolean is not a number, and neither is anything else: ``None``.
    Neither is a value no float can hold (an integer over about 1.8e308, ``"NaN"``,
    ``"Infinity"``): that one value is left out and counted as a ``bad_response``
    (:func:`collectord.errors.count_problem`), the rest of the answer is kept.

    >>> number("1520"), number(7), number(True), number("n/a"), number(10**400)
    (1520.0, 7.0, None, None, None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
    elif isinstance(value, str) and len(value) <= _MAX_NUMBER_TEXT:
        try:
            out = float(value)
        except ValueError:
            return None
    else:
        return None
    if not math.isfinite(out):
        count_problem("bad_response")
        return None
    return out


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of a plugin's catalogue.

    ``graph_name`` is Meta's name (insight metric or node field), ``prom_name`` the family
    collectord exports, ``cadence`` how often Meta refreshes it, ``periods`` the periods
    requested (``day``, ``week``, ``days_28``, ``lifetime``; empty for fields), ``unit`` a
    word for people (``count``, ``seconds``, ``ratio``, ``currency``), ``scale`` the factor
    applied to Meta's value (0.001 for milliseconds), ``default`` whether it is collected
    when a source does not list its ``metrics``, and ``group`` a plugin-defined tag (for
    example the Instagram media product types a metric is valid for). ``breakdowns`` lists
    the breakdowns requested besides the plain value (``"is_from_ads"``, ``"age,gender"``);
    each becomes the family ``<prom_name>_by_<dimensions joined by _>``.
    """

    graph_name: str
    prom_name: str
    cadence: Cadence
    periods: tuple[str, ...] = ()
    unit: str = "count"
    help: str = ""
    kind: MetricKind = "insight"
    scale: float = 1.0
    default: bool = True
    group: tuple[str, ...] = ()
    breakdowns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.cadence not in CADENCES:
            raise ValueError(f"cadence must be one of {CADENCES}, not {self.cadence!r}")

    @classmethod
    def field(
        cls,
        prefix: str,
        graph_name: str,
        help: str,
        *,
        name: str | None = None,
        cadence: Cadence = "fast",
        default: bool = True,
        unit: str = "count",
    ) -> MetricSpec:
        """A node field (``followers_count``) exported as ``{prefix}_{name or graph_name}``;
        fields are current counts, ``fast`` by default. ``unit="ms"`` is Meta's
        milliseconds: exported in seconds, with the ``_seconds`` suffix."""
        ms = unit == MILLISECONDS
        full = f"{prefix}_{sanitize(name or graph_name)}"
        if ms and not full.endswith("_seconds"):
            full += "_seconds"
        return cls(
            graph_name=graph_name,
            prom_name=full,
            cadence=cadence,
            help=help,
            kind="field",
            default=default,
            unit="seconds" if ms else unit,
            scale=0.001 if ms else 1.0,
        )

    @classmethod
    def insight(
        cls,
        prefix: str,
        graph_name: str,
        help: str,
        *,
        cadence: Cadence,
        periods: tuple[str, ...] = (),
        strip: str = "",
        unit: str = "count",
        default: bool = True,
        group: tuple[str, ...] = (),
        breakdowns: tuple[str, ...] = (),
    ) -> MetricSpec:
        """An insight metric exported as :func:`prom_name` ``(prefix, graph_name, strip)``.

        ``unit="ms"`` is Meta's milliseconds: the value is scaled by 0.001, the unit is
        ``seconds`` and the family gets the ``_seconds`` suffix.

        >>> MetricSpec.insight("x", "avg_time", "", cadence="daily", unit="ms").prom_name
        'x_avg_time_seconds'
        """
        ms = unit == MILLISECONDS
        return cls(
            graph_name=graph_name,
            prom_name=prom_name(prefix, graph_name, strip=strip, milliseconds=ms),
            cadence=cadence,
            periods=periods,
            unit="seconds" if ms else unit,
            help=help,
            scale=0.001 if ms else 1.0,
            default=default,
            group=group,
            breakdowns=breakdowns,
        )


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: Default of an :class:`Option` that the user must set.
REQUIRED: Any = _Required()


@dataclass(frozen=True, slots=True)
class Option:
    """A config key a plugin accepts in its ``[[source]]`` table.

    ``type`` decides how the value is checked and converted: ``id`` is a numeric Graph API
    object id (digits, kept as a string), ``duration`` values become seconds (float),
    ``str_list`` a tuple of strings. ``secret`` values are held as
    :class:`collectord.Secret`. ``choices`` restricts the accepted values; ``minimum``
    bounds numbers and durations from below.
    """

    name: str
    type: OptionType = "str"
    default: Any = REQUIRED
    help: str = ""
    secret: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


Labels = tuple[tuple[str, str], ...]


#: The longest label value kept, in characters: Meta's keys and ids are short; a longer
#: value (a breakdown key that is a whole document) is cut, so one odd answer cannot make
#: megabyte-long series.
MAX_LABEL_VALUE = 1024


def label_value(value: Any) -> str:
    """A label value as a string (``None`` is ``""``), at most :data:`MAX_LABEL_VALUE`
    characters."""
    text = "" if value is None else str(value)
    return text if len(text) <= MAX_LABEL_VALUE else text[:MAX_LABEL_VALUE]


def make_labels(items: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> Labels:
    """Freeze label pairs, keeping their order and turning values into strings
    (:func:`label_value`)."""
    pairs = items.items() if isinstance(items, Mapping) else items
    return tuple((str(k), label_value(v)) for k, v in pairs)


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of one series, as a plugin hands it to the host.

    ``labels`` are the series' Prometheus labels *without* ``source`` (the host adds it
    first). ``period`` and ``end_time`` are Meta's, when Meta gives them. ``value`` is
    already scaled (milliseconds turned into seconds).
    """

    metric: str
    graph_metric: str
    value: float
    labels: Labels
    object_id: str
    cadence: Cadence
    period: str | None = None
    end_time: datetime | None = None
    help: str = field(default="", compare=False)

    #: Label pairs already seen, each kept once: the metrics of one object carry the same
    #: pairs, and each poll brings them again, so a daemon of 50,000 series keeps one
    #: pair object per distinct pair instead of one per sample (10 to 13 MB less). Cleared
    #: when it grows past :attr:`_MAX_SHARED` (objects come and go over months).
    _shared: ClassVar[dict[tuple[str, str], tuple[str, str]]] = {}
    _MAX_SHARED: ClassVar[int] = 500_000

    def __post_init__(self) -> None:
        shared = Sample._shared
        if len(shared) > Sample._MAX_SHARED:
            shared.clear()
        object.__setattr__(self, "labels", tuple([shared.setdefault(p, p) for p in self.labels]))

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


#: What makes a series one series: its family and its labels as a mapping (sorted pairs).
SeriesKey = tuple[str, Labels]


def label_map(labels: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The labels as a mapping, in sorted name order (order of the pairs does not matter)."""
    return dict(sorted(labels))


def series_key(metric: str, labels: Iterable[tuple[str, str]]) -> SeriesKey:
    """The identity of one series: ``metric`` and its labels sorted by name.

    The store, the exporter and the JSONL sink all decide "same series" with this function,
    so two samples whose labels come in a different order are one series everywhere.

    >>> series_key("x", (("b", "2"), ("a", "1"))) == series_key("x", (("a", "1"), ("b", "2")))
    True
    """
    return metric, tuple(sorted(labels))


def sample_series(sample: Sample) -> SeriesKey:
    """:func:`series_key` of a sample (its labels without ``source``)."""
    return series_key(sample.metric, sample.labels)


@dataclass(frozen=True, slots=True)
class TokenView:
    """What the last ``debug_token`` check said about a source's token (docs/meta-facts.md
    10.4), or why it was not checked.

    ``valid`` is ``None`` until Meta answered a check: then the other fields are unknown
    too and ``note`` says why (no app credentials, the check failed). Times are unix
    seconds; ``expires_at`` 0 means the token never expires, ``None`` that Meta did not say.
    """

    valid: bool | None = None
    type: str | None = None
    expires_at: float | None = None
    data_access_expires_at: float | None = None
    #: Scopes the source's plugin needs that the token lacks, sorted.
    missing_scopes: tuple[str, ...] = ()
    note: str | None = None
