"""The facebook_post plugin against a fake Graph API that answers like Meta (docs/meta-facts.md 3, 8,
9, 11): cursor paging with a 100 cap, field expansion that one invalid metric fails whole,
batch elements with their own errors, posts deleted between the listing and their insights."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from collectord_plugins.facebook_post import CATALOGUE, FacebookPost, register_source_plugins
from config_support import metrics_rejected, metrics_said, write_source

from collectord import (
    PermissionDeniedError,
    Sample,
)
from collectord.cli import main
from collectord.graph.answers import meta_error
from collectord.testing import FakeGraph, PluginHost

PAGE = "1234567890"
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)
VALID = {m.graph_name for m in CATALOGUE if m.kind == "insight"}
INVALID_METRIC = "(#100) The value must be a valid insights metric"
_EXPANSION = re.compile(r"insights\.metric\(([^)]*)\)(?:\.period\(([^)]*)\))?")


def post_id(n: int) -> str:
    return f"{PAGE}_{n}"


def metric_value(pid: str, metric: str) -> Any:
    """What the fake Meta holds for one post and metric (derived from the post number)."""
    n = int(pid.split("_")[1])
    if metric == "post_reactions_by_type_total":
        return {"like": n, "love": 3}  # keys with zero are left out
    if metric == "post_clicks_by_type":
        return {"link clicks": 2 * n, "other clicks": 1}
    if metric.startswith("post_activity_by_action_type"):
        return {"share": 4, "like": n}
    if metric == "post_video_avg_time_watched":
        return 7500  # milliseconds
    return 10 * n + len(metric)


class FakeMeta(FakeGraph):
    """Posts of one Page, and the Graph API calls made to read them.

    ``http`` records one entry per HTTP request (a GET, or a POST of up to 50 batch
    elements); ``calls`` lists Graph calls as Meta meters them (each batch element is one).
    """

    def __init__(
        self,
        created: Mapping[int, datetime],
        *,
        vanished: Sequence[int] = (),
        empty_page: bool = False,
        reject_expansion: str | None = None,
        gated_denied: bool = False,
        insights_denied: bool = False,
        ignore_since: bool = False,
    ) -> None:
        super().__init__()
        # newest first, like Meta
        self.posts = sorted(created.items(), key=lambda kv: kv[1], reverse=True)
        self.vanished = {post_id(n) for n in vanished}
        self.empty_page = empty_page
        self.reject_expansion = reject_expansion
        self.gated_denied = gated_denied
        self.insights_denied = insights_denied
        self.ignore_since = ignore_since

    def respond(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        return self._answer(path, params)

    # -- what Meta answers -----------------------------------------------------------------
    def _answer(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        if path == f"{PAGE}/published_posts":
            return self._list(params)
        if path.endswith("/insights"):
            return self._insights(path.split("/")[0], params)
        raise meta_error("(#100) Unsupported get request.", code=100, subcode=33)

    def _list(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = int(params.get("limit", 25))
        if limit > 100:
            raise meta_error("(#100) The limit parameter cannot exceed 100", code=100)
        fields = params.get("fields", "")
        if self.gated_denied and "comments" in fields:
            raise meta_error("(#10) This endpoint requires permission", code=10)
        expansion = _EXPANSION.search(fields)
        if expansion and self.reject_expansion:
            raise meta_error(self.reject_expansion, code=2500)
        metrics = expansion.group(1).split(",") if expansion else []
        if any(m not in VALID for m in metrics):
            raise meta_error(INVALID_METRIC, code=100)  # the whole call fails
        since = datetime.fromtimestamp(int(params.get("since", 0)), UTC)
        rows = [(n, t) for n, t in self.posts if self.ignore_since or t >= since]
        after = params.get("after", "c0")
        if after.startswith("e"):  # privacy filtering: an empty page that still has `next`
            return {"data": [], "paging": {"cursors": {"after": f"c{after[1:]}"}, "next": "n"}}
        start = int(after[1:])
        page = rows[start : start + limit]
        data = [self._post(n, t, fields, metrics) for n, t in page]
        paging: dict[str, Any] = {"cursors": {"before": f"c{start}", "after": f"c{start + limit}"}}
        if start + limit < len(rows):
            paging["next"] = "https://graph.facebook.com/v26.0/next-page"
            if self.empty_page and start == 0:
                paging["cursors"]["after"] = f"e{start + limit}"
        return {"data": data, "paging": paging}

    def _post(self, n: int, created: datetime, fields: str, metrics: list[str]) -> dict[str, Any]:
        pid = post_id(n)
        item: dict[str, Any] = {
            "id": pid,
            "created_time": created.strftime("%Y-%m-%dT%H:%M:%S+0000"),
        }
        if "shares" in fields and n % 2:  # Meta leaves `shares` out for a post never shared
            item["shares"] = {"count": n}
        if "comments" in fields:
            item["comments"] = {"data": [], "summary": {"total_count": 5}}
        if metrics:
            item["insights"] = {"data": [self._entry(pid, m) for m in metrics], "paging": {}}
        return item

    def _entry(self, pid: str, metric: str) -> dict[str, Any]:
        return {
            "name": metric,
            "period": "lifetime",
            "values": [{"value": metric_value(pid, metric)}],
            "id": f"{pid}/insights/{metric}/lifetime",
        }

    def _insights(self, pid: str, params: dict[str, Any]) -> dict[str, Any]:
        if pid in self.vanished or pid not in {post_id(n) for n, _ in self.posts}:
            raise meta_error(
                f"(#100) Unsupported get request. Object with ID '{pid}' does not exist",
                code=100,
                subcode=33,
            )
        if self.insights_denied:
            raise meta_error("(#10) Not enough permission", code=10)
        metrics = params["metric"].split(",")
        if any(m not in VALID for m in metrics):
            raise meta_error(INVALID_METRIC, code=100)
        breakdown = params.get("breakdown")
        if not breakdown:
            return {"data": [self._entry(pid, m) for m in metrics]}
        total = metric_value(pid, metrics[0])
        flagged = [{"value": total - 5, breakdown: "0"}, {"value": 5, breakdown: "1"}]
        return {"data": [{"name": metrics[0], "period": "lifetime", "values": flagged}]}


def days_ago(*days: float) -> dict[int, datetime]:
    """Post number i+1 created ``days[i]`` days before NOW."""
    return {i + 1: NOW - timedelta(days=d) for i, d in enumerate(days)}


def new_status(*, extra: Sequence[str] = (), **options: Any) -> PluginHost:
    """The source ``acme-posts`` as the host keeps it between polls: the default metrics
    and ``extra`` ones, and ``options`` besides the page id."""
    defaults = [m.graph_name for m in CATALOGUE if m.default]
    return PluginHost(
        FacebookPost(),
        {"page_id": PAGE, **options},
        graph=FakeGraph(),
        metrics=[*defaults, *extra] if extra else None,
        source="acme-posts",
        now=NOW,
    )


async def poll(
    graph: FakeMeta,
    cadence: str,
    *,
    status: PluginHost | None = None,
    now: datetime = NOW,
    extra: Sequence[str] = (),
    **options: Any,
) -> list[Sample]:
    """One poll of ``cadence`` against ``graph`` at ``now``; pass the same ``status`` to
    poll the same source again (with the metrics and options it was made with)."""
    assert status is None or not (extra or options), "give them to new_status"
    host = status or new_status(extra=extra, **options)
    host.graph = graph
    result = await host.poll(cadence, now=now)  # type: ignore[arg-type]
    return list(result.samples)


def value(samples: Sequence[Sample], metric: str, **labels: str) -> float:
    found = [
        s.value
        for s in samples
        if s.metric == metric and all(s.label_dict.get(k) == v for k, v in labels.items())
    ]
    assert len(found) == 1, (metric, labels, found)
    return found[0]


def posts_in(samples: Sequence[Sample]) -> set[str]:
    return {s.label_dict["post_id"] for s in samples}


def requested_ids(graph: FakeMeta) -> set[str]:
    """Every post id that appeared in an insights request."""
    ids: set[str] = set()
    for method, path, params in graph.http:
        paths = [p for p, _ in params["batch"]] if method == "POST" else [path]
        ids.update(p.split("/")[0] for p in paths if p.endswith("/insights"))
    return ids


async def test_fast_poll_brings_insights_with_the_listing() -> None:
    graph = FakeMeta(days_ago(1, 2, 3))
    samples = await poll(graph, "fast")

    # one list request carries the posts, their shares and their fast insights
    assert len(graph.http) == 1
    method, path, params = graph.http[0]
    assert (method, path) == ("GET", f"{PAGE}/published_posts")
    assert params["limit"] == "100"
    assert params["since"] == str(int((NOW - timedelta(days=28)).timestamp()))
    assert (
        "insights.metric(post_clicks,post_clicks_by_type,post_activity_by_action_type)"
        in (params["fields"])
    )
    assert {s.cadence for s in samples} == {"fast"}

    p1, p2 = post_id(1), post_id(2)
    assert value(samples, "facebook_post_shares", post_id=p1) == 1.0
    assert value(samples, "facebook_post_shares", post_id=p2) == 0.0  # never shared
    clicks = [s for s in samples if s.metric == "facebook_post_clicks" and s.object_id == p1]
    assert clicks[0].label_dict == {"page_id": PAGE, "post_id": p1, "period": "lifetime"}
    assert clicks[0].value == 10 + len("post_clicks")
    assert value(samples, "facebook_post_clicks_by_type", post_id=p2, click_type="link clicks") == 4
    assert (
        value(samples, "facebook_post_activity_by_action_type", post_id=p1, action_type="share")
        == 4
    )
    assert not [s for s in samples if s.metric.startswith("facebook_post_media_view")]


async def test_daily_poll_labels_breakdowns_and_seconds() -> None:
    graph = FakeMeta(days_ago(1, 2))
    samples = await poll(graph, "daily")
    p1 = post_id(1)

    assert {s.cadence for s in samples} == {"daily"}
    assert not [s for s in samples if s.metric == "facebook_post_shares"]  # fast field
    total = value(samples, "facebook_post_media_view", post_id=p1)
    assert total == 10 + len("post_media_view")
    ads = "facebook_post_media_view_by_is_from_ads"
    assert value(samples, ads, post_id=p1, is_from_ads="1") == 5
    assert value(samples, ads, post_id=p1, is_from_ads="0") == total - 5
    fol = [s for s in samples if s.metric == "facebook_post_media_view_by_is_from_followers"]
    assert {s.label_dict["is_from_followers"] for s in fol} == {"0", "1"}
    assert fol[0].label_dict.keys() == {"page_id", "post_id", "period", "is_from_followers"}
    # a family never mixes the total with its breakdown
    plain = [s for s in samples if s.metric == "facebook_post_media_view"]
    assert all("is_from_ads" not in s.label_dict for s in plain)
    assert value(samples, "facebook_post_reactions_by_type", post_id=p1, reaction_type="love") == 3
    assert value(samples, "facebook_post_video_avg_time_watched_seconds", post_id=p1) == 7.5
    assert value(samples, "facebook_post_total_media_view_unique", post_id=p1) > 0


async def test_window_keeps_the_newest_posts_and_old_ones_leave() -> None:
    created = days_ago(1, 5, 10, 20, 27, 30, 60)
    graph = FakeMeta(created)
    samples = await poll(graph, "daily", max_posts=3)
    assert posts_in(samples) == {post_id(1), post_id(2), post_id(3)}
    assert graph.http[0][2]["limit"] == "3"

    # five days later post 5 is 32 days old: it leaves, and is not requested any more
    status = new_status()
    graph = FakeMeta(created)
    samples = await poll(graph, "daily", status=status, now=NOW + timedelta(days=5))
    assert posts_in(samples) == {post_id(n) for n in (1, 2, 3, 4)}
    assert requested_ids(graph) == posts_in(samples)

    # even when Meta would list older posts, the window is the plugin's
    graph = FakeMeta(created, ignore_since=True)
    samples = await poll(graph, "daily", status=status, now=NOW + timedelta(days=10))
    assert posts_in(samples) == {post_id(n) for n in (1, 2, 3)}
    assert requested_ids(graph) == posts_in(samples)
    assert status.errors["skipped_object"] == 0


async def test_request_count_is_about_n_over_100_plus_breakdown_batches() -> None:
    n = 250
    created = {i: NOW - timedelta(hours=i) for i in range(1, n + 1)}
    graph = FakeMeta(created)
    fast = await poll(graph, "fast", max_posts=300)
    assert len(posts_in(fast)) == n
    assert [m for m, _, _ in graph.http] == ["GET"] * 3  # 100 + 100 + 50 posts, no batch

    graph = FakeMeta(created)
    daily = await poll(graph, "daily", max_posts=300)
    assert len(posts_in(daily)) == n
    methods = [m for m, _, _ in graph.http]
    # 3 list requests; 2 breakdowns x 250 posts = 500 batch elements = 10 HTTP requests
    assert methods.count("GET") == 3
    assert methods.count("POST") == 10
    assert len(graph.calls) == 3 + 2 * n


async def test_an_empty_page_with_next_is_followed() -> None:
    graph = FakeMeta({i: NOW - timedelta(hours=i) for i in range(1, 131)}, empty_page=True)
    samples = await poll(graph, "fast", max_posts=200)
    assert len(posts_in(samples)) == 130
    assert len(graph.http) == 3  # a full page, the empty one, the rest


async def test_invalid_metric_falls_back_to_batches_then_expands_again() -> None:
    n = 120
    created = {i: NOW - timedelta(hours=i) for i in range(1, n + 1)}
    status = new_status(extra=["post_impressions"], max_posts=200)
    graph = FakeMeta(created)
    samples = await poll(graph, "daily", status=status)

    assert status.disabled == {"post_impressions": "invalid_metric"}
    assert len(posts_in(samples)) == n
    for name in ("facebook_post_media_view", "facebook_post_video_views"):
        assert len([s for s in samples if s.metric == name]) == n
    assert not [s for s in samples if s.graph_metric == "post_impressions"]
    assert len(graph.http) < n / 5, "the fallback batches; it is not one request per post"
    assert status.errors["skipped_object"] == 0

    # next poll: the expansion again, without the culprit; only breakdowns go in batches
    graph = FakeMeta(created)
    again = await poll(graph, "daily", status=status)
    lists = [p for m, path, p in graph.http if m == "GET"]
    assert len(lists) == 2
    assert "post_impressions" not in lists[0]["fields"]
    assert "insights.metric(" in lists[0]["fields"]
    batched = [q for m, _, params in graph.http if m == "POST" for _, q in params["batch"]]
    assert len(batched) == 2 * n
    assert {q["breakdown"] for q in batched} == {"is_from_ads", "is_from_followers"}
    assert {s.metric for s in again} == {s.metric for s in samples}


async def test_deleted_post_is_skipped_and_others_kept() -> None:
    status = new_status()
    graph = FakeMeta(days_ago(1, 2, 3), vanished=[2])  # listed, deleted before its insights
    samples = await poll(graph, "daily", status=status)
    assert posts_in(samples) == {post_id(1), post_id(3)}
    assert status.errors["skipped_object"] == 1
    assert status.disabled == {}


async def test_expansion_refused_without_a_culprit_pauses_it_for_a_day() -> None:
    status = new_status()
    created = days_ago(1, 2, 3)
    graph = FakeMeta(created, reject_expansion="(#2500) Error parsing graph query")
    samples = await poll(graph, "fast", status=status)
    assert posts_in(samples) == {post_id(1), post_id(2), post_id(3)}
    assert status.disabled == {}

    graph = FakeMeta(created, reject_expansion="(#2500) Error parsing graph query")
    await poll(graph, "fast", status=status, now=NOW + timedelta(hours=1))
    assert not [p for m, _, p in graph.http if m == "GET" and "insights." in p.get("fields", "")]

    graph = FakeMeta(created)
    await poll(graph, "fast", status=status, now=NOW + timedelta(hours=25))
    assert "insights.metric(" in graph.http[0][2]["fields"]
    assert len(graph.http) == 1


async def test_a_gated_field_refused_for_permission_is_disabled() -> None:
    status = new_status(extra=["comments"])
    graph = FakeMeta(days_ago(1), gated_denied=True)
    samples = await poll(graph, "fast", status=status)
    assert status.disabled == {"comments": "permission"}
    assert value(samples, "facebook_post_shares", post_id=post_id(1)) == 1
    assert not [s for s in samples if s.metric == "facebook_post_comments"]

    graph = FakeMeta(days_ago(1))
    samples = await poll(graph, "fast", extra=["comments"])
    assert value(samples, "facebook_post_comments", post_id=post_id(1)) == 5


async def test_no_post_readable_for_permission_fails_the_poll() -> None:
    graph = FakeMeta(days_ago(1, 2), reject_expansion="(#2500) x", insights_denied=True)
    with pytest.raises(PermissionDeniedError):
        await poll(graph, "daily")


async def test_no_posts_in_the_window_is_an_empty_success() -> None:
    graph = FakeMeta(days_ago(40, 50))
    assert await poll(graph, "daily") == []
    assert len(graph.http) == 1


def test_options_catalogue_and_registration() -> None:
    plugin = FacebookPost()
    # the config loader checks ids: an "id" option takes digits only
    assert {o.name: o.type for o in plugin.options}["page_id"] == "id"
    opts = {o.name: o for o in plugin.options}
    assert (opts["max_age"].default, opts["max_posts"].default) == ("28d", 100)
    assert opts["max_posts"].minimum == 1
    with pytest.warns(UserWarning, match="'post_something_new' is not a post metric"):
        spec = plugin.spec_for("post_something_new")
    assert spec is not None
    assert (spec.prom_name, spec.cadence, spec.periods) == (
        "facebook_post_something_new",
        "daily",
        ("lifetime",),
    )
    retired = ("post_impressions", "post_engaged_users", "post_video_views_10s")
    assert not [m for m in CATALOGUE if m.graph_name.startswith(retired)]
    assert {m.graph_name for m in CATALOGUE if m.cadence == "fast" and m.kind == "insight"} >= {
        "post_clicks",
        "post_clicks_by_type",
        "post_activity_by_action_type",
    }
    assert [type(p) for p in register_source_plugins()] == [FacebookPost]


# -- names in `metrics`, through the config loader ------------------------------------


def write(tmp_path: Path, *metrics: str) -> Path:
    return write_source(tmp_path, "facebook_post", "page_id", PAGE, metrics)


def said(tmp_path: Path, *metrics: str) -> tuple[list[str], list[str]]:
    """The metrics the source collects and the config warnings, as a user reads them."""
    return metrics_said(tmp_path, FacebookPost(), "page_id", PAGE, metrics)


def rejected(tmp_path: Path, *metrics: str) -> list[str]:
    return metrics_rejected(tmp_path, FacebookPost(), "page_id", PAGE, metrics)


NOV_2025 = "in November 2025"
JUNE_2026 = "in June 2026 (with Graph API v26.0)"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("post_impressions", f"{NOV_2025}; use 'post_media_view'"),
        ("post_impressions_paid", f"{NOV_2025}; use 'post_media_view' (its is_from_ads breakdown)"),
        (
            "post_impressions_fan",
            f"{NOV_2025}; use 'post_media_view' (its is_from_followers breakdown)",
        ),
        ("post_impressions_viral", f"{NOV_2025}; it has no replacement"),
        ("post_impressions_unique", f"{JUNE_2026}; use 'post_total_media_view_unique'"),
        (
            "post_impressions_organic_unique",
            f"{JUNE_2026}; the nearest live metric is 'post_total_media_view_unique' "
            "(every viewer)",
        ),
        (
            "post_video_views_paid_unique",
            f"{JUNE_2026}; the nearest live metric is 'post_video_views_paid'",
        ),
        (
            "post_video_views_10s_unique",
            "with Graph API v19.0; use 'post_video_views' (3 seconds), 'post_video_views_15s', "
            "'post_video_complete_views_30s_*' or 'post_video_views_60s_excludes_shorter'",
        ),
        (
            "post_negative_feedback_unique",
            "before 2025, with the classic Page metrics; it has no replacement",
        ),
        (
            "post_impressions_by_story_type",
            "with the other impressions metrics (November 2025 and June 2026); use "
            "'post_media_view' or 'post_total_media_view_unique'",
        ),
    ],
)
def test_a_retired_name_warns_when_and_what_replaced_it_and_is_still_asked_for(
    tmp_path: Path, name: str, reason: str
) -> None:
    specs, warned = said(tmp_path, "post_clicks", name)
    assert specs == ["post_clicks", name]  # Meta decides: a config keeps starting
    assert warned == [
        f"{name!r} was retired by Meta {reason} (Meta rejects it: it will be disabled)"
    ]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("facebook_post_click", "did you mean 'post_clicks'?"),
        ("facebook_post_media_view_by_is_from_ads", "did you mean 'post_media_view'?"),
        ("facebook_post_video_view_time", "did you mean 'post_video_view_time'?"),
        (
            "facebook_post_impressions",
            "'post_impressions' was retired by Meta in November 2025; use 'post_media_view'",
        ),
    ],
)
def test_a_prometheus_name_is_an_error_naming_the_meta_name(
    tmp_path: Path, name: str, hint: str
) -> None:
    assert rejected(tmp_path, "post_clicks", name) == [
        f"unknown metric {name!r}: list metrics by their Graph API name ({hint})"
    ]


@pytest.mark.parametrize(
    ("name", "remark"),
    [
        ("post_clickz", "did you mean 'post_clicks'?"),
        ("page_views_total", "Page metrics are read by the facebook_page plugin"),
        ("zzz_metric", "Meta decides, and a name it rejects is disabled"),
    ],
)
def test_another_unknown_name_is_asked_for_with_the_nearest_known_one(
    tmp_path: Path, name: str, remark: str
) -> None:
    specs, warned = said(tmp_path, name)
    assert specs == [name]
    assert warned == [
        f"{name!r} is not a post metric collectord knows; it is asked for as a daily "
        f"lifetime metric ({remark})"
    ]


def test_every_catalogue_name_loads_without_a_warning(tmp_path: Path) -> None:
    names = [m.graph_name for m in CATALOGUE]
    assert said(tmp_path, *names) == (names, [])


def test_check_warns_about_a_retired_name_and_rejects_a_prometheus_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", str(write(tmp_path, "post_clicks", "post_impressions"))]) == 0
    assert "'post_impressions' was retired by Meta in November 2025" in capsys.readouterr().out
    assert main(["check", "-c", str(write(tmp_path, "facebook_post_clicks_by_typ"))]) == 2
    assert "did you mean 'post_clicks_by_type'?" in capsys.readouterr().err
