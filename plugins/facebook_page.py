"""``facebook_page``: a Facebook Page's fields and the Page insights Meta serves today.

Exposition, for a source ``acme-page`` (values invented)::

    facebook_page_followers_count{source="acme-page",page_id="1234567890"} 10234.0
    facebook_page_views{source="acme-page",page_id="1234567890",period="day"} 412.0
    facebook_page_media_view_by_is_from_ads{source="acme-page",page_id="1234567890",period="day",is_from_ads="1"} 25.0
    facebook_page_actions_post_reactions{source="acme-page",page_id="1234567890",period="day",reaction_type="love"} 3.0

Metrics Meta marks as refreshed several times a day (the starred ones of the reference)
and the Page fields are ``fast``; the rest are ``daily``. Meta retired the impressions,
``page_fans*`` and most demographic metrics (graph-api.md 2.4): a retired name in
``metrics`` gets a config warning that says when and what replaced it (a warning, not an
error, so that a config written before Meta retired a metric still starts after an
upgrade); a Prometheus name (``facebook_page_views``) is a config error. Any other name is
asked for as a daily metric, with a config warning. Meta decides, and a name it rejects is
found, disabled and reported once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import collectord
from collectord import (
    InsightRequest,
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

PREFIX = "facebook_page"
DAYS = ("day", "week", "days_28")

UPLOADED_60S = "page_uploaded_views_60s_excludes_shorter_unique_count_by_is_60s_returning_viewer"
AD_BREAK = "page_daily_video_ad_break_{}_by_crosspost_status"

# Dict-valued metrics: the label their keys go under (DESIGN.md "Metric names"); where
# Meta's name says what the keys are (``..._by_crosspost_status``), the label is that.
DICT_LABELS: Mapping[str, str] = {
    "page_actions_post_reactions_total": "reaction_type",
    "page_tab_views_login_top": "tab",
    "page_tab_views_login_top_unique": "tab",
    "page_tab_views_logout_top": "tab",
    UPLOADED_60S: "is_60s_returning_viewer",
    **{AD_BREAK.format(x): "crosspost_status" for x in ("ad_impressions", "cpm", "earnings")},
}


def _insight(
    graph_name: str,
    cadence: collectord.Cadence,
    help: str,
    *,
    periods: tuple[str, ...] = DAYS,
    default: bool = True,
    ms: bool = False,
    unit: str = "count",
    breakdowns: tuple[str, ...] = (),
) -> MetricSpec:
    return MetricSpec(
        graph_name=graph_name,
        prom_name=collectord.prom_name(PREFIX, graph_name, strip="page_", milliseconds=ms),
        cadence=cadence,
        periods=periods,
        unit="seconds" if ms else unit,
        help=help,
        scale=0.001 if ms else 1.0,
        default=default,
        breakdowns=breakdowns,
    )


REACTIONS = ("like", "love", "wow", "haha", "sorry", "anger")

CATALOGUE: tuple[MetricSpec, ...] = (
    MetricSpec.field(PREFIX, "followers_count", "People following the Page (current total)."),
    MetricSpec.field(PREFIX, "fan_count", "People who like the Page (current total)."),
    _insight(
        "page_media_view",
        "daily",
        "Times the Page's content was played or displayed (Views; replaces impressions).",
        breakdowns=("is_from_ads", "is_from_followers"),
    ),
    _insight(
        "page_total_media_view_unique",
        "daily",
        "Unique viewers of the Page's content (replaces impressions_unique / reach).",
    ),
    _insight("page_post_engagements", "fast", "Reactions, comments, shares and clicks on posts."),
    _insight("page_total_actions", "daily", "Clicks on the Page's contact info and CTA button."),
    _insight("page_views_total", "fast", "Times the Page's profile was viewed."),
    _insight(
        "page_follows", "fast", "Lifetime total followers, reported per day.", periods=("day",)
    ),
    _insight("page_daily_follows", "fast", "New followers.", periods=("day",)),
    _insight("page_daily_follows_unique", "fast", "Unique new followers."),
    _insight("page_daily_unfollows_unique", "fast", "Unique unfollows."),
    _insight(
        "page_lifetime_engaged_followers_unique",
        "fast",
        "Followers who engaged with the Page.",
        periods=(),
        default=False,
    ),
    _insight(
        "page_actions_post_reactions_total",
        "daily",
        "Reactions on the Page's posts, by reaction type.",
        periods=("day",),
    ),
    *(
        _insight(
            f"page_actions_post_reactions_{r}_total",
            "fast",
            f"'{r}' reactions on the Page's posts.",
            default=False,
        )
        for r in REACTIONS
    ),
    _insight(
        "page_fan_adds_by_paid_non_paid_unique",
        "daily",
        "New likes, paid and unpaid.",
        periods=("day",),
        default=False,
    ),
    _insight("page_video_views", "daily", "3-second video views."),
    *(
        _insight(f"page_video_views_{k}", "daily", f"3-second video views ({k}).", default=False)
        for k in ("paid", "organic", "autoplayed", "click_to_play")
    ),
    _insight(
        "page_video_views_by_paid_non_paid", "fast", "Video views, paid and unpaid.", default=False
    ),
    _insight(
        "page_video_views_by_uploaded_hosted",
        "fast",
        "Video views by uploaded/hosted.",
        default=False,
    ),
    _insight("page_video_repeat_views", "daily", "Video replays.", default=False),
    _insight("page_video_complete_views_30s", "daily", "30-second video views.", default=False),
    *(
        _insight(
            f"page_video_complete_views_30s_{k}",
            "daily",
            f"30-second video views ({k.replace('_', ' ')}).",
            default=False,
        )
        for k in ("paid", "organic", "autoplayed", "click_to_play", "unique", "repeat_views")
    ),
    _insight(
        "page_video_view_time", "daily", "Total time videos were viewed.", periods=("day",), ms=True
    ),
    # Meta lists no periods for the uploaded-video metrics: whatever it answers is kept.
    _insight(
        "page_uploaded_views_15s_count",
        "fast",
        "15-second views of videos uploaded to the Page.",
        periods=(),
        default=False,
    ),
    _insight(
        "page_uploaded_3s_to_15s_views_rate",
        "fast",
        "Share of 3-second views of uploaded videos that reached 15 seconds.",
        periods=(),
        default=False,
        unit="ratio",
    ),
    _insight(
        UPLOADED_60S,
        "fast",
        "Unique 60-second viewers of uploaded videos, new and returning.",
        periods=(),
        default=False,
    ),
    _insight(
        "page_tab_views_login_top",
        "daily",
        "Tab views by logged-in people, by tab.",
        periods=("day", "week"),
        default=False,
    ),
    _insight(
        "page_tab_views_login_top_unique",
        "daily",
        "Logged-in people viewing the Page's tabs, by tab.",
        periods=("day", "week"),
        default=False,
    ),
    _insight(
        "page_tab_views_logout_top",
        "daily",
        "Tab views by logged-out people, by tab.",
        periods=("day",),
        default=False,
    ),
    # Ad breaks and monetisation are off by default: most Pages are not monetised, and Meta
    # then leaves these metrics out of its answer (no series, only a wasted request). A
    # monetised Page lists them in ``metrics``.
    _insight(
        AD_BREAK.format("ad_impressions"),
        "daily",
        "Ad-break ad impressions, on the Page's own and on crossposted videos.",
        periods=("day",),
        default=False,
    ),
    _insight(
        AD_BREAK.format("cpm"),
        "daily",
        "Ad-break CPM (earnings per 1000 ad impressions), own and crossposted videos.",
        periods=("day",),
        default=False,
        unit="currency",
    ),
    _insight(
        AD_BREAK.format("earnings"),
        "daily",
        "Ad-break earnings, on the Page's own and on crossposted videos.",
        periods=("day",),
        default=False,
        unit="currency",
    ),
    _insight(
        "content_monetization_earnings",
        "daily",
        "Earnings from Content Monetization.",
        default=False,
        unit="currency",
        breakdowns=("earning_source",),
    ),
    _insight(
        "monetization_approximate_earnings",
        "daily",
        "Approximate earnings from every monetisation tool.",
        periods=(*DAYS, "month"),
        default=False,
        unit="currency",
        breakdowns=("monetization_tool",),
    ),
    _insight(
        "creator_monetization_qualified_views",
        "daily",
        "Views that qualify for creator monetisation.",
        periods=("day", "lifetime"),
        default=False,
    ),
)

# What Meta retired, when, and what to ask for instead (graph-api.md 2.4); fnmatch patterns,
# the first match wins (so the specific names come before the families).
MARCH_2024 = "in March 2024"
SEPT_2024 = "in September 2024"
NOV_2025 = "in November 2025"
JUNE_2026 = "in June 2026 (with Graph API v26.0)"
NO_CITY = (
    "Meta named {!r} as its replacement, but had already retired that in March 2024; "
    "no Page demographics remain"
)
RETIRED: tuple[Retired, ...] = (
    Retired("page_impressions", NOV_2025, "use 'page_media_view'"),
    Retired("page_impressions_paid", NOV_2025, "use 'page_media_view' (its is_from_ads breakdown)"),
    Retired("page_impressions_viral", NOV_2025),
    Retired("page_impressions_nonviral", NOV_2025),
    Retired("page_fans", NOV_2025, "use 'page_follows' or the 'followers_count' field"),
    Retired("page_fans_locale", NOV_2025),
    Retired("page_fans_city", NOV_2025, NO_CITY.format("page_follows_city")),
    Retired("page_fans_country", NOV_2025, NO_CITY.format("page_follows_country")),
    Retired("page_fan_adds", NOV_2025, "the nearest live metric is 'page_daily_follows_unique'"),
    Retired(
        "page_fan_adds_unique", NOV_2025, "the nearest live metric is 'page_daily_follows_unique'"
    ),
    Retired(
        "page_fan_removes", NOV_2025, "the nearest live metric is 'page_daily_unfollows_unique'"
    ),
    Retired(
        "page_fan_removes_unique",
        NOV_2025,
        "the nearest live metric is 'page_daily_unfollows_unique'",
    ),
    Retired("page_impressions_unique", JUNE_2026, "use 'page_total_media_view_unique'"),
    Retired(
        "page_impressions_paid_unique",
        JUNE_2026,
        "use 'page_total_media_view_unique' (paid and organic: 'page_media_view' with its "
        "is_from_ads breakdown)",
    ),
    Retired("page_impressions_viral_unique", JUNE_2026),
    Retired("page_impressions_nonviral_unique", JUNE_2026),
    Retired("page_posts_impressions*", JUNE_2026),
    Retired("page_posts_served_impressions_organic_unique", JUNE_2026),
    Retired("page_video_views_unique", JUNE_2026, "use 'page_video_views'"),
    Retired(
        "page_impressions_organic_v2",
        SEPT_2024,
        "use 'page_media_view' (its is_from_ads breakdown)",
    ),
    Retired("page_impressions_organic_unique_v2", SEPT_2024),
    Retired("page_impressions_by_story_type*", SEPT_2024),
    Retired("page_impressions_by_*_unique", SEPT_2024),
    Retired("page_impressions_viral_frequency_distribution", SEPT_2024),
    Retired("page_consumptions_unique", SEPT_2024),
    Retired("page_consumptions_by_consumption_type*", SEPT_2024),
    Retired("page_places_checkin_*", SEPT_2024),
    Retired("page_negative_feedback*", SEPT_2024),
    Retired("page_fans_online", SEPT_2024),
    Retired("page_fans_online_per_day", SEPT_2024),
    Retired("page_engaged_users", MARCH_2024, "use 'page_post_engagements'"),
    Retired("page_consumptions", MARCH_2024),
    Retired("page_content_activity*", MARCH_2024),
    Retired("page_cta_clicks_*", MARCH_2024, "use 'page_total_actions'"),
    Retired("page_call_phone_clicks_*", MARCH_2024, "use 'page_total_actions'"),
    Retired("page_get_directions_clicks_*", MARCH_2024, "use 'page_total_actions'"),
    Retired("page_fans_by_like_source*", MARCH_2024),
    Retired("page_fans_gender_age", MARCH_2024),
    Retired("page_follows_city", MARCH_2024),
    Retired("page_follows_country", MARCH_2024),
    Retired("page_follows_gender_age", MARCH_2024),
    Retired("page_follows_locale", MARCH_2024),
    Retired("page_impressions_by_*", MARCH_2024),
    Retired(
        "page_video_views_10s*",
        "with Graph API v19.0",
        "use 'page_video_views' (3 seconds) or 'page_video_complete_views_30s'",
    ),
    # the rest of the two families Meta retired wholesale
    Retired(
        "page_impressions*",
        "with the other impressions metrics (November 2025 and June 2026)",
        "use 'page_media_view' or 'page_total_media_view_unique'",
    ),
    Retired(
        "page_fans*",
        "with the other page_fans metrics (March 2024 to November 2025)",
        "the follower total is 'page_follows'",
    ),
)

NAMES = MetricNames(
    CATALOGUE,
    RETIRED,
    prefixes={f"{PREFIX}_": "page_"},
    kind="a Page metric",
    asked_as="a daily metric",
    elsewhere=(("post_*", "post metrics are read by the facebook_post plugin"),),
)


PAGE_ID = Option(
    "page_id",
    "id",
    help="The numeric id of the Facebook Page (its token must be a Page token with "
    "read_insights and pages_read_engagement).",
)


class FacebookPage(SourcePlugin):
    name = "facebook_page"
    version = collectord.__version__
    description = "Facebook Page fields and Page insights"
    options = (PAGE_ID,)
    catalogue = CATALOGUE

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """A Prometheus name is a config error; any other name not in the catalogue is
        asked for as a daily metric (Meta adds metrics, and decides: a rejected one is
        disabled), with a config warning: what replaced it for a retired name, else the
        nearest known one."""
        NAMES.check(graph_name)
        return _insight(graph_name, "daily", f"Page insight {graph_name}.", periods=())

    async def collect(self, ctx: PollContext) -> list[Sample]:
        page_id = str(ctx.options["page_id"])
        labels = {"page_id": page_id}
        samples: list[Sample] = []

        fields = ctx.metrics(kind="field")
        if fields:
            node = await ctx.graph.get(page_id, {"fields": ",".join(f.graph_name for f in fields)})
            for spec in fields:
                value = node.get(spec.graph_name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    samples.append(ctx.sample(spec, value, object_id=page_id, labels=labels))

        insights = ctx.metrics(kind="insight")
        if not insights:
            return samples
        requests = [InsightRequest(page_id, tuple(m.graph_name for m in insights))]
        for spec in insights:
            for bd in spec.breakdowns:
                requests.append(
                    InsightRequest(
                        page_id,
                        (spec.graph_name,),
                        {"breakdown": bd},
                        key=f"bd:{bd}",
                        disable_as=breakdown_key(spec.graph_name, bd),
                    )
                )
        answers = await fetch_insights(ctx, requests)
        specs = {m.graph_name: m for m in insights}
        for ident, answer in answers.items():
            if isinstance(answer, collectord.GraphError):
                raise answer  # the Page itself: the poll cannot deliver
            for entry_values in _by_metric(parse_entries(answer)).items():
                name, values = entry_values
                spec = specs.get(name)
                if spec is None:
                    continue
                if spec.periods:
                    values = [v for v in values if v.period in spec.periods]
                if ident.startswith("bd:"):
                    # breakdown rows only; Meta may also echo the total
                    values = [v for v in values if v.dims]
                else:
                    values = [v for v in values if not v.dims]
                samples.extend(
                    samples_from_values(
                        ctx,
                        spec,
                        values,
                        object_id=page_id,
                        labels=labels,
                        dict_label=DICT_LABELS.get(name, "key"),
                    )
                )
        return samples


def _by_metric(values: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for v in values:
        out.setdefault(v.name, []).append(v)
    return out


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [FacebookPage()]
