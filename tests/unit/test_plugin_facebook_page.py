"""The facebook_page plugin: its catalogue against Meta's list of live Page metrics
(docs/meta-facts.md 2.3 and 2.4), and what ``collectord once --demo`` shows for them."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest
from collectord_plugins.facebook_page import CATALOGUE, FacebookPage

from collectord.cli import main
from collectord.config.loader import load_config
from collectord.config.types import Config
from collectord.errors import ConfigError
from collectord.graph.answers import meta_error
from collectord.testing import FakeGraph, PluginHost

BY_NAME = {spec.graph_name: spec for spec in CATALOGUE}
DWM = ("day", "week", "days_28")
NONE_LISTED = ()  # Meta lists no period: the plugin keeps whatever Meta answers

#: docs/meta-facts.md 2.3: every Page metric that still works, its cadence and its periods.
#: Issue 8: every one is daily, starred ones too: a Page insights query answers completed
#: days only (2.1), so a faster poll re-reads finished days.
LIVE: dict[str, tuple[str, tuple[str, ...]]] = {
    "page_media_view": ("daily", DWM),
    "page_total_media_view_unique": ("daily", DWM),
    "page_post_engagements": ("daily", DWM),
    "page_total_actions": ("daily", DWM),
    "page_views_total": ("daily", DWM),
    "page_follows": ("daily", ("day",)),
    "page_daily_follows": ("daily", ("day",)),
    "page_daily_follows_unique": ("daily", DWM),
    "page_daily_unfollows_unique": ("daily", DWM),
    "page_lifetime_engaged_followers_unique": ("daily", NONE_LISTED),
    "page_fan_adds_by_paid_non_paid_unique": ("daily", ("day",)),
    **{
        f"page_actions_post_reactions_{r}_total": ("daily", DWM)
        for r in ("like", "love", "wow", "haha", "sorry", "anger")
    },
    "page_actions_post_reactions_total": ("daily", ("day",)),
    "page_video_views": ("daily", DWM),
    **{
        f"page_video_views_{k}": ("daily", DWM)
        for k in ("paid", "organic", "autoplayed", "click_to_play")
    },
    "page_video_views_by_paid_non_paid": ("daily", DWM),
    "page_video_views_by_uploaded_hosted": ("daily", DWM),
    "page_video_repeat_views": ("daily", DWM),
    **{
        f"page_video_complete_views_30s{k}": ("daily", DWM)
        for k in (
            "",
            "_paid",
            "_organic",
            "_autoplayed",
            "_click_to_play",
            "_unique",
            "_repeat_views",
        )
    },
    "page_video_view_time": ("daily", ("day",)),
    "page_uploaded_views_15s_count": ("daily", NONE_LISTED),
    "page_uploaded_3s_to_15s_views_rate": ("daily", NONE_LISTED),
    "page_uploaded_views_60s_excludes_shorter_unique_count_by_is_60s_returning_viewer": (
        "daily",
        NONE_LISTED,
    ),
    "page_tab_views_login_top": ("daily", ("day", "week")),
    "page_tab_views_login_top_unique": ("daily", ("day", "week")),
    "page_tab_views_logout_top": ("daily", ("day",)),
    **{
        f"page_daily_video_ad_break_{x}_by_crosspost_status": ("daily", ("day",))
        for x in ("ad_impressions", "cpm", "earnings")
    },
    "content_monetization_earnings": ("daily", DWM),
    "monetization_approximate_earnings": ("daily", (*DWM, "month")),
    "creator_monetization_qualified_views": ("daily", ("day", "lifetime")),
}

#: docs/meta-facts.md 2.4: names and name patterns Meta retired (they fail the whole call).
RETIRED = (
    "page_impressions*",
    "page_posts_impressions*",
    "page_posts_served_impressions_organic_unique",
    "page_fans",
    "page_fans_*",
    "page_fan_adds",
    "page_fan_adds_unique",
    "page_fan_removes*",
    "page_engaged_users",
    "page_consumptions*",
    "page_content_activity*",
    "page_cta_clicks_*",
    "page_call_phone_clicks_*",
    "page_get_directions_clicks_*",
    "page_follows_city",
    "page_follows_country",
    "page_follows_gender_age",
    "page_follows_locale",
    "page_places_checkin_*",
    "page_negative_feedback*",
    "page_video_views_10s*",
    "page_video_views_unique",
)

MONETISATION = {
    "content_monetization_earnings",
    "monetization_approximate_earnings",
    "creator_monetization_qualified_views",
    *(
        f"page_daily_video_ad_break_{x}_by_crosspost_status"
        for x in ("ad_impressions", "cpm", "earnings")
    ),
}


# -- the catalogue ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LIVE))
def test_every_live_metric_is_in_the_catalogue_with_its_cadence_and_periods(name: str) -> None:
    cadence, periods = LIVE[name]
    spec = BY_NAME.get(name)
    assert spec is not None, f"{name} missing from the catalogue"
    assert (spec.cadence, spec.periods) == (cadence, periods)


def test_the_catalogue_holds_only_live_metrics_and_the_page_fields() -> None:
    insights = {s.graph_name for s in CATALOGUE if s.kind == "insight"}
    fields = {s.graph_name for s in CATALOGUE if s.kind == "field"}
    assert insights == set(LIVE)
    assert fields == {"followers_count", "fan_count"}
    assert all(BY_NAME[f].cadence == "fast" for f in fields)


def test_no_retired_metric_is_in_the_catalogue() -> None:
    retired = [s.graph_name for s in CATALOGUE for p in RETIRED if fnmatch.fnmatch(s.graph_name, p)]
    assert retired == []


def test_units_names_and_labels_follow_the_design() -> None:
    view_time = BY_NAME["page_video_view_time"]
    assert (view_time.prom_name, view_time.unit, view_time.scale) == (
        "facebook_page_video_view_time_seconds",
        "seconds",
        0.001,
    )
    assert BY_NAME["page_views_total"].prom_name == "facebook_page_views"
    assert BY_NAME["content_monetization_earnings"].prom_name == (
        "facebook_page_content_monetization_earnings"
    )
    assert BY_NAME["page_uploaded_3s_to_15s_views_rate"].unit == "ratio"
    for name in (
        "content_monetization_earnings",
        "monetization_approximate_earnings",
        "page_daily_video_ad_break_cpm_by_crosspost_status",
        "page_daily_video_ad_break_earnings_by_crosspost_status",
    ):
        assert BY_NAME[name].unit == "currency", name
    assert BY_NAME["content_monetization_earnings"].breakdowns == ("earning_source",)
    assert BY_NAME["monetization_approximate_earnings"].breakdowns == ("monetization_tool",)
    assert BY_NAME["page_media_view"].breakdowns == ("is_from_ads", "is_from_followers")


def test_the_default_set_leaves_out_monetisation_and_ad_breaks() -> None:
    default = {s.graph_name for s in CATALOGUE if s.default}
    assert not default & MONETISATION
    assert {"page_media_view", "page_views_total", "page_follows", "followers_count"} <= default
    assert "page_uploaded_views_15s_count" not in default


# -- what a user sees -------------------------------------------------------------------


def test_once_demo_shows_the_metrics_listed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = [
        "page_uploaded_views_15s_count",
        "page_uploaded_views_60s_excludes_shorter_unique_count_by_is_60s_returning_viewer",
        "page_tab_views_login_top_unique",
        "page_video_complete_views_30s_unique",
        "page_daily_video_ad_break_earnings_by_crosspost_status",
        "content_monetization_earnings",
        "monetization_approximate_earnings",
        "creator_monetization_qualified_views",
    ]
    cfg = tmp_path / "collector.toml"
    cfg.write_text(
        '[[source]]\nname = "acme-page"\nplugin = "facebook_page"\n'
        'access_token = "${ACME_PAGE_TOKEN}"\npage_id = "1234567890"\n'
        f"metrics = {listed!r}\n".replace("'", '"'),
        encoding="utf-8",
    )
    assert main(["once", "--demo", "-c", str(cfg), "--source", "acme-page"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    families = {line.split("{")[0] for line in lines}
    assert families == {
        "facebook_page_uploaded_views_15s",
        "facebook_page_uploaded_views_60s_excludes_shorter_unique_count_by_is_60s_returning_viewer",
        "facebook_page_tab_views_login_top_unique",
        "facebook_page_video_complete_views_30s_unique",
        "facebook_page_daily_video_ad_break_earnings_by_crosspost_status",
        "facebook_page_content_monetization_earnings",
        "facebook_page_content_monetization_earnings_by_earning_source",
        "facebook_page_monetization_approximate_earnings",
        "facebook_page_monetization_approximate_earnings_by_monetization_tool",
        "facebook_page_creator_monetization_qualified_views",
    }
    ad_break = [line for line in lines if "ad_break_earnings" in line]
    assert {'crosspost_status="owned"' in line for line in ad_break} == {True, False}
    assert any('is_60s_returning_viewer="true"' in line for line in lines)
    assert any('period="month"' in line for line in lines if "approximate_earnings{" in line)
    assert any('period="lifetime"' in line for line in lines if "qualified_views" in line)


# -- names in `metrics`, through the config loader ------------------------------------


def write(tmp_path: Path, metrics: list[str]) -> Path:
    path = tmp_path / "collector.toml"
    listed = ", ".join(f'"{m}"' for m in metrics)
    path.write_text(
        f'[[source]]\nname = "acme-page"\nplugin = "facebook_page"\naccess_token = "t"\n'
        f'page_id = "1234567890"\nmetrics = [{listed}]\n',
        encoding="utf-8",
    )
    return path


def load(tmp_path: Path, *metrics: str) -> Config:
    return load_config(
        write(tmp_path, list(metrics)), {"facebook_page": FacebookPage()}, environ={}
    )


def problems(tmp_path: Path, *metrics: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, *metrics)
    return info.value.problems


def line(tmp_path: Path, what: str) -> str:
    return f'{tmp_path / "collector.toml"}: source "acme-page": metrics: {what}'


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("facebook_page_views", "did you mean 'page_views_total'?"),
        ("facebook_page_view", "did you mean 'page_views_total'?"),
        ("facebook_page_media_view_by_is_from_ads", "did you mean 'page_media_view'?"),
        ("facebook_page_video_view_time_seconds", "did you mean 'page_video_view_time'?"),
        (
            "facebook_page_impressions",
            "'page_impressions' was retired by Meta in November 2025; use 'page_media_view'",
        ),
    ],
)
def test_a_prometheus_name_is_an_error_naming_the_meta_name(
    tmp_path: Path, name: str, hint: str
) -> None:
    assert problems(tmp_path, "page_views_total", name) == [
        line(tmp_path, f"unknown metric {name!r}: list metrics by their Graph API name ({hint})")
    ]


def test_every_wrong_name_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, "facebook_page_views", "facebook_page_follows")
    assert [p.split("(")[-1] for p in found] == [
        "did you mean 'page_views_total'?)",
        "did you mean 'page_follows'?)",
    ]


@pytest.mark.parametrize(
    ("name", "nearest"),
    [
        ("page_view_total", "did you mean 'page_views_total'?"),
        ("page_video_complete_views_30", "did you mean 'page_video_complete_views_30s'?"),
        ("page_brand_new_metric", "Meta decides, and a name it rejects is disabled"),
        ("post_clicks", "post metrics are read by the facebook_post plugin"),
    ],
)
def test_another_unknown_name_is_asked_for_with_a_warning(
    tmp_path: Path, name: str, nearest: str
) -> None:
    config = load(tmp_path, "page_views_total", name)
    (source,) = config.sources
    assert [s.graph_name for s in source.specs] == ["page_views_total", name]
    assert source.specs[1].cadence == "daily"
    assert config.warnings == (
        line(
            tmp_path,
            f"{name!r} is not a Page metric collectord knows; it is asked for as a daily "
            f"metric ({nearest})",
        ),
    )


def test_catalogue_names_load_without_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, *sorted(LIVE))
    assert config.warnings == ()
    assert {s.graph_name for s in config.sources[0].specs} == set(LIVE)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("page_impressions", "in November 2025; use 'page_media_view'"),
        (
            "page_impressions_paid",
            "in November 2025; use 'page_media_view' (its is_from_ads breakdown)",
        ),
        ("page_fans", "in November 2025; use 'page_follows' or the 'followers_count' field"),
        (
            "page_impressions_unique",
            "in June 2026 (with Graph API v26.0); use 'page_total_media_view_unique'",
        ),
        (
            "page_posts_impressions_organic",
            "in June 2026 (with Graph API v26.0); it has no replacement",
        ),
        ("page_fans_online_per_day", "in September 2024; it has no replacement"),
        ("page_engaged_users", "in March 2024; use 'page_post_engagements'"),
        ("page_follows_country", "in March 2024; it has no replacement"),
        (
            "page_video_views_10s_paid",
            "with Graph API v19.0; use 'page_video_views' (3 seconds) or "
            "'page_video_complete_views_30s'",
        ),
    ],
)
def test_a_retired_name_says_when_and_what_replaced_it(
    tmp_path: Path, name: str, reason: str
) -> None:
    text = f"{name!r} was retired by Meta {reason}"
    config = load(tmp_path, "page_views_total", name)
    assert config.warnings == (line(tmp_path, f"{text} (Meta rejects it: it will be disabled)"),)


def test_check_prints_the_warning_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", str(write(tmp_path, ["page_views_total", "page_view_total"]))]) == 0
    out = capsys.readouterr().out
    assert "warning: " + line(tmp_path, "'page_view_total' is not a Page metric") in out
    assert "did you mean 'page_views_total'?" in out


def test_check_rejects_a_prometheus_name_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", "-c", str(write(tmp_path, ["facebook_page_views"]))]) == 2
    assert "did you mean 'page_views_total'?" in capsys.readouterr().err


# -- issue 8: a breakdown call Meta refuses never costs the poll -----------------------


class BreakdownDenied(FakeGraph):
    """A Page whose insights Meta serves, except one breakdown answered with code 10."""

    def respond(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        if path == "1234":
            return {"id": "1234", "followers_count": 10234, "fan_count": 10000}
        assert path == "1234/insights", path
        if params.get("breakdown") == "is_from_ads":
            raise meta_error("(#10) Application does not have permission for this action", code=10)
        day = {"value": 7, "end_time": "2026-11-23T08:00:00+0000"}
        entries = [
            {"name": n, "period": "day", "values": [day]} for n in params["metric"].split(",")
        ]
        return {"data": entries}


async def test_one_refused_breakdown_keeps_the_polls_other_samples() -> None:
    host = PluginHost(FacebookPage(), {"page_id": "1234"}, graph=BreakdownDenied())
    result = await host.poll("daily")
    assert result.samples, "the Page's own insights arrive"
    assert not [s for s in result.samples if "is_from_ads" in s.label_dict]
    assert host.skipped["permission"] >= 1
    assert host.disabled == {}
