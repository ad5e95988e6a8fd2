"""``[collector.web]``: what a user writes, what ``check`` says, and every mistake reported
on one line without echoing a hash."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from collectord_plugins.facebook_page import FacebookPage

from collectord import ConfigError
from collectord.cli import main
from collectord.config.loader import load_config
from collectord.config.web import WebConfig

TLS = Path(__file__).resolve().parents[1] / "data" / "tls"
#: A real bcrypt hash (cost 4 keeps the tests fast) of the password "s3cret".
HASH = "$2b$04$727DLNLHKB0Y8jSl0zmCRe7X6gktlrvteuuiRhfL8EssHT9v1na/."
PLUGINS = {"facebook_page": FacebookPage()}

SOURCE = """
[[source]]
name = "acme-page"
plugin = "facebook_page"
access_token = "EAAtesttokenvalue1234567890"
page_id = "1234567890"
"""


@pytest.fixture
def tls_dir(tmp_path: Path) -> Path:
    for name in ("server.crt", "server.key", "server2.key", "ca.crt"):
        shutil.copy(TLS / name, tmp_path / name)
    return tmp_path


def load(tmp_path: Path, web: str) -> WebConfig | None:
    path = tmp_path / "collector.toml"
    path.write_text(f"[collector.web]\n{web}\n{SOURCE}", encoding="utf-8")
    return load_config(path, PLUGINS, environ={}).collector.web


def problems(tmp_path: Path, web: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, web)
    prefix = f"{tmp_path / 'collector.toml'}: [collector.web]: "
    for line in info.value.problems:
        assert line.startswith(prefix), line
        assert "\n" not in line
    return [line.removeprefix(prefix) for line in info.value.problems]


def test_no_table_means_plain_http_without_auth(tmp_path: Path) -> None:
    path = tmp_path / "collector.toml"
    path.write_text(SOURCE, encoding="utf-8")
    assert load_config(path, PLUGINS, environ={}).collector.web is None


def test_tls_client_ca_and_users_relative_to_the_config(tls_dir: Path) -> None:
    web = load(
        tls_dir,
        'tls_cert_file = "server.crt"\ntls_key_file = "server.key"\n'
        f'client_ca_file = "ca.crt"\nbasic_auth_users = {{ prometheus = "{HASH}" }}',
    )
    assert web is not None
    assert web.tls_cert_file == tls_dir / "server.crt"
    assert web.client_certs
    assert dict(web.basic_auth_users) == {"prometheus": HASH}
    assert web.describe() == "TLS on, client certificates required; basic auth on (1 user)"
    assert HASH not in repr(web)


def test_htpasswd_2y_hashes_are_accepted(tmp_path: Path) -> None:
    web = load(tmp_path, f'basic_auth_users = {{ a = "{HASH.replace("$2b$", "$2y$")}" }}')
    assert web is not None
    assert web.describe() == "TLS off; basic auth on (1 user)"


@pytest.mark.parametrize(
    ("web", "expected"),
    [
        ('tls_cert_file = "server.crt"', "tls_key_file: missing: set both"),
        ('tls_key_file = "server.key"', "tls_cert_file: missing: set both"),
        ('client_ca_file = "ca.crt"', "client_ca_file: needs tls_cert_file and tls_key_file"),
        (
            'tls_cert_file = "nope.crt"\ntls_key_file = "server.key"',
            "tls_cert_file: cannot read {dir}/nope.crt: No such file or directory",
        ),
        (
            'tls_cert_file = "server.key"\ntls_key_file = "server.key"',
            "tls_cert_file: not a PEM certificate",
        ),
        (
            'tls_cert_file = "server.crt"\ntls_key_file = "server2.key"',
            "tls_key_file: the key does not match the certificate",
        ),
        (
            'tls_cert_file = "server.crt"\ntls_key_file = "server.key"\nclient_ca_file = "server.key"',
            "client_ca_file: not a PEM CA certificate",
        ),
        ("tls_cert_file = 3", "tls_cert_file: expected a string, got an integer"),
        ('basic_auth_users = "alice"', "basic_auth_users: expected a table"),
        (
            "basic_auth_users = { alice = 1 }",
            "basic_auth_users: user 'alice': expected a bcrypt hash",
        ),
        ('tls_certfile = "x"', "tls_certfile: unknown key (did you mean 'tls_cert_file'?)"),
    ],
)
def test_mistakes_are_one_line_each(tls_dir: Path, web: str, expected: str) -> None:
    said = problems(tls_dir, web)
    assert len(said) == 1, said
    assert said[0].startswith(expected.format(dir=tls_dir)), said


@pytest.mark.parametrize(
    "value",
    [
        "hunter2",  # a password instead of its hash
        "$1$abcdefgh$0123456789012345678901",  # md5-crypt
        HASH[:-1],
        HASH.replace("$04$", "$31$"),  # each login would take days
    ],
)
def test_a_value_that_is_not_a_usable_bcrypt_hash_is_refused_without_echoing_it(
    tmp_path: Path, value: str
) -> None:
    said = problems(tmp_path, f'basic_auth_users = {{ alice = "{value}" }}')
    assert len(said) == 1
    assert said[0].startswith("basic_auth_users: user 'alice': ")
    assert value not in said[0]
    assert "hunter2" not in said[0]


def test_a_user_name_with_a_colon_is_refused(tmp_path: Path) -> None:
    said = problems(tmp_path, f'basic_auth_users = {{ "a:b" = "{HASH}" }}')
    assert said == [
        "basic_auth_users: a user name must not be empty or hold ':', spaces or controls"
    ]


def test_check_says_whether_tls_and_auth_are_on(
    tls_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tls_dir / "collector.toml"
    path.write_text(SOURCE, encoding="utf-8")
    assert main(["check", "-c", str(path)]) == 0
    assert "http: TLS off; basic auth off" in capsys.readouterr().out
    path.write_text(
        '[collector.web]\ntls_cert_file = "server.crt"\ntls_key_file = "server.key"\n'
        f'basic_auth_users = {{ a = "{HASH}", b = "{HASH}" }}\n{SOURCE}',
        encoding="utf-8",
    )
    assert main(["check", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    assert "http: TLS on; basic auth on (2 users)" in out
    assert HASH not in out


def test_check_fails_on_a_key_that_does_not_match(
    tls_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tls_dir / "collector.toml"
    path.write_text(
        '[collector.web]\ntls_cert_file = "server.crt"\ntls_key_file = "server2.key"\n' + SOURCE,
        encoding="utf-8",
    )
    assert main(["check", "-c", str(path)]) == 2
    err = capsys.readouterr().err
    assert "[collector.web]: tls_key_file: the key does not match the certificate" in err
    assert "BEGIN" not in err
