"""Age tiers for plugins that follow many posts or media: fewest calls for old objects.

Meta's lifetime insights of a post or a media move fast in its first day or two and
hardly at all afterwards, yet a window of 30 days holds hundreds of objects. With tiers, a
``fast`` poll asks for the insights of the objects younger than the source's ``tier_age``
(default 48 hours) and of the older ones that are due: those last read a daily interval
ago (or never, or whose values are missing). The old objects not due keep the values of
their last read: :meth:`Tiers.carried` hands them back from the previous poll's samples,
so their series stay in ``/metrics`` unchanged (and the JSONL sink, which writes changes
only, writes nothing for them). Each old object is thereby read once per daily interval,
at its own time of day, which spreads the daily reads over the day instead of one burst.

Only the ``fast`` cadence is tiered; any other cadence reads every object.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collectord.model import Option, Sample, series_key
from collectord.plugin.api import PollContext

__all__ = ["DEFAULT_TIER_AGE", "TIER_AGE_OPTION", "TIER_MEMORY", "Tiers", "tiers"]

#: ``tier_age`` when a source sets none: objects younger than this are read on every poll.
DEFAULT_TIER_AGE = timedelta(hours=48)
#: The ``tier_age`` key of a plugin that follows posts or media (declare it in ``options``).
TIER_AGE_OPTION = Option(
    "tier_age",
    "duration",
    "48h",
    help="Objects younger than this are read on every fast poll; older ones once per "
    "daily interval, keeping their last values in between.",
)
#: The key of ``ctx.memory`` holding when each old object was last read (ISO text).
TIER_MEMORY = "tier_read_at"


@dataclass(frozen=True)
class Tiers:
    """Which objects a poll reads (:attr:`read`) and which keep their last values."""

    read: frozenset[str]
    kept: frozenset[str] = frozenset()
    previous: Mapping[str, tuple[Sample, ...]] = field(default_factory=dict)

    def carried(self, fresh: Iterable[Sample]) -> list[Sample]:
        """The last samples of the objects not read now, for the series ``fresh`` does
        not have (values that came with a listing are fresher)."""
        have = {series_key(s.metric, s.labels) for s in fresh if s.object_id in self.kept}
        return [
            s
            for object_id in sorted(self.kept)
            for s in self.previous.get(object_id, ())
            if series_key(s.metric, s.labels) not in have
        ]


def tiers(
    ctx: PollContext, created: Mapping[str, datetime | None], names: Collection[str]
) -> Tiers:
    """Split the objects of this poll (``created``: object id to its creation time, in
    the window) into those to read now and those that keep their last values of the Meta
    metrics ``names``, and note the read ones in ``ctx.memory`` (forgetting objects that
    left the window). An object without any last value of ``names`` (its read failed, or
    the host restarted without its state) is read now."""
    read_at: dict[str, str] = ctx.memory.setdefault(TIER_MEMORY, {})
    for object_id in [o for o in read_at if o not in created]:
        del read_at[object_id]
    if ctx.cadence != "fast" or ctx.requested:
        return Tiers(read=frozenset(created))
    age = timedelta(seconds=float(ctx.options.get("tier_age", DEFAULT_TIER_AGE.total_seconds())))
    # due a little early rather than a whole fast interval late
    every = timedelta(seconds=ctx.interval("daily") - ctx.interval("fast") / 2)
    previous: dict[str, list[Sample]] = {}
    for s in ctx.previous:
        if s.object_id in created and s.graph_metric in names:
            previous.setdefault(s.object_id, []).append(s)
    read: set[str] = set()
    kept: set[str] = set()
    for object_id, born in created.items():
        last = _instant(read_at.get(object_id))
        young = born is None or ctx.now - born < age
        if young or object_id not in previous or last is None or ctx.now - last >= every:
            read.add(object_id)
            read_at[object_id] = ctx.now.isoformat()
        else:
            kept.add(object_id)
    return Tiers(
        read=frozenset(read),
        kept=frozenset(kept),
        previous={o: tuple(previous.get(o, ())) for o in kept},
    )


def _instant(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
