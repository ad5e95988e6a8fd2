"""Basic auth against bcrypt hashes, checked off the event loop.

bcrypt is slow on purpose (a quarter of a second at cost 12), so a check runs in a worker
thread, at most :data:`PARALLEL_CHECKS` at a time, and a successful one is remembered (as a
SHA-256 digest of user, password and hash, never the password itself) so that a scraper
sending the same credentials every 15 seconds costs one bcrypt check per process lifetime.
Failed checks are never remembered: each wrong guess pays the full bcrypt price.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from collections import OrderedDict
from collections.abc import Mapping
from typing import Final

import bcrypt

#: bcrypt checks running at once; more wait their turn (the loop and the polls stay free).
PARALLEL_CHECKS: Final = 2
#: Successful credentials remembered.
CACHE_SIZE: Final = 64


def parse_basic(header: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an ``Authorization: Basic ...`` header, or None."""
    if not header:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > 4096:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


class BasicAuth:
    """The users of ``[collector.web] basic_auth_users`` (name → bcrypt hash)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {name: hashed.encode("ascii") for name, hashed in users.items()}
        # Unknown users are checked against some hash too, so they take as long to refuse.
        self._any_hash = next(iter(self._users.values()), b"")
        self._good: OrderedDict[bytes, None] = OrderedDict()
        self._slots: asyncio.Semaphore | None = None
        #: bcrypt checks run so far (tests use it to see the cache work).
        self.checks = 0

    def __bool__(self) -> bool:
        return bool(self._users)

    async def allows(self, header: str | None) -> bool:
        """Whether the ``Authorization`` header names a user with the right password."""
        creds = parse_basic(header)
        if creds is None or not self._users:
            return False
        user, password = creds
        hashed = self._users.get(user)
        known = hashed is not None
        hashed = hashed or self._any_hash
        key = hashlib.sha256(b"\0".join((user.encode(), password.encode(), hashed))).digest()
        if known and key in self._good:
            self._good.move_to_end(key)
            return True
        if self._slots is None:
            self._slots = asyncio.Semaphore(PARALLEL_CHECKS)
        async with self._slots:
            self.checks += 1
            ok = await asyncio.to_thread(_checkpw, password.encode(), hashed)
        if ok and known:
            self._good[key] = None
            while len(self._good) > CACHE_SIZE:
                self._good.popitem(last=False)
            return True
        return False


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        return bcrypt.checkpw(password, hashed)
    except ValueError:
        return False
