"""facebook_post through the real Graph client, against Meta's answers mocked with
aioresponses (docs/meta-facts.md 3): the window listing with cursor paging and field expansion,
breakdowns in batch requests, and a post deleted between the listing and its insights."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from graph_mocks import (
    BASE,
    VERSION,
    Answer,
    Handler,
    MetaDouble,
    Mocked,
    OneSource,
    envelope,
    fb_time,
)

PAGE = "1234567890"
NOW = datetime.now(UTC).replace(microsecond=0)
LISTING = f"{PAGE}/published_posts"
TOML = f'plugin = "facebook_post"\naccess_token = "t"\npage_id = "{PAGE}"\n'
EXPANSION = re.compile(r"insights\.metric\(([^)]*)\)\.period\(lifetime\)")

#: Lifetime values Meta answers (dict-valued metrics by their keys).
VALUES: dict[str, Any] = {
    "post_clicks": 31,
    "post_clicks_by_type": {"link clicks": 20, "photo view": 11},
    "post_activity_by_action_type": {"share": 4, "like": 9},
    "post_media_view": 412,
    "post_total_media_view_unique": 300,
    "post_reactions_by_type_total": {"like": 41, "love": 3},
    "post_video_views": 120,
    "post_video_avg_time_watched": 7500,
    "post_video_view_time": 900000,
}
BREAKDOWN_ROWS = {"is_from_ads": (("0", 387), ("1", 25)), "is_from_followers": (("1", 200),)}


def post_id(n: int) -> str:
    return f"{PAGE}_{9000 + n}"


def entry(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "period": "lifetime",
        "values": [{"value": VALUES.get(name, 0)}],
        "id": f"x/insights/{name}/lifetime",
    }


class Page:
    """A Page's ``published_posts`` in pages of ``per_page`` posts (cursor paging, ``next``
    while more rows follow), with insights by field expansion and per-post ``/insights``;
    posts in ``deleted`` answer 100/33 there."""

    def __init__(self, posts: int, *, per_page: int = 2, deleted: set[str] | None = None) -> None:
        self.posts = [
            {"id": post_id(n), "created_time": fb_time(NOW - timedelta(hours=3 * n + 1))}
            for n in range(posts)
        ]
        self.per_page = per_page
        self.deleted = deleted or set()

    def __call__(self, path: str, params: dict[str, str]) -> Answer:
        if path == LISTING:
            return 200, self.listing(params)
        obj, edge = path.split("/")
        assert edge == "insights", path
        if obj in self.deleted:
            return 400, envelope(
                100,
                f"Unsupported get request. Object with ID '{obj}' does not exist, cannot be "
                "loaded due to missing permissions, or does not support this operation",
                error_subcode=33,
            )
        (name,) = params["metric"].split(",")
        rows = BREAKDOWN_ROWS[params["breakdown"]]
        values = [{"value": v, params["breakdown"]: flag} for flag, v in rows]
        return 200, {"data": [{"name": name, "period": "lifetime", "values": values}]}

    def listing(self, params: dict[str, str]) -> dict[str, Any]:
        start = int(params.get("after", "0"))
        chunk = self.posts[start : start + self.per_page]
        wanted = EXPANSION.search(params["fields"])
        items = []
        for post in chunk:
            item: dict[str, Any] = dict(post)
            if "shares" in params["fields"].split(","):
                item["shares"] = {"count": 12}
            if wanted:
                item["insights"] = {"data": [entry(n) for n in wanted.group(1).split(",")]}
            items.append(item)
        paging: dict[str, Any] = {
            "cursors": {"before": str(start), "after": str(start + self.per_page)}
        }
        if start + self.per_page < len(self.posts):
            paging["next"] = (
                f"{BASE}/{VERSION}/{LISTING}?after={start + self.per_page}&access_token=t"
            )
        return {"data": items, "paging": paging}


def listing_calls(double: MetaDouble) -> list[dict[str, str]]:
    return [p for path, p in double.calls if path == LISTING]


def by_post(source: OneSource, metric: str) -> dict[str, float]:
    return {s.label_dict["post_id"]: s.value for s in source.series(metric)}


async def test_fast_poll_pages_through_the_window_with_insights_expanded(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    page: Handler = Page(5)
    double = MetaDouble(mocked, page)
    source = OneSource(session, tmp_path, TOML, now=NOW)
    assert await source.poll("fast")

    calls = listing_calls(double)
    assert [c.get("after") for c in calls] == [None, "2", "4"], "cursor paging to the end"
    assert double.http == 3, "the insights ride on the listing: no other request"
    first = calls[0]
    assert int(first["limit"]) <= 100
    assert int(first["since"]) == int((NOW - timedelta(days=28)).timestamp())
    fields = first["fields"].split(",")
    assert {"id", "created_time", "shares"} <= set(fields)
    expanded = EXPANSION.search(first["fields"])
    assert expanded is not None
    assert set(expanded.group(1).split(",")) == {
        "post_clicks",
        "post_clicks_by_type",
        "post_activity_by_action_type",
    }, "the fast metrics, lifetime"
    assert all(c["fields"] == first["fields"] for c in calls), "every page asks the same"

    everyone = {post_id(n) for n in range(5)}
    assert by_post(source, "facebook_post_clicks") == dict.fromkeys(everyone, 31.0)
    assert by_post(source, "facebook_post_shares") == dict.fromkeys(everyone, 12.0)
    (link,) = [
        s
        for s in source.series("facebook_post_clicks_by_type")
        if s.label_dict
        == {"page_id": PAGE, "post_id": post_id(4), "period": "lifetime"}
        | {"click_type": "link clicks"}
    ]
    assert link.value == 20.0
    share = {
        s.label_dict["action_type"]: s.value
        for s in source.series("facebook_post_activity_by_action_type")
        if s.label_dict["post_id"] == post_id(0)
    }
    assert share == {"share": 4.0, "like": 9.0}
    assert source.status.disabled == {}


async def test_daily_poll_reads_breakdowns_in_batches_and_seconds(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    double = MetaDouble(mocked, Page(3))
    source = OneSource(session, tmp_path, TOML, now=NOW)
    assert await source.poll("daily")
    breakdown_calls = sorted(
        (path.split("/")[0], p["breakdown"]) for path, p in double.calls if path != LISTING
    )
    assert breakdown_calls == sorted(
        (post_id(n), bd) for n in range(3) for bd in ("is_from_ads", "is_from_followers")
    )
    assert double.http == 2 + 1, "two listing pages, one batch of six elements"
    assert by_post(source, "facebook_post_media_view") == dict.fromkeys(
        (post_id(n) for n in range(3)), 412.0
    )
    ads = {
        s.label_dict["is_from_ads"]: s.value
        for s in source.series("facebook_post_media_view_by_is_from_ads")
        if s.label_dict["post_id"] == post_id(1)
    }
    assert ads == {"0": 387.0, "1": 25.0}
    assert by_post(source, "facebook_post_video_avg_time_watched_seconds")[post_id(0)] == 7.5


async def test_post_deleted_before_its_insights_is_skipped_and_the_others_kept(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    MetaDouble(mocked, Page(4, deleted={post_id(2)}))
    source = OneSource(session, tmp_path, TOML, now=NOW)
    assert await source.poll("daily"), "one deleted post does not fail the poll"
    assert source.status.errors["skipped_object"] == 1
    assert source.status.disabled == {}, "an object error never disables a metric"
    kept = {post_id(n) for n in (0, 1, 3)}
    assert {s.label_dict["post_id"] for s in source.samples()} == kept, "dropped whole"
    by_ads = {
        s.label_dict["post_id"] for s in source.series("facebook_post_media_view_by_is_from_ads")
    }
    assert by_ads == kept
    assert source.reason("daily") is None
