"""The simulated Pages and posts, and what the request handlers need of the world.

:class:`PageInfo` and :class:`Post` are the world's objects; :class:`WorldView` is the
part of :class:`~collectord.simulator.world.World` that the value models and handlers
(:mod:`~collectord.simulator.series`, :mod:`~collectord.simulator.page_metrics`,
:mod:`~collectord.simulator.post_metrics`, :mod:`~collectord.simulator.app_metrics`,
:mod:`~collectord.simulator.page`, :mod:`~collectord.simulator.posts`) read. Typing them
against it keeps the imports one-way: the world imports them, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PageInfo:
    """A simulated Page."""

    id: str
    name: str
    category: str
    username: str
    token: str
    ig_user_id: str | None


@dataclass(frozen=True)
class Post:
    """A simulated Page post (``id`` is ``{page_id}_{number}``)."""

    id: str
    page_id: str
    number: int
    created_time: datetime
    message: str | None
    status_type: str

    @property
    def is_video(self) -> bool:
        return self.status_type == "added_video"

    @property
    def permalink_url(self) -> str:
        return f"https://www.facebook.com/{self.page_id}/posts/{self.number}"


class WorldView(Protocol):
    """The parts of the simulated world its value models and handlers read."""

    seed: int
    growth_epoch: datetime
    app_id: str
    app_name: str
    empty_page: bool
    pages: dict[str, PageInfo]
    #: The Instagram world (``None`` when it is not available).
    instagram: Any

    @property
    def first_page(self) -> PageInfo: ...

    def now_q(self) -> datetime: ...

    def posts(self, page_id: str) -> list[Post]: ...

    def post(self, post_id: str) -> Post | None: ...
