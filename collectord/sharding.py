"""Sharding: N replicas split the sources between them without talking to each other.

Each replica is told its shard as ``I/N`` (``[collector] shard``, or ``--shard``): it polls
the sources whose name hashes to ``I`` among ``N`` and leaves the others to the other
replicas. ``auto/N`` takes ``I`` from the ordinal that ends the hostname, as a Kubernetes
StatefulSet names its pods (``collectord-0``, ``collectord-1``, ...), so that one manifest
serves every replica.

The hash is stable across processes, machines and Python versions: the first 8 bytes of
the BLAKE2b digest of the source's name, mapped to a shard by jump consistent hashing
(Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm", 2014), the same
scheme kube-state-metrics applies to object ids. Consistent means that going from ``N`` to
``N + 1`` replicas moves only about ``1/(N + 1)`` of the sources, all of them to the new
shard; every other source stays where it was. A child of a discovering source is named
``"{parent}/{object_id}"`` and hashed under that name, so the objects one discovering
source finds are spread over the shards one by one.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from collectord.errors import ConfigError

__all__ = [
    "AUTO",
    "Shard",
    "check_spec",
    "configured_shard",
    "describe_shard",
    "hostname_ordinal",
    "resolve",
    "shard_of",
]

#: The shard index written instead of a number to take it from the hostname.
AUTO = "auto"
#: The most shards a spec may ask for (a sanity bound: each is a process of its own).
MAX_SHARDS = 10_000

_SPEC = re.compile(r"\s*(\d+|auto)\s*/\s*(\d+)\s*")
_ORDINAL = re.compile(r"-(\d+)$")
#: Multiplier and increment of the 64-bit linear congruential step of jump hashing.
_LCG_A = 2862933555777941757
_MASK64 = (1 << 64) - 1


def key_of(name: str) -> int:
    """The 64-bit key of a source name: the first 8 bytes of its BLAKE2b digest."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def jump(key: int, buckets: int) -> int:
    """Jump consistent hash: the bucket in ``range(buckets)`` of a 64-bit ``key``."""
    if buckets < 1:
        raise ValueError("the number of buckets must be at least 1")
    bucket, nxt = -1, 0
    while nxt < buckets:
        bucket = nxt
        key = (key * _LCG_A + 1) & _MASK64
        nxt = int((bucket + 1) * ((1 << 31) / ((key >> 33) + 1)))
    return bucket


def shard_of(name: str, total: int) -> int:
    """The shard among ``total`` that owns the source called ``name``."""
    return jump(key_of(name), total)


@dataclass(frozen=True)
class Shard:
    """One shard of ``total``: this process owns the sources that hash to ``index``."""

    index: int = 0
    total: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.total <= MAX_SHARDS:
            raise ValueError(f"the number of shards must be between 1 and {MAX_SHARDS}")
        if not 0 <= self.index < self.total:
            raise ValueError(f"the shard must be between 0 and {self.total - 1}")

    @property
    def label(self) -> str:
        """``"I/N"``, as ``collectord_shard_info`` and the status page show it."""
        return f"{self.index}/{self.total}"

    @property
    def sharded(self) -> bool:
        return self.total > 1

    def owns(self, name: str) -> bool:
        """Whether this shard polls the source called ``name``."""
        return self.total == 1 or shard_of(name, self.total) == self.index


def _split(spec: str) -> tuple[str, int]:
    """``(index or "auto", total)`` of a spec; :class:`ValueError` saying what is wrong."""
    match = _SPEC.fullmatch(spec)
    if match is None:
        raise ValueError('expected "I/N" (such as "0/3") or "auto/N" (such as "auto/3")')
    index, total = match.group(1), int(match.group(2))
    if not 1 <= total <= MAX_SHARDS:
        raise ValueError(f"the number of shards N must be between 1 and {MAX_SHARDS}")
    if index != AUTO and int(index) >= total:
        raise ValueError(f"the shard I must be between 0 and {total - 1} (I/N counts from 0)")
    return index, total


def check_spec(spec: str) -> str | None:
    """What is wrong with a spec as written (``None`` when it is well formed). An ``auto``
    spec is checked against the hostname only when it is resolved, at start."""
    try:
        _split(spec)
    except ValueError as exc:
        return str(exc)
    return None


def hostname_ordinal(hostname: str) -> int:
    """The ordinal that ends ``hostname`` (``collectord-2`` → 2); :class:`ValueError` when
    there is none. A fully qualified name is read up to its first dot."""
    host = hostname.split(".", 1)[0]
    match = _ORDINAL.search(host)
    if match is None:
        raise ValueError(
            f"the hostname {hostname!r} does not end in '-<ordinal>' as a StatefulSet "
            'pod\'s does (such as "collectord-0"): give the shard as "I/N" instead'
        )
    return int(match.group(1))


def current_hostname(environ: Mapping[str, str] | None = None) -> str:
    """``$HOSTNAME`` when set (Kubernetes sets it to the pod's name), else the system's."""
    env = os.environ if environ is None else environ
    return env.get("HOSTNAME") or socket.gethostname()


def resolve(spec: str | None, *, hostname: str | None = None) -> Shard:
    """The shard a spec names (``None``: the one shard of one, ``"0/1"``). ``auto/N`` reads
    the ordinal from ``hostname`` (default :func:`current_hostname`). Raises
    :class:`ValueError` saying what is wrong."""
    if spec is None:
        return Shard()
    index, total = _split(spec)
    if index != AUTO:
        return Shard(int(index), total)
    host = current_hostname() if hostname is None else hostname
    ordinal = hostname_ordinal(host)
    if ordinal >= total:
        raise ValueError(
            f"the hostname {host!r} ends in the ordinal {ordinal}, but there are only "
            f"{total} shards (0 to {total - 1}): raise N to the StatefulSet's replicas"
        )
    return Shard(ordinal, total)


def configured_shard(spec: str | None) -> Shard:
    """:func:`resolve` at start: a spec that does not resolve here (``auto/N`` on a host
    without an ordinal, or one beyond ``N``) is a :class:`ConfigError`."""
    try:
        return resolve(spec)
    except ValueError as exc:
        raise ConfigError([f"shard {spec}: {exc}"]) from None


def describe_shard(spec: str, names: Sequence[str], *, hostname: str | None = None) -> str:
    """One line for ``collectord check``: the shard ``spec`` names here and how many of the
    sources called ``names`` it polls (an ``auto`` spec that does not resolve on this host
    is no error: it is resolved where the daemon runs)."""
    try:
        shard = resolve(spec, hostname=hostname)
    except ValueError as exc:
        return f"shard {spec}: taken from the hostname at start (not here: {exc})\n"
    where = "" if shard.label == spec else f" (here {shard.label})"
    owned = sum(1 for name in names if shard.owns(name))
    return (
        f"shard {spec}{where}: polls {owned} of {len(names)} configured source(s); "
        "the objects a discovering source finds are shared out one by one\n"
    )
