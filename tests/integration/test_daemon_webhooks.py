"""Story insights by webhook, end to end: the real daemon with a ``[webhooks]`` table, the
simulator playing Meta (the App Dashboard's handshake, then the signed delivery sent an
hour after a story expired; docs/meta-facts.md 6.8)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import wait_until

from collectord.simulator import Simulator
from collectord.simulator.webhooks import CHALLENGE, NAVIGATION_KEYS

pytestmark = pytest.mark.integration

VERIFY_TOKEN = "a-verify-token-for-tests"
SOURCE = "northwind-media"
NAVIGATION_BY = "instagram_story_navigation_by_story_navigation_action_type"


def config(sim: Simulator, make_config: Callable[..., str]) -> str:
    source = f"""
[[source]]
name = "{SOURCE}"
plugin = "instagram_media"
access_token = "{sim.world.demo_token("instagram_media")}"
ig_user_id = "{sim.world.instagram.user_ids[0]}"
"""
    return make_config(sim, source) + f'\n[webhooks]\nverify_token = "{VERIFY_TOKEN}"\n'


def expected_series(value: dict[str, Any]) -> dict[tuple[str, str | None], float]:
    """What a delivery's value must become: (family, navigation row or None) -> value;
    a -1 (fewer than 5) and the retired ``impressions`` are left out."""
    out: dict[tuple[str, str | None], float] = {}
    for key in ("reach", "replies"):
        if value[key] >= 0:
            out[(f"instagram_story_{key}", None)] = float(value[key])
    for key, row in NAVIGATION_KEYS.items():
        if value[key] >= 0:
            out[(NAVIGATION_BY, row)] = float(value[key])
    return out


async def test_signed_story_insights_land_in_metrics_and_jsonl_and_forged_ones_do_not(
    simulator: Simulator,
    start_daemon: Callable[..., Any],
    make_config: Callable[..., str],
    jsonl_records: Callable[[], list[dict[str, Any]]],
    frozen_now: datetime,
) -> None:
    ig = simulator.world.instagram.user_ids[0]
    # a story that expired before the daemon started: no poll ever saw it
    story = simulator.world.instagram.add_story(ig, frozen_now - timedelta(hours=25))
    daemon = await start_daemon(config(simulator, make_config))
    await daemon.wait_ready()
    url = daemon.url + "/webhooks/meta"

    # the App Dashboard's verification request, with the right token and a wrong one
    assert await simulator.verify_webhook(url, VERIFY_TOKEN) == (200, CHALLENGE)
    status, body = await simulator.verify_webhook(url, "not-the-token")
    assert status == 403
    assert CHALLENGE not in body

    # a delivery signed with another secret is refused and records nothing
    _, status, _ = await simulator.send_story_insights(url, story, secret="forged-secret")
    assert status == 403
    scrape = await daemon.scrape()
    assert scrape.value("collectord_webhook_requests_total", outcome="bad_signature") == 1
    assert not [s for s in scrape.samples if s[1].get("media_id") == story]

    # Meta's own delivery lands in /metrics with the story's final values
    payload, status, _ = await simulator.send_story_insights(url, story)
    assert status == 200
    value = payload["entry"][0]["changes"][0]["value"]
    want = expected_series(value)
    assert ("instagram_story_reach", None) in want  # the story was seen by 5 or more

    def exposed(scrape: Any) -> dict[tuple[str, str | None], float]:
        return {
            (name, labels.get("story_navigation_action_type")): v
            for name, labels, v in scrape.samples
            if labels.get("media_id") == story
            and labels.get("source") == SOURCE
            and labels.get("ig_user_id") == ig
        }

    scrape = await daemon.wait_for(lambda s: bool(exposed(s)))
    assert exposed(scrape) == want
    assert scrape.value("collectord_webhook_requests_total", outcome="accepted") == 1
    assert scrape.value("collectord_webhook_changes_total", outcome="recorded") == 1

    # ...and in the JSONL file, once: the forged delivery wrote nothing before it
    def story_records() -> list[dict[str, Any]]:
        try:
            return [r for r in jsonl_records() if r["object_id"] == story]
        except FileNotFoundError:
            return []

    async def written() -> bool:
        return len(story_records()) >= len(want)

    await wait_until(written, 15.0)
    records = story_records()
    got = {
        (r["metric"], r["labels"].get("story_navigation_action_type")): r["value"] for r in records
    }
    assert got == want
    assert len(records) == len(want)
    assert {r["source"] for r in records} == {SOURCE}
    assert {r["period"] for r in records} == {"lifetime"}
