"""``facebook_page``: a Facebook Page's fields and the Page insights Meta serves today.

Exposition, for a source ``acme-page`` (values invented)::

    facebook_page_followers{source="acme-page",page_id="1234567890"} 10234.0
    facebook_page_views{source="acme-page",page_id="1234567890",period="day"} 412.0
    facebook_page_media_view_by_is_from_ads{source="acme-page",page_id="1234567890",period="day",is_from_ads="1"} 25.0
    facebook_page_actions_post_reactions{source="acme-page",page_id="1234567890",period="day",reaction_type="love"} 3.0

The Page fields are ``fast``; every insight is ``daily``. Insights are asked for the last
:data:`REVISION_DAYS` completed Meta days (US Pacific, explicit ``since``/``until``,
docs/meta-facts.md 2.1, 2.5): each value carries its day's ``end_time``, and the day
before is read again so Meta's late revision overwrites the first reading. A ``day`` query
answers completed days only, so the metrics Meta refreshes several times a day (the
starred ones of the reference) have nothing new to give within the day: polling them every
15 minutes re-read the same two finished days at 96 times the cost of the daily poll.
Breakdown calls Meta refuses (a permission, too few people, "not supported") are left out
and counted as skipped; only the Page's own calls fail the poll. Meta retired the impressions,
``page_fans*`` and most demographic metrics (docs/meta-facts.md 2.4): a retired name in
``metrics`` gets a config warning that says when and what replaced it (a warning, not an
error, so that a config written before Meta retired a metric still starts after an
upgrade); a Prometheus name (``facebook_page_views``) is a config error. Any other name is
asked for as a daily metric, with a config warning. Meta decides, and a name it rejects is
found, disabled and reported once.
"""

from __future__ import annotations

from datetime import datetime

import collectord
from collectord import (
    MetricSpec,
    Option,
    PollContext,
    PollResult,
    Requests,
    Sample,
    SourcePlugin,
    Tag,
    completed_days,
    days_between,
    field_samples,
    insight_samples,
    parse_entries,
    windows,
)

from .facebook_page_catalogue import CATALOGUE, DICT_LABELS, NAMES, RETIRED, insight

__all__ = ["CATALOGUE", "RETIRED", "FacebookPage", "register_source_plugins"]

#: Completed days each poll reads: the last one and, again, the one before (Meta revises
#: a day for a day or two, docs/meta-facts.md 2.5).
REVISION_DAYS = 2
#: The most days one Page insights query may span (docs/meta-facts.md 2.6).
MAX_WINDOW_DAYS = 90

PAGE_ID = Option(
    "page_id",
    "id",
    help="The numeric id of the Facebook Page (its token must be a Page token with "
    "read_insights and pages_read_engagement).",
)


class FacebookPage(SourcePlugin):
    """Reads one Page: its fields, then its insights and their breakdowns in one fetch."""

    name = "facebook_page"
    version = collectord.__version__
    description = "Facebook Page fields and Page insights"
    options = (PAGE_ID,)
    scopes = ("pages_read_engagement", "read_insights")
    discovers = "page"
    catalogue = CATALOGUE

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        """A Prometheus name is a config error; any other name not in the catalogue is
        asked for as a daily metric (Meta adds metrics, and decides: a rejected one is
        disabled), with a config warning: what replaced it for a retired name, else the
        nearest known one."""
        NAMES.check(graph_name)
        return insight(graph_name, "daily", f"Page insight {graph_name}.", periods=())

    async def collect(self, ctx: PollContext) -> PollResult:
        page_id = str(ctx.options["page_id"])
        labels = {"page_id": page_id}
        samples: list[Sample] = []

        fields = ctx.metrics(kind="field")
        if fields:
            node = await ctx.graph.get(page_id, {"fields": ",".join(f.graph_name for f in fields)})
            samples += field_samples(ctx, fields, node, object_id=page_id, labels=labels)

        days = completed_days(ctx.now, REVISION_DAYS)
        window = {"since": days[-1].params()["since"], "until": days[0].params()["until"]}
        samples += await _insights(ctx, page_id, [window])
        return ctx.result(samples)

    async def history(self, ctx: PollContext, since: datetime, until: datetime) -> list[Sample]:
        """The Page insights of the completed days in ``[since, until]``, in windows of at
        most :data:`MAX_WINDOW_DAYS` days, read and named as :meth:`collect` does; the
        Page fields have no history."""
        page_id = str(ctx.options["page_id"])
        spans = windows(days_between(since, until), MAX_WINDOW_DAYS)
        return await _insights(ctx, page_id, [w.params() for w in spans])


async def _insights(ctx: PollContext, page_id: str, spans: list[dict[str, str]]) -> list[Sample]:
    """The Page's insights and their breakdowns over each ``since``/``until`` window."""
    labels = {"page_id": page_id}
    insights = ctx.metrics(kind="insight")
    requests: Requests[Tag] = Requests()
    for window in spans if insights else ():
        requests.add(Tag(page_id), page_id, (m.graph_name for m in insights), window)
        for spec in insights:
            for bd in spec.breakdowns:
                requests.add_breakdown(Tag(page_id, bd), page_id, spec.graph_name, bd, window)
    specs = {m.graph_name: m for m in insights}
    samples: list[Sample] = []
    for tag, answer in await requests.answered(ctx, page_id):
        samples += insight_samples(
            ctx,
            specs,
            parse_entries(answer),
            breakdown=bool(tag.breakdown),  # Meta may also echo the total
            object_id=page_id,
            labels=labels,
            dict_labels=DICT_LABELS,
            spec_periods=True,
        )
    return samples


@collectord.hookimpl
def register_source_plugins() -> list[SourcePlugin]:
    return [FacebookPage()]
