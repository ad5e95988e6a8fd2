"""Loading collector.toml: every accepted form, and every problem reported at once."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from collectord.config.loader import (
    format_duration,
    load_config,
    parse_duration,
    read_plugin_dirs,
    resolve_config_path,
)
from collectord.config.types import Config
from collectord.errors import ConfigError
from collectord.model import MetricSpec, Option, Sample
from collectord.plugin.api import PollContext, SourcePlugin
from collectord.secret import Secret

TOKEN = "EAAB-very-secret-token-123"
APP_SECRET = "app-secret-456"


class FakePage(SourcePlugin):
    """A plugin with one key of every type."""

    name = "fake_page"
    options = (
        Option("page_id"),
        Option("max_age", "duration", "28d"),
        Option("max_posts", "int", 100, minimum=1),
        Option("ratio", "float", 0.5),
        Option("include_stories", "bool", True),
        Option("period", "str", "day", choices=("day", "week")),
        Option("breakdowns", "str_list", None),
        Option("webhook_key", "str", None, secret=True),
    )
    catalogue = (
        MetricSpec("page_views_total", "fake_page_views", "fast", ("day",)),
        MetricSpec("page_fans", "fake_page_fans", "daily", ("lifetime",)),
        MetricSpec("page_rare", "fake_page_rare", "daily", ("day",), default=False),
    )

    def validate(self, options: Mapping[str, Any]) -> list[str]:
        if options["period"] == "week" and options["breakdowns"]:
            return ["breakdowns: not available with period 'week'"]
        return []

    async def collect(self, ctx: PollContext) -> list[Sample]:
        return []


class FakeApp(SourcePlugin):
    """A plugin whose token defaults to the app token and that accepts any app_ metric."""

    name = "fake_app"
    options = (Option("app_id"),)
    catalogue = (MetricSpec("app_active_users", "fake_app_active_users", "daily", ("day",)),)

    def default_access_token(self, app_id: str | None, app_secret: Secret | None) -> str | None:
        if app_id and app_secret:
            return f"{app_id}|{app_secret.reveal()}"
        return None

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        if graph_name.startswith("app_"):
            return MetricSpec(graph_name, f"fake_app_{graph_name}", "daily", ("day",))
        return None

    async def collect(self, ctx: PollContext) -> list[Sample]:
        return []


PLUGINS: dict[str, SourcePlugin] = {"fake_page": FakePage(), "fake_app": FakeApp()}

PAGE_SOURCE = """
[[source]]
name = "acme-page"
plugin = "fake_page"
access_token = "tok"
page_id = "123"
"""


def load(tmp_path: Path, text: str, env: Mapping[str, str] | None = None, **kw: Any) -> Config:
    path = tmp_path / "collector.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, PLUGINS, environ=env or {}, **kw)


def problems(
    tmp_path: Path, text: str, env: Mapping[str, str] | None = None, **kw: Any
) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env, **kw)
    return info.value.problems


def file_of(tmp_path: Path) -> str:
    return str(tmp_path / "collector.toml")


# -- durations --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("24h", 86400), ("28d", 28 * 86400), ("1h30m", 5400),
     ("500ms", 0.5), ("1.5h", 5400), ("0s", 0)],
)  # fmt: skip
def test_parse_duration_accepts_units(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["90", "15 minutes", "1x", "", "h", "-5s", "1h 30m"])
def test_parse_duration_rejects_other_forms_saying_the_expected_one(text: str) -> None:
    with pytest.raises(ValueError, match=r'such as "90s"'):
        parse_duration(text)


def test_format_duration_round_trips() -> None:
    for seconds in (0.5, 90, 900, 5400, 86400, 90061):
        assert parse_duration(format_duration(seconds)) == seconds


# -- the file itself ----------------------------------------------------------------------


def test_config_path_prefers_cli_then_environment_then_default() -> None:
    env = {"COLLECTORD_CONFIG": "/etc/collectord.toml"}
    assert resolve_config_path("mine.toml", env) == Path("mine.toml")
    assert resolve_config_path(None, env) == Path("/etc/collectord.toml")
    assert resolve_config_path(None, {}) == Path("collector.toml")


def test_missing_file_is_one_line_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as info:
        load_config(path, PLUGINS, environ={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}: cannot read the config file")


def test_toml_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    found = problems(tmp_path, '[collector]\nlisten = "127.0.0.1:9464"\nlog_level = \n')
    assert found == [f"{file_of(tmp_path)}: line 3, column 13: invalid TOML: Invalid value"]


def test_empty_file_gives_defaults_and_warns_about_no_sources(tmp_path: Path) -> None:
    config = load(tmp_path, "")
    assert config.collector.listen_host == "127.0.0.1"
    assert config.collector.listen_port == 9464
    assert config.graph.version == "v26.0"
    assert config.schedule.fast_interval == 900
    assert config.sources == ()
    assert config.jsonl is None
    assert any("no [[source]]" in warning for warning in config.warnings)


# -- values -------------------------------------------------------------------------------


def test_every_section_is_read(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [collector]
        listen = "[::1]:9100"
        log_level = "DEBUG"
        log_format = "json"
        state_dir = "/var/lib/collectord"
        plugin_dirs = ["/opt/plugins", "more"]
        [graph]
        base_url = "http://127.0.0.1:8080/"
        version = "v25.0"
        app_id = "42"
        app_secret = "s"
        timeout = "1m"
        max_concurrency = 2
        usage_ceiling = 1
        [schedule]
        fast_interval = "20m"
        daily_interval = "12h"
        jitter = "0s"
        [sink.jsonl]
        path = "/data/samples.jsonl"
        """
        + PAGE_SOURCE,
    )
    assert (config.collector.listen_host, config.collector.listen_port) == ("::1", 9100)
    assert (config.collector.log_level, config.collector.log_format) == ("debug", "json")
    assert config.collector.state_dir == Path("/var/lib/collectord")
    assert config.collector.plugin_dirs == (Path("/opt/plugins"), tmp_path / "more")
    assert config.graph.base_url == "http://127.0.0.1:8080"
    assert (config.graph.version, config.graph.app_id) == ("v25.0", "42")
    assert config.graph.app_secret == Secret("s")
    assert (config.graph.timeout, config.graph.max_concurrency) == (60.0, 2)
    assert config.graph.usage_ceiling == 1.0
    assert (config.schedule.fast_interval, config.schedule.daily_interval) == (1200, 43200)
    assert config.schedule.jitter == 0
    assert config.jsonl is not None
    assert (config.jsonl.max_bytes, config.jsonl.backups) == (104_857_600, 5)
    assert config.warnings == ()


def test_plugin_options_are_converted_and_defaults_filled(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        PAGE_SOURCE + 'max_age = "7d"\nbreakdowns = ["age"]\nwebhook_key = "k"\nratio = 2\n',
    )
    options = config.sources[0].options
    assert options["page_id"] == "123"
    assert options["max_age"] == 7 * 86400
    assert options["max_posts"] == 100
    assert options["ratio"] == 2.0
    assert options["include_stories"] is True
    assert options["period"] == "day"
    assert options["breakdowns"] == ("age",)
    assert isinstance(options["webhook_key"], Secret)
    assert options["webhook_key"].reveal() == "k"


def test_relative_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text(TOKEN)
    config = load(
        tmp_path,
        """
        [collector]
        state_dir = "state"
        plugin_dirs = ["plugins"]
        [sink.jsonl]
        path = "out/samples.jsonl"
        [[source]]
        name = "a"
        plugin = "fake_page"
        page_id = "1"
        access_token_file = "secrets/token"
        """,
    )
    assert config.collector.state_dir == tmp_path / "state"
    assert config.collector.plugin_dirs == (tmp_path / "plugins",)
    assert config.jsonl is not None
    assert config.jsonl.path == tmp_path / "out" / "samples.jsonl"
    assert config.sources[0].access_token == Secret(TOKEN)


def test_default_state_dir_is_beside_the_config_file(tmp_path: Path) -> None:
    assert load(tmp_path, "").collector.state_dir == tmp_path / ".collectord"


def test_file_values_are_stripped_and_typed(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(f"  {TOKEN}\n\n")
    (tmp_path / "posts").write_text("7\n")
    config = load(
        tmp_path,
        PAGE_SOURCE.replace('access_token = "tok"', f'access_token_file = "{tmp_path}/token"')
        + 'max_posts_file = "posts"\n',
    )
    assert config.sources[0].access_token == Secret(TOKEN)
    assert config.sources[0].options["max_posts"] == 7


def test_interpolation_in_strings_lists_and_dollar_escape(tmp_path: Path) -> None:
    env = {"TOKEN": TOKEN, "PAGE": "777", "DIR": "/srv", "V": "26"}
    config = load(
        tmp_path,
        """
        [collector]
        plugin_dirs = ["${DIR}/plugins", "/literal/$$HOME"]
        [graph]
        version = "v${V}.0"
        [[source]]
        name = "a"
        plugin = "fake_page"
        access_token = "${TOKEN}"
        page_id = "${PAGE}"
        breakdowns = ["${PAGE}", "cost$$"]
        """,
        env,
    )
    source = config.sources[0]
    assert source.access_token == Secret(TOKEN)
    assert source.options["page_id"] == "777"
    assert source.options["breakdowns"] == ("777", "cost$")
    assert config.collector.plugin_dirs == (Path("/srv/plugins"), Path("/literal/$HOME"))
    assert config.graph.version == "v26.0"


def test_interpolated_values_are_not_expanded_twice(tmp_path: Path) -> None:
    config = load(tmp_path, PAGE_SOURCE.replace('"tok"', '"${T}"'), {"T": "a${B}$$"})
    assert config.sources[0].access_token == Secret("a${B}$$")


# -- sources ------------------------------------------------------------------------------


def test_sources_inherit_and_override_schedule_and_graph(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [graph]
        version = "v26.0"
        timeout = "30s"
        [schedule]
        fast_interval = "20m"
        jitter = "10s"
        [[source]]
        name = "plain"
        plugin = "fake_page"
        access_token = "t"
        page_id = "1"
        [[source]]
        name = "special"
        plugin = "fake_page"
        access_token = "t"
        page_id = "2"
        fast_interval = "30m"
        daily_interval = "2d"
        [source.graph]
        version = "v25.0"
        max_concurrency = 1
        """,
    )
    plain, special = config.sources
    assert plain.schedule == config.schedule
    assert plain.graph == config.graph
    assert (special.schedule.fast_interval, special.schedule.daily_interval) == (1800, 172800)
    assert special.schedule.jitter == 10
    assert (special.graph.version, special.graph.max_concurrency) == ("v25.0", 1)
    assert special.graph.timeout == 30
    assert config.graph.version == "v26.0"


def test_default_metric_set_versus_explicit_list(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        PAGE_SOURCE
        + PAGE_SOURCE.replace("acme-page", "picked")
        + 'metrics = ["page_rare", "page_views_total", "page_rare"]\n',
    )
    default, picked = config.sources
    assert default.metrics is None
    assert [s.graph_name for s in default.specs] == ["page_views_total", "page_fans"]
    assert default.cadences() == ("fast", "daily")
    assert picked.metrics == ("page_rare", "page_views_total")
    assert [s.graph_name for s in picked.specs] == ["page_views_total", "page_rare"]


def test_plugin_may_build_specs_for_metrics_outside_its_catalogue(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
        [graph]
        app_id = "42"
        app_secret = "${APP_SECRET}"
        [[source]]
        name = "app"
        plugin = "fake_app"
        app_id = "42"
        metrics = ["app_installs", "app_active_users"]
        """,
        {"APP_SECRET": APP_SECRET},
    )
    source = config.sources[0]
    assert [s.graph_name for s in source.specs] == ["app_active_users", "app_installs"]
    assert source.access_token == Secret(f"42|{APP_SECRET}")


def test_short_intervals_warn_but_load(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        '[schedule]\nfast_interval = "1m"\n' + PAGE_SOURCE + 'daily_interval = "10s"\n',
    )
    assert config.schedule.fast_interval == 60
    assert config.sources[0].schedule.daily_interval == 10
    file = file_of(tmp_path)
    assert len(config.warnings) == 2
    assert config.warnings[0].startswith(f"{file}: [schedule]: fast_interval: 1m is shorter")
    assert config.warnings[1].startswith(f'{file}: source "acme-page": daily_interval: 10s')


# -- problems -----------------------------------------------------------------------------


def test_unknown_keys_and_tables_suggest_the_nearest(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        log_level = "info"
        [colector]
        listen = "x"
        [graph]
        verison = "v26.0"
        [sink.jsnl]
        path = "x"
        """
        + PAGE_SOURCE
        + "max_posst = 3\n",
    )
    file = file_of(tmp_path)
    assert found == [
        f"{file}: log_level: unknown top-level key (it belongs in the [collector] table)",
        f"{file}: [colector]: unknown table (did you mean '[collector]'?)",
        f"{file}: [graph]: verison: unknown key (did you mean 'version'?)",
        f"{file}: source \"acme-page\": max_posst: unknown key (did you mean 'max_posts'?)",
        f"{file}: [sink]: jsnl: unknown sink (did you mean 'jsonl'?)",
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("max_posts = true", "max_posts: expected an integer, got a boolean"),
        ('max_posts = "5"', "max_posts: expected an integer, got a string"),
        ("max_posts = 0", "max_posts: must be at least 1"),
        ('ratio = "x"', "ratio: expected a number, got a string"),
        ('include_stories = "yes"', "include_stories: expected a boolean (true or false), got a string"),
        ("page_id = 123", 'page_id: expected a string, got an integer (write it in quotes: "123")'),
        ('page_id = ""', "page_id: is empty"),
        ('breakdowns = "age"', "breakdowns: expected an array of strings, got a string"),
        ("breakdowns = [1]", "breakdowns: expected an array of strings, item 1 is an integer"),
        ('period = "wek"', "period: expected one of 'day', 'week', got 'wek' (did you mean 'week'?)"),
        ('max_age = "0d"', "max_age: must be positive"),
    ],
)  # fmt: skip
def test_plugin_option_problems(tmp_path: Path, line: str, expected: str) -> None:
    text = PAGE_SOURCE.replace('page_id = "123"\n', "") + (
        line + "\n" if line.startswith("page_id") else f'page_id = "123"\n{line}\n'
    )
    assert problems(tmp_path, text) == [f'{file_of(tmp_path)}: source "acme-page": {expected}']


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[collector]\nlisten = "9464"', "[collector]: listen: expected HOST:PORT"),
        ('[collector]\nlisten = "127.0.0.1:70000"', "[collector]: listen: port must be between"),
        ('[collector]\nlog_level = "loud"', "[collector]: log_level: expected one of debug, info"),
        ('[collector]\nplugin_dirs = "p"', "[collector]: plugin_dirs: expected an array of strings"),
        ('[graph]\nbase_url = "ftp://x"', "[graph]: base_url: expected an http:// or https:// URL"),
        ('[graph]\nversion = "26.0"', '[graph]: version: expected a Graph API version such as "v26.0"'),
        ('[graph]\napp_id = "app42"', "[graph]: app_id: expected the app's numeric id"),
        ("[graph]\ntimeout = 30", '[graph]: timeout: expected a duration such as "90s"'),
        ("[graph]\nmax_concurrency = 0", "[graph]: max_concurrency: must be at least 1"),
        ("[graph]\nmax_concurrency = 2.5", "[graph]: max_concurrency: expected an integer, got a float"),
        ("[graph]\nusage_ceiling = 1.5", "[graph]: usage_ceiling: must be above 0 and at most 1"),
        ('[schedule]\nfast_interval = "15"', "[schedule]: fast_interval: expected a duration"),
        ('[schedule]\ndaily_interval = "1y"', "[schedule]: daily_interval: expected a duration"),
        ('[schedule]\nfast_interval = "0s"', "[schedule]: fast_interval: must be positive"),
        ("[sink.jsonl]\nmax_bytes = 1048576", "[sink.jsonl]: path: missing required key"),
        ('[sink.jsonl]\npath = "x"\nbackups = -1', "[sink.jsonl]: backups: must be between 0 and 1000, got -1"),
        ("collector = 3", "[collector]: expected a table, got an integer"),
    ],
)  # fmt: skip
def test_section_problems(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text + "\n" + PAGE_SOURCE)
    assert len(found) == 1
    assert found[0].startswith(f"{file_of(tmp_path)}: {expected}")


def test_source_must_be_an_array_of_tables(tmp_path: Path) -> None:
    assert problems(tmp_path, '[source]\nname = "x"\n') == [
        f"{file_of(tmp_path)}: [[source]]: expected an array of tables, got a table"
    ]


def test_zero_jitter_is_allowed(tmp_path: Path) -> None:
    assert load(tmp_path, '[schedule]\njitter = "0s"\n').schedule.jitter == 0


def test_source_problems_are_reported_together(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        [[source]]
        plugin = "fake_page"
        [[source]]
        name = "acme-page"
        plugin = "fake_pgae"
        [[source]]
        name = "b"
        plugin = "fake_page"
        access_token = "t"
        page_id = "1"
        metrics = ["page_view_total", "fake_page_fans"]
        period = "week"
        breakdowns = ["age"]
        [[source]]
        name = "b"
        plugin = "fake_page"
        access_token = "t"
        page_id = "2"
        [[source]]
        name = "bad name!"
        plugin = "nothing_like_it"
        """,
    )
    file = file_of(tmp_path)
    assert found == [
        f"{file}: source #1: name: missing required key",
        f"{file}: source #1: access_token: missing required key"
        " (set access_token or access_token_file)",
        f"{file}: source #1: page_id: missing required key",
        f"{file}: source \"acme-page\": plugin: unknown plugin 'fake_pgae'"
        " (did you mean 'fake_page'?)",
        f"{file}: source \"b\": metrics: unknown metric 'page_view_total' for plugin"
        " 'fake_page' (did you mean 'page_views_total'?)",
        f"{file}: source \"b\": metrics: unknown metric 'fake_page_fans': list metrics by"
        " their Graph API name (did you mean 'page_fans'?)",
        f"{file}: source \"b\": breakdowns: not available with period 'week'",
        f"{file}: source #4: name: duplicate source name 'b' (also source \"b\")",
        f"{file}: source #5: name: may hold only letters, digits, '_', '.' and '-'",
        f"{file}: source #5: plugin: unknown plugin 'nothing_like_it'"
        " (loaded plugins: fake_app, fake_page)",
    ]


def test_app_plugin_without_app_credentials_needs_a_token(tmp_path: Path) -> None:
    found = problems(tmp_path, '[[source]]\nname = "app"\nplugin = "fake_app"\napp_id = "1"\n')
    assert found == [
        f'{file_of(tmp_path)}: source "app": access_token: missing required key'
        " (set access_token or access_token_file, or [graph] app_id and app_secret for the"
        " app token)"
    ]


def test_per_source_graph_table_is_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, PAGE_SOURCE + '[source.graph]\nversion = "latest"\nbase = "x"\n')
    file = file_of(tmp_path)
    assert found == [
        f'{file}: source "acme-page" [graph]: version: expected a Graph API version such as'
        " \"v26.0\", got 'latest'",
        f"{file}: source \"acme-page\" [graph]: base: unknown key (did you mean 'base_url'?)",
    ]


def test_value_and_file_together_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN)
    found = problems(tmp_path, PAGE_SOURCE + 'access_token_file = "token"\n')
    assert found == [
        f'{file_of(tmp_path)}: source "acme-page": access_token:'
        " set either access_token or access_token_file, not both"
    ]


def test_unreadable_file_names_the_path_only(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    found = problems(tmp_path, '[graph]\napp_secret_file = "absent"\n' + PAGE_SOURCE)
    assert found == [
        f"{file_of(tmp_path)}: [graph]: app_secret_file: cannot read {missing}:"
        " No such file or directory"
    ]


def test_missing_variables_name_the_variable_and_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[graph]\napp_id = "${FB_APP_ID}"\n'
        '[collector]\nplugin_dirs = ["${A}/${B}", "${A}"]\n'
        + PAGE_SOURCE.replace('"tok"', '"${ACME_TOKEN}"')
        + 'access_token_file = "${NOPE}"\n',
    )
    file = file_of(tmp_path)
    assert found == [
        f"{file}: [collector]: plugin_dirs: environment variables A, B are not set",
        f"{file}: [graph]: app_id: environment variable FB_APP_ID is not set",
        f'{file}: source "acme-page": access_token:'
        " set either access_token or access_token_file, not both",
    ]
    found = problems(tmp_path, PAGE_SOURCE.replace('"tok"', '"${ACME_TOKEN}"'))
    assert found == [
        f'{file}: source "acme-page": access_token: environment variable ACME_TOKEN is not set'
    ]


def test_malformed_references_are_errors(tmp_path: Path) -> None:
    found = problems(tmp_path, PAGE_SOURCE.replace('"123"', '"${PAGE"'))
    assert found == [
        f'{file_of(tmp_path)}: source "acme-page": page_id:'
        " '${' without a closing '}' (write $$ for a literal $)"
    ]


def test_lone_dollar_is_kept(tmp_path: Path) -> None:
    config = load(tmp_path, PAGE_SOURCE.replace('"tok"', '"a$b"'))
    assert config.sources[0].access_token == Secret("a$b")


#: A config whose every secret and id comes from variables (``--demo`` accepts it unset:
#: tests/unit/test_demo.py).
UNSET_VARIABLES = """
    [graph]
    base_url = "${SIM_URL}"
    app_id = "${FB_APP_ID}"
    app_secret = "${FB_APP_SECRET}"
    [[source]]
    name = "acme-page"
    plugin = "fake_page"
    access_token = "${ACME_PAGE_TOKEN}"
    page_id = "${ACME_PAGE_ID}"
    [[source]]
    name = "app"
    plugin = "fake_app"
    app_id = "${FB_APP_ID}"
    """


def test_unset_variables_are_problems(tmp_path: Path) -> None:
    found = "\n".join(problems(tmp_path, UNSET_VARIABLES))
    for variable in ("SIM_URL", "FB_APP_ID", "FB_APP_SECRET", "ACME_PAGE_TOKEN", "ACME_PAGE_ID"):
        assert f"environment variable {variable} is not set" in found


# -- secrets ------------------------------------------------------------------------------


def test_secrets_never_show(tmp_path: Path) -> None:
    env = {"TOKEN": TOKEN, "APP_SECRET": APP_SECRET}
    config = load(
        tmp_path,
        """
        [graph]
        app_id = "42"
        app_secret = "${APP_SECRET}"
        [[source]]
        name = "a"
        plugin = "fake_page"
        access_token = "${TOKEN}"
        page_id = "1"
        webhook_key = "${TOKEN}"
        [[source]]
        name = "app"
        plugin = "fake_app"
        app_id = "42"
        """,
        env,
    )
    shown = repr(config) + str(config)
    assert TOKEN not in shown
    assert APP_SECRET not in shown
    assert config.sources[0].access_token is not None
    assert config.sources[0].access_token.reveal() == TOKEN
    assert config.sources[1].access_token == Secret(f"42|{APP_SECRET}")


def test_errors_never_show_secret_values(tmp_path: Path) -> None:
    env = {"TOKEN": TOKEN}
    with pytest.raises(ConfigError) as info:
        load(
            tmp_path,
            """
            [graph]
            app_secret = 12345678
            [[source]]
            name = "a"
            plugin = "fake_page"
            access_token = "${TOKEN}"
            page_id = "1"
            webhook_key = 987654321
            max_posts = "${TOKEN}"
            """,
            env,
        )
    shown = str(info.value) + repr(info.value)
    assert len(info.value.problems) == 3
    assert TOKEN not in shown
    assert "12345678" not in shown
    assert "987654321" not in shown


# -- plugin_dirs before plugins -----------------------------------------------------------


def test_plugin_dirs_can_be_read_before_the_plugins(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text('[collector]\nplugin_dirs = ["${HOME_DIR}/p"]\n[[source]]\nplugin = "x"\n')
    (tmp_path / "p").mkdir()
    assert read_plugin_dirs(path, environ={"HOME_DIR": str(tmp_path)}) == (tmp_path / "p",)
    assert read_plugin_dirs(path, environ={}) == ()
    # A folder that does not exist is named by how the file writes it, not by its value.
    with pytest.raises(ConfigError) as info:
        read_plugin_dirs(path, environ={"HOME_DIR": "/secret-home"})
    assert info.value.problems == [
        f"{path}: [collector]: plugin_dirs: item 1 is not a directory "
        "(the value comes from ${HOME_DIR}/p, not shown)"
    ]


# -- the shipped example ------------------------------------------------------------------

EXAMPLE = """
[collector]
listen = "127.0.0.1:9464"      # HTTP: /metrics, /healthz, /readyz, /
log_level = "info"
log_format = "console"         # "json" for services
state_dir = ".collectord"      # persisted state (last samples, token info)
# plugin_dirs = ["./my-plugins"] # extra folders to load plugins from

[graph]
base_url = "https://graph.facebook.com"
version = "v26.0"
app_id = "${FB_APP_ID}"        # optional; with app_secret enables appsecret_proof
app_secret = "${FB_APP_SECRET}"
timeout = "30s"
max_concurrency = 8            # requests in flight to the Graph API
usage_ceiling = 0.75           # slow down as any rate-limit usage header nears this share

[schedule]
fast_interval = "15m"          # metrics that Meta refreshes about every 15 minutes
daily_interval = "24h"         # metrics that Meta refreshes once a day
jitter = "30s"

[[source]]
name = "acme-page"             # unique; becomes the `source` label
plugin = "facebook_page"
access_token = "${ACME_PAGE_TOKEN}"   # or access_token_file = "/run/secrets/acme"
page_id = "1234567890"
# metrics = ["page_views_total", ...]  # optional: replaces the plugin's default set

[sink.jsonl]                   # optional
path = "samples.jsonl"
max_bytes = 104857600          # rotate past this size
backups = 5
"""


class FacebookPage(SourcePlugin):
    name = "facebook_page"
    options = (Option("page_id"),)
    catalogue = (MetricSpec("page_views_total", "facebook_page_views", "fast", ("day",)),)

    async def collect(self, ctx: PollContext) -> list[Sample]:
        return []


def test_design_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(EXAMPLE, encoding="utf-8")
    env = {"FB_APP_ID": "1234", "FB_APP_SECRET": APP_SECRET, "ACME_PAGE_TOKEN": TOKEN}
    config = load_config(path, {"facebook_page": FacebookPage()}, environ=env)
    assert config.path == path
    assert config.warnings == ()
    assert config.graph.app_id == "1234"
    assert config.collector.state_dir == tmp_path / ".collectord"
    (source,) = config.sources
    assert (source.name, source.plugin, source.options["page_id"]) == (
        "acme-page",
        "facebook_page",
        "1234567890",
    )
    assert source.access_token == Secret(TOKEN)
    assert config.jsonl is not None
    assert config.jsonl.path == tmp_path / "samples.jsonl"


class PickyPage(SourcePlugin):
    """Accepts ``page_`` names it does not know with a warning, rejects ``old_`` ones."""

    name = "picky_page"
    catalogue = (MetricSpec("page_views_total", "picky_page_views", "fast", ("day",)),)

    def spec_for(self, graph_name: str) -> MetricSpec | None:
        if graph_name.startswith("old_"):
            raise ConfigError([f"{graph_name!r} was retired", "and nothing replaced it"])
        if graph_name.startswith("page_"):
            warnings.warn(f"{graph_name!r} is new to me", stacklevel=2)
            return MetricSpec(graph_name, f"picky_{graph_name}", "daily")
        return None

    async def collect(self, ctx: PollContext) -> list[Sample]:
        return []


PICKY_SOURCE = """
[[source]]
name = "p"
plugin = "picky_page"
access_token = "t"
"""


def test_a_plugin_rejects_a_metric_name_in_its_own_words(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(PICKY_SOURCE + 'metrics = ["old_reach", "page_views_total", "nope"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {"picky_page": PickyPage()}, environ={})
    file = file_of(tmp_path)
    assert info.value.problems == [
        f"{file}: source \"p\": metrics: 'old_reach' was retired",
        f'{file}: source "p": metrics: and nothing replaced it',
        f"{file}: source \"p\": metrics: unknown metric 'nope' for plugin 'picky_page'",
    ]


def test_a_plugin_warning_about_a_metric_name_is_a_config_warning(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(PICKY_SOURCE + 'metrics = ["page_new", "page_views_total"]\n')
    config = load_config(path, {"picky_page": PickyPage()}, environ={})
    assert [s.graph_name for s in config.sources[0].specs] == ["page_views_total", "page_new"]
    assert config.warnings == (
        f"{file_of(tmp_path)}: source \"p\": metrics: 'page_new' is new to me",
    )


def test_a_prometheus_name_is_an_error_even_when_the_plugin_takes_any_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(PICKY_SOURCE + 'metrics = ["picky_page_views"]\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, {"picky_page": PickyPage()}, environ={})
    assert info.value.problems == [
        f"{file_of(tmp_path)}: source \"p\": metrics: unknown metric 'picky_page_views': list"
        " metrics by their Graph API name (did you mean 'page_views_total'?)"
    ]
