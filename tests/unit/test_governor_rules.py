"""Meta's rate-limit rules kept by the real Graph client against the simulator (issue 8).

The simulator runs on loopback on a virtual clock that the client shares: the client's
sleep moves the clock forward instead of waiting, so a 30-minute block takes no time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
import structlog
from structlog.testing import capture_logs

from collectord.config.types import GraphConfig
from collectord.errors import ThrottledError
from collectord.graph.client import GraphClient
from collectord.graph.governor import MAX_BLOCK
from collectord.graph.usage import UsageReading
from collectord.simulator import Simulator, World
from collectord.simulator.world import SYSTEM_USER_TOKEN

START = datetime(2026, 7, 15, 18, 0, tzinfo=UTC).timestamp()


class VirtualTime:
    """One clock for the simulator and the client; sleeping moves it forward."""

    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


@pytest.fixture
def vt() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
async def sim(vt: VirtualTime) -> AsyncIterator[Simulator]:
    sim = Simulator(World(clock=vt.utc))
    await sim.start()
    yield sim
    await sim.stop()


@pytest.fixture
async def client(sim: Simulator, vt: VirtualTime) -> AsyncIterator[GraphClient]:
    async with aiohttp.ClientSession() as session:
        config = GraphConfig(base_url=sim.url, usage_ceiling=0.75)
        yield GraphClient(
            session,
            config,
            clock=vt,
            sleep=vt.sleep,
            max_retries=0,
            log=structlog.get_logger("test"),
        )


def insights(sim: Simulator, n: int) -> list[tuple[str, dict[str, Any]]]:
    page = sim.world.first_page.id
    return [(f"{page}/insights", {"metric": "page_follows", "period": "day"})] * n


async def test_a_throttled_batch_element_blocks_its_budget_for_the_regain_time(
    sim: Simulator, client: GraphClient, vt: VirtualTime
) -> None:
    graph = client.bind(sim.world.first_page.token)
    sim.faults.throttle(80001, minutes=30, hold=True, path="insights")
    answers = await graph.batch(insights(sim, 5))
    assert isinstance(answers[0], ThrottledError)
    assert answers[0].retry_after == 1800.0
    budget = graph._binding.budget
    assert client.stats.throttled_until[budget] == START + 1800
    assert client.stats.calls[budget] == 5, "a batch of 5 is 5 calls"

    requests = sim.stats()["http_requests"]
    for minutes in (1, 10, 29):
        vt.now = START + minutes * 60
        with pytest.raises(ThrottledError):
            await graph.get(sim.world.first_page.id)
        with pytest.raises(ThrottledError):
            await graph.batch(insights(sim, 3))
    assert sim.stats()["http_requests"] == requests, "no request during the block"
    assert sim.router.calls_during_block == 0

    vt.now = START + 1800
    assert (await graph.get(sim.world.first_page.id))["id"] == sim.world.first_page.id
    assert client.stats.throttled_until[budget] == 0.0
    assert sim.router.calls_during_block == 0


async def test_a_regain_time_beyond_an_hour_is_clamped_with_a_warning(
    sim: Simulator, client: GraphClient, vt: VirtualTime
) -> None:
    graph = client.bind(sim.world.first_page.token)
    sim.faults.throttle(80001, minutes=600, path="insights")
    with capture_logs() as logs:
        await graph.batch(insights(sim, 2))
    assert client.stats.throttled_until[graph._binding.budget] == START + MAX_BLOCK
    assert "graph api regain time beyond the maximum block, clamped" in [e["event"] for e in logs]


@pytest.mark.parametrize(
    ("code", "cooldown", "app_wide"),
    [(4, 300, True), (341, 300, True), (17, 300, False), (32, 300, False), (613, 60, False)],
)
async def test_throttles_without_a_regain_time_cool_down_per_code(
    sim: Simulator, client: GraphClient, vt: VirtualTime, code: int, cooldown: int, app_wide: bool
) -> None:
    graph = client.bind(sim.world.first_page.token)
    other = client.bind(SYSTEM_USER_TOKEN)
    page = sim.world.first_page.id
    sim.faults.throttle(code, minutes=5, regain=False, path="insights")
    with pytest.raises(ThrottledError):
        await graph.get(f"{page}/insights", {"metric": "page_follows", "period": "day"})
    requests = sim.stats()["http_requests"]
    vt.now += cooldown - 1
    with pytest.raises(ThrottledError):
        await graph.get(page)
    if app_wide:
        with pytest.raises(ThrottledError):
            await other.get(page)
        assert sim.stats()["http_requests"] == requests
    else:
        assert (await other.get(page))["id"] == page, "another token's budget is not blocked"
        assert sim.stats()["http_requests"] == requests + 1
    vt.now += 1
    assert (await graph.get(page))["id"] == page


async def test_a_code_17_with_retry_after_blocks_for_meta_s_time(
    sim: Simulator, client: GraphClient, vt: VirtualTime
) -> None:
    graph = client.bind(sim.world.first_page.token)
    page = sim.world.first_page.id
    sim.faults.throttle(17, minutes=20, retry_after=True, path=page)
    with pytest.raises(ThrottledError):
        await graph.get(page)
    vt.now += 19 * 60
    with pytest.raises(ThrottledError):
        await graph.get(page)
    vt.now += 60
    assert (await graph.get(page))["id"] == page


async def test_after_a_block_one_probe_goes_alone_and_stale_usage_is_forgotten(
    sim: Simulator, client: GraphClient, vt: VirtualTime
) -> None:
    graph = client.bind(sim.world.first_page.token)
    page = sim.world.first_page.id
    sim.faults.throttle(80001, minutes=1, hold=True, path="insights")
    await graph.batch(insights(sim, 3))  # answered at 100 % usage
    vt.now += 60
    sim.reset_stats()

    # the probe is throttled again: the requests waiting behind it never reach Meta
    sim.faults.throttle(80001, minutes=1, hold=True)
    results = await asyncio.gather(
        graph.get(page), graph.get(page), graph.get(page), return_exceptions=True
    )
    assert all(isinstance(r, ThrottledError) for r in results)
    assert sim.stats()["http_requests"] == 1
    assert sim.router.calls_during_block == 0

    # the next block ends: the probe succeeds, the others follow, and nobody waits on the
    # 100 % reading of the throttled answers
    vt.now += 60
    sim.reset_stats()
    vt.slept.clear()
    results = await asyncio.gather(graph.get(page), graph.get(page), graph.get(page))
    assert [r["id"] for r in results] == [page] * 3
    assert sim.stats()["http_requests"] == 3
    assert sim.requests[0].batch_size is None
    assert vt.slept == [], "fresh usage is low: no pacing after the block"


async def test_above_the_ceiling_a_batch_waits_per_call(
    sim: Simulator, client: GraphClient, vt: VirtualTime
) -> None:
    graph = client.bind(sim.world.first_page.token)
    budget = graph._binding.budget
    client.governor.observe_usage(budget, [UsageReading("pages", "1", "call_count", 0.75)])
    await graph.batch(insights(sim, 10))
    assert vt.slept == [pytest.approx(10.0)], "10 calls at the ceiling: 10 x 1 s"


async def test_the_served_api_version_is_exported_and_a_mismatch_logged_once(
    sim: Simulator, vt: VirtualTime
) -> None:
    async with aiohttp.ClientSession() as session:
        config = GraphConfig(base_url=sim.url, version="v19.0")
        client = GraphClient(session, config, clock=vt, sleep=vt.sleep, max_retries=0)
        graph = client.bind(sim.world.first_page.token)
        with capture_logs() as logs:
            await graph.get(sim.world.first_page.id)
            await graph.get(sim.world.first_page.id)
            await graph.batch(insights(sim, 2))
    assert client.stats.api_versions == {("v19.0", "v20.0"): 1.0}
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["requested"], e["served"]) for e in warnings] == [("v19.0", "v20.0")]


async def test_a_matching_version_is_exported_without_a_warning(
    sim: Simulator, client: GraphClient
) -> None:
    with capture_logs() as logs:
        await client.bind(sim.world.first_page.token).get(sim.world.first_page.id)
    assert client.stats.api_versions == {("v26.0", "v26.0"): 1.0}
    assert not [e for e in logs if e["log_level"] == "warning"]
