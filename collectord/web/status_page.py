"""The HTML status page served at ``/``: one table row per source, everything escaped.

The state column shows the source's state as ``collectord_source_state`` exports it (``ok``,
``failing``, ``needs_reauth``, ``throttled``, ``stale``), ``pending`` before its first poll,
and for ``needs_reauth`` what to do about the token.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any

from collectord.logs import scrub
from collectord.store.store import Snapshot, SourceView

if TYPE_CHECKING:
    from collectord.exporter.registry import WebhookStats

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.ok { color: #186a18; } .failing { color: #b00020; font-weight: bold; } .pending { color: #8a6d00; }
.needs_reauth { color: #b00020; font-weight: bold; } .throttled, .stale { color: #8a6d00; }
ul { margin: 0; padding-left: 1.2em; }
"""


#: An expiry closer than this (7 days, as the shipped alert) is shown in red.
TOKEN_WARN = 7 * 86400.0

#: Longest error message or reason shown on the page; Meta's can be megabytes.
MAX_MESSAGE = 300


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis when longer, control characters
    turned into spaces (escape the result: this does not)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_age(seconds: float) -> str:
    """A short human duration: ``42s``, ``3m 5s``, ``2h 10m``, ``4d 3h``."""
    s = int(abs(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def _when(ts: float, now: float) -> str:
    """ISO UTC time with its distance from ``now`` (``... (5m 0s ago)`` / ``(in 5m 0s)``)."""
    delta = now - ts
    rel = f"{format_age(delta)} ago" if delta >= 0 else f"in {format_age(delta)}"
    return f"{_utc(ts)} ({rel})"


def _lines(items: Iterable[str], empty: str = "—") -> str:
    """Already-escaped lines as a cell, one ``<div>`` each."""
    out = "".join(f"<div>{item}</div>" for item in items)
    return out or escape(empty)


def _row(status: SourceView, series: int, now: float) -> str:
    successes, errors, runs = [], [], []
    for cadence, cs in status.per_cadence.items():
        c = escape(cadence)
        if cs.last_success is not None:
            successes.append(f"{c}: {escape(_when(cs.last_success, now))}")
        if cs.last_error is not None:
            reason = escape(cs.last_error_reason or "other")
            message = escape(shorten(scrub(cs.last_error)))
            errors.append(f"{c}: {message} <em>({reason})</em>")
        if cs.next_run is not None:
            nr = cs.next_run if cs.next_run.tzinfo else cs.next_run.replace(tzinfo=UTC)
            runs.append(f"{c}: {escape(_when(nr.timestamp(), now))}")
    disabled = "".join(
        f"<li>{escape(metric)}: {escape(shorten(reason))}</li>"
        for metric, reason in sorted(status.disabled.items())
    )
    skipped = [f"{escape(why)}: {n}" for why, n in sorted(status.skipped.items())]
    cells = [
        escape(status.name),
        escape(status.plugin),
        _state_cell(status, now),
        str(series),
        _lines(successes, "never"),
        _lines(errors),
        _lines(runs),
        f"<ul>{disabled}</ul>" if disabled else "none",
        _lines(skipped, "none"),
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _state_cell(status: SourceView, now: float) -> str:
    state = escape("pending" if status.pending else status.state(now))
    cell = f'<span class="{state}">{state}</span>'
    if status.reauth is not None:
        cell += f"<div>{escape(shorten(scrub(status.reauth.advice)))}</div>"
    return cell


def _token_row(status: SourceView, now: float) -> str | None:
    """One source's token: type, validity, expiries and missing scopes (``None`` when
    its token was never answered for)."""
    token = status.token
    if token is None or token.valid is None:
        return None

    def expiry(ts: float | None) -> str:
        if ts is None:
            return "—"
        if ts == 0:
            return "never"
        text = escape(_when(ts, now))
        return f'<span class="failing">{text}</span>' if ts - now < TOKEN_WARN else text

    valid = '<span class="ok">yes</span>' if token.valid else '<span class="failing">no</span>'
    missing = ", ".join(f"<code>{escape(s)}</code>" for s in token.missing_scopes)
    cells = [
        escape(status.name),
        escape(token.type or "—"),
        valid,
        expiry(token.expires_at),
        expiry(token.data_access_expires_at),
        f'<span class="failing">{missing}</span>' if missing else "none",
        escape(shorten(scrub(token.note))) if token.note else "",
    ]
    return "<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def render_tokens(sources: Iterable[SourceView], now: float) -> str:
    """The tokens section: what ``debug_token`` last said about each source's token; when
    no token could be checked, why (the app credentials the check needs)."""
    sources = list(sources)
    rows = [row for s in sources if (row := _token_row(s, now)) is not None]
    waiting = [s for s in sources if s.token is not None and s.token.valid is None]
    unchecked = sorted({s.token.note for s in waiting if s.token and s.token.note})
    out = "<h2>Tokens</h2>\n"
    if not rows:
        why = "; ".join(unchecked) if unchecked else "no token checked yet"
        return out + f"<p>No token checked: {escape(shorten(scrub(why)))}.</p>\n"
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "source",
            "type",
            "valid",
            "expires",
            "data access expires",
            "missing scopes",
            "note",
        )
    )
    out += f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows)
    out += "\n</tbody>\n</table>\n"
    if waiting:
        why = "; ".join(unchecked) or "not checked yet"
        names = ", ".join(s.name for s in waiting)
        out += f"<p>Not checked ({escape(names)}): {escape(shorten(scrub(why)))}.</p>\n"
    return out


def render_plugins(plugins: Iterable[Mapping[str, Any]]) -> str:
    """The plugins section: name, version, origin, description and options with their help
    of each plugin, from the documents ``collectord plugins --format json`` prints."""
    rows = []
    for p in plugins:
        options = "".join(
            f"<li><code>{escape(o['name'])}</code> ({escape(o['type'])}"
            f"{', required' if o['required'] else ''}): {escape(o['help'])}</li>"
            for o in p["options"]
        )
        cells = [
            escape(p["name"]),
            escape(p["version"]),
            escape(p["origin"]),
            escape(p["description"]) or "—",
            f"<ul>{options}</ul>" if options else "none",
        ]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    if not rows:
        return ""
    head = "".join(f"<th>{h}</th>" for h in ("plugin", "version", "origin", "what", "options"))
    body = "\n".join(rows)
    return f"<h2>Plugins</h2>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def render_budgets(graph_stats: Any, now: float) -> str:
    """The rate-limit budgets section from the Graph client's stats (a
    :class:`~collectord.graph.stats.GraphStats`): per budget the calls sent and whether it
    is blocked, then Meta's latest usage readings; empty without stats."""
    if graph_stats is None:
        return ""
    calls: Mapping[str, float] = graph_stats.calls
    until: Mapping[str, float] = graph_stats.throttled_until
    rows = []
    for budget in sorted(set(calls) | set(until) | {"app"}):
        end = until.get(budget, 0.0)
        state = (
            f'<span class="failing">blocked until {escape(_when(end, now))}</span>'
            if end > now
            else '<span class="ok">open</span>'
        )
        rows.append(
            f"<tr><td>{escape(budget)}</td><td>{int(calls.get(budget, 0))}</td>"
            f"<td>{state}</td></tr>"
        )
    usage = [
        f"<tr><td>{escape(scope)}</td><td>{escape(oid) or '—'}</td><td>{escape(kind)}</td>"
        f"<td>{ratio:.0%}</td></tr>"
        for (scope, oid, kind), ratio in sorted(graph_stats.usage.items())
    ]
    head = "<tr><th>budget</th><th>calls sent</th><th>state</th></tr>"
    out = f"<h2>Rate-limit budgets</h2>\n<table>\n<thead>{head}</thead>\n<tbody>\n"
    out += "\n".join(rows) + "\n</tbody>\n</table>\n"
    if usage:
        uhead = "<tr><th>scope</th><th>id</th><th>kind</th><th>usage (Meta)</th></tr>"
        out += f"<table>\n<thead>{uhead}</thead>\n<tbody>\n" + "\n".join(usage)
        out += "\n</tbody>\n</table>\n"
    return out


def render_webhooks(stats: WebhookStats | None) -> str:
    """The ``[webhooks]`` section: deliveries by outcome and what became of their changes;
    empty without a ``[webhooks]`` table (no outcome counted, not even at 0)."""
    if stats is None or not stats.requests:
        return ""

    def counts(counter: Mapping[str, int]) -> str:
        return ", ".join(f"{escape(outcome)} {n}" for outcome, n in sorted(counter.items()))

    return (
        "<h2>Webhooks</h2>\n"
        f"<p>Deliveries since start: {counts(stats.requests)}.<br>\n"
        f"Their changes: {counts(stats.changes) or '—'}.</p>\n"
    )


def render_status_page(
    snapshot: Snapshot,
    *,
    version: str,
    ready: bool,
    now: float,
    shard: str = "0/1",
    plugins: Iterable[Mapping[str, Any]] = (),
    graph_stats: Any = None,
    webhooks: WebhookStats | None = None,
) -> str:
    """The whole page for ``snapshot``; ``now`` (unix time) is used for the ages shown;
    ``graph_stats`` (the Graph client's counters) adds the rate-limit budgets, ``webhooks``
    (the listener's counts) the webhook deliveries; ``shard`` is this process's ``I/N``."""
    headers = (
        "source",
        "plugin",
        "state",
        "series",
        "last success",
        "last error",
        "next run",
        "disabled metrics",
        "skipped objects (since start)",
    )
    rows = "\n".join(_row(s, len(snapshot.samples.get(s.name, ())), now) for s in snapshot.sources)
    if not rows:
        rows = f'<tr><td colspan="{len(headers)}">no sources configured</td></tr>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>collectord {escape(version)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>collectord {escape(version)}</h1>
<p>Page generated {escape(_utc(now))}. Ready: {"yes" if ready else "no"}.
Shard: {escape(shard)}{" (not sharded)" if shard == "0/1" else ""}.
<a href="metrics">/metrics</a> · <a href="healthz">/healthz</a> · <a href="readyz">/readyz</a></p>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
{render_tokens(snapshot.sources, now)}{render_budgets(graph_stats, now)}{render_webhooks(webhooks)}\
{render_plugins(plugins)}
</body>
</html>
"""
