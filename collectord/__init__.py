"""collectord: a Prometheus exporter for Meta's Facebook and Instagram insights.

This module is the public API for plugin authors: everything a plugin may import from
collectord is re-exported here (see :mod:`collectord.plugin.hookspecs` for the hooks, and
:mod:`collectord.plugin.kit` for the helpers every Graph API plugin needs). Tests of a
plugin use :mod:`collectord.testing` (a fake Graph API and a host that polls like
collectord).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version

from collectord.errors import (
    AuthError,
    AuthKind,
    BadResponseError,
    ConfigError,
    GraphError,
    GraphTimeoutError,
    InvalidRequestError,
    NetworkError,
    ObjectNotFoundError,
    Outcome,
    PermissionDeniedError,
    PollError,
    ReduceDataError,
    ServerError,
    ThrottledError,
    TransientError,
)
from collectord.graph.api import INSTAGRAM_LOGIN, GraphApi
from collectord.graph.insights import (
    InsightRequest,
    InsightValue,
    breakdown_key,
    fetch_insights,
    parse_entries,
    parse_time,
    samples_from_values,
    scoped_key,
)
from collectord.model import (
    CADENCES,
    ERROR_REASONS,
    REQUIRED,
    Cadence,
    MetricSpec,
    Option,
    Sample,
    breakdown_name,
    make_labels,
    number,
    prom_name,
    sanitize,
)
from collectord.plugin.api import Disable, PollContext, PollResult, Skip, SourceGraph, SourcePlugin
from collectord.plugin.hookspecs import hookimpl
from collectord.plugin.kit import (
    METRIC_OUTCOMES,
    PACIFIC,
    SKIP_REASONS,
    Day,
    Requests,
    Tag,
    breakdown_rows,
    completed_days,
    days_between,
    disable_reason,
    field_samples,
    insight_samples,
    is_metric_error,
    skip_failed,
    skip_reason,
    windows,
)
from collectord.plugin.names import MetricNames, Retired
from collectord.plugin.tiers import TIER_AGE_OPTION, Tiers, tiers
from collectord.secret import Secret

try:
    __version__ = _dist_version("collectord")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "CADENCES",
    "ERROR_REASONS",
    "INSTAGRAM_LOGIN",
    "METRIC_OUTCOMES",
    "PACIFIC",
    "REQUIRED",
    "SKIP_REASONS",
    "TIER_AGE_OPTION",
    "AuthError",
    "AuthKind",
    "BadResponseError",
    "Cadence",
    "ConfigError",
    "Day",
    "Disable",
    "GraphApi",
    "GraphError",
    "GraphTimeoutError",
    "InsightRequest",
    "InsightValue",
    "InvalidRequestError",
    "MetricNames",
    "MetricSpec",
    "NetworkError",
    "ObjectNotFoundError",
    "Option",
    "Outcome",
    "PermissionDeniedError",
    "PollContext",
    "PollError",
    "PollResult",
    "ReduceDataError",
    "Requests",
    "Retired",
    "Sample",
    "Secret",
    "ServerError",
    "Skip",
    "SourceGraph",
    "SourcePlugin",
    "Tag",
    "ThrottledError",
    "Tiers",
    "TransientError",
    "__version__",
    "breakdown_key",
    "breakdown_name",
    "breakdown_rows",
    "completed_days",
    "days_between",
    "disable_reason",
    "fetch_insights",
    "field_samples",
    "hookimpl",
    "insight_samples",
    "is_metric_error",
    "make_labels",
    "number",
    "parse_entries",
    "parse_time",
    "prom_name",
    "samples_from_values",
    "sanitize",
    "scoped_key",
    "skip_failed",
    "skip_reason",
    "tiers",
    "windows",
]
