"""The shape of the code base: the flow of imports, the plugins' boundary, module sizes.

These hold what the layout promises a maintainer: packages that import in one direction
(no cycles, the simulator apart from the daemon), built-in plugins that use only
collectord's public API, and modules small enough to read in one sitting.
"""

from __future__ import annotations

import ast
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "collectord"
PLUGINS = ROOT / "plugins"
#: Lines a module may have; catalogue tables (data, not logic) may be longer.
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _runtime_imports(path: Path) -> Iterator[str]:
    """Modules imported when ``path`` is imported (not under ``if TYPE_CHECKING``)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {m for m in _runtime_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its modules is not a cycle of logic
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"


def test_the_daemon_does_not_import_the_simulator_at_start() -> None:
    graph = _graph()
    core = [n for n in graph if not n.startswith(("collectord.simulator", "collectord.demo"))]
    for name in core:
        if name in ("collectord.cli", "collectord.testing"):
            continue  # `simulate` and `--demo` import it when asked
        assert not any(m.startswith("collectord.simulator") for m in graph[name]), name


@pytest.mark.parametrize("path", sorted(PLUGINS.glob("*.py")), ids=lambda p: p.name)
def test_built_in_plugins_use_only_the_public_api(path: Path) -> None:
    import collectord

    for name in sorted(set(_runtime_imports(path))):
        if not name.startswith("collectord."):
            continue
        # `from collectord import X` yields "collectord.X": X must be in collectord.__all__
        attr = name.split(".", 1)[1]
        public = "." not in attr and attr in collectord.__all__
        assert public, f"{path.name} imports {name}, which is not collectord's public API"


def test_every_package_is_installed_by_a_plain_pip_install() -> None:
    """A package missing from pyproject's list works in the editable install the tests
    use, and is absent from a wheel (``pip install .``, the container): the demo fails."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in PACKAGE.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert found - listed == set(), "add them to [tool.setuptools] packages"


def test_modules_are_small() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for path in [*PACKAGE.rglob("*.py"), *PLUGINS.glob("*.py")]
        if (n := len(path.read_text().splitlines())) > MAX_LINES and "catalog" not in path.name
    }
    assert not too_long, f"modules over {MAX_LINES} lines: {too_long}"


#: Which packages each package may import at run time: the flow config → Graph layer →
#: plugin host → store → scheduling / exporter / web / sinks. The top-level modules
#: (model, errors, secret, logs) are open to all; the entry points (cli, daemon, demo,
#: testing, reference) may import anything.
ALLOWED: dict[str, set[str]] = {
    "config": {"plugin"},  # validates each source against its plugin's declared options
    "graph": {"config"},  # reads its settings (config.types)
    "plugin": {"graph", "config"},
    "store": {"plugin"},  # applies a PollResult
    "scheduling": {"config", "plugin", "store"},
    "exporter": {"store", "graph", "sinks"},  # reads the snapshot and the clients' counters
    "sinks": {"config"},
    "web": {"exporter", "store", "config"},  # config.web: [collector.web] and its TLS files
    "simulator": set(),
    # `collectord auth` and `check --online`: calls Meta through the Graph layer, reads a
    # loaded config (config.types) and asks the plugins which scopes they need.
    "auth": {"graph", "config", "plugin"},
    # discovery: lists a token's Pages through the Graph layer and builds child sources
    # (config.types) for the plugins that declare what they discover.
    "discovery": {"graph", "config", "plugin"},
    # `collectord backfill`: calls the plugins' history hooks with the daemon's Graph client
    # (a PollContext, plugin.kit's day windows) and reads the JSONL sink's record format.
    "backfill": {"plugin", "sinks"},
}


def test_packages_import_in_the_direction_of_the_flow() -> None:
    wrong: list[str] = []
    for name, imports in _graph().items():
        parts = name.split(".")
        if len(parts) < 3 or parts[1] not in ALLOWED:
            continue
        for target in imports:
            tparts = target.split(".")
            if len(tparts) < 3 or tparts[1] == parts[1]:
                continue  # a top-level module, or the same package
            if tparts[1] not in ALLOWED[parts[1]]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the flow:\n" + "\n".join(sorted(wrong))
