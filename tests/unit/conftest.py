"""Fixtures shared by the unit tests: a mocked Graph API and a client session for the
tests that talk HTTP, and a clean logging set-up around every test."""

from __future__ import annotations

import logging
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


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging for the process (a handler on the root logger writing to
    the stderr of the moment, which pytest replaces per test); put back what was there, so
    no later test logs to a stream that capture has closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
