"""Deterministic daily series: the raw material of every simulated insight value.

A day's value is ``base`` grown slowly since the world's growth epoch, times a stable
pseudo-random factor for that day and a weekly rhythm. The last two days are still
"settling": their values rise a little as the world clock moves on (docs/meta-facts.md 2.5),
which keeps a dashboard alive while staying deterministic for a given clock.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from collectord.simulator.base import PACIFIC, growing, unit_hash
from collectord.simulator.timewin import pacific_midnight_days_before

if TYPE_CHECKING:
    from collectord.simulator.world_view import WorldView

GROWTH_PER_DAY = 0.002
SETTLE = timedelta(days=2)


def day_of(end_time: datetime) -> str:
    """The Pacific date (ISO) of the day that ends at ``end_time``."""
    return (end_time.astimezone(PACIFIC) - timedelta(hours=12)).date().isoformat()


def daily(world: WorldView, key: tuple[object, ...], base: float, end_time: datetime) -> float:
    """The value of series ``key`` for the Pacific day ending at ``end_time``."""
    day = day_of(end_time)
    noise = 0.75 + 0.5 * unit_hash(world.seed, *key, day)
    weekday = datetime.fromisoformat(day).weekday()
    rhythm = 1.0 + 0.12 * math.cos(2 * math.pi * (weekday - 5) / 7)
    value = growing(base, end_time, per_day=GROWTH_PER_DAY, epoch=world.growth_epoch)
    value *= noise * rhythm
    age = world.now_q() - end_time
    if age < SETTLE:
        value *= 0.85 + 0.15 * max(age, timedelta(0)) / SETTLE
    return value


def rolling(
    world: WorldView, key: tuple[object, ...], base: float, end_time: datetime, days: int
) -> float:
    """The sum of ``days`` daily values ending at ``end_time`` (DST-correct days)."""
    return sum(
        daily(world, key, base, pacific_midnight_days_before(end_time, i)) for i in range(days)
    )


def share(world: WorldView, *key: object) -> float:
    """A stable fraction in [0.1, 0.4) for splitting a value (paid share, ads share)."""
    return 0.1 + 0.3 * unit_hash(world.seed, "share", *key)


def weights(world: WorldView, key: tuple[object, ...], names: tuple[str, ...]) -> dict[str, float]:
    """Stable weights for ``names`` that sum to 1, the first name the heaviest."""
    raw = {n: (0.5 + unit_hash(world.seed, *key, n)) / (i + 1) for i, n in enumerate(names)}
    total = sum(raw.values())
    return {n: w / total for n, w in raw.items()}
