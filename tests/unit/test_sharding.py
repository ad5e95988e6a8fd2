"""Sharding: the spec a user writes, the shard it resolves to, and the assignment of
sources to shards (stable, complete, exclusive, and moving little when N changes)."""

from __future__ import annotations

import pytest

from collectord.sharding import (
    Shard,
    check_spec,
    current_hostname,
    hostname_ordinal,
    jump,
    resolve,
    shard_of,
)

#: Configured sources and discovered children ("{parent}/{object_id}"), as the daemon names them.
NAMES = [f"page-{i}" for i in range(200)] + [
    f"{parent}/{object_id}"
    for parent in ("acme-pages", "acme-instagram")
    for object_id in range(17841400000000000, 17841400000000000 + 300, 3)
]


def test_assignments_are_pinned_so_that_an_upgrade_cannot_move_sources() -> None:
    # A change here would move sources between replicas after an upgrade: never change it.
    assert [shard_of("acme-page", n) for n in range(1, 6)] == [0, 1, 1, 1, 1]
    assert [shard_of("sim-page", n) for n in range(1, 6)] == [0, 0, 2, 3, 3]
    assert [shard_of("pages/1234567891", n) for n in range(1, 6)] == [0, 1, 1, 1, 4]
    # the published vectors of jump consistent hashing
    assert (jump(42, 57), jump(0xDEAD10CC, 666), jump(256, 1024)) == (43, 361, 520)


@pytest.mark.parametrize("total", [1, 2, 3, 4, 5])
def test_every_source_and_child_is_in_exactly_one_shard(total: int) -> None:
    shards = [Shard(i, total) for i in range(total)]
    for name in NAMES:
        owners = [s.label for s in shards if s.owns(name)]
        assert len(owners) == 1, (name, owners)


@pytest.mark.parametrize("total", [2, 3, 4, 5])
def test_every_shard_gets_a_fair_share(total: int) -> None:
    counts = [sum(Shard(i, total).owns(n) for n in NAMES) for i in range(total)]
    assert min(counts) > len(NAMES) / total * 0.6, counts


@pytest.mark.parametrize("total", [1, 2, 3, 4])
def test_adding_a_replica_moves_only_sources_to_the_new_shard(total: int) -> None:
    moved = [n for n in NAMES if shard_of(n, total) != shard_of(n, total + 1)]
    assert all(shard_of(n, total + 1) == total for n in moved)
    assert len(moved) < len(NAMES) / (total + 1) * 1.5


def test_a_discovered_child_is_sharded_by_its_own_name_not_its_parents() -> None:
    children = [n for n in NAMES if n.startswith("acme-pages/")]
    assert {shard_of(n, 3) for n in children} == {0, 1, 2}


@pytest.mark.parametrize(
    ("spec", "shard"),
    [(None, "0/1"), ("0/1", "0/1"), ("0/3", "0/3"), ("2/3", "2/3"), (" 1 / 2 ", "1/2")],
)
def test_a_numbered_spec_resolves_to_itself(spec: str | None, shard: str) -> None:
    assert resolve(spec, hostname="anything").label == shard


@pytest.mark.parametrize(
    ("hostname", "shard"),
    [
        ("collectord-0", "0/3"),
        ("collectord-2", "2/3"),
        ("collectord-sharded-1", "1/3"),
        ("collectord-1.collectord.monitoring.svc.cluster.local", "1/3"),
    ],
)
def test_auto_takes_the_ordinal_that_ends_the_hostname(hostname: str, shard: str) -> None:
    assert resolve("auto/3", hostname=hostname).label == shard


def test_auto_without_an_ordinal_says_to_give_the_shard() -> None:
    with pytest.raises(ValueError, match=r"'laptop' does not end in '-<ordinal>'.*\"I/N\""):
        resolve("auto/3", hostname="laptop")
    with pytest.raises(ValueError, match="does not end"):
        hostname_ordinal("collectord-")


def test_auto_with_an_ordinal_beyond_n_says_to_raise_n() -> None:
    with pytest.raises(ValueError, match=r"ordinal 3, but there are only 3 shards .*raise N"):
        resolve("auto/3", hostname="collectord-3")


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("3", 'expected "I/N"'),
        ("a/3", 'expected "I/N"'),
        ("-1/3", 'expected "I/N"'),
        ("1/", 'expected "I/N"'),
        ("", 'expected "I/N"'),
        ("3/3", "between 0 and 2"),
        ("0/0", "between 1 and"),
        ("auto/0", "between 1 and"),
        ("0/100000", "between 1 and"),
    ],
)
def test_a_malformed_spec_says_what_is_expected(spec: str, problem: str) -> None:
    assert problem in (check_spec(spec) or "")
    with pytest.raises(ValueError, match=problem):
        resolve(spec, hostname="collectord-0")


def test_well_formed_specs_pass_the_check_auto_included() -> None:
    assert [check_spec(s) for s in ("0/1", "4/5", "auto/5")] == [None, None, None]


def test_the_hostname_comes_from_the_environment_first() -> None:
    assert current_hostname({"HOSTNAME": "collectord-4"}) == "collectord-4"
    assert current_hostname({}) != ""
