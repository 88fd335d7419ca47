"""Benchmark `footfall render`: 10 sites × 400 days of marts, with the drill-down pages.

    python -m bench.render                 # 10 sites, 400 days, 10 drill-down rows per panel
    python -m bench.render --drill 0       # without drill-down pages, for comparison

The marts are made by SQL alone (tests/site_helpers.py, `synthetic_marts`), with the filtered
marts pipeline/drilldown.py would write. It measures, each in this process:

    first      a render into an empty site_dir: every file written
    again      the same render: nothing changed, no file written (the incremental case)

and reports seconds, files and pages. The machine's load average is printed beside them:
the numbers are only comparable at a similar load.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from footfall import config
from reports import render_site
from tests.site_helpers import synthetic_marts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=10)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--drill", type=int, default=10, help="report.drilldown_rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sites = [{"domain": f"site{i}.test", "timezone": "Europe/Berlin"}
                 for i in range(args.sites)]
        path = root / "config.yaml"
        path.write_text(yaml.safe_dump({
            "data_dir": str(root / "data"), "site_dir": str(root / "site"), "sites": sites,
            "report": {"drilldown_rows": args.drill},
            "funnels": [{"name": "Signup", "site": s["domain"], "steps": [
                {"name": "Home", "path": "/"}, {"name": "Done", "event": "x"}]}
                for s in sites]}))
        cfg = config.load(path)
        cfg.data_dir.mkdir(parents=True)
        synthetic_marts(cfg, args.days, drill=args.drill)
        now = datetime(2026, 2, 5, 12, tzinfo=UTC)
        results: dict[str, object] = {"sites": args.sites, "days": args.days,
                                      "drilldown_rows": args.drill,
                                      "load_average": os.getloadavg()[0]}
        for name in ("first", "again"):
            started = time.perf_counter()
            summary = render_site(cfg, now)
            results[name] = {"seconds": round(time.perf_counter() - started, 2),
                             "files": summary.files, "written": summary.written}
        results["pages"] = sum(1 for _ in cfg.site_dir.rglob("*.html"))
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
