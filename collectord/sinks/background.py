"""A sink's writes moved off the event loop: one writer thread fed by a bounded queue.

:meth:`BackgroundSink.write` (called by the poller on the event loop) only puts the batch
on the queue and returns; the writer thread opens the sink, then writes batch after batch.
When the queue is full (the disk is slower than the polls), the batch is dropped and its
samples counted in ``SinkStats.dropped`` (``collectord_sink_dropped_total{sink}``); the
drop is logged once when it starts and once when writes keep up again. A sink holding
records it could not write (disk full: it says so with ``retry_delay()``) is asked to
``retry()`` after that delay when no new batch came meanwhile. :meth:`close` lets the
thread write what is queued, for at most ``close_timeout`` seconds.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from collectord.logs import get_logger
from collectord.model import Sample
from collectord.sinks.stats import SinkStats

#: Batches (polls) that may wait for the writer thread.
QUEUE_BATCHES = 16
#: Seconds :meth:`BackgroundSink.close` waits for the queued batches to be written.
CLOSE_TIMEOUT = 10.0


class SyncSink(Protocol):
    """A sink doing its I/O synchronously (:class:`collectord.sinks.jsonl.JsonlSink`)."""

    stats: SinkStats

    def open(self) -> None: ...

    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int: ...

    def close(self) -> None: ...


_Batch = tuple[str, str, Sequence[Sample], datetime]
_STOP = None


class BackgroundSink:
    """Runs ``sink`` in its own thread; see the module doc."""

    def __init__(
        self,
        sink: SyncSink,
        *,
        max_batches: int = QUEUE_BATCHES,
        close_timeout: float = CLOSE_TIMEOUT,
        log: Any = None,
    ) -> None:
        self.sink = sink
        self.stats = sink.stats
        self.close_timeout = close_timeout
        self._queue: queue.Queue[_Batch | None] = queue.Queue(maxsize=max_batches)
        self._log = log if log is not None else get_logger("collectord.sinks.background")
        self._dropping = False
        self._pending = 0  # batches queued or being written
        self._idle = threading.Condition()
        self._thread = threading.Thread(
            target=self._run, name=f"collectord-sink-{sink.stats.name}", daemon=True
        )

    def start(self) -> None:
        """Start the writer thread (it opens the sink first)."""
        self._thread.start()

    def write(
        self, source: str, plugin: str, samples: Sequence[Sample], collected_at: datetime
    ) -> int:
        """Queue the batch for the writer thread; returns at once with how many samples
        were queued (0 when the queue was full and the batch dropped)."""
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((source, plugin, tuple(samples), collected_at))
        except queue.Full:
            self._done()
            self.stats.dropped += len(samples)
            if not self._dropping:
                self._dropping = True
                self._log.warning(
                    "sink queue full, batch dropped",
                    sink=self.stats.name,
                    source=source,
                    samples=len(samples),
                )
            return 0
        if self._dropping:
            self._dropping = False
            self._log.info("sink queue keeps up again", sink=self.stats.name)
        return len(samples)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued batch is written (at most ``timeout`` seconds); True
        when it was. Blocks: not for the event loop."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            if self._pending == 0:
                self._idle.notify_all()

    def close(self) -> None:
        """Write what is queued (at most ``close_timeout`` seconds), then close the sink."""
        if not self._thread.is_alive():
            return
        deadline = time.monotonic() + self.close_timeout
        with contextlib.suppress(queue.Full):
            self._queue.put(_STOP, timeout=self.close_timeout)
        self._thread.join(max(deadline - time.monotonic(), 0.0))
        if self._thread.is_alive():
            self._log.warning(
                "sink not flushed at shutdown",
                sink=self.stats.name,
                batches=self._queue.qsize(),
                timeout=self.close_timeout,
            )

    def _retry_delay(self) -> float | None:
        delay = getattr(self.sink, "retry_delay", None)
        return delay() if delay is not None else None

    def _retry(self) -> None:
        try:
            self.sink.retry()  # type: ignore[attr-defined]
        except Exception:  # the sink counts I/O errors itself; this is a bug
            self._log.exception("sink retry failed", sink=self.stats.name)

    def _run(self) -> None:
        try:
            self.sink.open()
        except Exception:
            self._log.exception("sink open failed", sink=self.stats.name)
        while True:
            try:
                batch = self._queue.get(timeout=self._retry_delay())
            except queue.Empty:  # only with records held: try them again
                self._retry()
                continue
            if batch is _STOP:
                break
            try:
                self.sink.write(*batch)
            except Exception:  # the sink counts I/O errors itself; this is a bug
                self.stats.errors += len(batch[2])
                self._log.exception("sink write failed", sink=self.stats.name)
            finally:
                self._done()
        try:
            self.sink.close()
        except Exception:
            self._log.exception("sink close failed", sink=self.stats.name)
