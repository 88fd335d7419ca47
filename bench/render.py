"""Benchmark `footfall render`: the whole demo, and 10 sites × 400 days with drill-down pages.

    python -m bench.render                 # both
    python -m bench.render --only demo     # the demo (`footfall demo`'s data, 60 days)
    python -m bench.render --only synthetic --sites 10 --days 400 --drill 10

The demo is built as `footfall demo` builds it (generator, collector path, pipeline). The
synthetic marts are made by SQL alone (tests/site_helpers.py, `synthetic_marts`), with the
filtered marts pipeline/drilldown.py would write. Each is rendered three times:

    first      into an empty site_dir, without the last render's state: every page rendered
    again      the same render: no input changed, so no page is rendered or written
    next day   the clock a day later (the demo: the same data): the rolling pages, the
               month that ends today and the filtered pages render again, the rest not

and reports wall and CPU seconds, files, files written, pages rendered and pages left
unchanged. The machine's load average is printed beside them: wall seconds are only
comparable at a similar load (CPU seconds, of this process and its DuckDB threads, less so
affected). The target: the whole demo renders in under 10 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from footfall import config, demo
from footfall.config import Config
from reports import render_site
from tests.site_helpers import synthetic_marts

#: The demo's clock: a fixed day, so runs compare.
DEMO_NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def _renders(cfg: Config, now: datetime) -> dict[str, Any]:
    for child in cfg.site_dir.glob("*"):  # all but the pipeline's exports
        if child.name != "exports":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    out: dict[str, Any] = {}
    for name, at, incremental in (("first", now, False), ("again", now, True),
                                  ("next day", now + timedelta(days=1), True)):
        wall, cpu = time.perf_counter(), time.process_time()
        summary = render_site(cfg, at, incremental=incremental)
        out[name] = {"seconds": round(time.perf_counter() - wall, 2),
                     "cpu_seconds": round(time.process_time() - cpu, 2),
                     "files": summary.files, "written": summary.written,
                     "pages_rendered": summary.pages, "pages_unchanged": summary.unchanged}
    out["pages"] = sum(1 for _ in cfg.site_dir.rglob("*.html"))
    return out


def bench_demo(root: Path) -> dict[str, Any]:
    built = demo.build(root / "demo", now=DEMO_NOW, say=lambda _text: None)
    return {"days": demo.DAYS, "load_average": os.getloadavg()[0],
            **_renders(built.cfg, DEMO_NOW)}


def bench_synthetic(root: Path, sites: int, days: int, drill: int) -> dict[str, Any]:
    domains = [{"domain": f"site{i}.test", "timezone": "Europe/Berlin"} for i in range(sites)]
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"), "site_dir": str(root / "site"), "sites": domains,
        "report": {"drilldown_rows": drill},
        "funnels": [{"name": "Signup", "site": s["domain"], "steps": [
            {"name": "Home", "path": "/"}, {"name": "Done", "event": "x"}]}
            for s in domains]}))
    cfg = config.load(path)
    cfg.data_dir.mkdir(parents=True)
    synthetic_marts(cfg, days, drill=drill)
    return {"sites": sites, "days": days, "drilldown_rows": drill,
            "load_average": os.getloadavg()[0],
            **_renders(cfg, datetime(2026, 2, 5, 12, tzinfo=UTC))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("demo", "synthetic"))
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--drill", type=int, default=10, help="report.drilldown_rows")
    args = parser.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "demo"):
            results["demo"] = bench_demo(Path(tmp))
        if args.only in (None, "synthetic"):
            results["synthetic"] = bench_synthetic(Path(tmp), args.sites, args.days,
                                                   args.drill)
    results["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
