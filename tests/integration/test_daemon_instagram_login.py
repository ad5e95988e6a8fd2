"""The Instagram API with Instagram Login (issue 10, point 5): a real daemon reads an
account and its media with an Instagram-Login token from the simulator's
graph.instagram.com, one GET per call (that API has no batch requests), never asks it for
the metrics about Facebook, and no token text appears in its output."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from collectord.simulator import Simulator
from collectord.simulator.world import IG_LOGIN_TOKEN

pytestmark = pytest.mark.integration

IG = "/graph.instagram.com/"


def sources(sim: Simulator) -> str:
    ig_id = sim.world.instagram.user_ids[0]
    return f"""
[[source]]
name = "ig-account"
plugin = "instagram_user"
login = "instagram"
access_token = "{IG_LOGIN_TOKEN}"
ig_user_id = "{ig_id}"
[source.graph]
base_url = "{sim.url}/graph.instagram.com"

[[source]]
name = "ig-media"
plugin = "instagram_media"
login = "instagram"
access_token = "{IG_LOGIN_TOKEN}"
ig_user_id = "{ig_id}"
metrics = ["views", "reach", "facebook_views", "crossposted_views"]
[source.graph]
base_url = "{sim.url}/graph.instagram.com"
"""


async def test_an_instagram_login_source_collects_from_graph_instagram_com(
    simulator: Simulator, start_daemon: Any, make_config: Callable[..., str]
) -> None:
    world = simulator.world
    ig_id = world.instagram.user_ids[0]
    daemon = await start_daemon(make_config(simulator, sources(simulator)))
    await daemon.wait_ready()
    scrape = await daemon.wait_for(
        lambda s: (
            s.value("instagram_user_followers", source="ig-account") is not None
            and s.value("instagram_user_views", source="ig-account") is not None
            and bool(s.matching("instagram_media_views", source="ig-media"))
        )
    )
    assert scrape.value("collectord_source_up", source="ig-account") == 1
    assert scrape.value("collectord_source_up", source="ig-media") == 1
    followers = world.instagram.user_field(ig_id, "followers_count", world.now_q())
    assert scrape.value("instagram_user_followers", source="ig-account") == followers
    assert not scrape.matching("instagram_media_facebook_views")
    assert not scrape.matching("collectord_metric_disabled", source="ig-media")

    requests = [r for r in simulator.requests if not r.path.startswith("/_sim")]
    assert requests
    assert all(r.path.startswith(IG) for r in requests), "every call goes to the IG host"
    assert all(r.method == "GET" and r.batch_size is None for r in requests)
    asked = " ".join(str(r.params.get("metric", "")) for r in requests)
    assert "views" in asked
    assert "facebook_views" not in asked
    assert "crossposted_views" not in asked
    assert await daemon.stop() == 0
    assert IG_LOGIN_TOKEN not in daemon.logs()
