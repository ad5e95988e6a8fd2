"""The simulator's modules import one another one way only (no import cycles, not even
through imports made for type checking), so any of them can be imported first."""

from __future__ import annotations

import ast
from pathlib import Path

import collectord.simulator

PACKAGE = "collectord.simulator"


def imports() -> dict[str, set[str]]:
    """Each simulator module and the simulator modules it imports."""
    root = Path(collectord.simulator.__file__).parent
    names = {p.stem: p for p in root.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for stem, path in names.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE):
                if node.module == PACKAGE:
                    found.update(a.name if a.name in names else "__init__" for a in node.names)
                else:
                    found.add(node.module.rsplit(".", 1)[1])
        graph[stem] = found - {stem}
    return graph


def cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A chain of imports leading from ``start`` back to it, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph.get(node, ())):
            if nxt == start:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_the_simulator_has_no_import_cycles() -> None:
    graph = imports()
    assert "world" in graph
    assert "world_view" in graph["page"], "the walk sees imports made for type checking"
    cycles = {m: c for m in graph if (c := cycle_from(graph, m)) is not None}
    assert cycles == {}


def test_a_cycle_would_be_found() -> None:
    assert cycle_from({"a": {"b"}, "b": {"a"}}, "a") == ["a", "b", "a"]
