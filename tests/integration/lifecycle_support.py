"""Helpers of the daemon-lifecycle tests (reload, shutdown, faults); the harness itself is
in ``conftest.py``, which a test module cannot import by name next to ``tests/unit``'s."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Re-check ``check`` every 0.05 s until it is true, failing after ``within`` seconds
    (for state inside the daemon process, which sends no event)."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110 - the state lives in another process
            await asyncio.sleep(0.05)


def polls(scrape: Any, source: str) -> float:
    """Polls of ``source`` so far (every cadence), from a ``Scrape``."""
    return sum(
        v
        for _, v in scrape.matching("collectord_source_poll_duration_seconds_count", source=source)
    )


def events(daemon: Any, name: str) -> list[dict[str, Any]]:
    """The daemon's log lines whose event is ``name``."""
    return [e for e in daemon.log_events() if e.get("event") == name]
