"""``instagram_user``: an Instagram professional account's counts and account insights.

Exposition, for a source ``northwind-ig`` (values invented)::

    instagram_user_followers{source="northwind-ig",ig_user_id="17841400000000001"} 12034.0
    instagram_user_reach{source="northwind-ig",ig_user_id="17841400000000001",period="day"} 3114.0
    instagram_user_reach_by_follow_type{source="northwind-ig",ig_user_id="17841400000000001",period="day",follow_type="FOLLOWER"} 2210.0
    instagram_user_views{source="northwind-ig",ig_user_id="17841400000000001",period="day"} 8120.0
    instagram_user_follower_demographics_by_age_gender{source="northwind-ig",ig_user_id="17841400000000001",period="lifetime",timeframe="this_month",age="25-34",gender="F"} 812.0
    instagram_user_online_followers{source="northwind-ig",ig_user_id="17841400000000001",period="lifetime",hour="18"} 2301.0

The fields are ``fast``; every insight is ``daily``. How Meta wants
each metric asked for (docs/meta-facts.md 5.2, 5.3) is the spec's ``group``:

- ``total_value``: one call for all of them with ``metric_type=total_value`` (Meta fails
  the whole call without it) per completed Meta day (a US Pacific day, explicit
  ``since``/``until``; without them Meta sums the 24 hours before the call, a window that
  moves with the poll and whose last hours are not in yet). The value carries the day's
  ``end_time`` (its closing Pacific midnight), and each daily poll reads the last
  :data:`REVISION_DAYS` days: Meta's values can be 48 hours late, so the day before is read
  again and its revision overwrites the first reading (the JSONL sink gets both; ``/metrics``
  shows the newest day). The breakdowns of those metrics are read the same way.
- ``time_series``: ``reach`` (and the legacy ``follower_count``, ``online_followers``) with
  ``metric_type=time_series`` over the same completed days; the plain family carries Meta's
  ``end_time``. ``reach``'s total_value breakdowns go to the ``_by_`` families only, so a
  family never mixes a total with its breakdown.
- ``demographic``: ``follower_demographics`` and ``engaged_audience_demographics``, one
  call per timeframe (``this_week``, ``this_month``) and breakdown (``age,gender``,
  ``city``, ``country``), with ``timeframe`` as a label.

Every breakdown is its own call with one metric: Meta answers "An unknown error has
occurred" when any metric of a call lacks the breakdown. A breakdown or demographics call
Meta refuses (a permission, too few people, "not supported") is left out and counted as a
skipped object; only the account's own calls (fields, plain values) fail the poll. All calls of a poll go out as one
batch request. An account too small for a metric gets an empty ``data``: no series, no
error. Meta retired ``impressions``, the ``audience_*`` demographics and the time series
of ``profile_views``, ``website_clicks`` and the other contact clicks; they are not in the
catalogue. A name put into ``metrics`` that is not in the catalogue is asked for as
``total_value`` (and disabled if Meta rejects it) with a config warning: when and what
replaced it for a retired name, else the nearest known one; a Prometheus name
(``instagram_user_views``) is a config error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import collectord
from collectord import (
    Day,
    GraphApi,
    InsightValue,
    MetricSpec,
    Option,
    PollContext,
    PollResult,
    Requests,
    Sample,
    SourcePlugin,
    completed_days,
    days_between,
    field_samples,
    insight_samples,
    parse_entries,
    windows,
)

from .instagram_user_catalogue import (
    CATALOGUE,
    DEMOGRAPHIC,
    DICT_LABELS,
    LOGIN,
    NAMES,
    RETIRED,
    SERIES,
    TIMEFRAMES,
    TOTAL,
    insight,
    login_api,
)

__all__ = ["CATALOGUE", "RETIRED", "InstagramUser", "build_requests", "register_source_plugins"]

#: Completed days each daily poll reads: the last one and, again, the one before (Meta's
#: account values can be 48 hours late, docs/meta-facts.md 5.3); well within the 30
#: days Meta allows in one query.
REVISION_DAYS = 2
#: The most days one account insights query may span (docs/meta-facts.md 5.3).
MAX_WINDOW_DAYS = 30


@dataclass(frozen=True, slots=True)
class UserTag:
    """What one account insights call is about: its breakdown, its demographics
    ``timeframe``, and the end of the day it covers (``None``: not one day)."""

    object_id: str
    breakdown: str = ""
    timeframe: str = ""
    end: datetime | None = None


IG_USER_ID = Option(
    "ig_user_id",
    "id",
    help="The Instagram professional account's id (instagram_business_account.id of its "
    "Page, 1784...); the token needs instagram_basic and instagram_manage_insights.",
)


def _mode(spec: MetricSpec) -> str:
    return spec.group[0] if spec.group else TOTAL


def _period(spec: MetricSpec) -> str:
    return spec.periods[0] if spec.periods else "day"


class InstagramUser(SourcePlugin):
    """Reads one account: its fields, then every insights call of a poll in one batch."""

    name = "instagram_user"
    version = collectord.__version__
    description = "Instagram account fields, account insights and audience demographics"
    options = (IG_USER_ID, LOGIN)
    scopes = ("instagram_basic", "instagram_manage_insights", "pages_read_engagement")
    discovers = "instagram"
    catalogue = CATALOGUE

    def api_for(self, options: Mapping[str, Any]) -> GraphApi:
        """graph.instagram.com for ``login = "instagram"``, else the Facebook Graph API."""
        return login_api(options)

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """Any name may be asked for, as a daily total_value insight (Meta's rule for
        nearly every metric; Meta decides: a rejected one is disabled), with a config
        warning: what replaced it for a retired name, else the nearest known one; a
        Prometheus name is a config error."""
        NAMES.check(graph_name)
        return insight(graph_name, f"Instagram account insight {graph_name}.")

    async def collect(self, ctx: PollContext) -> PollResult:
        ig_user_id = str(ctx.options["ig_user_id"])
        labels = {"ig_user_id": ig_user_id}
        samples: list[Sample] = []

        fields = ctx.metrics(kind="field")
        if fields:
            node = await ctx.graph.get(
                ig_user_id, {"fields": ",".join(f.graph_name for f in fields)}
            )
            samples += field_samples(ctx, fields, node, object_id=ig_user_id, labels=labels)

        insights = ctx.metrics(kind="insight")
        requests = build_requests(ctx, ig_user_id, insights)
        samples += await _insight_samples(ctx, ig_user_id, insights, requests)
        return ctx.result(samples)

    async def history(self, ctx: PollContext, since: datetime, until: datetime) -> list[Sample]:
        """The account's daily insights of the completed days in ``[since, until]``, read
        and named as :meth:`collect` does: totals one day a call, time series in windows of
        at most :data:`MAX_WINDOW_DAYS` days. Fields, demographics and lifetime values
        have no history."""
        ig_user_id = str(ctx.options["ig_user_id"])
        daily = [
            m
            for m in ctx.metrics(kind="insight")
            if _mode(m) != DEMOGRAPHIC and _period(m) == "day"
        ]
        days = days_between(since, until)
        if not days:
            return []
        requests = build_requests(ctx, ig_user_id, daily, days=days)
        return await _insight_samples(ctx, ig_user_id, daily, requests)


async def _insight_samples(
    ctx: PollContext, ig_user_id: str, insights: Iterable[MetricSpec], requests: Requests[UserTag]
) -> list[Sample]:
    """The samples of the answers to ``requests``: a refused breakdown or demographics call
    is skipped, a refused plain call fails the poll."""
    labels = {"ig_user_id": ig_user_id}
    specs = {m.graph_name: m for m in insights}
    samples: list[Sample] = []
    for tag, answer in await requests.answered(ctx, ig_user_id):
        values: Iterable[InsightValue] = parse_entries(answer)
        if tag.end is not None:  # a total of one day: that day's end, as Meta dates days
            values = [_ending(v, tag.end) for v in values]
        if tag.timeframe:
            values = [_with_timeframe(v, tag.timeframe) for v in values if v.dims]
        samples += insight_samples(
            ctx,
            specs,
            values,
            breakdown=bool(tag.breakdown),  # Meta may echo the total: the plain family's
            object_id=ig_user_id,
            labels=labels,
            dict_labels=DICT_LABELS,
        )
    return samples


def build_requests(
    ctx: PollContext,
    ig_user_id: str,
    insights: Iterable[MetricSpec],
    *,
    days: Sequence[Day] = (),
) -> Requests[UserTag]:
    """The calls one daily poll makes: per completed day (:data:`REVISION_DAYS`, or
    ``days`` for a history) one per (mode, period) for the plain total_value values and one
    per metric and breakdown; one time series call per period over those days (in windows
    of at most :data:`MAX_WINDOW_DAYS`); one per demographic metric, timeframe and
    breakdown (demographics cover a timeframe, not a day)."""
    days = days or completed_days(ctx.now, REVISION_DAYS)
    spans = [w.params() for w in windows(sorted(days, key=lambda d: d.since), MAX_WINDOW_DAYS)]
    plain: dict[tuple[str, str], list[str]] = {}
    extra: list[tuple[UserTag, MetricSpec, dict[str, str]]] = []
    for spec in insights:
        mode, period = _mode(spec), _period(spec)
        if mode == DEMOGRAPHIC:
            for timeframe in TIMEFRAMES:
                for bd in spec.breakdowns:
                    params = {"period": period, "metric_type": TOTAL, "timeframe": timeframe}
                    extra.append((UserTag(ig_user_id, bd, timeframe), spec, params))
            continue
        plain.setdefault((mode, period), []).append(spec.graph_name)
        for day in days:
            for bd in spec.breakdowns:
                params = {"period": period, "metric_type": TOTAL, **day.params()}
                extra.append((UserTag(ig_user_id, bd, end=day.until), spec, params))
    requests: Requests[UserTag] = Requests()
    for (mode, period), names in plain.items():
        params = {"period": period, "metric_type": mode}
        if mode == SERIES:  # one value per day, each with Meta's end_time
            for span in spans:
                requests.add(UserTag(ig_user_id), ig_user_id, names, {**params, **span})
            continue
        for day in days:
            requests.add(
                UserTag(ig_user_id, end=day.until), ig_user_id, names, {**params, **day.params()}
            )
    for tag, spec, params in extra:
        requests.add_breakdown(tag, ig_user_id, spec.graph_name, tag.breakdown, params)
    return requests


def _ending(value: InsightValue, end: datetime) -> InsightValue:
    """A total of one requested day, dated by that day's end (Meta's answer has none)."""
    return value if value.end_time is not None else dataclasses.replace(value, end_time=end)


def _with_timeframe(value: InsightValue, timeframe: str) -> InsightValue:
    """Put the requested timeframe first among the dimensions, as Meta names it in the
    request (``this_month``; answers say ``THIS_MONTH`` or leave it out)."""
    dims = tuple((k, v) for k, v in value.dims if k != "timeframe")
    return dataclasses.replace(value, dims=(("timeframe", timeframe), *dims))


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [InstagramUser()]
