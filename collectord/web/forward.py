"""Webhook deliveries passed on to the replica that polls their account (sharding).

Meta posts every delivery of an app to the one callback URL, so with ``[collector] shard =
"I/N"`` a delivery reaches whichever replica the load balancer picks, and most of the time
that replica does not poll the account the delivery is about. With ``[webhooks]
forward_url`` set, the replica that took the delivery from Meta posts it on, unchanged (the
same raw body and ``X-Hub-Signature-256``), to the replica of every other shard that polls
one of its accounts, and marks it with :data:`FORWARDED_HEADER` so that it goes no further.
The receiving replica checks the signature as it checks Meta's own deliveries: the header
only stops a second hop, it grants nothing.

A replica knows the owners without asking anyone: every replica reads the same config and
discovers the same children, and the owner of a source is a hash of its name
(:mod:`collectord.sharding`). Meta is answered once the forwards are done or have failed
(:data:`FORWARD_TIMEOUT` each); a failed forward is counted and logged, and the account's
stories keep the values their last poll read (polling is the fallback of webhooks).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

import aiohttp

from collectord.config.webhooks import WebhooksConfig
from collectord.logs import get_logger
from collectord.sharding import Shard

log = get_logger("collectord.web.forward")

#: Marks a delivery one replica passed to another; such a delivery is not passed on again.
FORWARDED_HEADER: Final = "X-Collectord-Forwarded"
#: Seconds one forward may take (Meta waits for the answer to its own delivery meanwhile).
FORWARD_TIMEOUT: Final = 5.0

#: The shards whose replicas poll a source reading the object of this id.
Owners = Callable[[str], set[int]]


class Forwarder:
    """Posts deliveries on to the replicas of other shards (one per daemon)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        shard: Shard,
        owners: Owners,
        *,
        timeout: float = FORWARD_TIMEOUT,
    ) -> None:
        self.session = session
        self.shard = shard
        self.owners = owners
        self.timeout = timeout
        #: Shards whose last forward failed (their failure was logged once).
        self.failing: set[int] = set()

    def targets(self, hooks: WebhooksConfig | None, entry_ids: Iterable[str]) -> set[int]:
        """The other shards that poll one of ``entry_ids``; none without sharding or
        without ``forward_url``."""
        if hooks is None or hooks.forward_url is None or not self.shard.sharded:
            return set()
        out: set[int] = set()
        for entry_id in entry_ids:
            out |= self.owners(entry_id)
        out.discard(self.shard.index)
        return out

    async def forward(
        self, hooks: WebhooksConfig, shards: Iterable[int], body: bytes, signature: str
    ) -> set[int]:
        """Post ``body`` with its signature to each of ``shards``; the shards that took it."""
        order = sorted(shards)
        results = await asyncio.gather(*(self._one(hooks, i, body, signature) for i in order))
        return {i for i, ok in zip(order, results, strict=True) if ok}

    async def _one(self, hooks: WebhooksConfig, shard: int, body: bytes, signature: str) -> bool:
        url = hooks.forward_to(shard)
        assert url is not None
        headers = {
            "Content-Type": "application/json",
            "X-Hub-Signature-256": signature,
            FORWARDED_HEADER: str(self.shard.index),
        }
        problem = ""
        try:
            async with asyncio.timeout(self.timeout):
                # the answer's body is not read: only the status counts (and it is small)
                post = self.session.post(url, data=body, headers=headers, allow_redirects=False)
                async with post as resp:
                    if resp.status != 200:
                        problem = f"answered {resp.status}"
        except TimeoutError:
            problem = f"no answer within {self.timeout:g} s"
        except aiohttp.ClientError as exc:
            problem = type(exc).__name__
        if not problem:
            if shard in self.failing:
                self.failing.discard(shard)
                log.info("webhook forward works again", shard=shard)
            return True
        if shard not in self.failing:  # once until it works again: Meta may post often
            self.failing.add(shard)
            log.warning(
                "webhook forward failed",
                shard=shard,
                problem=problem,
                hint="is the replica of that shard up, and does [webhooks] forward_url "
                "reach its webhook path? Its stories keep their polled values meanwhile",
            )
        return False
