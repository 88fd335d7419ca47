"""The soak: the collector at 70% of its measured capacity for ten minutes, with `footfall run`
once a minute, then proof that every acknowledged event was counted.

    python -m bench.soak [--minutes 10] [--load 0.7]

Capacity is measured first as bench/collector.py measures it (wrk, 32 connections, the server
and wrk pinned to separate cores). The paced load is wrk with a per-request delay, calibrated
in a short round so the rate lands near the target. Needs Debian's `wrk`. Prints one JSON
report; `make soak` runs it and fails if the report does.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from bench.collector import rss_kb, script, start_collector, wrk
from footfall import contract

CONNECTIONS = 32  # the capacity rounds, as bench/collector.py
PACED = 128  # many slow clients: the paced rate hardly moves when latency does


def paced(port: int, seconds: float, target_rps: float,
          folder: Path) -> tuple[dict[str, float], dict[str, float]]:
    """wrk at about target_rps: each connection waits between requests, tuned once in a
    short probe. Returns the probe and the load."""
    delay = max(1.0, 1000 * PACED / target_rps)
    probe = wrk(port, 5, PACED, script(folder, round(delay, 2)))
    # wrk's delay adds to each request's latency: take the measured rate back to the target
    delay = max(1.0, delay * probe["rps"] / target_rps)
    return probe, wrk(port, seconds, PACED, script(folder, round(delay, 2)))


def pipeline_runs(config: Path, every_s: float, stop: threading.Event,
                  results: list[dict[str, Any]]) -> None:
    due = time.monotonic() + every_s
    while not stop.wait(max(0.0, due - time.monotonic())):
        began = time.monotonic()
        due = began + every_s  # once a minute from each start, as cron would
        res = subprocess.run([sys.executable, "-m", "footfall.cli", "run", "--config",
                              str(config)], capture_output=True, text=True)
        results.append({"rc": res.returncode, "seconds": round(time.monotonic() - began, 1),
                        "stderr": res.stderr[-300:]})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the paced load")
    ap.add_argument("--load", type=float, default=0.7, help="fraction of measured capacity")
    ap.add_argument("--every", type=float, default=60.0, help="seconds between pipeline runs")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        collector, port = start_collector(work, "uvloop")
        try:
            full = script(work, None)
            wrk(port, 2, CONNECTIONS, full)  # warm-up
            capacity = sorted(wrk(port, 10, CONNECTIONS, full)["rps"] for _ in range(3))[1]
            # the capacity rounds' events are in the logs too: start counting from here
            config = work / "config.yaml"
            subprocess.run([sys.executable, "-m", "footfall.cli", "run", "--config",
                            str(config)], check=True, capture_output=True)
            before = events(work)
            samples: list[tuple[float, int]] = []
            runs: list[dict[str, Any]] = []
            stop = threading.Event()
            began = time.monotonic()

            def sample() -> None:
                while not stop.wait(5.0):
                    samples.append((round(time.monotonic() - began), rss_kb(collector.pid)))

            threads = [threading.Thread(target=sample, daemon=True),
                       threading.Thread(target=pipeline_runs, daemon=True,
                                        args=(config, args.every, stop, runs))]
            for t in threads:
                t.start()
            probe, load = paced(port, args.minutes * 60, args.load * capacity, work)
            stop.set()
            for t in threads:
                t.join()
            final = subprocess.run([sys.executable, "-m", "footfall.cli", "run", "--config",
                                    str(config)], capture_output=True, text=True)
            counted = events(work) - before
            logged = log_lines(work)
            collector_alive = collector.poll() is None
        finally:
            collector.terminate()
            _, _ = collector.communicate(timeout=30)
    # the probe's events land in the same logs
    acked = int(probe["requests"] - probe["non2xx"] + load["requests"] - load["non2xx"])
    rss = [kb for _, kb in samples]
    first_minute = [kb for at, kb in samples if at <= 60] or rss[:1]
    report: dict[str, Any] = {
        "capacity_rps": round(capacity),
        "target_rps": round(args.load * capacity),
        "paced_rps": round(load["rps"]),
        "paced_p50_ms": load["p50_ms"], "paced_p99_ms": load["p99_ms"],
        "seconds": args.minutes * 60,
        "acknowledged": acked,
        "counted_by_pipeline": counted,
        "log_lines_total": logged,
        "wrk_errors": load["errors"] + probe["errors"],
        "non2xx": load["non2xx"] + probe["non2xx"],
        "pipeline_runs": len(runs),
        "pipeline_failures": sum(r["rc"] != 0 for r in runs) + (final.returncode != 0),
        "pipeline_seconds_max": max((r["seconds"] for r in runs), default=0.0),
        "rss_mb_after_first_minute": round(max(first_minute) / 1024, 1),
        "rss_mb_max": round(max(rss) / 1024, 1),
        "rss_mb_end": round(rss[-1] / 1024, 1),
        "rss_mb_every_minute": [round(kb / 1024, 1) for at, kb in samples if at % 60 < 5],
        "collector_alive": collector_alive,
    }
    # a request wrk sent but whose answer it never read (a round stopped) may be counted too
    report["ok"] = bool(
        collector_alive and report["pipeline_failures"] == 0 and report["wrk_errors"] == 0
        and report["non2xx"] == 0 and acked <= counted <= acked + 2 * PACED
        and report["rss_mb_end"] <= report["rss_mb_after_first_minute"] * 1.2 + 5
    )
    print(json.dumps(report, indent=2))
    for r in runs:
        if r["rc"] != 0:
            print(r["stderr"], file=sys.stderr)
    if not report["ok"]:
        sys.exit(1)


def events(work: Path) -> int:
    con = duckdb.connect(str(work / "data" / "footfall.duckdb"), read_only=True)
    try:
        row = con.execute("select count(*) from events").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def log_lines(work: Path) -> int:
    """Every line the collector wrote, each checked against the log contract."""
    count = 0
    for path in (work / "data" / "logs").rglob("*.jsonl"):
        with path.open("rb") as f:
            for raw in f:
                contract.decode(raw.rstrip(b"\n"))
                count += 1
    return count


if __name__ == "__main__":
    main()
