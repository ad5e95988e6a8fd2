"""instagram_user through the real Graph client, against Meta's answers mocked with
aioresponses (docs/meta-facts.md 5): the account's fields, total_value and time-series insights
in one batch, the empty answers of a small account, and code 1 on a breakdown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from graph_mocks import Answer, Handler, MetaDouble, Mocked, OneSource, envelope, fb_time

IG = "17841400000000001"
NOW = datetime.now(UTC).replace(microsecond=0)
#: Meta's last two daily values of a time series end at these instants.
ENDS = [NOW.replace(hour=7, minute=0, second=0) - timedelta(days=d) for d in (1, 0)]
COUNTS = {"followers_count": 12034, "follows_count": 381, "media_count": 77}
#: Metrics an account under 100 followers gets no data for.
GATED = {"follower_demographics", "engaged_audience_demographics", "online_followers"}
ROWS = {
    "follow_type": ["FOLLOWER", "NON_FOLLOWER"],
    "follower_type": ["FOLLOWER", "NON_FOLLOWER"],
    "media_product_type": ["POST", "REEL"],
    "city": ["Berlin, Berlin"],
}
TOML = f'plugin = "instagram_user"\naccess_token = "t"\nig_user_id = "{IG}"\n'
UNKNOWN = (500, envelope(1, "An unknown error has occurred.", is_transient=False))


def entry(name: str, params: dict[str, str]) -> dict[str, Any]:
    """One ``data`` entry as Meta answers it for ``params``."""
    if params.get("metric_type") == "time_series":
        values: list[Any] = (
            [{"18": 200 + i, "3": 10 + i} for i in range(2)]
            if name == "online_followers"
            else [3000 + i for i in range(2)]
        )
        return {
            "name": name,
            "period": params["period"],
            "values": [
                {"value": v, "end_time": fb_time(e)} for v, e in zip(values, ENDS, strict=True)
            ],
            "id": f"{IG}/insights/{name}/{params['period']}",
        }
    block: dict[str, Any] = {"value": 500}
    dims = params["breakdown"].split(",") if params.get("breakdown") else []
    if "timeframe" in params:
        dims = ["timeframe", *dims]
        del block["value"]
    if dims:
        keys = [d for d in dims if d != "timeframe"]
        prefix = [params["timeframe"].upper()] if "timeframe" in params else []
        results = [
            {"dimension_values": [*prefix, value], "value": 10 * (i + 1)}
            for i, value in enumerate(ROWS[keys[0]])
        ]
        block["breakdowns"] = [{"dimension_keys": dims, "results": results}]
    return {"name": name, "period": params["period"], "total_value": block}


def account(*, small: bool = False, unknown: set[tuple[str, str]] | None = None) -> Handler:
    """Meta for one account; ``unknown`` (metric, breakdown) pairs answer code 1."""
    failing = unknown if unknown is not None else set()

    def meta(path: str, params: dict[str, str]) -> Answer:
        if path == IG:
            fields = params["fields"].split(",")
            return 200, {"id": IG, **{f: COUNTS[f] for f in fields}}
        assert path == f"{IG}/insights", path
        names = params["metric"].split(",")
        if (params["metric"], params.get("breakdown", "")) in failing or ("*", "*") in failing:
            return UNKNOWN
        data = [entry(n, params) for n in names if not (small and n in GATED)]
        return 200, {"data": data, "paging": {"previous": f"https://graph.test/{IG}/p"}}

    return meta


def asked(double: MetaDouble, metric: str, breakdown: str | None) -> int:
    return sum(
        1
        for path, p in double.calls
        if path.endswith("/insights") and p["metric"] == metric and p.get("breakdown") == breakdown
    )


async def test_fast_poll_reads_the_account_fields(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    double = MetaDouble(mocked, account())
    source = OneSource(session, tmp_path, TOML, now=NOW)
    assert await source.poll("fast")
    assert {s.metric: s.value for s in source.samples()} == {
        "instagram_user_followers": 12034.0,
        "instagram_user_follows": 381.0,
        "instagram_user_media": 77.0,
    }
    ((path, params),) = double.calls
    assert path == IG
    assert set(params["fields"].split(",")) == set(COUNTS)


async def test_daily_poll_reads_total_values_and_time_series_in_one_batch(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    double = MetaDouble(mocked, account())
    source = OneSource(
        session,
        tmp_path,
        TOML + 'metrics = ["views", "accounts_engaged", "reach", "online_followers"]\n',
        now=NOW,
    )
    assert await source.poll("daily")
    assert double.http == 1, "every call of the poll in one batch request"
    plain = {p["metric"]: p for path, p in double.calls if "breakdown" not in p and path != IG}
    assert plain["views,accounts_engaged"]["metric_type"] == "total_value"
    series = plain["reach"]
    assert series["metric_type"] == "time_series"
    assert int(series["until"]) - int(series["since"]) <= 30 * 86400

    (views,) = source.series("instagram_user_views")
    assert (views.value, views.label_dict) == (500.0, {"ig_user_id": IG, "period": "day"})
    assert source.series("instagram_user_accounts_engaged")[0].value == 500.0
    (reach,) = source.series("instagram_user_reach")
    assert (reach.value, reach.end_time) == (3001.0, ENDS[1]), "the newest day is exported"
    follow = source.series("instagram_user_reach_by_follow_type")
    assert {s.label_dict["follow_type"]: s.value for s in follow} == {
        "FOLLOWER": 10.0,
        "NON_FOLLOWER": 20.0,
    }
    online = {
        s.label_dict["hour"]: s.value for s in source.series("instagram_user_online_followers")
    }
    assert online == {"18": 201.0, "3": 11.0}
    assert source.status.disabled == {}


async def test_small_account_empty_data_is_no_data_not_an_error(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    MetaDouble(mocked, account(small=True))
    source = OneSource(
        session,
        tmp_path,
        TOML + 'metrics = ["follower_demographics", "online_followers", "views"]\n',
        now=NOW,
    )
    assert await source.poll("daily")
    assert {s.metric for s in source.samples()} == {
        "instagram_user_views",
        "instagram_user_views_by_media_product_type",
        "instagram_user_views_by_follower_type",
    }, "only the metrics with data"
    assert source.status.disabled == {}
    assert sum(source.status.errors.values()) == 0


async def test_only_empty_answers_is_an_empty_successful_poll(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    MetaDouble(mocked, account(small=True))
    source = OneSource(session, tmp_path, TOML + 'metrics = ["follower_demographics"]\n', now=NOW)
    assert await source.poll("daily")
    assert source.samples() == ()
    assert source.status.per_cadence["daily"].ok


async def test_breakdown_with_unknown_error_is_retried_left_out_then_disabled(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    double = MetaDouble(mocked, account(unknown={("reach", "follow_type")}))
    source = OneSource(session, tmp_path, TOML + 'metrics = ["reach", "views"]\n', now=NOW)

    assert await source.poll("daily"), "the poll does not fail"
    # one call per completed day read (issue 8: the last two), each retried first
    assert asked(double, "reach", "follow_type") == 2 * (1 + source.client.max_retries), (
        "the Graph client retried it first"
    )
    assert not source.series("instagram_user_reach_by_follow_type")
    assert source.series("instagram_user_reach_by_media_product_type")
    assert source.series("instagram_user_reach")
    assert source.status.disabled == {}

    assert await source.poll("daily")
    assert source.status.disabled == {"reach:follow_type": "unsupported_breakdown"}

    double.calls.clear()
    assert await source.poll("daily")
    assert asked(double, "reach", "follow_type") == 0
    assert asked(double, "reach", None) == 1
    (reach,) = source.series("instagram_user_reach")
    assert reach.value == 3001.0, "the plain time series keeps coming"


async def test_breakdown_failing_once_is_not_disabled(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    failing = {("reach", "follow_type")}
    MetaDouble(mocked, account(unknown=failing))
    source = OneSource(session, tmp_path, TOML + 'metrics = ["reach"]\n', now=NOW)
    assert await source.poll("daily")
    failing.clear()  # Meta's passing fault is over
    assert await source.poll("daily")
    assert source.status.disabled == {}
    assert len(source.series("instagram_user_reach_by_follow_type")) == 2


async def test_unknown_error_on_every_call_fails_the_poll_as_server(
    mocked: Mocked, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    MetaDouble(mocked, account(unknown={("*", "*")}))
    source = OneSource(session, tmp_path, TOML + 'metrics = ["follower_demographics"]\n', now=NOW)
    for _ in range(2):
        assert not await source.poll("daily")
    assert source.reason("daily") == "server"
    assert source.status.errors["server"] == 2
    assert source.status.disabled == {}, "Meta being down disables nothing"
