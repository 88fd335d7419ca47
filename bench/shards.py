"""Benchmark `pipeline.shards`: a full run with 1, 2 and 4 shards, on the local executor and
on a Dask LocalCluster sized to the machine, as ratios against 1 shard in the same run.

    python -m bench.shards                         # 5M events over 30 days
    python -m bench.shards --events 1000000        # a quicker look
    python -m bench.shards --memory-limit 1GB      # pipeline.memory_limit, shared by the jobs

The logs come from bench/pipeline.py's generator (one file per UTC day, as the collector
writes them). Each configuration is one `footfall run --full` over all of them, in a fresh
process, timed from outside. Peak RSS is sampled every 0.1 s over the run's whole process
tree (the run, its pool or Dask processes), summed: shard jobs are separate processes, so
the largest single process would understate what the machine must hold. Every run's public
tables are checksummed, and the benchmark fails if any differs from 1 shard's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import psutil
import yaml

from bench.pipeline import CONFIG, generate_day
from footfall.marts import MARTS

#: the history every configuration rebuilds: one log file per UTC day
DAYS = 30

RUN = """
import sys, json
from footfall.config import load
from pipeline import run
s = run(load(sys.argv[1]), full=True, progress=None)
print(json.dumps({"seconds": s.seconds, "steps": s.steps, "new_events": s.new_events}))
"""

#: (executor, shards), in the order run; the first is the reference.
CASES = (("local", 1), ("local", 2), ("local", 4), ("dask", 2), ("dask", 4))


def measure(config: Path) -> tuple[float, int, int, dict[str, Any]]:
    """Wall seconds, peak RSS of the process tree (summed) and of its largest process, and
    the run's own report."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", RUN, str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_tree = peak_one = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak_tree, peak_one
        root = psutil.Process(proc.pid)
        while not done.is_set():
            try:
                rss = [p.memory_info().rss for p in [root, *root.children(recursive=True)]]
            except psutil.Error:  # a process ended between listing and reading it
                rss = []
            if rss:
                peak_tree, peak_one = max(peak_tree, sum(rss)), max(peak_one, max(rss))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    took = time.perf_counter() - started
    done.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(err)
    return took, peak_tree, peak_one, json.loads(out.strip().splitlines()[-1])


def checksums(database: Path) -> dict[str, list[int]]:
    """Rows and an order-free digest of every public table."""
    con = duckdb.connect(str(database), read_only=True)
    try:
        found = {}
        for m in MARTS:
            row = con.execute(f"select count(*), coalesce(bit_xor(hash(t)), 0) "
                              f"from {m.table} as t").fetchone()
            found[m.table] = [int(row[0]), int(row[1])] if row else []
        return found
    finally:
        con.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_000_000,
                        help="total events over 30 days (default 5M)")
    parser.add_argument("--memory-limit", default="2GB", help="pipeline.memory_limit")
    parser.add_argument("--threads", type=int, default=0, help="pipeline.threads (0: all)")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="footfall-bench-shards-"))
    shutil.rmtree(work / "data", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "data" / "logs"
    per_day = args.events // (DAYS * 6)
    started = time.perf_counter()
    for day in range(DAYS):
        generate_day(logs, day, per_day)
    results: dict[str, Any] = {
        "events": per_day * 6 * DAYS, "memory_limit": args.memory_limit,
        "cores": os.cpu_count(), "load_average_before": os.getloadavg(),
        "generate_s": round(time.perf_counter() - started, 1),
        "log_bytes": sum(p.stat().st_size for p in logs.rglob("*.jsonl")),
    }
    reference: dict[str, list[int]] | None = None
    runs = {}
    for executor, shards in CASES:
        config = {"data_dir": str(work / "data"), "site_dir": str(work / "site"), **CONFIG,
                  "pipeline": {"memory_limit": args.memory_limit, "threads": args.threads,
                               "shards": shards, "executor": executor}}
        (work / "config.yaml").write_text(yaml.safe_dump(config))
        took, tree, one, report = measure(work / "config.yaml")
        found = checksums(work / "data" / "footfall.duckdb")
        if reference is None:
            reference = found
        elif found != reference:
            raise SystemExit(f"{executor} with {shards} shards published other tables: "
                             f"{found} != {reference}")
        runs[f"{executor}_{shards}"] = {
            "seconds": round(took, 2), "peak_rss_tree_mb": tree // 2**20,
            "peak_rss_largest_process_mb": one // 2**20, "steps": report["steps"],
            "load_average": os.getloadavg()[0],
        }
        print(f"{executor} shards={shards}: {took:.1f}s, peak RSS {tree // 2**20} MB "
              f"(largest process {one // 2**20} MB)", file=sys.stderr, flush=True)
    one_shard = runs["local_1"]["seconds"]
    for r in runs.values():
        r["vs_local_1"] = round(r["seconds"] / one_shard, 2)
    results["runs"] = runs
    results["tables_identical"] = True
    print(json.dumps(results, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
