"""Near the ceiling a budget's requests go one at a time, so a source's concurrent batches
cannot all land on one old reading; far from it they still go together."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import pytest
from clock_support import Clock

from collectord.config.types import GraphConfig
from collectord.errors import GraphError
from collectord.graph.client import GraphClient
from collectord.graph.governor import RateGovernor
from collectord.graph.usage import UsageReading
from collectord.simulator import Simulator, World


async def no_sleep(seconds: float) -> None:
    await asyncio.sleep(0)


def governor(clock: Clock[float]) -> RateGovernor:
    return RateGovernor(0.8, clock=clock, sleep=no_sleep)


def reading(ratio: float) -> list[UsageReading]:
    return [UsageReading("pages", "1", "call_count", ratio)]


async def second_waits_for_first(gov: RateGovernor) -> bool:
    """Admit one batch, then another: does the second wait until the first is released?"""
    first = await gov.admit("t1", calls=50)
    second = asyncio.create_task(gov.admit("t1", calls=50))
    for _ in range(5):
        await asyncio.sleep(0)
    waited = not second.done()
    gov.release(first)
    gov.release(await asyncio.wait_for(second, 1.0))
    return waited


async def test_far_from_the_ceiling_batches_go_together() -> None:
    clock = Clock(1_000_000.0)
    gov = governor(clock)
    assert not await second_waits_for_first(gov)  # no reading at all
    gov.observe_usage("t1", reading(0.2))
    assert not await second_waits_for_first(gov)


async def test_from_half_the_ceiling_the_next_batch_waits_for_the_answer() -> None:
    clock = Clock(1_000_000.0)
    gov = governor(clock)
    gov.observe_usage("t1", reading(0.5))
    assert await second_waits_for_first(gov)
    # another budget is not held up
    first = await gov.admit("t1", calls=50)
    other = await asyncio.wait_for(gov.admit("t2", calls=50), 1.0)
    gov.release(other)
    gov.release(first)


@pytest.mark.parametrize(("age", "one_at_a_time"), [(900.0, True), (3700.0, False)])
async def test_a_poll_every_15_minutes_still_heeds_its_last_reading(
    age: float, one_at_a_time: bool
) -> None:
    clock = Clock(1_000_000.0)
    gov = governor(clock)
    gov.observe_usage("t1", reading(0.75))
    clock.now += age
    assert gov.check("t1", calls=50) == 0.0, "too old to pace on"
    assert await second_waits_for_first(gov) is one_at_a_time


async def test_a_request_that_fails_to_be_admitted_frees_the_slot() -> None:
    clock = Clock(1_000_000.0)
    gov = governor(clock)
    gov.observe_usage("t1", reading(0.9))
    first = await gov.admit("t1")
    second = asyncio.create_task(gov.admit("t1"))
    await asyncio.sleep(0)
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    gov.release(first)
    gov.release(await asyncio.wait_for(gov.admit("t1"), 1.0))


async def test_a_throttled_batch_element_stops_the_batches_still_waiting() -> None:
    world = World(n_posts=500)
    async with Simulator(world) as sim, aiohttp.ClientSession() as session:
        config = GraphConfig(base_url=sim.url, max_concurrency=2)
        graph = GraphClient(session, config, max_retries=0).bind(world.first_page.token)
        posts = [p.id for p in world.posts(world.first_page.id)][:500]
        sim.faults.throttle(80001, minutes=5, hold=True)
        with contextlib.suppress(GraphError):
            await graph.get_many([(post, {"fields": "id"}) for post in posts])
        # ten batches of 50; two in flight when the first answer says "blocked"
        assert sim.stats()["http_requests"] <= 2
