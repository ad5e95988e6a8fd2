"""Fixtures shared by the unit tests that talk HTTP to a mocked Graph API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from graph_mocks import Mocked


@pytest.fixture
def mocked() -> Iterator[Mocked]:
    """aioresponses, with the shim for the installed aiohttp (see graph_mocks)."""
    with Mocked() as m:
        yield m


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per test, as the daemon has one per process."""
    async with aiohttp.ClientSession() as s:
        yield s
