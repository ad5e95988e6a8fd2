"""What the Instagram request handlers need of the Instagram world, as a protocol.

:mod:`collectord.simulator.instagram` and :mod:`collectord.simulator.instagram_insights`
answer requests on the objects of an
:class:`~collectord.simulator.instagram_world.InstagramWorld`, which in turn hands requests
to them; typing them against this protocol instead of the class keeps the imports one-way
(the world imports its handlers, never the reverse).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from collectord.simulator.instagram_model import IgAccount, IgChild, IgMedia, Value
from collectord.simulator.instagram_user_values import AccountValues


class InstagramView(Protocol):
    """The parts of the Instagram world its handlers read."""

    seed: int
    empty_pages: bool
    values: AccountValues

    def account_at(self, index: int) -> IgAccount: ...

    def step(self, now: datetime) -> datetime: ...

    def media_count(self, ig_user_id: str, now: datetime) -> int: ...

    def feed_media(self, acct: int, k: int) -> IgMedia: ...

    def children(self, parent: IgMedia) -> list[IgChild]: ...

    def live_stories(self, acct: int, now: datetime) -> list[IgMedia]: ...

    def is_live(self, story: IgMedia, now: datetime) -> bool: ...

    def resolve(self, node_id: str, now: datetime) -> IgAccount | IgMedia | IgChild | None: ...

    def user_field(self, ig_user_id: str, name: str, now: datetime) -> int: ...

    def media_values(self, m: IgMedia, now: datetime) -> dict[str, Value]: ...
