"""What the Graph client has seen, read by the exporter at scrape time."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class GraphStats:
    """What the Graph client has seen.

    ``requests`` counts HTTP requests sent to the Graph API by status code (``"200"``,
    ``"400"``, ...; ``"timeout"`` or ``"network"`` when no answer came). ``usage`` maps
    ``(scope, id, kind)`` to the latest rate-limit usage as a ratio 0..1, where ``scope`` is
    ``app`` (``X-App-Usage``), ``page`` (``X-Page-Usage``) or the ``type`` of an
    ``X-Business-Use-Case-Usage`` entry (``pages``, ``instagram``, ...); ``id`` is the
    business object id (the app id, or ``""`` when unknown, for ``app``); ``kind`` is
    ``call_count``, ``total_cputime`` or ``total_time``.

    ``calls`` counts Graph calls by budget (``app``, or ``token:<hash>`` for a token's own
    budgets; a batch of ``n`` is ``n`` calls, as Meta meters them); ``throttled_until``
    maps a budget to the unix time its block ends (0 when none); ``api_versions`` maps
    ``(requested, served)`` API versions, from Meta's ``facebook-api-version`` answer
    header, to 1.
    """

    requests: Counter[str] = field(default_factory=Counter)
    usage: dict[tuple[str, str, str], float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    throttled_until: dict[str, float] = field(default_factory=dict)
    api_versions: dict[tuple[str, str], float] = field(default_factory=dict)
