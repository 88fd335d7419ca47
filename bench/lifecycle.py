"""Bytes per event on disk through the raw log lifecycle, and what each compacted form costs
the pipeline to read, in the same run.

    python -m bench.lifecycle                      # 1M events over 10 days
    python -m bench.lifecycle --events 200000      # a quicker look

It generates closed UTC days of JSONL in the collector's layout (bench/pipeline.py's traffic,
with UUIDv7-shaped ids as the collector writes them), then, each `footfall run` in a fresh
process:

    initial            footfall run over the raw days: the DuckDB file's bytes per event
    full, raw          footfall run --full over the raw days (plan + read steps, total); it
                       also compacts them (lifecycle.LEVEL), in a step timed apart
    candidates         each day as `.jsonl.gz` at gzip levels 1, 6 and 9 (in process, zlib)
                       and as Parquet (zstd) of its valid lines, typed (DuckDB COPY): bytes
                       per event, and the seconds to write them
    typed load         create table … as select from each form, in a fresh process (best of
                       two): DuckDB's own read of raw JSONL, `.jsonl.gz` and Parquet
    full, compacted    footfall run --full over the compacted days (plan + read, total)
    retention          raw_days: 1 (every generated day is past it): the run that deletes the
                       days, then footfall run --full with no raw logs left, carrying every
                       event over from the published database
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

from bench import pipeline as bench_pipeline
from bench.pipeline import COLUMNS, CONFIG, RUN, START, measure
from pipeline import lifecycle

DAYS = 10

LOAD = """
import os, sys, time, duckdb
source, target = sys.argv[1], sys.argv[2]
if os.path.exists(target):
    os.remove(target)
con = duckdb.connect(target)
con.execute("set enable_progress_bar = false")
t = time.perf_counter()
con.execute(f"create table t as select * from {source}")
con.execute("checkpoint")
n = con.sql("select count(*) from t").fetchall()[0][0]
took = time.perf_counter() - t
con.close()
os.remove(target)
print(n, took)
"""


def generate(logs: Path, days: int, per_day: int) -> None:
    for day in range(days):
        bench_pipeline.generate_day(logs, day, per_day)
    old = time.time() - 2 * lifecycle.SETTLE.total_seconds()  # closed days
    for path in logs.rglob("*.jsonl"):
        os.utime(path, (old, old))


def size_of(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def gzip_levels(files: list[Path]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level in (1, 6, 9):
        started = time.perf_counter()
        size = 0
        for path in files:
            deflate = zlib.compressobj(level, zlib.DEFLATED, 31)
            with open(path, "rb") as f:
                while chunk := f.read(1 << 20):
                    size += len(deflate.compress(chunk))
            size += len(deflate.flush())
        out[f"level_{level}"] = {"bytes": size, "seconds": round(time.perf_counter() - started, 2)}
    return out


def to_parquet(logs: Path, into: Path) -> tuple[int, float]:
    """Each day's valid lines, typed, as Parquet with zstd."""
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    started = time.perf_counter()
    for folder in sorted({p.parent for p in logs.rglob("*.jsonl")}):
        target = into / (folder.relative_to(logs).as_posix().replace("/", "-") + ".parquet")
        con.execute(f"copy (select * from read_json('{folder}/*.jsonl', format = "
                    f"'newline_delimited', columns = {COLUMNS})) to '{target}' "
                    "(format parquet, compression zstd)")
    took = time.perf_counter() - started
    con.close()
    return size_of(list(into.glob("*.parquet"))), took


def typed_load(source: str, scratch: Path) -> float:
    best = []
    for _ in range(2):
        best.append(float(measure(LOAD, source, str(scratch))["out"].split()[1]))
    return round(min(best), 2)


def pipeline_run(config: Path, mode: str) -> dict[str, Any]:
    run = measure(RUN, str(config), mode)
    detail = json.loads(run["out"])
    steps = detail["steps"]
    return {"seconds": run["seconds"], "peak_rss_mb": run["peak_rss_mb"],
            "plan_and_read_s": round(steps.get("plan", 0) + steps.get("read", 0), 2),
            "steps": steps, "new_events": detail["new_events"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000,
                        help=f"total events over {DAYS} days (default 1M)")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="footfall-lifecycle-"))
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    config = {"data_dir": str(work / "data"), "site_dir": str(work / "site"), **CONFIG}
    config_path = work / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    logs = work / "data" / "logs"
    per_day = args.events // (DAYS * 6)
    results: dict[str, Any] = {"load_average_before": [round(x, 2) for x in os.getloadavg()]}

    generate(logs, DAYS, per_day)
    raw_files = sorted(logs.rglob("*.jsonl"))
    events = per_day * 6 * DAYS
    raw = size_of(raw_files)
    results["events"] = events
    results["raw"] = {"bytes": raw, "bytes_per_event": round(raw / events, 1)}

    levels = gzip_levels(raw_files)
    for level in levels.values():
        level["bytes_per_event"] = round(level["bytes"] / events, 1)
        level["ratio"] = round(raw / level["bytes"], 1)
    results["gzip"] = levels
    parquet_dir = work / "parquet"
    parquet_dir.mkdir()
    parquet, parquet_s = to_parquet(logs, parquet_dir)
    results["parquet_zstd"] = {"bytes": parquet, "bytes_per_event": round(parquet / events, 1),
                               "ratio": round(raw / parquet, 1), "seconds": round(parquet_s, 2)}
    scratch = work / "scratch.duckdb"
    fmt = f"format = 'newline_delimited', columns = {COLUMNS}"
    results["typed_load_s"] = {
        "raw_jsonl": typed_load(f"read_json('{logs}/**/*.jsonl', {fmt})", scratch),
        "parquet_zstd": typed_load(f"read_parquet('{parquet_dir}/*.parquet')", scratch),
    }

    results["initial"] = pipeline_run(config_path, "incremental")
    db = (work / "data" / "footfall.duckdb").stat().st_size
    results["duckdb_file"] = {"bytes": db, "bytes_per_event": round(db / events, 1)}
    # every run after the days were read compacts them, this one too: it reads the raw files,
    # then compacts them in its `compact` step, reported apart
    full_raw = pipeline_run(config_path, "full")
    full_raw["compact_s"] = full_raw["steps"].get("compact", 0.0)
    full_raw["seconds_without_compact"] = round(full_raw["seconds"] - full_raw["compact_s"], 2)
    results["full_raw"] = full_raw
    compacted = sorted(logs.rglob(f"{lifecycle.PREFIX}*.jsonl.gz"))
    assert len(compacted) == DAYS and not list(logs.rglob("*.jsonl")), "not every day compacted"
    size = size_of(compacted)
    results["compacted_jsonl_gz"] = {"bytes": size, "bytes_per_event": round(size / events, 1),
                                     "ratio": round(raw / size, 1), "level": lifecycle.LEVEL}
    results["typed_load_s"]["jsonl_gz"] = typed_load(
        f"read_json('{logs}/**/*.jsonl.gz', {fmt})", scratch)
    results["full_compacted"] = pipeline_run(config_path, "full")

    last = date.fromisoformat(START) + timedelta(days=DAYS - 1)
    config["retention"] = {"raw_days": 1}
    config_path.write_text(yaml.safe_dump(config))
    results["retention_run"] = pipeline_run(config_path, "incremental")
    assert not list(logs.rglob("*.jsonl*")), f"days up to {last} should be gone"
    results["full_without_raw"] = pipeline_run(config_path, "full")
    db = (work / "data" / "footfall.duckdb").stat().st_size
    results["duckdb_file_after_full_without_raw"] = {"bytes": db,
                                                     "bytes_per_event": round(db / events, 1)}

    full_gz = results["full_compacted"]
    results["ratios"] = {
        "full_compacted_vs_raw": round(full_gz["seconds"]
                                       / full_raw["seconds_without_compact"], 2),
        "read_compacted_vs_raw": round(full_gz["plan_and_read_s"] / full_raw["plan_and_read_s"],
                                       2),
        "typed_load_parquet_vs_jsonl_gz": round(results["typed_load_s"]["parquet_zstd"]
                                                / results["typed_load_s"]["jsonl_gz"], 2),
        "full_without_raw_vs_full_raw": round(results["full_without_raw"]["seconds"]
                                              / full_raw["seconds_without_compact"], 2),
    }
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(results, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
