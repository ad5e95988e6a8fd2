"""A story's final insights from Meta's ``story_insights`` webhook, as ``instagram_media``
samples (docs/meta-facts.md 6.8).

Meta sends them about an hour after a story expires, under the names its insights endpoint
used in 2019: ``reach`` and ``replies`` keep their names, ``taps_forward``, ``taps_back`` and
``exits`` are the ``navigation`` breakdown rows ``tap_forward``, ``tap_back`` and
``tap_exit`` (docs/meta-facts.md 6.3), and any other key that names a story metric of the
source is taken as that metric. ``impressions`` is left out (a retired name, not ``views``),
and so is every -1 (Meta's "fewer than 5"). The samples have the names, labels and period a
poll of the story gives, so a delivery updates the series the poll made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from collectord import MetricSpec, Sample, breakdown_name, make_labels, number

from .instagram_media_catalogue import STORY

FIELD: Final = "story_insights"
NAVIGATION: Final = "navigation"
NAVIGATION_BREAKDOWN: Final = "story_navigation_action_type"
#: Webhook keys that are rows of the ``navigation`` breakdown.
NAVIGATION_ROWS: Final[Mapping[str, str]] = {
    "taps_forward": "tap_forward",
    "taps_back": "tap_back",
    "exits": "tap_exit",
}
#: Keys that are not story metrics: the story's id, and a retired name.
NOT_METRICS: Final = frozenset({"media_id", "impressions"})
#: Story metrics are lifetime values (Meta answers them with this period).
PERIOD: Final = "lifetime"


def story_webhook_samples(
    ig_user_id: str, value: Mapping[str, Any], catalogue: Sequence[MetricSpec]
) -> list[Sample]:
    """The samples of one ``story_insights`` change of account ``ig_user_id``, for the
    story metrics in ``catalogue`` (a source's metric set); empty without a ``media_id``."""
    story_id = value.get("media_id")
    if isinstance(story_id, int) and not isinstance(story_id, bool):
        story_id = str(story_id)
    if not isinstance(story_id, str) or not story_id.isdigit():
        return []
    specs = {s.graph_name: s for s in catalogue if s.kind == "insight" and STORY in s.group}
    labels = {"ig_user_id": ig_user_id, "media_id": story_id}
    out: list[Sample] = []
    for key, raw in value.items():
        amount = number(raw)
        if key in NOT_METRICS or amount is None or amount < 0:
            continue
        row = NAVIGATION_ROWS.get(key)
        spec = specs.get(NAVIGATION if row else key)
        if spec is None or (row and NAVIGATION_BREAKDOWN not in spec.breakdowns):
            continue
        metric, lab = spec.prom_name, labels
        if row:
            metric = breakdown_name(spec.prom_name, NAVIGATION_BREAKDOWN)
            lab = {**labels, NAVIGATION_BREAKDOWN: row}
        out.append(
            Sample(
                metric=metric,
                graph_metric=spec.graph_name,
                value=amount * spec.scale,
                labels=make_labels(lab),
                object_id=story_id,
                cadence=spec.cadence,
                period=PERIOD,
                help=spec.help,
            )
        )
    return out
