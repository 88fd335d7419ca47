"""The live reader (collector/live.py) over a full 30-minute window from two writers.

    python -m bench.live [--events 250000]

Writes `--events` log lines through two real LogWriters, spread over the last 30 minutes,
then measures in one process: the reads until every line is in (a file first seen is
entered at the window by bisection, then read at most MAX_READ per refresh), a refresh with
nothing new, one summary, and the memory the reader holds (tracemalloc, in a second pass,
since tracing slows the reads). The baseline is a bare `bytes.splitlines()` plus
`json.loads` of the same files, so the reads are reported as a ratio too.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from collector.live import WINDOW_MINUTES, LiveReader
from collector.logwriter import LogWriter
from footfall import contract

NOW_MS = 1_773_144_000_000  # 2026-03-10 12:00 UTC


def write(logs: Path, events: int) -> int:
    clock = [NOW_MS]
    writers = [LogWriter(logs, lambda: clock[0], 1024 * 2**20, 1.0) for _ in range(2)]
    paths = [f"/blog/post-{i}" for i in range(300)]
    span = WINDOW_MINUTES * 60_000 - 1_000
    for i in range(events):
        clock[0] = NOW_MS - span + i * span // events
        writers[i % 2].append(contract.encode(contract.LogLine(
            v=1, id=f"{i:016x}-000001", ts=contract.format_ts(clock[0]), site="example.com",
            name="pageview" if i % 3 else "engagement", path=paths[i % 300],
            visitor=f"{(i * 7919) % 60_000:016x}", source=["Google", None, "Hacker News"][i % 3],
            country=["DE", "US", "FR", "GB"][i % 4], browser="Chrome", os="Windows")))
    for w in writers:
        w.close()
    return sum(p.stat().st_size for p in logs.rglob("*.jsonl"))


def catch_up(reader: LiveReader) -> tuple[float, int]:
    started, refreshes, before = time.perf_counter(), 0, -1
    while reader.bytes_read != before:
        before = reader.bytes_read
        reader.refresh(NOW_MS)
        refreshes += 1
    return time.perf_counter() - started, refreshes - 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=250_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        logs = Path(tmp) / "logs"
        size = write(logs, args.events)
        started = time.perf_counter()
        for path in logs.rglob("*.jsonl"):
            for line in path.read_bytes().splitlines():
                json.loads(line)
        bare = time.perf_counter() - started

        reader = LiveReader(logs)
        read_s, refreshes = catch_up(reader)
        started = time.perf_counter()
        reader.refresh(NOW_MS)
        idle_s = time.perf_counter() - started
        started = time.perf_counter()
        answer = reader.summary("example.com", NOW_MS)
        summary_s = time.perf_counter() - started

        tracemalloc.start()
        traced = LiveReader(logs)
        catch_up(traced)
        held, _peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(json.dumps({
        "events": reader.events, "log_bytes": size, "refreshes_to_catch_up": refreshes,
        "read_s": round(read_s, 2), "lines_per_s": round(reader.events / read_s),
        "read_vs_bare_json_loads": round(read_s / bare, 2),
        "idle_refresh_ms": round(idle_s * 1000, 2), "summary_s": round(summary_s, 3),
        "held_mb": round(held / 2**20, 1), "bytes_per_event": round(held / reader.events),
        "visitors_30m": answer["visitors_30m"],
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
