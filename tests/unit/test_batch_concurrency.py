"""One source's independent batches go out together, within the client's limits."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import pytest

from collectord.config.types import GraphConfig
from collectord.errors import AuthError, GraphError
from collectord.graph.bound import BoundGraph
from collectord.graph.calls import Binding
from collectord.graph.governor import RateGovernor
from collectord.logs import get_logger


class GatedTransport:
    """Holds every batch POST until ``release`` is set; counts the most in flight."""

    max_retries = 0

    def __init__(self, *, fail_on: int | None = None) -> None:
        self.governor = RateGovernor(0.75)
        self.log = get_logger("test")
        self.in_flight = 0
        self.most = 0
        self.sent = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.want = 0
        self.fail_on = fail_on
        self.cancelled = 0

    async def send(self, binding: Binding, method: str, url: str, **kw: Any) -> Any:
        form: Mapping[str, str] = kw["form"]
        batch = json.loads(form["batch"])
        number = self.sent
        self.sent += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.want:
            self.started.set()
        try:
            if number == self.fail_on:
                raise AuthError("token expired")
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1
        return [{"code": 200, "body": json.dumps({"n": e["relative_url"]})} for e in batch]

    async def pause(self, attempt: int) -> None:
        return None

    def observe_usage(self, binding: Binding, headers: Mapping[str, str]) -> None:
        return None


def _graph(transport: GatedTransport) -> BoundGraph:
    binding = Binding(token=None, graph=GraphConfig(), source="s", budget="token:x")
    return BoundGraph(transport, binding)


async def test_a_sources_batches_are_in_flight_together_and_answers_keep_their_order() -> None:
    transport = GatedTransport()
    transport.want = 3
    graph = _graph(transport)
    calls = [(f"obj{i}/insights", {"metric": "reach"}) for i in range(120)]  # 3 batches
    task = asyncio.create_task(graph.batch(calls))
    # all three are waiting on Meta at once (one after another, this would never happen)
    await asyncio.wait_for(transport.started.wait(), 10)
    transport.release.set()
    answers = await task
    assert transport.most == 3
    assert [a["n"] for a in answers if isinstance(a, dict)] == [
        f"obj{i}/insights?metric=reach" for i in range(120)
    ]


async def test_one_failing_batch_fails_the_call_as_itself_and_cancels_the_rest() -> None:
    transport = GatedTransport(fail_on=1)
    graph = _graph(transport)
    calls = [(f"obj{i}/insights", {"metric": "reach"}) for i in range(120)]
    with pytest.raises(GraphError) as caught:
        await asyncio.wait_for(graph.batch(calls), 10)  # one after another: never fails
    assert isinstance(caught.value, AuthError)  # not an ExceptionGroup
    assert transport.cancelled == 2
    assert transport.in_flight == 0
