"""The rate-limit governor under 150 % demand (run by hand, prints figures, asserts nothing).

    .venv/bin/python tests/bench/bench_governor.py [--hours H] [--budget B] [--ceiling C]

Starts the built-in simulator on loopback with one Page of 250 posts and a Pages BUC budget
of ``--budget`` calls per rolling hour, and polls the posts (one Graph call each, sent as
batches of 50 through the real :class:`~collectord.graph.client.GraphClient`) every
``INTERVAL`` seconds: 1.5 times the budget. The simulator and the client share a virtual
clock (the client's sleeps move it forward), so hours take seconds. As the scheduler does,
a poll that comes due while the previous one is still running (paced by the governor) is
skipped, and a poll refused because the budget is blocked counts as skipped.

At ``--block-at`` hours the simulator throttles one call with 80001 and a regain time of
``--block-minutes`` minutes, held as Meta holds it. Printed:

- the highest usage Meta reported (the simulator's ``call_count``), and by how many calls
  it passed ``usage_ceiling`` (target: at most one batch, 50 calls);
- calls that reached the budget during the block (target: 0);
- polls completed, skipped, and the longest time any post went without a fresh answer
  (every series still served);
- from the block's end to the first call Meta served and to the end of the first complete
  poll (target: within one interval).

The same run is made again without a block (``_without_block``): at 150 % demand not every
poll can be complete (the budget covers two in three), so when the first complete poll
after the block comes depends on where the block falls in that rhythm. The delay the block
*added* is the first complete poll after the block's end, minus the first one after the
same moment in the run without a block (``delay_added_in_intervals``: at most 1.0 is the
target met; negative when the block happened to fall in a stretch of paced polls).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

import aiohttp

from collectord.config.types import GraphConfig
from collectord.errors import GraphError, ThrottledError
from collectord.graph.client import GraphClient
from collectord.simulator import Simulator, World
from collectord.simulator.usage import Scope

START = datetime(2026, 7, 15, 0, 0, tzinfo=UTC).timestamp()
INTERVAL = 900.0
POSTS = 250


class VirtualTime:
    """The clock shared by the simulator and the client; sleeping moves it forward."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def utc(self) -> datetime:
        return datetime.fromtimestamp(self.now, UTC)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    vt = VirtualTime()
    # demand: POSTS calls every INTERVAL = 1.5 x the hourly budget
    budget = args.budget or int(POSTS * 3600 / INTERVAL / 1.5)
    world = World(clock=vt.utc, n_posts=POSTS, call_budget=budget, usage_window=3600.0)
    sim = Simulator(world)
    await sim.start()
    page = world.first_page
    posts = [p.id for p in world.posts(page.id)][:POSTS]
    calls = [(post, {"fields": "id,created_time"}) for post in posts]
    fresh = dict.fromkeys(posts, vt.now)
    stalest = 0.0
    peak = [0]  # the highest call_count Meta reported on any answer
    polls = {"completed": 0, "skipped_busy": 0, "skipped_blocked": 0, "partial": 0}
    block_at = START + args.block_at * 3600
    block_end: float | None = None
    first_answer_after = first_poll_after = None
    full_polls: list[float] = []  # when each complete poll ended
    answered: list[float] = []  # when the simulator served a call of the budget
    record = sim.router.usage.record

    def recording(scope_: Scope, ts: float) -> None:
        answered.append(ts)
        record(scope_, ts)
        peak[0] = max(peak[0], sim.router.usage.percent(scope_, ts))

    sim.router.usage.record = recording  # type: ignore[method-assign]
    try:
        async with aiohttp.ClientSession() as session:
            config = GraphConfig(base_url=sim.url, usage_ceiling=args.ceiling)
            client = GraphClient(session, config, clock=vt, sleep=vt.sleep, max_retries=0)
            graph = client.bind(page.token)
            due = START
            while vt.now < START + args.hours * 3600:
                if vt.now < due:
                    vt.now = due
                if block_end is None and vt.now >= block_at and args.block_minutes > 0:
                    sim.faults.throttle(80001, minutes=args.block_minutes, hold=True)
                    block_end = vt.now + args.block_minutes * 60
                try:
                    answers = await graph.get_many(calls)
                except ThrottledError:
                    polls["skipped_blocked"] += 1
                    answers = []
                ok = 0
                for post, answer in zip(posts, answers, strict=False):
                    if not isinstance(answer, GraphError):
                        stalest = max(stalest, vt.now - fresh[post])
                        fresh[post] = vt.now
                        ok += 1
                if block_end is not None and first_answer_after is None:
                    first_answer_after = next((t for t in answered if t >= block_end), None)
                if answers and ok == len(posts):
                    polls["completed"] += 1
                    full_polls.append(vt.now)
                    if block_end is not None and vt.now >= block_end:
                        first_poll_after = first_poll_after or vt.now
                elif answers:
                    polls["partial"] += 1
                # the next run on the grid; runs missed while this poll went on are skipped
                nxt = due + INTERVAL
                while nxt < vt.now:
                    nxt += INTERVAL
                    polls["skipped_busy"] += 1
                due = nxt
        stalest = max(stalest, max(vt.now - t for t in fresh.values()))
    finally:
        await sim.stop()
    over_calls = max(0, peak[0] - args.ceiling * 100) * budget / 100
    return {
        "full_polls": full_polls,
        "block_end": block_end,
        "budget_calls_per_hour": budget,
        "demand_calls_per_hour": int(POSTS * 3600 / INTERVAL),
        "demand_ratio": POSTS * 3600 / INTERVAL / budget,
        "ceiling_percent": args.ceiling * 100,
        "peak_usage_percent": peak[0],
        "calls_over_ceiling_at_peak": over_calls,
        "batch_size": 50,
        "calls_during_block": sim.router.calls_during_block,
        "graph_calls": client.stats.calls[graph._binding.budget],
        "polls": polls,
        "longest_without_fresh_answer_s": stalest,
        "posts_served_after_block": None
        if block_end is None
        else f"{sum(t >= block_end for t in fresh.values())} of {len(posts)}",
        "interval_s": INTERVAL,
        "block_minutes": args.block_minutes,
        "first_answer_after_block_s": None
        if first_answer_after is None or block_end is None
        else first_answer_after - block_end,
        "first_full_poll_done_after_block_s": None
        if first_poll_after is None or block_end is None
        else first_poll_after - block_end,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0)
    parser.add_argument(
        "--budget", type=int, default=0, help="calls per hour (default: 2/3 of demand)"
    )
    parser.add_argument("--ceiling", type=float, default=0.75)
    parser.add_argument("--block-at", type=float, default=4.0, help="hours into the run")
    parser.add_argument("--block-minutes", type=int, default=1)
    args = parser.parse_args(argv)
    figures = asyncio.run(run(args))
    calm = asyncio.run(run(argparse.Namespace(**{**vars(args), "block_minutes": 0})))
    block_end = figures.pop("block_end")
    full_polls = figures.pop("full_polls")
    calm.pop("block_end")
    calm_polls = calm.pop("full_polls")
    if block_end is not None:
        after = next((t for t in full_polls if t >= block_end), None)
        calm_after = next((t for t in calm_polls if t >= block_end), None)
        figures["first_full_poll_done_after_block_s_without_block"] = (
            None if calm_after is None else calm_after - block_end
        )
        figures["delay_the_block_added_s"] = (
            None if after is None or calm_after is None else after - calm_after
        )
        figures["longest_without_fresh_answer_s_without_block"] = calm[
            "longest_without_fresh_answer_s"
        ]
        figures["polls_without_block"] = calm["polls"]
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    ratio = figures["calls_over_ceiling_at_peak"] / figures["batch_size"]
    print(f"{'overshoot_in_batches':<{width}}  {ratio:.2f}")
    added = figures.get("delay_the_block_added_s")
    if added is not None:
        print(f"{'delay_added_in_intervals':<{width}}  {added / INTERVAL:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
