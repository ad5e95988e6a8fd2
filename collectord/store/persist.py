"""The state file: what a restart needs so that ``/metrics`` has no gap.

``state_dir/state.json`` is one versioned JSON document holding, for every source, the
newest samples of each cadence (everything the store serves: family, labels, value, Meta's
metric, object, period, end time, help), each cadence's last success and the outcome of its
last poll, the disabled metrics with the time Meta last rejected them, and the plugin's
memory. The time of the last success is also what the scheduler uses to leave a daily job
alone after a restart while its data is still fresh.

:class:`StateSaver` writes it after successful polls, at most every :data:`SAVE_EVERY`
seconds and once more at shutdown. The store's content is captured on the event loop (the
sample tuples are shared, not copied); encoding and writing happen in a thread, through
:func:`collectord.files.atomic_write` (0600, temp file, fsync, rename), so a ``kill -9`` at
any moment leaves the previous file or the new one. :func:`load_state` reads it back at
start-up: a missing file is normal, a corrupt, truncated or other-version file is reported
once and ignored. The file holds no secret (no token, no app secret: plugin memory holds
post ids and dates) and is safe to delete: collectord then starts as on its first run.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collectord.files import atomic_write, read_limited
from collectord.logs import get_logger
from collectord.model import CADENCES, Sample
from collectord.store.saved import SavedCadence, SavedSource, SavedState
from collectord.store.store import Store

__all__ = [
    "SAVE_EVERY",
    "STATE_FILE",
    "STATE_VERSION",
    "StateSaver",
    "UnusableState",
    "decode_state",
    "encode_state",
    "load_state",
    "restore_state",
]

#: Name of the state file inside ``state_dir``.
STATE_FILE = "state.json"
#: Version of the document; another version is ignored (as if there were no file).
STATE_VERSION = 1
#: Seconds between two saves at most once per this many seconds (polls in between coalesce).
SAVE_EVERY = 5.0
#: Largest state file read back (bytes); a larger one is reported and ignored.
MAX_STATE_BYTES = 512 * 1024 * 1024
#: Seconds the save at shutdown may take before the daemon exits without it (the previous
#: file stays whole).
FINAL_SAVE_TIMEOUT = 1.0

_log = get_logger("collectord.store.persist")


class UnusableState(ValueError):
    """The state file cannot be used: the message says what is wrong with it."""


# -- encoding --------------------------------------------------------------------------------


def _number(value: float | None) -> float | str | None:
    """JSON has no NaN or infinity: those are kept as their ``repr`` text."""
    if value is None or math.isfinite(value):
        return value
    return repr(value)


def _sample(s: Sample, helps: dict[str, str]) -> list[Any]:
    if s.help:
        helps.setdefault(s.metric, s.help)
    end = None if s.end_time is None else s.end_time.isoformat()
    labels = [list(p) for p in s.labels]
    return [s.metric, s.graph_metric, _number(s.value), labels, s.object_id, s.period, end]


_SET = "$set"  # a set in plugin memory is kept as {"$set": [items]}


def _plain(value: Any) -> Any:
    """Plugin memory as JSON data: sets (the insights helper keeps one) are tagged."""
    if isinstance(value, set | frozenset):
        return {_SET: sorted((_plain(v) for v in value), key=repr)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _unplain(value: Any) -> Any:
    if isinstance(value, dict):
        if value.keys() == {_SET} and isinstance(value[_SET], list):
            return {_unplain(v) for v in value[_SET] if not isinstance(v, dict | list)}
        return {k: _unplain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unplain(v) for v in value]
    return value


def _memory(source: SavedSource) -> dict[str, Any]:
    """The plugin's memory if it is plain data (and sets); else nothing (and a warning)."""
    memory = _plain(dict(source.memory))
    try:
        json.dumps(memory, allow_nan=False)
    except (TypeError, ValueError) as exc:
        _log.warning("plugin memory not saved", source=source.name, error=str(exc))
        return {}
    return memory  # type: ignore[no-any-return]


def encode_state(sources: Iterable[SavedSource], saved_at: float) -> bytes:
    """The state file's bytes for ``sources`` (see the module doc)."""
    helps: dict[str, str] = {}
    doc_sources: dict[str, Any] = {}
    for src in sources:
        doc_sources[src.name] = {
            "plugin": src.plugin,
            "disabled": dict(src.disabled),
            "disabled_at": {k: v.isoformat() for k, v in src.disabled_at.items()},
            "memory": _memory(src),
            "cadences": {
                c: {
                    "ok": sc.ok,
                    "last_success": sc.last_success,
                    "last_error": sc.last_error,
                    "last_error_reason": sc.last_error_reason,
                    "newest_end_time": sc.newest_end_time,
                    "samples": [_sample(s, helps) for s in sc.samples],
                }
                for c, sc in src.cadences.items()
            },
        }
    doc = {"version": STATE_VERSION, "saved_at": saved_at, "help": helps, "sources": doc_sources}
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


# -- decoding --------------------------------------------------------------------------------


def _want(value: Any, kind: type | tuple[type, ...], what: str) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):  # no bool is a number here
        raise UnusableState(f"{what}: unexpected {type(value).__name__}")
    return value


def _opt_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    return float(_want(value, (int, float), what))


def _opt_str(value: Any, what: str) -> str | None:
    return None if value is None else str(_want(value, str, what))


@functools.lru_cache(maxsize=4096)  # a few end times shared by thousands of samples
def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _time(text: Any, what: str) -> datetime:
    when = _parse_time(_want(text, str, what))
    if when is None:
        raise UnusableState(f"{what}: not a time: {text[:40]!r}")
    if when.tzinfo is None:
        raise UnusableState(f"{what}: time without a zone")
    return when


def _decode_sample(raw: Any, cadence: Any, helps: dict[str, Any], what: str) -> Sample:
    items = _want(raw, list, what)
    if len(items) != 7:
        raise UnusableState(f"{what}: expected 7 fields, got {len(items)}")
    metric, graph_metric, value, labels, object_id, period, end = items
    if isinstance(value, str):
        if value not in ("nan", "inf", "-inf"):
            raise UnusableState(f"{what}: value {value[:20]!r}")
        value = float(value)
    pairs = []
    for pair in _want(labels, list, what + " labels"):
        if not (
            isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)
        ):
            raise UnusableState(f"{what}: labels are not name/value pairs")
        pairs.append((pair[0], pair[1]))
    return Sample(
        metric=_want(metric, str, what),
        graph_metric=_want(graph_metric, str, what),
        value=float(_want(value, (int, float), what + " value")),
        labels=tuple(pairs),
        object_id=_want(object_id, str, what),
        cadence=cadence,
        period=_opt_str(period, what),
        end_time=None if end is None else _time(end, what),
        help=str(helps.get(metric, "")),
    )


def _decode_cadence(name: str, cadence: str, raw: Any, helps: dict[str, Any]) -> SavedCadence:
    what = f"source {name!r} cadence {cadence!r}"
    if cadence not in CADENCES:
        raise UnusableState(f"{what}: unknown cadence")
    doc = _want(raw, dict, what)
    ok = doc.get("ok")
    if ok is not None and not isinstance(ok, bool):
        raise UnusableState(f"{what}: ok is not true, false or null")
    samples = _want(doc.get("samples"), list, what + " samples")
    return SavedCadence(
        ok=ok,
        last_success=_opt_float(doc.get("last_success"), what),
        last_error=_opt_str(doc.get("last_error"), what),
        last_error_reason=_opt_str(doc.get("last_error_reason"), what),
        newest_end_time=_opt_float(doc.get("newest_end_time"), what),
        samples=tuple(_decode_sample(s, cadence, helps, what) for s in samples),
    )


def _decode_source(name: str, raw: Any, helps: dict[str, Any]) -> SavedSource:
    what = f"source {name!r}"
    doc = _want(raw, dict, what)
    disabled = _want(doc.get("disabled", {}), dict, what + " disabled")
    disabled_at = _want(doc.get("disabled_at", {}), dict, what + " disabled_at")
    return SavedSource(
        name=name,
        plugin=_want(doc.get("plugin"), str, what + " plugin"),
        cadences={
            c: _decode_cadence(name, c, v, helps)
            for c, v in _want(doc.get("cadences"), dict, what + " cadences").items()
        },
        disabled={str(k): str(_want(v, str, what)) for k, v in disabled.items()},
        disabled_at={str(k): _time(v, what + " disabled_at") for k, v in disabled_at.items()},
        memory=_unplain(_want(doc.get("memory", {}), dict, what + " memory")),
    )


def decode_state(raw: bytes) -> SavedState:
    """Parse a state file; raises :class:`UnusableState` saying what is wrong."""
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # truncated, not UTF-8, not JSON
        raise UnusableState(f"not JSON ({exc})") from None
    doc = _want(doc, dict, "document")
    version = doc.get("version")
    if version != STATE_VERSION:
        raise UnusableState(f"version {version!r}, this collectord reads {STATE_VERSION}")
    helps = _want(doc.get("help", {}), dict, "help")
    sources = _want(doc.get("sources"), dict, "sources")
    try:
        return SavedState(
            saved_at=_opt_float(doc.get("saved_at"), "saved_at") or 0.0,
            sources=tuple(_decode_source(str(n), v, helps) for n, v in sources.items()),
        )
    except OverflowError:  # an integer beyond any float
        raise UnusableState("a number too large") from None


def load_state(path: Path) -> SavedState | None:
    """The state saved at ``path``; ``None`` when there is none or it cannot be used (then
    one warning names the file and what is wrong: the daemon starts as on its first run)."""
    try:
        raw = read_limited(path, MAX_STATE_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        _log.warning("state file unreadable, ignored", path=str(path), error=str(exc))
        return None
    try:
        return decode_state(raw)
    except UnusableState as exc:
        _log.warning("state file unusable, ignored", path=str(path), error=str(exc))
        return None


def restore_state(store: Store, path: Path) -> int:
    """Fill ``store`` (its sources already registered) from the file at ``path``; sources
    not registered any more, or now of another plugin, are dropped. Returns the samples
    restored. Temporary files a save cut short (``kill -9``) left beside it are removed."""
    with contextlib.suppress(OSError):
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            tmp.unlink()
    state = load_state(path)
    if state is None:
        return 0
    restored = dropped = samples = 0
    for src in state.sources:
        got = store.restore(src)
        if got is None:
            dropped += 1
        else:
            restored += 1
            samples += got
    _log.info(
        "state restored",
        path=str(path),
        sources=restored,
        dropped=dropped,
        samples=samples,
        saved_at=datetime.fromtimestamp(state.saved_at, UTC).isoformat(),
    )
    return samples


# -- saving ----------------------------------------------------------------------------------


class StateSaver:
    """Saves the store's state after successful polls (debounced) and at close.

    ``notify()`` (the store's ``on_success``) marks the state changed; a task saves it at
    most every ``every`` seconds. A failing save (state_dir unwritable, disk full) is one
    warning until a save works again (one info line then); the previous file stays whole.
    """

    def __init__(self, store: Store, path: Path, *, every: float = SAVE_EVERY) -> None:
        self.store = store
        self.path = path
        self.every = every
        self.saves = 0
        #: Set after every successful save (for whoever wants to wait for one).
        self.saved = asyncio.Event()
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._writing: threading.Lock = threading.Lock()

    def notify(self) -> None:
        self._dirty.set()

    async def __aenter__(self) -> StateSaver:
        self.store.on_success = self.notify
        self._task = asyncio.create_task(self._loop(), name="collectord-state-saver")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.store.on_success = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._dirty.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.save(), FINAL_SAVE_TIMEOUT)

    async def _loop(self) -> None:
        while True:
            await self._dirty.wait()
            await self.save()
            await asyncio.sleep(self.every)

    async def save(self) -> bool:
        """Capture the store now and write it in a thread; True when written."""
        self._dirty.clear()
        sources = self.store.capture()
        loop = asyncio.get_running_loop()
        done: asyncio.Future[bool] = loop.create_future()

        def work() -> None:
            ok = self._write(sources)
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile (exit)
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(ok))

        # A daemon thread, not the default executor: at exit nobody waits for it, and a
        # write cut short leaves the previous file (atomic_write).
        threading.Thread(target=work, name="collectord-state-write", daemon=True).start()
        ok = await done
        if ok:
            self.saved.set()
        else:
            self._dirty.set()  # try again in `every` seconds
        return ok

    def _write(self, sources: tuple[SavedSource, ...]) -> bool:
        with self._writing:
            try:
                atomic_write(self.path, encode_state(sources, time.time()))
            except OSError as exc:
                if not self._failing:
                    self._failing = True
                    _log.warning("state file not saved", path=str(self.path), error=str(exc))
                return False
            self.saves += 1
            if self._failing:
                self._failing = False
                _log.info("state file saved again", path=str(self.path))
            return True
