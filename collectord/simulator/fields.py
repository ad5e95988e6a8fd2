"""Parsing of the Graph API ``fields`` parameter, field expansion included.

``id,shares{count},insights.metric(a,b).period(lifetime),comments.summary(true).limit(0)``
becomes a list of :class:`FieldSpec`: a name, its ``.modifier(args)`` pairs and its
``{sub,fields}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectord.simulator.base import SimError
from collectord.simulator.errors import invalid_parameter


@dataclass(frozen=True)
class FieldSpec:
    """One requested field: ``name``, modifiers (``metric`` → ``"a,b"``), sub-fields."""

    name: str
    modifiers: dict[str, str] = field(default_factory=dict)
    sub: tuple[FieldSpec, ...] | None = None


def split_top_level(text: str) -> list[str]:
    """Split on commas that are outside ``()`` and ``{}``."""
    parts: list[str] = []
    depth = 0
    start = 0
    for i, ch in enumerate(text):
        if ch in "({":
            depth += 1
        elif ch in ")}":
            depth -= 1
            if depth < 0:
                raise invalid_parameter("Syntax error in the fields parameter")
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise invalid_parameter("Syntax error in the fields parameter")
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _closing(text: str, start: int, open_ch: str, close_ch: str) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_ch:
            depth += 1
        elif text[i] == close_ch:
            depth -= 1
            if depth == 0:
                return i
    raise invalid_parameter("Syntax error in the fields parameter")


def parse_field(text: str) -> FieldSpec:
    """Parse one field such as ``insights.metric(a,b).period(day){values}``."""
    sub: tuple[FieldSpec, ...] | None = None
    brace = text.find("{")
    if brace >= 0:
        end = _closing(text, brace, "{", "}")
        sub = tuple(parse_fields(text[brace + 1 : end]))
        text = text[:brace] + text[end + 1 :]
    name, _, rest = text.partition(".")
    modifiers: dict[str, str] = {}
    while rest:
        paren = rest.find("(")
        if paren < 0:
            raise invalid_parameter(f"Syntax error in the fields parameter near {rest!r}")
        end = _closing(rest, paren, "(", ")")
        modifiers[rest[:paren].strip()] = rest[paren + 1 : end].strip()
        rest = rest[end + 1 :].lstrip(".")
    if not name.strip():
        raise invalid_parameter("Syntax error in the fields parameter")
    return FieldSpec(name.strip(), modifiers, sub)


def parse_fields(text: str | None) -> list[FieldSpec]:
    """All fields of a ``fields`` value (empty for ``None`` or ``""``)."""
    return [parse_field(part) for part in split_top_level(text or "")]


def metric_names_in(text: str | None) -> list[str]:
    """Every metric named in ``.metric(...)`` modifiers anywhere in ``fields``."""
    found: list[str] = []

    def walk(specs: list[FieldSpec] | tuple[FieldSpec, ...]) -> None:
        for spec in specs:
            found.extend(m.strip() for m in spec.modifiers.get("metric", "").split(",") if m)
            if spec.sub:
                walk(spec.sub)

    try:
        walk(parse_fields(text))
    except SimError:  # a syntax error is reported by the handler that reads the fields
        return []
    return found


def format_fields(specs: list[FieldSpec] | tuple[FieldSpec, ...]) -> str:
    """The ``fields`` text of ``specs`` (inverse of :func:`parse_fields`)."""
    out = []
    for spec in specs:
        text = spec.name + "".join(f".{k}({v})" for k, v in spec.modifiers.items())
        if spec.sub:
            text += "{" + format_fields(spec.sub) + "}"
        out.append(text)
    return ",".join(out)
