"""The documentation in the repository tells the truth about the code beside it.

docs/metrics.md is what the plugins' catalogues generate; every relative link leads to a
file (and heading) that exists; the README's commands are the ones CI runs; the config
examples load; every plugin key and section number the docs and code rely on is there.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
from pathlib import Path

import pytest
from prometheus_client.core import GaugeMetricFamily

from collectord import reference
from collectord.config.loader import load_config
from collectord.config.types import GraphConfig, JsonlSinkConfig, ScheduleConfig
from collectord.model import REQUIRED
from collectord.plugin.manager import load_source_plugins, plugin_map

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
README = REPO / "README.md"
MARKDOWN = (README, *sorted(DOCS.glob("*.md")))

_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.M)


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = _FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(h) for h in _HEADING.findall(text)}


def _code_blocks(path: Path, lang: str) -> list[str]:
    text = path.read_text(encoding="utf-8")
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


# -- docs/metrics.md --------------------------------------------------------------------


def test_metrics_reference_matches_the_plugins_catalogues() -> None:
    expected = reference.generate()
    actual = (DOCS / "metrics.md").read_text(encoding="utf-8")
    assert actual == expected, (
        "docs/metrics.md is out of date with the plugins' catalogues or the self-metrics; "
        f"regenerate it: {reference.COMMAND}"
    )


def test_metrics_reference_lists_every_catalogue_entry_and_self_metric() -> None:
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    builtin = reference.builtin_plugins()
    assert set(builtin) == {
        "facebook_page",
        "facebook_post",
        "facebook_app",
        "instagram_user",
        "instagram_media",
    }
    for name, loaded in builtin.items():
        assert f"## `{name}`" in text
        for spec in loaded.plugin.catalogue:
            assert f"| `{spec.graph_name}` | `{spec.prom_name}` |" in text
    for family in reference.self_metric_families():
        name = f"{family.name}_total" if family.type == "counter" else family.name
        assert f"| `{name}` | {family.type} |" in text


def test_a_self_metric_without_notes_stops_the_generator() -> None:
    families = [
        *reference.self_metric_families(),
        GaugeMetricFamily("collectord_new_thing", "Something new.", labels=("source",)),
    ]
    with pytest.raises(ValueError, match="collectord_new_thing"):
        reference.render_self_metrics(families)


def test_a_self_metric_that_went_away_stops_the_generator() -> None:
    families = [m for m in reference.self_metric_families() if m.name != "collectord_source_series"]
    with pytest.raises(ValueError, match="collectord_source_series"):
        reference.render_self_metrics(families)


# -- links and citations ----------------------------------------------------------------


@pytest.mark.parametrize("doc", MARKDOWN, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files_and_headings(doc: Path) -> None:
    text = _FENCE.sub("", doc.read_text(encoding="utf-8"))
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        path = (doc.parent / path_part).resolve() if path_part else doc
        if not path.exists():
            broken.append(f"{target}: no such file")
        elif anchor and path.suffix == ".md" and anchor not in _anchors(path):
            broken.append(f"{target}: no heading with anchor #{anchor}")
    assert not broken, f"{doc.relative_to(REPO)}: " + "; ".join(broken)


def test_docs_link_every_docs_page_from_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    for page in sorted(DOCS.glob("*.md")):
        assert f"(docs/{page.name})" in readme, f"README.md does not link docs/{page.name}"


_OUTSIDE = re.compile(r"graph-api\.md|\bDESIGN\.md|\bseeds/|\.\./shared")


def test_nothing_cites_files_outside_the_repository() -> None:
    """A maintainer who clones the repository can follow every citation."""
    files = [README, *DOCS.rglob("*.md"), REPO / "collector.toml"]
    for folder in ("collectord", "plugins", "tests", "deploy"):
        files += (p for p in (REPO / folder).rglob("*") if p.suffix in {".py", ".yml", ".yaml"})
    here = Path(__file__).resolve()
    citing = [
        f"{path.relative_to(REPO)}: {match.group(0)}"
        for path in files
        if path.resolve() != here
        for match in [_OUTSIDE.search(path.read_text(encoding="utf-8"))]
        if match
    ]
    assert not citing


def test_every_cited_graph_api_section_exists() -> None:
    """Code cites sections of the Graph API facts by number ("docs/meta-facts.md 6.2"); each
    number must be a heading of docs/meta-facts.md."""
    headings = set(
        re.findall(
            r"^#{2,3} (\d+(?:\.\d+)?)[. ]",
            (DOCS / "meta-facts.md").read_text(encoding="utf-8"),
            re.M,
        )
    )
    assert {str(n) for n in range(14)} <= headings
    cited: set[str] = set()
    for folder in ("collectord", "plugins", "tests"):
        for path in (REPO / folder).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            cited.update(re.findall(r"meta-facts\.md,? (\d+(?:\.\d+)?)", text))
    assert cited, "no citation found: has the citation format changed?"
    assert sorted(cited - headings) == []


# -- the README's commands --------------------------------------------------------------


def test_readme_first_command_runs_the_demo_and_second_is_what_ci_runs() -> None:
    commands = [block.strip() for block in _code_blocks(README, "sh")]
    assert commands[0] == (
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/collectord run --demo"
    )
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert commands[1] in ci_lines, ".ci/run must run the README's test command verbatim"
    assert shlex.split(commands[1])[-3:] == [".venv/bin/python", "-m", "pytest"]


# -- config examples and keys -----------------------------------------------------------


def _load_example(tmp_path: Path, toml: str) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(toml, encoding="utf-8")
    environ = {
        "FB_APP_ID": "4321",
        "FB_APP_SECRET": "appsecret0123456789",
        "ACME_PAGE_TOKEN": "EAAexamplepagetoken",
        "MY_PAGE_TOKEN": "EAAexamplepagetoken",
        "ACME_IG_TOKEN": "EAAexampleigtoken",
        "AGENCY_SYSTEM_USER_TOKEN": "EAAexamplesystemusertoken",
    }
    load_config(path, plugin_map(load_source_plugins()), environ=environ)


def test_readme_first_page_config_loads(tmp_path: Path) -> None:
    (example,) = [b for b in _code_blocks(README, "toml") if b.startswith("# my.toml")]
    _load_example(tmp_path, example)


@pytest.mark.parametrize("index", [0, 1, 2])  # 2: a discovering source
def test_configuration_examples_load(tmp_path: Path, index: int) -> None:
    _load_example(tmp_path, _code_blocks(DOCS / "configuration.md", "toml")[index])


def _shown(default: object) -> str:
    """How docs/configuration.md writes a default in its tables."""
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if default is None or default == ():
        return "none"
    if isinstance(default, int | float):
        return f"`{default}`"
    return f'`"{default}"`'


def test_configuration_documents_every_key_with_its_default() -> None:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    host_keys = ["listen", "log_level", "log_format", "state_dir", "plugin_dirs"]
    for cls in (GraphConfig, ScheduleConfig, JsonlSinkConfig):
        # fields kept out of repr are bookkeeping (which keys the user set), not keys
        host_keys += [f.name for f in dataclasses.fields(cls) if f.repr]
    for key in host_keys:
        assert f"| `{key}` |" in text, f"docs/configuration.md does not document {key!r}"
    for name, loaded in load_source_plugins().items():
        for option in loaded.plugin.options:
            expected = "(required)" if option.default is REQUIRED else _shown(option.default)
            assert f"| `{option.name}` | {expected} |" in text, (
                f"docs/configuration.md: {name}'s {option.name!r} should show {expected}"
            )
