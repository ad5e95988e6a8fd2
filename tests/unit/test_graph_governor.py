"""The rate-limit governor on its own (the Graph client's use of it is in test_graph.py)."""

from __future__ import annotations

import pytest
import structlog
from clock_support import Clock
from structlog.testing import capture_logs

from collectord.errors import ThrottledError
from collectord.graph.governor import APP, RateGovernor
from collectord.graph.usage import UsageReading


@pytest.fixture
def clock() -> Clock[float]:
    return Clock(1000.0)


def make(clock: Clock[float], ceiling: float = 0.8, **kw: float) -> RateGovernor:
    return RateGovernor(ceiling, clock=clock, log=structlog.get_logger("test"), **kw)


def usage(scope: str, ratio: float, object_id: str = "1") -> UsageReading:
    return UsageReading(scope, object_id, "call_count", ratio)


@pytest.mark.parametrize(
    ("ratio", "delay"),
    [(0.5, 0.0), (0.79, 0.0), (0.8, 1.0), (0.9, 30.5), (1.0, 60.0), (1.3, 60.0)],
)
def test_delay_grows_from_the_ceiling_to_the_cap(
    clock: Clock[float], ratio: float, delay: float
) -> None:
    gov = make(clock)
    gov.observe_usage("t1", [usage("pages", ratio)])
    assert gov.check("t1") == pytest.approx(delay)


def test_app_usage_governs_every_budget_and_buc_only_its_own(clock: Clock[float]) -> None:
    gov = make(clock)
    gov.observe_usage("t1", [usage("instagram", 0.95)])
    assert gov.check("t1") > 0
    assert gov.check("t2") == 0.0
    gov.observe_usage("t2", [usage("app", 0.95, "")])
    assert gov.check("t3") > 0


def test_old_readings_are_forgotten(clock: Clock[float]) -> None:
    gov = make(clock, usage_ttl=600.0)
    gov.observe_usage("t1", [usage("pages", 0.99)])
    clock.now += 601
    assert gov.check("t1") == 0.0


def test_newer_reading_replaces_the_older(clock: Clock[float]) -> None:
    gov = make(clock)
    gov.observe_usage("t1", [usage("pages", 0.99)])
    gov.observe_usage("t1", [usage("pages", 0.10)])
    assert gov.check("t1") == 0.0


def test_slowing_down_is_logged_once_per_episode(clock: Clock[float]) -> None:
    gov = make(clock)
    with capture_logs() as logs:
        gov.observe_usage("t1", [usage("pages", 0.9)])
        gov.check("t1")
        gov.check("t1")
        gov.observe_usage("t1", [usage("pages", 0.5)])
        gov.check("t1")
        gov.check("t1")
        gov.observe_usage("t1", [usage("pages", 0.95)])
        gov.check("t1")
    events = [e["event"] for e in logs]
    assert events == [
        "graph api usage at or above the ceiling, slowing down",
        "graph api usage back under the ceiling",
        "graph api usage at or above the ceiling, slowing down",
    ]
    assert logs[0]["scope"] == "pages"
    assert logs[0]["ratio"] == 0.9


def test_throttle_with_known_end_refuses_until_then(clock: Clock[float]) -> None:
    gov = make(clock)
    gov.observe_throttle("t1", ThrottledError("x", code=80002, retry_after=90.0))
    with pytest.raises(ThrottledError) as info:
        gov.check("t1")
    assert info.value.retry_after == pytest.approx(90.0)
    assert info.value.code == 80002
    assert gov.check("t2") == 0.0
    clock.now += 90
    assert gov.check("t1") == 0.0


def test_app_throttle_refuses_every_budget(clock: Clock[float]) -> None:
    gov = make(clock)
    gov.observe_throttle("t1", ThrottledError("x", code=4, budget="app", retry_after=10.0))
    with pytest.raises(ThrottledError):
        gov.check("t2")
    with pytest.raises(ThrottledError):
        gov.check(APP)


def test_an_instagram_login_app_throttle_leaves_the_facebook_app_alone(clock: Clock[float]) -> None:
    gov = make(clock)
    throttle = ThrottledError("x", code=4, budget="app", retry_after=10.0)
    gov.observe_throttle("instagram/t1", throttle)
    with pytest.raises(ThrottledError):
        gov.check("instagram/t2")  # the Instagram side of the app is blocked
    assert gov.check("t3") == 0.0  # the Facebook app is not
    gov.observe_throttle("t3", throttle)
    with pytest.raises(ThrottledError):
        gov.check("t4")
    clock.now += 11
    assert gov.check("instagram/t2") == 0.0


def test_throttle_without_known_end_blocks_for_its_cooldown(clock: Clock[float]) -> None:
    # issue 8 changed this: a throttle without a regain time used to set no block
    gov = make(clock)
    gov.observe_throttle("t1", ThrottledError("x", code=17, retry_after=None))
    with pytest.raises(ThrottledError):
        gov.check("t1")
    clock.now += 300
    assert gov.check("t1") == 0.0


def test_a_shorter_throttle_does_not_shorten_a_longer_one(clock: Clock[float]) -> None:
    gov = make(clock)
    gov.observe_throttle("t1", ThrottledError("x", code=80001, retry_after=300.0))
    gov.observe_throttle("t1", ThrottledError("x", code=80001, retry_after=10.0))
    clock.now += 100
    with pytest.raises(ThrottledError) as info:
        gov.check("t1")
    assert info.value.retry_after == pytest.approx(200.0)


async def test_admit_sleeps_with_the_injected_sleep(clock: Clock[float]) -> None:
    delays: list[float] = []

    async def sleep(delay: float) -> None:
        delays.append(delay)

    gov = RateGovernor(0.5, clock=clock, sleep=sleep)
    await gov.admit("t1")
    gov.observe_usage("t1", [usage("pages", 1.0)])
    await gov.admit("t1")
    assert delays == [60.0]
