"""Dashboard render time for ten sites of 400 days each (target: well under 10 s).

    python -m bench.render

Marts with realistic row counts are made by SQL alone (tests/site_helpers.synthetic_marts),
then the site is rendered twice: the first render writes every file, the second finds every
file unchanged and writes none. The second is reported as a fraction of the first: what
rendering costs when only publishing is saved.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path

from footfall import config as config_mod
from reports import render_site
from tests.helpers import write_config
from tests.site_helpers import synthetic_marts

SITES = 10
DAYS = 400
TARGET_S = 10.0


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="footfall-bench-render-") as tmp:
        sites = [{"domain": f"site{i}.test", "timezone": "Europe/Berlin"} for i in range(SITES)]
        funnels = [{"name": "Signup", "site": s["domain"],
                    "steps": [{"name": "Home", "path": "/"}, {"name": "Done", "event": "x"}]}
                   for s in sites]
        cfg = config_mod.load(write_config(Path(tmp), sites=sites, funnels=funnels))
        cfg.data_dir.mkdir(parents=True)
        synthetic_marts(cfg, DAYS)
        now = datetime(2026, 2, 5, 12, tzinfo=UTC)
        first = render_site(cfg, now)
        again = render_site(cfg, now)
    verdict = "met" if first.seconds < TARGET_S else "MISSED"
    print(f"render, {SITES} sites x {DAYS} days: {first.describe()} "
          f"(target < {TARGET_S:.0f}s: {verdict})")
    print(f"render again, nothing changed: {again.describe()} "
          f"= {again.seconds / first.seconds:.2f}x the first")
    return 0 if first.seconds < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
