"""``instagram_user``: an Instagram professional account's counts and account insights.

Exposition, for a source ``northwind-ig`` (values invented)::

    instagram_user_followers_count{source="northwind-ig",ig_user_id="17841400000000001"} 12034.0
    instagram_user_reach{source="northwind-ig",ig_user_id="17841400000000001",period="day"} 3114.0
    instagram_user_reach_by_follow_type{source="northwind-ig",ig_user_id="17841400000000001",period="day",follow_type="FOLLOWER"} 2210.0
    instagram_user_views{source="northwind-ig",ig_user_id="17841400000000001",period="day"} 8120.0
    instagram_user_follower_demographics_by_age_gender{source="northwind-ig",ig_user_id="17841400000000001",period="lifetime",timeframe="this_month",age="25-34",gender="F"} 812.0
    instagram_user_online_followers{source="northwind-ig",ig_user_id="17841400000000001",period="lifetime",hour="18"} 2301.0

The fields are ``fast``; every insight is ``daily`` (DESIGN.md "Cadence"). How Meta wants
each metric asked for (graph-api.md 5.2, 5.3) is the spec's ``group``:

- ``total_value``: one call for all of them with ``metric_type=total_value`` (Meta fails
  the whole call without it); the plain family is the total of the last 24 hours.
- ``time_series``: ``reach`` (and the legacy ``follower_count``, ``online_followers``) with
  ``metric_type=time_series`` over the last two days; the plain family carries Meta's
  ``end_time``. ``reach``'s total_value breakdowns go to the ``_by_`` families only, so a
  family never mixes a total with its breakdown.
- ``demographic``: ``follower_demographics`` and ``engaged_audience_demographics``, one
  call per timeframe (``this_week``, ``this_month``) and breakdown (``age,gender``,
  ``city``, ``country``), with ``timeframe`` as a label.

Every breakdown is its own call with one metric: Meta answers "An unknown error has
occurred" when any metric of a call lacks the breakdown. All calls of a poll go out as one
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
from collections.abc import Iterable, Mapping
from datetime import timedelta

import collectord
from collectord import (
    InsightRequest,
    InsightValue,
    MetricNames,
    MetricSpec,
    Option,
    PollContext,
    Retired,
    Sample,
    SourcePlugin,
    breakdown_key,
    fetch_insights,
    parse_entries,
    samples_from_values,
)

PREFIX = "instagram_user"

#: How a metric is requested (its ``MetricSpec.group``).
TOTAL = "total_value"
SERIES = "time_series"
DEMOGRAPHIC = "demographic"

#: Demographic timeframes Meta still serves (``last_*_days`` and ``prev_month`` ended in v20).
TIMEFRAMES: tuple[str, ...] = ("this_week", "this_month")
#: Demographic breakdowns asked for: age by gender (21 rows, below Meta's top-45 cut, so
#: age or gender alone are exact sums), the top cities and the top countries.
DEMOGRAPHIC_BREAKDOWNS: tuple[str, ...] = ("age,gender", "city", "country")
#: Time series look back this far (Meta rejects windows over 30 days; data lags up to 48 h).
SERIES_WINDOW = timedelta(days=2)

#: Dict-valued metrics: the label their keys go under.
DICT_LABELS: Mapping[str, str] = {"online_followers": "hour"}

_MPT = ("media_product_type",)


def _insight(
    graph_name: str,
    help: str,
    *,
    mode: str = TOTAL,
    period: str = "day",
    breakdowns: tuple[str, ...] = (),
    default: bool = True,
) -> MetricSpec:
    return MetricSpec(
        graph_name=graph_name,
        prom_name=collectord.prom_name(PREFIX, graph_name),
        cadence="daily",
        periods=(period,),
        help=help,
        default=default,
        group=(mode,),
        breakdowns=breakdowns,
    )


CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec.field(PREFIX, "followers_count", "Accounts following the account (current total)."),
    MetricSpec.field(PREFIX, "follows_count", "Accounts the account follows (current total)."),
    MetricSpec.field(PREFIX, "media_count", "Media the account has published (current total)."),
    _insight(
        "views",
        "Times the account's content was played or displayed (replaces impressions).",
        breakdowns=_MPT,
    ),
    _insight(
        "reach",
        "Accounts that saw the account's content (estimated; never sum daily values).",
        mode=SERIES,
        breakdowns=("media_product_type", "follow_type"),
    ),
    _insight("accounts_engaged", "Accounts that interacted with the account's content."),
    _insight(
        "total_interactions",
        "Likes, comments, saves, shares and replies on the account's content.",
        breakdowns=_MPT,
    ),
    _insight("likes", "Likes on the account's posts, reels and videos.", breakdowns=_MPT),
    _insight("comments", "Comments on the account's content.", breakdowns=_MPT),
    _insight("saves", "Saves of the account's posts, reels and videos.", breakdowns=_MPT),
    _insight("shares", "Shares of the account's content.", breakdowns=_MPT),
    _insight("replies", "Replies to the account's stories."),
    _insight("reposts", "Reposts of the account's content."),
    _insight(
        "profile_links_taps",
        "Taps on the profile's contact buttons (replaces the retired *_clicks metrics).",
        breakdowns=("contact_button_type",),
    ),
    _insight(
        "follows_and_unfollows",
        "Follows plus unfollows (by follow_type: FOLLOWER follows, NON_FOLLOWER unfollows); "
        "accounts of 100 or more followers only.",
        breakdowns=("follow_type",),
    ),
    _insight(
        "follower_demographics",
        "Followers by age and gender, city and country (top 45; 100 or more followers).",
        mode=DEMOGRAPHIC,
        period="lifetime",
        breakdowns=DEMOGRAPHIC_BREAKDOWNS,
    ),
    _insight(
        "engaged_audience_demographics",
        "Engaged accounts by age and gender, city and country (top 45).",
        mode=DEMOGRAPHIC,
        period="lifetime",
        breakdowns=DEMOGRAPHIC_BREAKDOWNS,
    ),
    _insight(
        "online_followers",
        "Followers online, by hour of the day (Pacific time; 100 or more followers).",
        mode=SERIES,
        period="lifetime",
    ),
    _insight(
        "follower_count",
        "New followers per day (legacy time series; 100 or more followers).",
        mode=SERIES,
        default=False,
    ),
    _insight(
        "profile_views",
        "Profile views (total_value only; not in Meta's 2026 reference).",
        default=False,
    ),
)

# What Meta retired, when, and what to ask for instead (graph-api.md 5.5); fnmatch patterns,
# the first match wins.
CONTACT_CLICKS = (
    "email_contacts",
    "get_directions_clicks",
    "phone_call_clicks",
    "text_message_clicks",
    "website_clicks",
)
RETIRED: tuple[Retired, ...] = (
    Retired("impressions", "in April 2025 (Graph API v22.0)", "use 'views'"),
    Retired(
        "audience_*",
        "in December 2023 (Graph API v18.0)",
        "use 'follower_demographics' or 'engaged_audience_demographics'",
    ),
    *(
        Retired(
            name,
            "as a time series in January 2025 (Graph API v21.0)",
            "use 'profile_links_taps' (its contact_button_type breakdown)",
            outcome="it is asked for as total_value; if Meta rejects that, it is disabled",
        )
        for name in CONTACT_CLICKS
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{PREFIX}_": ""},
    kind="an Instagram account metric",
    asked_as="a daily total_value metric",
    elsewhere=(
        *(
            (pattern, "media metrics are read by the instagram_media plugin")
            for pattern in ("reels_skip_rate", "crossposted_views", "facebook_views", "ig_reels_*")
        ),
        *(
            (pattern, "story metrics are read by the instagram_media plugin")
            for pattern in ("navigation", "link_clicks")
        ),
    ),
)

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
    name = "instagram_user"
    version = collectord.__version__
    description = "Instagram account fields, account insights and audience demographics"
    options = (IG_USER_ID,)
    catalogue = CATALOGUE

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """Any name may be asked for, as a daily total_value insight (Meta's rule for
        nearly every metric; Meta decides: a rejected one is disabled), with a config
        warning: what replaced it for a retired name, else the nearest known one; a
        Prometheus name is a config error."""
        NAMES.check(graph_name)
        return _insight(graph_name, f"Instagram account insight {graph_name}.")

    async def collect(self, ctx: PollContext) -> list[Sample]:
        ig_user_id = str(ctx.options["ig_user_id"])
        labels = {"ig_user_id": ig_user_id}
        samples: list[Sample] = []

        fields = ctx.metrics(kind="field")
        if fields:
            node = await ctx.graph.get(
                ig_user_id, {"fields": ",".join(f.graph_name for f in fields)}
            )
            for spec in fields:
                value = node.get(spec.graph_name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    samples.append(ctx.sample(spec, value, object_id=ig_user_id, labels=labels))

        insights = ctx.metrics(kind="insight")
        if not insights:
            return samples
        requests = build_requests(ctx, ig_user_id, insights)
        answers = await fetch_insights(ctx, requests)
        specs = {m.graph_name: m for m in insights}
        for ident, answer in answers.items():
            if isinstance(answer, collectord.GraphError):
                raise answer  # the account itself: the poll cannot deliver
            samples.extend(_samples(ctx, ident, parse_entries(answer), specs, labels))
        return samples


def build_requests(
    ctx: PollContext, ig_user_id: str, insights: Iterable[MetricSpec]
) -> list[InsightRequest]:
    """The calls one daily poll makes: one per (mode, period) for the plain values, one per
    metric and breakdown, one per demographic metric, timeframe and breakdown.

    Request keys say what the answer holds: ``plain|<mode>|<period>``,
    ``bd|<metric>|<breakdown>`` and ``demo|<metric>|<timeframe>|<breakdown>``.
    """
    until = int(ctx.now.timestamp())
    since = int((ctx.now - SERIES_WINDOW).timestamp())
    plain: dict[tuple[str, str], list[str]] = {}
    extra: list[InsightRequest] = []
    for spec in insights:
        mode, period = _mode(spec), _period(spec)
        if mode == DEMOGRAPHIC:
            for timeframe in TIMEFRAMES:
                for bd in spec.breakdowns:
                    params = {
                        "period": period,
                        "metric_type": "total_value",
                        "timeframe": timeframe,
                        "breakdown": bd,
                    }
                    key = f"demo|{spec.graph_name}|{timeframe}|{bd}"
                    extra.append(_breakdown_request(ig_user_id, spec, bd, params, key))
            continue
        plain.setdefault((mode, period), []).append(spec.graph_name)
        for bd in spec.breakdowns:
            params = {"period": period, "metric_type": "total_value", "breakdown": bd}
            key = f"bd|{spec.graph_name}|{bd}"
            extra.append(_breakdown_request(ig_user_id, spec, bd, params, key))
    requests: list[InsightRequest] = []
    for (mode, period), names in plain.items():
        params = {"period": period, "metric_type": mode}
        if mode == SERIES:
            params.update(since=str(since), until=str(until))
        requests.append(
            InsightRequest(ig_user_id, tuple(names), params, key=f"plain|{mode}|{period}")
        )
    return requests + extra


def _breakdown_request(
    ig_user_id: str, spec: MetricSpec, breakdown: str, params: dict[str, str], key: str
) -> InsightRequest:
    """A request of one metric by one breakdown; Meta refusing the breakdown disables it
    alone (``reach:follow_type``), never the plain metric."""
    return InsightRequest(
        ig_user_id,
        (spec.graph_name,),
        params,
        key=key,
        disable_as=breakdown_key(spec.graph_name, breakdown),
    )


def _samples(
    ctx: PollContext,
    ident: str,
    values: Iterable[InsightValue],
    specs: Mapping[str, MetricSpec],
    labels: Mapping[str, str],
) -> list[Sample]:
    """Samples of one answer: plain values from ``plain|`` answers, breakdown rows from the
    others (Meta may echo the total there; it belongs to the plain family)."""
    kind = ident.split("|", 1)[0]
    timeframe = ident.split("|")[2] if kind == "demo" else None
    by_metric: dict[str, list[InsightValue]] = {}
    for v in values:
        if v.name not in specs:
            continue
        if kind == "plain" and v.dims:
            continue
        if kind != "plain" and not v.dims:
            continue
        if timeframe is not None:
            v = _with_timeframe(v, timeframe)
        by_metric.setdefault(v.name, []).append(v)
    out: list[Sample] = []
    for name, vals in by_metric.items():
        out.extend(
            samples_from_values(
                ctx,
                specs[name],
                vals,
                object_id=str(labels["ig_user_id"]),
                labels=labels,
                dict_label=DICT_LABELS.get(name, "key"),
            )
        )
    return out


def _with_timeframe(value: InsightValue, timeframe: str) -> InsightValue:
    """Put the requested timeframe first among the dimensions, as Meta names it in the
    request (``this_month``; answers say ``THIS_MONTH`` or leave it out)."""
    dims = tuple((k, v) for k, v in value.dims if k != "timeframe")
    return dataclasses.replace(value, dims=(("timeframe", timeframe), *dims))


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [InstagramUser()]
