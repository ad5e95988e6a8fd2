"""collectord's built-in Graph API simulator (Facebook Pages, posts, apps, Instagram).

``Simulator(World(...), Faults())`` serves Meta's Graph API on loopback the way
``docs/meta-facts.md`` describes it; the :class:`World` is the ground truth tests compare
with, :class:`Faults` inject throttling, outages, torn bodies and token errors.
"""

from collectord.simulator.app import RequestLogEntry, Simulator, serve
from collectord.simulator.faults import FaultRule, Faults
from collectord.simulator.world import DEFAULT_IG_USER_ID, Post, World

__all__ = [
    "DEFAULT_IG_USER_ID",
    "FaultRule",
    "Faults",
    "Post",
    "RequestLogEntry",
    "Simulator",
    "World",
    "serve",
]
