"""Which token kinds each kind of endpoint accepts (docs/meta-facts.md 10.6, 12 item 7).

Handlers call these before answering; each raises the error Meta gives for the wrong
kind of token.
"""

from __future__ import annotations

from collectord.simulator.base import SimRequest
from collectord.simulator.errors import (
    insights_not_owned,
    no_permission,
    page_token_required,
    permission_error,
)


def require_page_token(req: SimRequest, page_id: str) -> None:
    """Page insights, posts and post insights: a Page token of that Page (or a system
    user). A user token gets "(#190) This method must be called with a Page Access Token";
    another Page's token gets ``(#200)``."""
    token = req.token
    if token.kind == "SYSTEM_USER":
        return
    if token.kind == "PAGE":
        if token.page_id == page_id:
            return
        raise permission_error(
            "(#200) The Page access token belongs to another Page than the one requested"
        )
    raise page_token_required()


def require_page_reader(req: SimRequest, page_id: str) -> None:
    """Page node fields: a user who manages the Page, its Page token, or a system user."""
    token = req.token
    if token.kind == "APP":
        raise no_permission(
            "(#10) This endpoint requires the 'pages_read_engagement' permission or the "
            "'Page Public Content Access' feature."
        )
    if token.kind == "PAGE" and token.page_id != page_id:
        raise permission_error(
            "(#200) The Page access token belongs to another Page than the one requested"
        )


def require_app_token(req: SimRequest, app_id: str) -> None:
    """App insights: the app token (``app_id|app_secret``) of that app."""
    if req.token.kind != "APP" or req.token.app_id != app_id:
        raise insights_not_owned()


def require_instagram_token(req: SimRequest, linked_page_id: str | None) -> None:
    """Instagram endpoints: a user token, a system user, the linked Page's token, or (on
    the Instagram host) an Instagram-Login token."""
    token = req.token
    if token.kind in ("USER", "SYSTEM_USER", "IG_USER"):
        return
    if token.kind == "PAGE" and token.page_id == linked_page_id:
        return
    raise no_permission()
