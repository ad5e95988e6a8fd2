"""A source's state (ok, failing, needs_reauth, throttled, stale) and the needs_reauth gate:
a poll failing on its token stops the source's calls until a reload brings another token
(issue 10, point 2)."""

from __future__ import annotations

from typing import Any

import pytest
from structlog.testing import capture_logs

from collectord import MetricSpec, Option, PollContext, SourcePlugin
from collectord.config.types import GraphConfig, ScheduleConfig, SourceConfig
from collectord.errors import AuthKind, reauth_advice
from collectord.exporter.registry import InsightsCollector
from collectord.graph.answers import meta_error
from collectord.graph.stats import GraphStats
from collectord.model import TokenView
from collectord.scheduling.scheduler import Poller, SourceRuntime
from collectord.secret import Secret
from collectord.store.status import SOURCE_STATES
from collectord.store.store import Store
from collectord.web.status_page import render_status_page

SPEC = MetricSpec("views", "test_views", "fast")
DAILY = MetricSpec("fans", "test_fans", "daily")
TOKEN = "EAABsomeTokenThatMustNeverBePrinted0123456789"
NOW = 1_800_000_000.0
FAST = 900.0


class Scripted(SourcePlugin):
    """Answers each poll with the next of ``answers`` (an exception is raised); counts the
    polls that reached it (the calls it would have made to Meta)."""

    name = "scripted"
    catalogue = (SPEC, DAILY)
    options = (Option("page_id", "id"),)

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def collect(self, ctx: PollContext) -> Any:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return [ctx.sample(SPEC, answer, object_id="4242", labels={"page_id": "4242"})]


def runtime(store: Store, plugin: SourcePlugin, name: str = "src") -> SourceRuntime:
    cfg = SourceConfig(
        name=name,
        plugin=plugin.name,
        access_token=Secret(TOKEN),
        metrics=None,
        schedule=ScheduleConfig(fast_interval=FAST, daily_interval=86400, jitter=0),
        graph=GraphConfig(timeout=30.0),
        specs=plugin.catalogue,
        options={"page_id": "4242"},
    )
    status = store.register(name, plugin.name, cfg.cadences())
    return SourceRuntime(cfg, plugin, graph=None, status=status)  # type: ignore[arg-type]


def token_error(subcode: int | None = 463) -> Exception:
    return meta_error(
        f"Error validating access token: Session has expired ({TOKEN})",
        code=190,
        subcode=subcode,
    )


def states(store: Store, now: float = NOW) -> dict[str, str]:
    return {s.name: s.state(now) for s in store.snapshot().sources}


# -- the state, computed -----------------------------------------------------------------


def one_source(cadences: tuple[str, ...] = ("fast",)) -> Store:
    store = Store()
    store.register("src", "scripted", cadences)
    for cadence in cadences:
        store.set_interval("src", cadence, FAST if cadence == "fast" else 86400.0)
    return store


def test_a_source_not_polled_yet_is_ok_and_pending_on_the_page() -> None:
    store = one_source()
    view = store.snapshot().sources[0]
    assert view.state(NOW) == "ok"
    assert view.pending
    html = render_status_page(store.snapshot(), version="1", ready=False, now=NOW)
    assert '<span class="pending">pending</span>' in html


def test_fresh_data_is_ok_and_a_failed_poll_is_failing() -> None:
    store = one_source()
    store.record_success("src", "fast", [], duration=0.1, at=NOW - FAST)
    assert states(store) == {"src": "ok"}
    store.record_failure("src", "fast", reason="server", message="down", duration=0.1)
    assert states(store) == {"src": "failing"}


def test_data_older_than_twice_the_interval_is_stale_whatever_the_last_poll_did() -> None:
    store = one_source()
    store.record_success("src", "fast", [], duration=0.1, at=NOW - 2 * FAST)
    assert states(store) == {"src": "ok"}  # exactly twice: not yet
    assert states(store, NOW + 1) == {"src": "stale"}
    store.record_failure("src", "fast", reason="server", message="down", duration=0.1)
    assert states(store, NOW + 1) == {"src": "stale"}  # failing long enough: stale
    assert states(store, NOW - FAST) == {"src": "failing"}


def test_one_stale_cadence_makes_the_source_stale() -> None:
    store = one_source(("fast", "daily"))
    store.record_success("src", "daily", [], duration=0.1, at=NOW - 3 * 86400)
    store.record_success("src", "fast", [], duration=0.1, at=NOW)
    assert states(store) == {"src": "stale"}


def test_a_poll_skipped_by_the_rate_limit_is_throttled_until_a_poll_runs() -> None:
    store = one_source()
    store.record_success("src", "fast", [], duration=0.1, at=NOW)
    store.record_skip("src", "fast", reason="throttled", message="budget app blocked")
    assert states(store) == {"src": "throttled"}
    assert states(store, NOW + 10 * FAST) == {"src": "throttled"}  # the cause, not stale
    store.record_success("src", "fast", [], duration=0.1, at=NOW)
    assert states(store) == {"src": "ok"}


def test_needs_reauth_wins_over_everything_and_keeps_the_first_reason() -> None:
    store = one_source()
    store.record_success("src", "fast", [], duration=0.1, at=NOW - 10 * FAST)
    store.record_skip("src", "fast", reason="throttled", message="blocked")
    assert store.set_reauth("src", "expired", "the token expired; ...") is True
    assert store.set_reauth("src", "password_changed", "...") is False
    view = store.snapshot().sources[0]
    assert view.state(NOW) == "needs_reauth"
    assert view.reauth is not None
    assert view.reauth.kind == "expired"
    assert view.up is False
    assert store.clear_reauth("src") is True
    assert store.clear_reauth("src") is False
    assert states(store) == {"src": "throttled"}


def test_the_exporter_gives_all_five_states_of_every_source() -> None:
    store = one_source()
    store.register("other", "scripted", ("fast",))
    store.set_reauth("src", "expired", "advice")
    collector = InsightsCollector(store, GraphStats(), (), version="1", clock=lambda: NOW)
    family = next(f for f in collector.collect() if f.name == "collectord_source_state")
    got = {(s.labels["source"], s.labels["state"]): s.value for s in family.samples}
    assert {k for k in got} == {(n, st) for n in ("src", "other") for st in SOURCE_STATES}
    assert [k for k, v in got.items() if v == 1.0] == [("src", "needs_reauth"), ("other", "ok")]
    assert all(s.labels["plugin"] == "scripted" for s in family.samples)


# -- the gate ------------------------------------------------------------------------------


async def test_a_dead_token_stops_the_polls_logs_once_and_keeps_the_values() -> None:
    store = Store()
    plugin = Scripted(5.0, token_error(463))
    rt = runtime(store, plugin)
    other = Scripted(7.0)
    rt_other = runtime(store, other, "other")
    poller = Poller(store)
    with capture_logs() as logs:
        assert await poller.poll(rt, "fast") is True
        assert await poller.poll(rt, "fast") is False  # the token died
        for _ in range(3):
            assert await poller.poll(rt, "fast") is False
            assert await poller.poll(rt, "fast", requested=True) is False
        assert await poller.poll(rt_other, "fast") is True
    assert plugin.calls == 2, "polls after the token died must not reach Meta"
    assert [s.value for s in store.samples("src")] == [5.0]
    status = store.status("src")
    assert status.errors["auth"] == 1
    assert status.per_cadence["fast"].durations.total == 2  # skipped polls are no polls
    view = store.snapshot().sources[0]
    assert view.state(NOW) == "needs_reauth"
    assert not view.up
    said = [e for e in logs if e["event"] == "source needs a new token"]
    assert len(said) == 1
    assert said[0]["log_level"] == "error"
    assert said[0]["problem"] == "expired"
    assert "the token expired" in said[0]["what_to_do"]
    assert "docs/getting-tokens.md" in said[0]["what_to_do"]
    assert "SIGHUP" in said[0]["what_to_do"]
    assert not [e for e in logs if e["event"] == "source failing"]
    assert TOKEN not in repr(logs)
    assert TOKEN not in repr(store.snapshot())
    assert states(store)["other"] == "ok"


async def test_the_expiry_date_is_named_when_the_token_watcher_knows_it() -> None:
    store = Store()
    rt = runtime(store, Scripted(token_error(463)))
    store.set_token("src", TokenView(valid=True, expires_at=1_767_225_600.0))  # 2026-01-01 UTC
    with capture_logs() as logs:
        await Poller(store).poll(rt, "fast")
    [said] = [e for e in logs if e["event"] == "source needs a new token"]
    assert said["what_to_do"].startswith("the token expired on 2026-01-01 00:00 UTC; get a new")


@pytest.mark.parametrize(
    ("error", "kind", "words"),
    [
        (token_error(463), "expired", "expired"),
        (token_error(460), "password_changed", "changed their Facebook password"),
        (token_error(458), "app_not_installed", "removed the app"),
        (token_error(467), "session_invalid", "logged out"),
        (token_error(459), "checkpoint", "checkpoint"),
        (token_error(464), "checkpoint", "checkpoint"),
        (token_error(492), "page_role_lost", "no longer has a role on the Page"),
        (token_error(None), "invalid", "invalid, expired or revoked"),
        (meta_error("A user access token is required", code=102), "invalid", "invalid"),
        (
            meta_error("(#10) Application does not have permission for this action", code=10),
            "permission_revoked",
            "lacks a permission",
        ),
        (
            meta_error("(#200) Requires pages_read_engagement permission", code=200),
            "permission_revoked",
            "lacks a permission",
        ),
    ],
)
async def test_each_token_problem_is_told_in_its_own_words(
    error: Exception, kind: str, words: str
) -> None:
    store = Store()
    rt = runtime(store, Scripted(error))
    with capture_logs() as logs:
        await Poller(store).poll(rt, "fast")
    [said] = [e for e in logs if e["event"] == "source needs a new token"]
    assert said["problem"] == kind
    assert words in said["what_to_do"]
    assert store.snapshot().sources[0].state(NOW) == "needs_reauth"


@pytest.mark.parametrize(
    "error",
    [
        meta_error("Invalid appsecret_proof provided in the API argument", code=100),
        meta_error("(#3000) Reading insights of a different app is not allowed", code=3000),
        meta_error("An unknown error occurred", code=2),
    ],
    ids=["appsecret_proof", "another_apps_insights", "server"],
)
async def test_errors_a_new_token_would_not_fix_leave_the_source_failing(
    error: Exception,
) -> None:
    store = Store()
    plugin = Scripted(error)
    rt = runtime(store, plugin)
    poller = Poller(store)
    await poller.poll(rt, "fast")
    await poller.poll(rt, "fast")
    assert plugin.calls == 2
    assert store.snapshot().sources[0].state(NOW) == "failing"


def test_advice_never_names_the_token_and_always_says_how_to_resume() -> None:
    for kind in AuthKind:
        text = reauth_advice(kind, "2026-01-01")
        assert "reload" in text
        if kind is not AuthKind.APPSECRET_PROOF:
            assert "docs/getting-tokens.md" in text
            assert "resumes by itself" in text


def test_the_page_shows_needs_reauth_with_what_to_do_escaped() -> None:
    store = one_source()
    store.record_success("src", "fast", [], duration=0.1, at=NOW)
    store.set_reauth("src", "expired", "the <b>token</b> expired & more")
    html = render_status_page(store.snapshot(), version="1", ready=True, now=NOW)
    assert '<span class="needs_reauth">needs_reauth</span>' in html
    assert "the &lt;b&gt;token&lt;/b&gt; expired &amp; more" in html
    assert "<b>token" not in html


async def test_a_source_waiting_for_a_token_does_not_hold_back_readiness() -> None:
    store = Store()
    rt = runtime(store, Scripted(token_error(463)))
    poller = Poller(store)
    assert not store.ready
    await poller.poll(rt, "fast")  # fails on the token: the daily poll will never run
    assert await poller.poll(rt, "daily") is False
    assert store.status("src").per_cadence["daily"].ok is None
    assert store.ready
