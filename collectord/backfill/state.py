"""Where a backfill keeps its progress, so that running the same command again resumes.

One backfill (the same ``--out``, range flags, sources, inputs and config) has a folder
``{state_dir}/backfill/{key}/``: ``run.json`` holds the range the first run resolved
(``--until now`` keeps meaning the moment of the first run, so a resumed run adds no new
day and a day finished meanwhile waits for the next backfill), and each window of each
source that was read is one part file, written atomically once the window is complete. A
re-run reads the parts it has and asks Meta only for the others; the output is assembled
from the parts, one point per series and time, so nothing is written twice. The folder is
removed when the output is written. A damaged ``run.json`` or part is reported and
ignored (that window is read again).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from collectord.backfill.points import Point, point_record, read_jsonl
from collectord.files import atomic_write, ensure_dir, read_limited

#: The folder under ``state_dir`` that holds every backfill's progress.
FOLDER = "backfill"
_RUN = "run.json"
_RUN_LIMIT = 64 * 1024


def _digest(text: str, size: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


class Progress:
    """The progress of one backfill: its resolved range and the windows already read."""

    def __init__(self, folder: Path, since: datetime, until: datetime, *, resumed: bool) -> None:
        self.folder = folder
        self.since = since
        self.until = until
        #: Whether an earlier run of the same command left progress here.
        self.resumed = resumed

    @classmethod
    def open(
        cls,
        state_dir: Path,
        identity: Mapping[str, Any],
        since: datetime,
        until: datetime,
        warn: Callable[[str], None],
    ) -> Progress:
        """The progress of the backfill ``identity`` names: the earlier run's, or a new one
        over ``since``..``until``. Raises :class:`OSError` when ``state_dir`` is unusable."""
        key = _digest(json.dumps(identity, sort_keys=True, default=str))
        folder = state_dir / FOLDER / key
        run = folder / _RUN
        if run.exists():
            try:
                saved = json.loads(read_limited(run, _RUN_LIMIT))
                return cls(
                    folder,
                    datetime.fromisoformat(saved["since"]),
                    datetime.fromisoformat(saved["until"]),
                    resumed=True,
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                warn(f"{run}: damaged backfill progress ({type(exc).__name__}); starting over")
                shutil.rmtree(folder, ignore_errors=True)
        ensure_dir(folder)
        body = {"since": since.isoformat(), "until": until.isoformat(), "command": identity}
        atomic_write(run, json.dumps(body, sort_keys=True, default=str).encode())
        return cls(folder, since, until, resumed=False)

    def _part(self, source: str, window: datetime) -> Path:
        return self.folder / f"{_digest(source, 12)}-{int(window.timestamp())}.jsonl"

    def load(
        self, source: str, window: datetime, warn: Callable[[str], None]
    ) -> list[Point] | None:
        """The points of a window read before, or ``None`` when it is still to read (a
        damaged part is reported and read again)."""
        path = self._part(source, window)
        if not path.exists():
            return None
        try:
            read = read_jsonl(path)
        except OSError as exc:
            warn(f"{path}: cannot read backfill progress ({exc.strerror or exc}); reading again")
            return None
        if read.bad_lines:
            warn(f"{path}: damaged backfill progress (line {read.first_bad}); reading again")
            return None
        return [point for _, point in read.points]

    def save(self, source: str, window: datetime, points: Iterable[Point]) -> None:
        """Keep the points of one complete window (atomically: a part exists whole or not)."""
        text = "".join(point_record(p) for p in points)
        atomic_write(self._part(source, window), text.encode())

    def finish(self) -> None:
        """Forget the progress: the output is written."""
        shutil.rmtree(self.folder, ignore_errors=True)
