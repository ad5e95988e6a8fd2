"""How fast the JSONL sink writes and skips records (run by hand, prints records/s).

    .venv/bin/python tests/bench/bench_jsonl.py [--series N] [--batches N]

Each batch is one poll of N series: the first batch writes every record, "changed" batches
write every record again with new values, "unchanged" batches write nothing (the common
case for daily metrics re-read every poll).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectord.config.types import JsonlSinkConfig
from collectord.model import Sample, make_labels
from collectord.sinks.jsonl import JsonlSink


def batch(series: int, value: float) -> list[Sample]:
    end = datetime(2026, 11, 23, 8, tzinfo=UTC)
    return [
        Sample(
            metric="facebook_post_media_view",
            graph_metric="post_media_view",
            value=value + n,
            labels=make_labels(
                {"page_id": "1234567890", "post_id": f"123_{n}", "period": "lifetime"}
            ),
            object_id=f"123_{n}",
            cadence="daily",
            period="lifetime",
            end_time=end,
        )
        for n in range(series)
    ]


def run(series: int, batches: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sink = JsonlSink(JsonlSinkConfig(path=root / "samples.jsonl"), root / "state")
        sink.open()
        now = datetime.now(UTC)
        for label, changing in (("changed", True), ("unchanged", False)):
            samples = [batch(series, float(i if changing else 0)) for i in range(batches)]
            started = time.perf_counter()
            written = 0
            for i, poll in enumerate(samples):
                written += sink.write("acme", "facebook_post", poll, now + timedelta(seconds=i))
            elapsed = time.perf_counter() - started
            total = series * batches
            print(
                f"{label:>9}: {total} samples, {written} records written in {elapsed:.3f}s"
                f" = {total / elapsed:,.0f} samples/s"
            )
        sink.close()
        started = time.perf_counter()
        JsonlSink(JsonlSinkConfig(path=root / "samples.jsonl"), root / "state").open()
        print(f"  restart: index of {series} series loaded in {time.perf_counter() - started:.3f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--series", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    run(args.series, args.batches)


if __name__ == "__main__":
    main()
