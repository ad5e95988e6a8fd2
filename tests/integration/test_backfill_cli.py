"""`collectord backfill` as a real process against the simulator: its file goes through
`promtool tsdb create-blocks-from openmetrics`, a real Prometheus on loopback serves the
blocks with the simulator's daily values, and a backfill a failing source interrupted
resumes without reading again what it had and without duplicates.

promtool and prometheus come with Debian's `prometheus` (CI installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import running

from collectord.simulator import Simulator, World
from collectord.simulator.world import USER_TOKEN

pytestmark = pytest.mark.integration

SOURCES = """
[[source]]
name = "sim-page"
plugin = "facebook_page"
access_token = "{page_token}"
page_id = "{page_id}"

[[source]]
name = "sim-ig"
plugin = "instagram_user"
access_token = "{ig_token}"
ig_user_id = "{ig_user_id}"
"""
#: Seconds a backfill of 10 days, promtool and Prometheus' start get, each.
BOUND = 60.0
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "collectord.json"
BACKFILL_DOC = Path(__file__).resolve().parents[2] / "docs" / "backfill.md"
#: The query docs/backfill.md tells a newcomer to draw.
DOCS_QUERY = "last_over_time(facebook_page_views[26h])"
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} (\S+) (\d+)$")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_until(check: Callable[[], Awaitable[bool]], within: float) -> None:
    """Await ``check`` until it is true; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"not ready within {within} s")
        await asyncio.sleep(0.1)


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian package 'prometheus'; CI installs it)"
        if os.environ.get("COLLECTORD_REQUIRE_TOOLS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def _config(sim: Simulator, make_config: Callable[..., str]) -> str:
    world, ids = sim.world, sim.world.demo_ids()
    sources = SOURCES.format(
        page_token=world.demo_token("facebook_page"),
        ig_token=world.demo_token("instagram_user"),
        **ids,
    )
    return make_config(sim, sources)


async def _run(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=cwd,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), BOUND)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"{args[0]} did not finish within {BOUND} s")
    return proc.returncode or 0, out.decode(errors="replace")


async def _backfill(tmp_path: Path, config: str, *args: str) -> tuple[int, str]:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(config.replace("@PORT@", "9"))  # backfill serves no HTTP
    command = [sys.executable, "-m", "collectord", "backfill", "-c", str(cfg), *args]
    return await _run(*command, cwd=tmp_path)


def _samples(path: Path) -> list[tuple[str, str, float, int]]:
    out = []
    for line in path.read_text().splitlines():
        match = _SAMPLE.match(line)
        if match:
            name, labels, value, ts = match.groups()
            out.append((name, labels, float(value), int(ts)))
    return out


async def _sim_daily(
    session: aiohttp.ClientSession, sim: Simulator, node: str, token: str, params: dict[str, str]
) -> dict[int, float]:
    """The simulator's own answer for one metric over the last 10 days: end_time -> value."""
    now = int(sim.world.now().timestamp())
    query = {**params, "since": str(now - 10 * 86400), "until": str(now), "access_token": token}
    async with session.get(f"{sim.url}/v26.0/{node}/insights", params=query) as response:
        body = await response.json()
    (entry,) = body["data"]
    return {
        int(datetime.fromisoformat(v["end_time"].replace("+0000", "+00:00")).timestamp()): float(
            v["value"]
        )
        for v in entry["values"]
    }


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[Callable[[Path], Any]]:
    """``await start(blocks_dir)``: a Prometheus on a free loopback port over the blocks;
    returns its base URL once ready. Stopped at teardown."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(data: Path) -> str:
        port = free_port()
        (tmp_path / "prometheus.yml").write_text("global: {}\n")
        log = (tmp_path / "prometheus.log").open("wb")
        proc = await asyncio.create_subprocess_exec(
            _tool("prometheus"),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={data}",
            "--storage.tsdb.retention.time=400d",
            f"--web.listen-address=127.0.0.1:{port}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
        log.close()
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"

        async def ready() -> bool:
            if proc.returncode is not None:
                pytest.fail(f"prometheus exited: {(tmp_path / 'prometheus.log').read_text()}")
            try:
                async with aiohttp.ClientSession() as s, s.get(f"{url}/-/ready") as r:
                    return r.status == 200
            except aiohttp.ClientError:
                return False

        await wait_until(ready, BOUND)
        return url

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _history_in_prometheus(
    tmp_path: Path, simulator: Simulator, make_config: Callable[..., str], prometheus: Any
) -> str:
    """The docs' three commands: backfill 10 days, make blocks, start a Prometheus over them;
    returns its URL."""
    out = tmp_path / "history.om"
    code, log = await _backfill(tmp_path, _config(simulator, make_config), "--since", "10d",
                                "--out", str(out))  # fmt: skip
    assert code == 0, log
    assert "Meta refused" not in log  # every window within Meta's limits
    assert out.read_text().endswith("# EOF\n")
    for secret in (simulator.world.demo_token("facebook_page"), simulator.world.app_secret):
        assert secret not in log

    blocks = tmp_path / "blocks"
    code, text = await _run(
        _tool("promtool"), "tsdb", "create-blocks-from", "openmetrics", str(out), str(blocks),
        cwd=tmp_path,
    )  # fmt: skip
    assert code == 0, text
    return str(await prometheus(blocks))


async def test_backfill_blocks_give_prometheus_the_simulators_daily_values(
    tmp_path: Path, simulator: Simulator, make_config: Callable[..., str], prometheus: Any
) -> None:
    url = await _history_in_prometheus(tmp_path, simulator, make_config, prometheus)
    ids, world = simulator.world.demo_ids(), simulator.world
    cases = [
        (
            'facebook_page_post_engagements{source="sim-page",period="day"}',
            ids["page_id"],
            world.demo_token("facebook_page"),
            {"metric": "page_post_engagements", "period": "day"},
        ),
        (
            'instagram_user_reach{source="sim-ig",period="day"}',
            ids["ig_user_id"],
            world.demo_token("instagram_user"),
            {"metric": "reach", "period": "day", "metric_type": "time_series"},
        ),
    ]
    async with aiohttp.ClientSession() as session:
        for selector, node, token, params in cases:
            expected = await _sim_daily(session, simulator, node, token, params)
            assert len(expected) >= 9  # ten days back, the newest one maybe not ended yet
            query = {"query": f"{selector}[15d]", "time": str(int(world.now().timestamp()))}
            async with session.get(f"{url}/api/v1/query", params=query) as response:
                body = await response.json()
            (series,) = body["data"]["result"]
            got = {int(ts): float(v) for ts, v in series["values"]}
            assert got == expected, selector


def _daily_panel_queries() -> list[str]:
    """The queries of the shipped dashboard's panels of daily values, for every source."""
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    daily = [p for p in panels if p.get("type") == "timeseries" and p["title"].startswith("Daily")]
    return [t["expr"].replace("$source", "sim-.*") for p in daily for t in p["targets"]]


async def _range(
    session: aiohttp.ClientSession, url: str, query: str, steps: dict[str, str]
) -> list[dict[str, Any]]:
    params = {"query": query, **steps}
    async with session.get(f"{url}/api/v1/query_range", params=params) as response:
        body = await response.json()
    assert body["status"] == "success", body
    return list(body["data"]["result"])


async def test_graphs_of_the_dashboard_and_the_docs_draw_every_backfilled_day(
    tmp_path: Path, simulator: Simulator, make_config: Callable[..., str], prometheus: Any
) -> None:
    """A backfilled day is one point; a graph asks for values at its own steps and Prometheus
    looks back only 5 minutes from each. The dashboard's daily panels and the query
    docs/backfill.md gives must still draw a value at every step, the newest day's."""
    assert DOCS_QUERY in BACKFILL_DOC.read_text(encoding="utf-8")
    url = await _history_in_prometheus(tmp_path, simulator, make_config, prometheus)
    world = simulator.world
    async with aiohttp.ClientSession() as session:
        expected = await _sim_daily(
            session, simulator, world.demo_ids()["page_id"], world.demo_token("facebook_page"),
            {"metric": "page_post_engagements", "period": "day"},
        )  # fmt: skip
        # Hourly steps, 17 minutes after each day's point: none is within the look-back.
        first, last = min(expected), max(expected)
        steps = {"start": str(first + 1020), "end": str(last + 3600), "step": "3600"}
        count = (last + 3600 - first - 1020) // 3600 + 1

        assert (
            await _range(session, url, 'facebook_page_post_engagements{period="day"}', steps) == []
        )

        queries = _daily_panel_queries()
        assert len(queries) >= 10
        for query in [*queries, DOCS_QUERY]:
            result = await _range(session, url, query, steps)
            assert result, query
            for series in result:
                assert len(series["values"]) == count, (query, series["metric"])

        (panel,) = [q for q in queries if "facebook_page_post_engagements" in q]
        (series,) = await _range(session, url, panel, steps)
        for ts, value in series["values"]:
            day = max(end for end in expected if end <= ts)
            assert float(value) == expected[day], ts


async def test_an_interrupted_backfill_resumes_without_duplicates(
    tmp_path: Path,
    simulator: Simulator,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    config = _config(simulator, make_config)
    out = tmp_path / "history.om"
    ig = simulator.world.demo_ids()["ig_user_id"]
    simulator.faults.token_error(463, path=ig)  # the Instagram account's token expired

    code, log = await _backfill(tmp_path, config, "--since", "40d", "--out", str(out))
    assert code == 1, log
    assert "re-run the same command to resume" in log
    assert "sim-ig failed" in log
    assert not out.exists()

    simulator.faults.clear()
    calls = tap(simulator)
    code, log = await _backfill(tmp_path, config, "--since", "40d", "--out", str(out))
    assert code == 0, log
    assert "kept from the last run" in log
    assert "Meta refused" not in log
    page = simulator.world.demo_ids()["page_id"]
    assert not calls.matching(page), "the Page's history was read again"
    assert calls.matching(ig)

    samples = _samples(out)
    names = {name for name, *_ in samples}
    assert "facebook_page_views" in names
    assert "instagram_user_views" in names
    twice = [k for k, n in Counter((s[0], s[1], s[3]) for s in samples).items() if n > 1]
    assert not twice
    days = {ts for name, labels, _, ts in samples if name == "facebook_page_views"}
    assert len(days) >= 39  # 40 days back, over two steps of the backfill
    assert not list((tmp_path / "state" / "backfill").iterdir())  # progress forgotten


async def test_jsonl_records_with_duplicates_and_out_of_order_give_one_sample_each(
    tmp_path: Path,
) -> None:
    def rec(collected: str, end: str, value: float) -> str:
        return (
            f'{{"collected_at":"{collected}","source":"p","plugin":"facebook_page",'
            f'"metric":"facebook_page_views","graph_metric":"page_views_total",'
            f'"object_id":"1","period":"day","end_time":"{end}","value":{value},'
            f'"labels":{{"source":"p","page_id":"1","period":"day"}}}}\n'
        )

    older = tmp_path / "samples.jsonl.1"
    newer = tmp_path / "samples.jsonl"
    older.write_text(
        rec("2026-11-02T10:00:00.000Z", "2026-11-02T08:00:00Z", 5)
        + rec("2026-11-01T10:00:00.000Z", "2026-11-01T07:00:00Z", 4)
        + '{"torn line\n'
    )
    newer.write_text(
        rec("2026-11-03T10:00:00.000Z", "2026-11-02T08:00:00Z", 6)  # Meta's revision
        + rec("2026-11-03T10:00:00.000Z", "2026-11-03T08:00:00Z", 7)
        + rec("2026-11-02T10:00:00.000Z", "2026-11-02T08:00:00Z", 5)
    )
    out = tmp_path / "from-jsonl.om"
    args = ["--from-jsonl", str(newer), "--from-jsonl", str(older), "--out", str(out)]
    code, log = await _run(sys.executable, "-m", "collectord", "backfill", *args, cwd=tmp_path)
    assert code == 0, log
    assert "line 3" in log  # the torn line is reported
    assert out.read_text() == (
        "# TYPE facebook_page_views gauge\n"
        'facebook_page_views{page_id="1",period="day",source="p"} 4.0 1793516400\n'
        'facebook_page_views{page_id="1",period="day",source="p"} 6.0 1793606400\n'
        'facebook_page_views{page_id="1",period="day",source="p"} 7.0 1793692800\n'
        "# EOF\n"
    )


async def test_ctrl_c_keeps_what_was_read_and_the_same_command_resumes(
    tmp_path: Path,
    simulator: Simulator,
    make_config: Callable[..., str],
    tap: Callable[[Simulator], Any],
) -> None:
    cfg = tmp_path / "collector.toml"
    cfg.write_text(_config(simulator, make_config).replace("@PORT@", "9"))
    out = tmp_path / "history.om"
    ig = simulator.world.demo_ids()["ig_user_id"]
    simulator.faults.delay(BOUND, count=None, path=ig)  # the account's calls hang
    command = [sys.executable, "-m", "collectord", "backfill", "-c", str(cfg)]
    args = ["--since", "20d", "--out", str(out)]
    proc = await asyncio.create_subprocess_exec(
        *command, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    seen = ""
    try:
        while "sim-page 20" not in seen:  # the Page's step is done and kept
            line = await asyncio.wait_for(proc.stdout.readline(), BOUND)
            assert line, f"the backfill ended early:\n{seen}"
            seen += line.decode()
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), BOUND)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 130, seen + rest.decode()
    assert "re-run the same command to resume" in rest.decode()
    assert not out.exists()

    simulator.faults.clear()
    calls = tap(simulator)
    code, log = await _run(*command, *args, cwd=tmp_path)
    assert code == 0, log
    assert not calls.matching(simulator.world.demo_ids()["page_id"])
    assert "instagram_user_reach" in out.read_text()


async def test_meta_history_and_jsonl_records_merge_with_metas_reading_winning(
    tmp_path: Path, simulator: Simulator, make_config: Callable[..., str]
) -> None:
    first = tmp_path / "first.om"
    code, log = await _backfill(
        tmp_path, _config(simulator, make_config), "--since", "5d", "--out", str(first)
    )
    assert code == 0, log
    name, labels, value, ts = next(s for s in _samples(first) if s[0] == "facebook_page_views")
    pairs = dict(kv.split("=", 1) for kv in labels.split(","))
    when = datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    records = tmp_path / "samples.jsonl"
    records.write_text(
        json.dumps(
            {"collected_at": when, "metric": name, "end_time": when, "value": value + 1000,
             "labels": {k: v.strip('"') for k, v in pairs.items()}}
        )
        + "\n"
        + json.dumps(
            {"collected_at": when, "metric": "facebook_page_followers", "end_time": None,
             "value": 42, "labels": {"source": "sim-page", "page_id": "1"}}
        )
        + "\n"
    )  # fmt: skip
    both = tmp_path / "both.om"
    code, log = await _backfill(
        tmp_path, _config(simulator, make_config), "--since", "5d",
        "--from-jsonl", str(records), "--out", str(both),
    )  # fmt: skip
    assert code == 0, log
    merged = _samples(both)
    assert (name, labels, value, ts) in merged  # Meta's value, not the record's
    assert ("facebook_page_followers", 'page_id="1",source="sim-page"', 42.0, ts) in merged
    assert len(merged) == len(_samples(first)) + 1


async def test_a_metric_meta_refuses_is_reported_once_and_the_rest_is_written(
    tmp_path: Path, simulator: Simulator, make_config: Callable[..., str]
) -> None:
    simulator.faults.invalid_metrics(["page_views_total"])
    out = tmp_path / "history.om"
    code, log = await _backfill(
        tmp_path, _config(simulator, make_config), "--since", "40d", "--out", str(out)
    )
    assert code == 0, log
    assert log.count("Meta refused page_views_total") == 1  # not again in the second step
    names = {name for name, *_ in _samples(out)}
    assert "facebook_page_views" not in names
    assert "facebook_page_post_engagements" in names


async def test_a_discovering_source_is_backfilled_page_by_page(
    tmp_path: Path, frozen_now: datetime, make_config: Callable[..., str]
) -> None:
    world = World(clock=lambda: frozen_now, page_count=3, n_posts=1)
    async with running(world) as sim:
        excluded = list(world.pages)[1]
        sources = f"""
[[source]]
name = "pages"
plugin = "facebook_page"
access_token = "{USER_TOKEN}"
discover = true
exclude = ["{excluded}"]
"""
        out = tmp_path / "history.om"
        code, log = await _backfill(
            tmp_path, make_config(sim, sources), "--since", "5d", "--out", str(out)
        )
    assert code == 0, log
    assert "source pages discovers its objects: 2 found" in log
    backfilled = {
        re.search(r'source="([^"]+)"', labels).group(1)  # type: ignore[union-attr]
        for name, labels, _, _ in _samples(out)
        if name == "facebook_page_views"
    }
    assert backfilled == {f"pages/{pid}" for pid in world.pages if pid != excluded}
