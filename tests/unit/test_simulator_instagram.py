"""The simulator's Instagram objects answer like Meta's Graph API (docs/meta-facts.md 5, 6, 9, 11).

Every test calls ``InstagramWorld.handle`` directly with a fixed ``now``, the way the core
router does after it has checked the version and the token.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from collectord.simulator.base import SimError, SimRequest, TokenInfo
from collectord.simulator.instagram_world import InstagramWorld

NOW = datetime(2026, 5, 14, 18, 30, tzinfo=UTC)  # on a minute: NOW + 30 s is the same step
BASE = "http://127.0.0.1:8123"
VERSION = "v25.0"
RAW_TOKEN = "EAAsimulatedUserToken"
MAIN = "17841400000000001"
SMALL = "17841400000000002"
PACIFIC_MIDNIGHT_MAY = "T07:00:00+0000"

# docs/meta-facts.md 6.2, written out here so that a wrong catalogue fails the test.
MATRIX = {
    "views": "FRS", "reach": "FRS", "total_interactions": "FRS", "shares": "FRS",
    "reposts": "FRS", "facebook_views": "FRS", "likes": "FR", "comments": "FR", "saved": "FR",
    "total_likes": "FR", "total_comments": "FR", "total_views": "FRS", "follows": "FS",
    "profile_visits": "FS", "profile_activity": "FS", "impressions": "FS",
    "ig_reels_avg_watch_time": "R", "ig_reels_video_view_total_time": "R",
    "reels_skip_rate": "R", "crossposted_views": "R", "replies": "S", "navigation": "S",
    "link_clicks": "S",
}  # fmt: skip
PRODUCT = {"F": "FEED", "R": "REELS", "S": "STORY"}
CROSSPOST_ONLY = {"facebook_views", "crossposted_views"}


def make_world(**kw: Any) -> InstagramWorld:
    args: dict[str, Any] = {
        "seed": 7, "epoch": NOW - timedelta(days=2), "page_id": "1000000000001",
        "n_media": 30, "n_stories": 12, "clock": lambda: NOW,
    }  # fmt: skip
    args.update(kw)
    return InstagramWorld(**args)


@pytest.fixture
def world() -> InstagramWorld:
    return make_world()


def request(
    node: str,
    edge: str | None = None,
    *,
    now: datetime = NOW,
    method: str = "GET",
    rest: tuple[str, ...] = (),
    **params: str,
) -> SimRequest:
    token = TokenInfo(token=RAW_TOKEN, kind="USER", app_id="1234", user_id="1069")
    return SimRequest(
        method=method,
        version=VERSION,
        node_id=node,
        edge=edge,
        rest=rest,
        params=params,
        token=token,
        now=now,
        base_url=BASE,
        raw_token=RAW_TOKEN,
    )


def call(w: InstagramWorld, node: str, edge: str | None = None, **kw: Any) -> dict[str, Any]:
    return w.handle(request(node, edge, **kw))


def fail(w: InstagramWorld, node: str, edge: str | None = None, **kw: Any) -> SimError:
    with pytest.raises(SimError) as info:
        w.handle(request(node, edge, **kw))
    return info.value


def ts(dt: datetime) -> str:
    return str(int(dt.timestamp()))


def follow(url: str, node: str, edge: str) -> dict[str, str]:
    """The query of a paging URL, checked to be a full URL on the base with the token."""
    assert url.startswith(f"{BASE}/{VERSION}/{node}/{edge}?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query.pop("access_token") == RAW_TOKEN
    return query


def pick(w: InstagramWorld, product: str, **want: Any) -> str:
    """The newest media (or live story with 5+ viewers) of ``product`` matching ``want``."""
    if product == "STORY":
        for s in w.stories(MAIN, NOW):
            node = w.resolve(s["id"], NOW)
            if s["reach"] >= 5 and all(getattr(node, k) == v for k, v in want.items()):
                return s["id"]
    for m in w.media(MAIN, NOW):
        node = w.resolve(m["id"], NOW)
        if (
            m["media_product_type"] == product
            and not m["pre_conversion"]
            and all(getattr(node, k) == v for k, v in want.items())
        ):
            return m["id"]
    raise AssertionError(f"no {product} media with {want} in this world")


# -- the account node ---------------------------------------------------------------------


def test_one_account_linked_by_default_and_owned_ids(world: InstagramWorld) -> None:
    assert world.user_ids == (MAIN,)
    media = world.media(MAIN, NOW)
    carousel = next(m for m in media if m["children"])
    assert world.owns(MAIN)
    assert world.owns(media[0]["id"])
    assert world.owns(carousel["children"][0])
    assert world.owns(world.stories(MAIN, NOW)[0]["id"])
    assert not world.owns("1000000000001")
    assert not world.owns("17841499999999999")


def test_user_fields_are_realistic_current_counts(world: InstagramWorld) -> None:
    fields = (
        "id,username,name,biography,website,profile_picture_url,followers_count,"
        "follows_count,media_count"
    )
    body = call(world, MAIN, fields=fields)
    assert set(body) == set(fields.split(","))
    assert body["id"] == MAIN
    assert 11_000 < body["followers_count"] < 13_000
    assert body["followers_count"] == world.user_field(MAIN, "followers_count", NOW)
    assert body["media_count"] == len(world.media(MAIN, NOW)) == 31  # 30 + one since epoch
    assert call(world, MAIN) == {"id": MAIN}


def test_unknown_user_field_fails_the_whole_call(world: InstagramWorld) -> None:
    err = fail(world, MAIN, fields="id,followers_count,fan_count")
    assert err.code == 100
    assert (
        err.message == "(#100) Tried accessing nonexisting field (fan_count) on node type (IGUser)"
    )


def test_unknown_edge_and_method(world: InstagramWorld) -> None:
    assert fail(world, MAIN, "feed").code == 2500
    err = fail(world, MAIN, "media", method="POST")
    assert (err.code, err.subcode) == (100, 33)


# -- account insights -------------------------------------------------------------------------


def test_total_value_metrics_need_metric_type(world: InstagramWorld) -> None:
    err = fail(world, MAIN, "insights", metric="reach,views,likes", period="day")
    assert err.code == 100
    assert err.message == (
        "(#100) The following metrics (views, likes) should be specified "
        "with parameter metric_type=total_value"
    )
    err = fail(world, MAIN, "insights", metric="views", metric_type="time_series")
    assert "metric_type=total_value" in err.message


def test_reach_answers_as_time_series_and_total_value(world: InstagramWorld) -> None:
    series = call(world, MAIN, "insights", metric="reach", period="day")["data"][0]
    assert "total_value" not in series
    assert series["id"] == f"{MAIN}/insights/reach/day"
    # without since/until: the last 24 hours, so exactly one Pacific midnight
    assert [v["end_time"] for v in series["values"]] == [f"2026-05-14{PACIFIC_MIDNIGHT_MAY}"]
    assert series["values"] == world.user_insight(MAIN, "reach", now=NOW, metric_type="time_series")
    total = call(world, MAIN, "insights", metric="reach", metric_type="total_value", period="day")[
        "data"
    ][0]
    assert "values" not in total
    assert total["total_value"] == {
        "value": world.user_insight(MAIN, "reach", now=NOW, metric_type="total_value")
    }
    assert 1000 < total["total_value"]["value"] < 5000


def test_weekly_reach_is_not_the_sum_of_daily_reach(world: InstagramWorld) -> None:
    since, until = ts(NOW - timedelta(days=7)), ts(NOW)
    daily = call(
        world, MAIN, "insights", metric="reach", metric_type="time_series", since=since, until=until
    )["data"][0]["values"]
    assert len(daily) == 7
    assert all(v["end_time"].endswith(PACIFIC_MIDNIGHT_MAY) for v in daily)
    total = call(
        world, MAIN, "insights", metric="reach", metric_type="total_value", since=since, until=until
    )["data"][0]["total_value"]["value"]
    assert total < sum(v["value"] for v in daily)


@pytest.mark.parametrize(
    ("metric", "breakdown", "keys"),
    [
        ("views", "follower_type", {"FOLLOWER", "NON_FOLLOWER"}),
        ("views", "media_product_type", {"POST", "CAROUSEL_CONTAINER", "REEL", "STORY", "AD"}),
        ("reach", "follow_type", {"FOLLOWER", "NON_FOLLOWER", "UNKNOWN"}),
        ("total_interactions", "media_product_type", None),
        ("likes", "media_product_type", None),
        ("comments", "media_product_type", None),
        ("saves", "media_product_type", None),
        ("shares", "media_product_type", None),
        ("profile_links_taps", "contact_button_type", None),
        ("follows_and_unfollows", "follow_type", {"FOLLOWER", "NON_FOLLOWER"}),
    ],
)
def test_total_value_breakdowns_add_up(
    world: InstagramWorld, metric: str, breakdown: str, keys: set[str] | None
) -> None:
    since = ts(NOW - timedelta(days=7))
    body = call(
        world,
        MAIN,
        "insights",
        metric=metric,
        metric_type="total_value",
        period="day",
        breakdown=breakdown,
        since=since,
        until=ts(NOW),
    )
    block = body["data"][0]["total_value"]
    (bd,) = block["breakdowns"]
    assert bd["dimension_keys"] == [breakdown]
    found = {r["dimension_values"][0]: r["value"] for r in bd["results"]}
    assert sum(found.values()) == block["value"] > 0
    if keys is not None:
        assert set(found) == keys
    truth = world.user_insight(
        MAIN,
        metric,
        now=NOW,
        metric_type="total_value",
        breakdown=breakdown,
        since=NOW - timedelta(days=7),
        until=NOW,
    )
    assert found == truth


def test_breakdown_not_supported_by_a_metric_is_an_unknown_error(world: InstagramWorld) -> None:
    for metric, breakdown in [
        ("views,accounts_engaged", "media_product_type"),
        ("reach,likes", "follow_type"),
        ("replies", "media_product_type"),
    ]:
        err = fail(
            world, MAIN, "insights", metric=metric, metric_type="total_value", breakdown=breakdown
        )
        assert (err.code, err.message) == (1, "An unknown error has occurred.")


def test_time_series_ignore_breakdowns(world: InstagramWorld) -> None:
    body = call(
        world, MAIN, "insights", metric="reach", metric_type="time_series", breakdown="follow_type"
    )
    assert "values" in body["data"][0]


def test_legacy_follower_metrics_are_time_series_only(world: InstagramWorld) -> None:
    err = fail(world, MAIN, "insights", metric="follower_count", metric_type="total_value")
    assert err.code == 100
    body = call(
        world,
        MAIN,
        "insights",
        metric="follower_count,online_followers",
        since=ts(NOW - timedelta(days=3)),
        until=ts(NOW),
    )
    follower_count, online = body["data"]
    assert follower_count["period"] == "day"
    assert len(follower_count["values"]) == 3
    assert all(0 < v["value"] < 100 for v in follower_count["values"])
    assert online["period"] == "lifetime"
    hours = online["values"][0]["value"]
    assert list(hours) == [str(h) for h in range(24)]
    assert all(0 < n < 12_500 for n in hours.values())


@pytest.mark.parametrize(
    ("metrics", "index"),
    [
        ("email_contacts", 0),
        ("reach,website_clicks", 1),
        ("audience_gender_age", 0),
        ("audience_city", 0),
        ("views,likes,get_directions_clicks", 2),
        ("page_fans", 0),
    ],
)
def test_retired_and_unknown_metrics_fail_the_call(
    world: InstagramWorld, metrics: str, index: int
) -> None:
    err = fail(world, MAIN, "insights", metric=metrics, metric_type="total_value")
    assert err.code == 100
    assert err.message.startswith(
        f"(#100) metric[{index}] must be one of the following values: reach, follower_count,"
    )


def test_retired_impressions_has_its_own_text(world: InstagramWorld) -> None:
    err = fail(world, MAIN, "insights", metric="reach,impressions", metric_type="total_value")
    assert err.code == 100
    assert err.message.startswith(
        "(#100) Starting from version 22 and above, the impressions "
        "metric is no longer supported for the queried user."
    )


def test_profile_views_is_total_value_only(world: InstagramWorld) -> None:
    assert (
        "metric_type=total_value"
        in fail(world, MAIN, "insights", metric="profile_views", period="day").message
    )
    body = call(world, MAIN, "insights", metric="profile_views", metric_type="total_value")
    assert body["data"][0]["total_value"]["value"] > 0


def test_windows_over_30_days_are_rejected(world: InstagramWorld) -> None:
    err = fail(
        world,
        MAIN,
        "insights",
        metric="reach",
        metric_type="total_value",
        since=ts(NOW - timedelta(days=31)),
        until=ts(NOW),
    )
    assert err.code == 100
    assert "There cannot be more than 30 days" in err.message
    body = call(
        world,
        MAIN,
        "insights",
        metric="reach",
        metric_type="time_series",
        since=ts(NOW - timedelta(days=30)),
        until=ts(NOW),
    )
    assert len(body["data"][0]["values"]) == 30


def test_insights_paging_walks_windows_with_the_token(world: InstagramWorld) -> None:
    since, until = NOW - timedelta(days=2), NOW
    body = call(
        world,
        MAIN,
        "insights",
        metric="reach",
        metric_type="time_series",
        since=ts(since),
        until=ts(until),
    )
    prev = follow(body["paging"]["previous"], MAIN, "insights")
    nxt = follow(body["paging"]["next"], MAIN, "insights")
    assert (prev["since"], prev["until"]) == (ts(since - timedelta(days=2)), ts(since))
    assert (nxt["since"], nxt["until"]) == (ts(until), ts(until + timedelta(days=2)))
    assert prev["metric"] == "reach"


def test_demographics_shape(world: InstagramWorld) -> None:
    body = call(
        world,
        MAIN,
        "insights",
        metric="follower_demographics",
        period="lifetime",
        metric_type="total_value",
        timeframe="this_month",
        breakdown="age,gender",
    )
    (entry,) = body["data"]
    assert entry["period"] == "lifetime"
    assert "values" not in entry
    assert "value" not in entry["total_value"]
    (bd,) = entry["total_value"]["breakdowns"]
    assert bd["dimension_keys"] == ["timeframe", "age", "gender"]
    assert 0 < len(bd["results"]) <= 45
    assert all(
        r["dimension_values"][0] == "THIS_MONTH" and len(r["dimension_values"]) == 3
        for r in bd["results"]
    )
    total = sum(r["value"] for r in bd["results"])
    assert total <= world.user_field(MAIN, "followers_count", NOW)
    assert total > 10_000
    truth = world.user_insight(
        MAIN,
        "follower_demographics",
        now=NOW,
        period="lifetime",
        breakdown="age,gender",
        timeframe="this_month",
    )
    assert {tuple(r["dimension_values"][1:]): r["value"] for r in bd["results"]} == truth
    cities = call(
        world,
        MAIN,
        "insights",
        metric="engaged_audience_demographics",
        metric_type="total_value",
        timeframe="this_week",
        breakdown="city",
    )
    assert len(cities["data"][0]["total_value"]["breakdowns"][0]["results"]) == 45


def test_demographics_need_a_current_timeframe_and_a_breakdown(world: InstagramWorld) -> None:
    base = {"metric": "follower_demographics", "metric_type": "total_value"}
    assert fail(world, MAIN, "insights", breakdown="age", **base).code == 100
    assert fail(world, MAIN, "insights", timeframe="this_week", **base).code == 100
    retired = fail(world, MAIN, "insights", breakdown="age", timeframe="last_90_days", **base)
    assert retired.code == 100
    assert "last_90_days" in retired.message
    unknown = fail(world, MAIN, "insights", breakdown="age", timeframe="yesterday", **base)
    assert "this_week, this_month" in unknown.message


def test_small_accounts_answer_empty_data_for_follower_metrics() -> None:
    w = make_world(small_account=True)
    assert w.user_ids == (MAIN, SMALL)
    assert w.user_field(SMALL, "followers_count", NOW) < 100
    body = call(w, SMALL, "insights", metric="follower_count,online_followers")
    assert body["data"] == []
    body = call(
        w,
        SMALL,
        "insights",
        metric="follower_demographics",
        metric_type="total_value",
        timeframe="this_month",
        breakdown="age",
    )
    assert body["data"] == []
    body = call(
        w, SMALL, "insights", metric="follows_and_unfollows,reach", metric_type="total_value"
    )
    assert [d["name"] for d in body["data"]] == ["reach"]


# -- media listing -------------------------------------------------------------------------


def test_media_paging_walks_everything_once_newest_first() -> None:
    w = make_world(n_media=60)
    expected = [m["id"] for m in w.media(MAIN, NOW)]
    seen: list[str] = []
    params = {"fields": "id,timestamp", "limit": "7"}
    pages = empty = 0
    while True:
        body = call(w, MAIN, "media", **params)
        pages += 1
        empty += not body["data"]
        seen += [d["id"] for d in body["data"]]
        assert len(body["data"]) <= 7
        if "next" not in body["paging"]:
            break
        params = follow(body["paging"]["next"], MAIN, "media")
    assert seen == expected
    assert empty >= 1  # an empty page that still carried `next`
    assert pages == 9 + empty
    stamps = [m["timestamp"] for m in w.media(MAIN, NOW)]
    assert stamps == sorted(stamps, reverse=True)


def test_media_limit_is_capped_at_100_and_before_goes_back() -> None:
    w = make_world(n_media=130)
    first = call(w, MAIN, "media", limit="500")
    assert len(first["data"]) == 100
    assert "previous" not in first["paging"]
    assert set(first["data"][0]) == {"id"}
    second = call(w, MAIN, "media", limit="10", after=first["paging"]["cursors"]["after"])
    while not second["data"]:  # an empty page: its `next` resumes at the same place
        second = call(w, MAIN, "media", **follow(second["paging"]["next"], MAIN, "media"))
    ids = [m["id"] for m in w.media(MAIN, NOW)]
    assert [d["id"] for d in second["data"]] == ids[100:110]
    prev = call(w, MAIN, "media", **follow(second["paging"]["previous"], MAIN, "media"))
    assert prev["data"] == first["data"][-10:]


def test_media_fields_and_carousel_children(world: InstagramWorld) -> None:
    fields = (
        "id,caption,media_type,media_product_type,timestamp,permalink,like_count,"
        "comments_count,children{id,media_type}"
    )
    body = call(world, MAIN, "media", fields=fields, limit="100")
    by_id = {m["id"]: m for m in world.media(MAIN, NOW)}
    assert len(body["data"]) == len(by_id)
    for item in body["data"]:
        truth = by_id[item["id"]]
        assert item["media_type"] in ("IMAGE", "VIDEO", "CAROUSEL_ALBUM")
        assert item["media_product_type"] in ("FEED", "REELS")
        assert (item["like_count"], item["comments_count"]) == (
            truth["like_count"],
            truth["comments_count"],
        )
        assert item["permalink"].startswith("https://www.instagram.com/")
        if item["media_type"] == "CAROUSEL_ALBUM":
            kids = item["children"]["data"]
            assert [k["id"] for k in kids] == truth["children"]
            assert all(k["media_type"] in ("IMAGE", "VIDEO") for k in kids)
        else:
            assert "children" not in item
    assert {m["media_product_type"] for m in body["data"]} == {"FEED", "REELS"}
    assert any(m["pre_conversion"] for m in by_id.values())


def test_media_since_until(world: InstagramWorld) -> None:
    since, until = NOW - timedelta(days=10), NOW - timedelta(days=3)
    body = call(world, MAIN, "media", fields="id", since=ts(since), until=ts(until))
    want = [m["id"] for m in world.media(MAIN, NOW) if since <= m["created_at"] <= until]
    assert want
    assert [d["id"] for d in body["data"]] == want


def test_media_node_fields(world: InstagramWorld) -> None:
    reel = pick(world, "REELS")
    body = call(world, reel, fields="id,media_product_type,like_count,owner")
    assert body["media_product_type"] == "REELS"
    assert body["owner"] == {"id": MAIN}
    err = fail(world, reel, fields="id,impressions")
    assert err.message == (
        "(#100) Tried accessing nonexisting field (impressions) on node type (ShadowIGMedia)"
    )


def test_media_posted_after_the_epoch_appear_over_time(world: InstagramWorld) -> None:
    later = NOW + timedelta(days=12)
    assert len(world.media(MAIN, later)) > len(world.media(MAIN, NOW))
    newest = world.media(MAIN, later)[0]["id"]
    assert not world.owns(newest)  # not posted yet by the clock's time
    assert fail(world, newest, fields="id").subcode == 33
    assert call(world, newest, fields="id", now=later) == {"id": newest}


# -- media insights ------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", sorted(MATRIX))
@pytest.mark.parametrize("product", ["FEED", "REELS", "STORY"])
def test_metric_by_product_type_matrix(world: InstagramWorld, metric: str, product: str) -> None:
    supported = product in {PRODUCT[c] for c in MATRIX[metric]}
    want: dict[str, Any] = {"crossposted": True} if metric in CROSSPOST_ONLY else {}
    if metric == "impressions" and product == "FEED":
        want["legacy"] = True
    media_id = pick(world, product, **want)
    if not supported:
        err = fail(world, media_id, "insights", metric=f"reach,{metric}")
        assert err.code == 100
        assert err.message == (
            f"(#100) The Media Insights API does not support the {metric} "
            "metric for this media product type."
        )
        return
    if metric == "impressions" and product == "STORY":  # every live story is from 2026
        assert fail(world, media_id, "insights", metric=metric).code == 100
        return
    entry = call(world, media_id, "insights", metric=metric)["data"][0]
    assert entry["period"] == "lifetime"
    assert entry["values"] == [{"value": world.media_insight(media_id, metric, NOW)}]
    assert entry["id"] == f"{media_id}/insights/{metric}/lifetime"


def test_impressions_only_for_media_created_before_july_2024(world: InstagramWorld) -> None:
    old = pick(world, "FEED", legacy=True)
    assert call(world, old, "insights", metric="impressions")["data"][0]["values"][0]["value"] > 0
    err = fail(world, pick(world, "FEED", legacy=False), "insights", metric="views,impressions")
    assert err.code == 100
    assert "impressions" in err.message


def test_crosspost_metrics_fail_when_not_shared_to_facebook(world: InstagramWorld) -> None:
    err = fail(
        world, pick(world, "REELS", crossposted=False), "insights", metric="crossposted_views"
    )
    assert err.code == 100


def test_reels_watch_times_are_milliseconds(world: InstagramWorld) -> None:
    reel = pick(world, "REELS")
    data = call(
        world,
        reel,
        "insights",
        metric="views,ig_reels_avg_watch_time,ig_reels_video_view_total_time",
    )["data"]
    views, avg, total = (d["values"][0]["value"] for d in data)
    assert 1_000 <= avg <= 60_000
    assert total >= views * avg


def test_profile_activity_breakdown(world: InstagramWorld) -> None:
    post = pick(world, "FEED")
    (entry,) = call(world, post, "insights", metric="profile_activity", breakdown="action_type")[
        "data"
    ]
    block = entry["total_value"]
    assert block["value"] == entry["values"][0]["value"] > 0
    (bd,) = block["breakdowns"]
    assert bd["dimension_keys"] == ["action_type"]
    values = {r["dimension_values"][0]: r["value"] for r in bd["results"]}
    assert set(values) == {"bio_link_clicked", "call", "direction", "email", "text", "other"}
    assert sum(values.values()) == block["value"]
    err = fail(world, post, "insights", metric="profile_activity,reach", breakdown="action_type")
    assert (err.code, err.message) == (1, "An unknown error has occurred.")


def test_media_from_before_the_business_conversion(world: InstagramWorld) -> None:
    old = next(m for m in world.media(MAIN, NOW) if m["pre_conversion"])
    assert call(world, old["id"], fields="like_count")["like_count"] == old["like_count"]
    err = fail(world, old["id"], "insights", metric="reach")
    assert (err.code, err.subcode, err.is_transient) == (100, 2108006, False)
    assert err.message == "Invalid parameter"
    assert err.user_title == "Media posted before business account conversion"
    envelope = err.envelope()["error"]
    assert envelope["error_subcode"] == 2108006
    assert envelope["is_transient"] is False


def test_carousel_children_have_no_insights(world: InstagramWorld) -> None:
    album = next(m for m in world.media(MAIN, NOW) if m["children"] and not m["pre_conversion"])
    assert call(world, album["id"], "insights", metric="reach")["data"]
    child = album["children"][0]
    assert fail(world, child, "insights", metric="reach").code == 100
    assert call(world, child, fields="id,media_type")["id"] == child


# -- stories -------------------------------------------------------------------------------------


def test_stories_lists_only_the_last_24_hours(world: InstagramWorld) -> None:
    body = call(world, MAIN, "stories", fields="id,media_type,media_product_type,timestamp")
    truth = world.stories(MAIN, NOW)
    assert [s["id"] for s in body["data"]] == [s["id"] for s in truth]
    assert 10 <= len(truth) <= 14
    for story, t in zip(body["data"], truth, strict=True):
        assert story["media_product_type"] == "STORY"
        assert NOW - timedelta(hours=24) < t["created_at"] <= NOW
    assert "next" not in body["paging"]
    assert set(call(world, MAIN, "stories")["data"][0]) == {"id"}


def test_story_insights(world: InstagramWorld) -> None:
    story = pick(world, "STORY")
    metrics = "views,reach,replies,shares,total_interactions,follows,profile_visits,navigation"
    data = call(world, story, "insights", metric=metrics)["data"]
    assert [d["name"] for d in data] == metrics.split(",")
    got = {d["name"]: d["values"][0]["value"] for d in data}
    assert got == {m: world.story_insight(story, m, NOW) for m in metrics.split(",")}
    (nav,) = call(
        world, story, "insights", metric="navigation", breakdown="story_navigation_action_type"
    )["data"]
    results = nav["total_value"]["breakdowns"][0]["results"]
    assert {r["dimension_values"][0] for r in results} == {
        "tap_forward",
        "tap_back",
        "tap_exit",
        "swipe_forward",
    }
    assert sum(r["value"] for r in results) == nav["total_value"]["value"] == got["navigation"]


def test_story_with_fewer_than_5_viewers(world: InstagramWorld) -> None:
    quiet = [s for s in world.stories(MAIN, NOW) if s["reach"] < 5]
    assert quiet
    err = fail(world, quiet[0]["id"], "insights", metric="reach,views")
    assert (err.code, err.http_status) == (10, 403)
    assert err.message == "(#10) Not enough viewers for the media to show insights"


def test_stories_expire_after_24_hours_and_new_ones_come(world: InstagramWorld) -> None:
    story = pick(world, "STORY")
    later = NOW + timedelta(hours=25)
    live_later = {s["id"] for s in world.stories(MAIN, later)}
    assert story not in live_later
    assert story not in {s["id"] for s in call(world, MAIN, "stories", now=later)["data"]}
    assert world.owns(story)
    err = fail(world, story, "insights", metric="reach", now=later)
    assert (err.code, err.subcode) == (100, 33)
    assert live_later  # the demo keeps having live stories
    assert len(world.stories(MAIN, NOW + timedelta(days=9))) >= 10


def test_add_story_places_a_story_at_a_chosen_time(world: InstagramWorld) -> None:
    expiring = world.add_story(MAIN, NOW - timedelta(hours=24) + timedelta(seconds=5))
    quiet = world.add_story(MAIN, NOW - timedelta(hours=3), quiet=True)
    future = world.add_story(MAIN, NOW + timedelta(minutes=5))
    assert len({expiring, quiet, future}) == 3
    listed = [s["id"] for s in call(world, MAIN, "stories")["data"]]
    assert listed == [s["id"] for s in world.stories(MAIN, NOW)]
    assert expiring == listed[-1], "the oldest live story comes last"
    assert quiet in listed
    assert future not in listed

    data = call(world, expiring, "insights", metric="reach,views")["data"]
    got = {d["name"]: d["values"][0]["value"] for d in data}
    assert got == {m: world.story_insight(expiring, m, NOW) for m in ("reach", "views")}
    assert got["reach"] >= 5
    assert fail(world, quiet, "insights", metric="reach").code == 10
    assert (fail(world, future, "insights", metric="reach").code) == 100

    later = NOW + timedelta(seconds=5)  # 24 hours after it was posted: expired
    assert expiring not in {s["id"] for s in call(world, MAIN, "stories", now=later)["data"]}
    err = fail(world, expiring, "insights", metric="reach", now=later)
    assert (err.code, err.subcode) == (100, 33)
    assert make_world().stories(MAIN, NOW) == [
        s for s in world.stories(MAIN, NOW) if s["id"] not in (expiring, quiet)
    ], "the regular stories are unchanged"


# -- values over time ------------------------------------------------------------------------------


def _snapshot(w: InstagramWorld, now: datetime) -> dict[str, Any]:
    young_reel = next(m["id"] for m in w.media(MAIN, now) if m["media_product_type"] == "REELS")
    return {
        "followers": w.user_field(MAIN, "followers_count", now),
        "reel_reach": w.media_insight(young_reel, "reach", now),
        "views": w.user_insight(MAIN, "views", now=now, metric_type="total_value"),
        "api_views": call(w, MAIN, "insights", metric="views", metric_type="total_value", now=now)[
            "data"
        ][0]["total_value"]["value"],
    }


def test_values_are_constant_within_a_step_and_move_across_steps(world: InstagramWorld) -> None:
    first = _snapshot(world, NOW)
    assert _snapshot(world, NOW + timedelta(seconds=30)) == first
    later = _snapshot(world, NOW + timedelta(hours=1))
    assert later["reel_reach"] > first["reel_reach"]
    assert later["views"] != first["views"]
    assert later["api_views"] == later["views"]


def test_same_seed_same_world() -> None:
    a, b = make_world(), make_world()
    assert call(a, MAIN, "media", fields="id,like_count") == call(
        b, MAIN, "media", fields="id,like_count"
    )
    assert make_world(seed=8).media(MAIN, NOW) != a.media(MAIN, NOW)


def test_empty_pages_can_be_turned_off() -> None:
    w = make_world(n_media=60, empty_pages=False)
    params = {"limit": "7"}
    pages = 0
    while True:
        body = call(w, MAIN, "media", **params)
        pages += 1
        assert body["data"]
        if "next" not in body["paging"]:
            break
        params = follow(body["paging"]["next"], MAIN, "media")
    assert pages == 9


def test_insights_as_a_field_of_listed_media(world: InstagramWorld) -> None:
    since = ts(NOW - timedelta(days=20))
    body = call(world, MAIN, "media", since=since, fields="id,insights.metric(reach,views)")
    assert body["data"]
    for item in body["data"]:
        reach, views = item["insights"]["data"]
        assert reach["values"] == [{"value": world.media_insight(item["id"], "reach", NOW)}]
        assert views["name"] == "views"
    # one media from before the business conversion fails the whole listing, as at Meta
    err = fail(world, MAIN, "media", limit="100", fields="id,insights.metric(reach)")
    assert err.subcode == 2108006


def test_children_edge_of_an_album(world: InstagramWorld) -> None:
    album = next(m for m in world.media(MAIN, NOW) if m["children"])
    body = call(world, album["id"], "children", fields="id,media_type")
    assert [c["id"] for c in body["data"]] == album["children"]
    assert call(world, pick(world, "REELS"), "children") == {"data": []}


# -- issue 8: day windows and Meta's late revisions -------------------------------------

MAY13 = datetime(2026, 5, 13, 7, tzinfo=UTC)  # Pacific midnights (PDT)
MAY14 = datetime(2026, 5, 14, 7, tzinfo=UTC)


def day_total(
    w: InstagramWorld, metric: str, since: datetime, until: datetime, now: datetime
) -> int:
    body = call(
        w,
        MAIN,
        "insights",
        now=now,
        metric=metric,
        metric_type="total_value",
        period="day",
        since=ts(since),
        until=ts(until),
    )
    (entry,) = body["data"]
    assert "end_time" not in str(entry), "Meta dates no total_value: the asker knows the day"
    return int(entry["total_value"]["value"])


def test_a_completed_day_is_revised_upwards_for_48_hours_then_final(world: InstagramWorld) -> None:
    first = day_total(world, "views", MAY13, MAY14, NOW)
    next_day = day_total(world, "views", MAY13, MAY14, NOW + timedelta(days=1))
    final = day_total(world, "views", MAY13, MAY14, NOW + timedelta(days=3))
    later = day_total(world, "views", MAY13, MAY14, NOW + timedelta(days=5))
    assert first < next_day < final == later, "late data arrives, then the day is final"
    assert first > 0.8 * final, "most of it is in at the first reading"


def test_the_running_day_has_only_the_hours_so_far(world: InstagramWorld) -> None:
    so_far = day_total(world, "views", MAY14, MAY14 + timedelta(days=1), NOW)
    whole = day_total(world, "views", MAY13, MAY14, NOW)
    assert 0 < so_far < whole, "11.5 hours of the running day, not a day"


def test_a_time_series_gives_one_value_per_completed_day_in_the_window(
    world: InstagramWorld,
) -> None:
    body = call(
        world,
        MAIN,
        "insights",
        metric="reach",
        metric_type="time_series",
        period="day",
        since=ts(MAY13 - timedelta(days=1)),
        until=ts(MAY14),
    )
    values = body["data"][0]["values"]
    assert [v["end_time"] for v in values] == [
        f"2026-05-13{PACIFIC_MIDNIGHT_MAY}",
        f"2026-05-14{PACIFIC_MIDNIGHT_MAY}",
    ]
    later = world.user_insight(
        MAIN,
        "reach",
        now=NOW + timedelta(days=3),
        metric_type="time_series",
        since=MAY13 - timedelta(days=1),
        until=MAY14,
    )
    assert later[-1]["value"] > values[-1]["value"], "yesterday is revised"
