"""Benchmark the quarantine on hostile input: a log file of random bytes.

    python -m bench.quarantine               # 50 MB of random bytes as one .jsonl file
    python -m bench.quarantine --mb 5        # a quicker look

Random bytes contain a newline every 256 bytes on average, so 50 MB is about 200,000
"lines", every one of them malformed. Each run happens in a fresh process. This reports the
time of the quarantine's two steps (finding and storing the refused lines; writing
data_dir/quarantine/), the run's total time and peak RSS, the size of the quarantine folder,
and how much footfall.duckdb grew over a run of one line. The baseline, in the same session,
is the same run over a log of the same size made of valid events (there the database grows
by the events themselves).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

# runs one `pipeline.run` and prints its summary and peak RSS as JSON (VmHWM: ru_maxrss
# would include this process's memory, which the child inherits at fork)
CHILD = """
import json, sys
from footfall import config
import pipeline
summary = pipeline.run(config.load(sys.argv[1]), progress=None)
status = open("/proc/self/status").read()
peak_kb = next(int(x.split()[1]) for x in status.splitlines() if x.startswith("VmHWM:"))
print(json.dumps({"steps": summary.steps, "seconds": summary.seconds,
                  "quarantined": summary.quarantined, "new_events": summary.new_events,
                  "rss_mb": peak_kb / 1024}))
"""

GOOD = {"v": 1, "ts": "2024-04-01T10:00:00.000Z", "site": "example.com", "name": "pageview",
        "path": "/pricing", "visitor": "0123456789abcdef", "browser": "Chrome"}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def one_run(root: Path, data: bytes) -> dict[str, Any]:
    cfg = root / "config.yaml"
    cfg.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"), "site_dir": str(root / "site"),
        "sites": [{"domain": "example.com", "timezone": "UTC"}],
    }))
    logs = root / "data" / "logs"
    logs.mkdir(parents=True)
    (logs / "empty.jsonl").write_bytes(json.dumps({**GOOD, "id": "first"}).encode() + b"\n")
    empty = run_child(cfg)
    db_before = (root / "data" / "footfall.duckdb").stat().st_size
    (logs / "hostile.jsonl").write_bytes(data)
    result = run_child(cfg)
    quarantine = root / "data" / "quarantine"
    result["folder_mb"] = round((folder_bytes(quarantine) if quarantine.exists() else 0) / 1e6, 2)
    result["db_mb"] = round(((root / "data" / "footfall.duckdb").stat().st_size - db_before)
                            / 1e6, 2)
    result["empty_run_s"] = empty["seconds"]
    return result


def run_child(cfg: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(cfg)], capture_output=True,
                         text=True, check=True)
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0, help="size of the log (default 50)")
    args = parser.parse_args()
    size = int(args.mb * 1_000_000)
    rows = []
    for label, data in (
        ("random bytes", os.urandom(size)),
        ("valid events", valid_events(size)),
    ):
        with tempfile.TemporaryDirectory(prefix="footfall-bench-q-") as tmp:
            r = one_run(Path(tmp), data)
        q = r["steps"].get("quarantine", 0.0) + r["steps"].get("quarantine files", 0.0)
        rows.append(r)
        print(f"{label:>13}: {args.mb:g} MB, quarantine steps {q:.2f} s, run {r['seconds']:.1f} s,"
              f" peak RSS {r['rss_mb']:.0f} MB, {r['quarantined']:,} lines quarantined, "
              f"{r['new_events']:,} events; quarantine folder {r['folder_mb']} MB, "
              f"database +{r['db_mb']} MB")
    hostile, valid = rows
    print(f"random bytes vs valid events of the same size: run time "
          f"{hostile['seconds'] / valid['seconds']:.2f}x, peak RSS "
          f"{hostile['rss_mb'] / valid['rss_mb']:.2f}x")


def valid_events(size: int) -> bytes:
    out, n, total = [], 0, 0
    while total < size:
        line = json.dumps({**GOOD, "id": f"e{n}", "path": f"/p/{n % 500}"}).encode() + b"\n"
        out.append(line)
        total += len(line)
        n += 1
    return b"".join(out)


if __name__ == "__main__":
    main()
