"""Benchmark `footfall run` against DuckDB's bare scan of the same files, in the same run.

    python -m bench.pipeline                      # 5.2M events over 30 days (about 1.2 GB)
    python -m bench.pipeline --events 1000000     # a quicker look
    python -m bench.pipeline --memory-limit 1GB   # pipeline.memory_limit for the runs

It generates JSONL logs in the collector's layout (data_dir/logs/YYYY/MM/DD/), with DuckDB so
that generating is quick, then measures, each in a fresh process:

    bare         select count(*) from read_json('<logs>/**/*.jsonl')  (best of two)
    typed table  create table t as select * from read_json(..., columns = {every contract
                 column typed}) into a DuckDB file, checkpointed        (best of two)
    initial      footfall run over days 1-29
    incremental  footfall run after day 30's file lands              (target ≤ 10% of full)
    full         footfall run --full over all 30 days                (target ≤ 3× bare;
                 also reported against the typed table); the raw day exports
                 are unchanged, so it skips rewriting them
    full, exports rewritten
                 the same after deleting the exports, so every raw day file
                 is written again: the cost when every day's rows changed
    config change
                 a 31st day lands and sessions.timeout_minutes changes: the run
                 ingests the day and recomputes every stored session

and the peak RSS of each run (target < 4 GB). The events look like real traffic: visitors
with one to three sessions of a few pageviews, engagement events, some custom events with
props, referrers, UTM tags, browsers, countries; two sites, one in Europe/Berlin.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import yaml

DAYS = 30
START = "2024-03-01"

# One row per event. Visitor v (ids rotate daily, as the collector's do) has 6 event slots;
# slot k of visitor v happens at start + k × a few minutes, with a 45-minute break before
# slot 3 for a third of the visitors (a second session).
GENERATE = """
with
visitors as (
    select
        v,
        $day as day,
        hash(v, 'site') % 5 < 3 as on_blog,
        (hash(v, 'start') % 86000)::bigint as start_s,
        hash(v, 'twice') % 3 = 0 as comes_back,
        (hash(v, 'src') % 10)::bigint as src,
        (hash(v, 'ua') % 12)::bigint as ua,
        (hash(v, 'geo') % 9)::bigint as geo
    from range($first_visitor, $first_visitor + $visitors) t(v)
),
slots as (
    select visitors.*, k,
        start_s + k * (20 + hash(v, k) % 300)::bigint
            + case when comes_back and k >= 3 then 2700 else 0 end as at_s
    from visitors, range(6) s(k)
)
select
    1 as v,
    printf('%016x-%02d', hash(v, 'id'), k) as id,
    strftime(timestamp '2024-03-01' + to_days($day) + to_seconds(at_s)
             + to_milliseconds((hash(v, k, 'ms') % 1000)::bigint),
             '%Y-%m-%dT%H:%M:%S.%gZ') as ts,
    case when on_blog then 'example.com' else 'shop.example.org' end as site,
    case when k % 3 = 2 then 'engagement'
         when k = 4 and hash(v, 'goal') % 4 = 0 then 'Signup'
         else 'pageview' end as name,
    case when k = 0 then '/' else '/' || (['blog', 'docs', 'pricing', 'products', 'about'])
        [(1 + hash(v, k, 'dir') % 5)::bigint] || '/'
        || (hash(v, k, 'page') % 400)::bigint::varchar end as path,
    printf('%016x', hash(v, 'visitor', $day)) as visitor,
    case when on_blog then 'example.com' else 'shop.example.org' end as hostname,
    case when k = 0 and src < 6 then (['www.google.com/', 'news.ycombinator.com/item',
        'duckduckgo.com/', 'github.com/owner/repo', 't.co/', 'reddit.com/r/selfhosted'])[1 + src]
        end as referrer,
    case when k = 0 and src < 6 then (['Google', 'Hacker News', 'DuckDuckGo', 'GitHub',
        'Twitter', 'Reddit'])[1 + src] end as source,
    case when k = 0 and src = 7 then 'newsletter' end as utm_source,
    case when k = 0 and src = 7 then 'email' end as utm_medium,
    case when k = 0 and src = 7 then 'spring-sale' end as utm_campaign,
    (['Chrome', 'Firefox', 'Safari', 'Edge'])[1 + ua % 4] as browser,
    ((100 + ua)::varchar) as browser_version,
    (['Windows', 'macOS', 'iOS', 'Android', 'Linux', 'Windows'])[1 + ua % 6] as os,
    (['10', '14', '17', '14', null, '11'])[1 + ua % 6] as os_version,
    (['desktop', 'desktop', 'mobile', 'mobile', 'desktop', 'tablet'])[1 + ua % 6] as device,
    (['DE', 'US', 'GB', 'FR', 'NL', 'IN', 'BR', 'JP', 'SE'])[1 + geo] as country,
    ([1920, 1440, 390, 412, 1280, 820])[1 + ua % 6] as screen_width,
    case when k = 4 and hash(v, 'goal') % 4 = 0
        then {'plan': (['pro', 'free'])[(1 + hash(v, 'plan') % 2)::bigint],
              'seats': (1 + v % 5)::bigint} end
        as props,
    case when k % 3 = 2 then false end as interactive,
    case when k % 3 = 2 then (hash(v, k, 'eng') % 120000)::bigint end as engaged_ms,
    case when k % 3 = 2 then (hash(v, k, 'sd') % 101)::bigint end as scroll_pct
from slots
"""

CONFIG = {
    "sites": [{"domain": "example.com", "timezone": "Europe/Berlin"},
              {"domain": "shop.example.org", "timezone": "UTC"}],
    "funnels": [{"name": "Signup", "site": "example.com", "steps": [
        {"name": "Home", "path": "/"},
        {"name": "Pricing", "path": "/pricing/*"},
        {"name": "Signed up", "event": "Signup", "props": {"plan": "pro"}},
    ]}],
}


def generate_day(logs: Path, day: int, visitors: int) -> Path:
    """Write one UTC day of events (6 per visitor) as the collector would: one file per day."""
    from datetime import date, timedelta

    d = date.fromisoformat(START) + timedelta(days=day)
    path = logs / f"{d:%Y/%m/%d}" / "bench-1-0.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    sql = GENERATE.replace("$day", str(day)).replace("$first_visitor", str(day * visitors))
    sql = sql.replace("$visitors", str(visitors))
    # absent rather than null, as the collector writes them
    rows = con.execute(
        f"select regexp_replace(to_json(e), ',\"[a-z_]+\":null', '', 'g') from ({sql}) e"
    ).fetchall()
    con.close()
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(r[0] for r in rows) + "\n")
    return path


BARE = """
import sys, time, duckdb
con = duckdb.connect()
con.execute("set enable_progress_bar = false")
t = time.perf_counter()
n = con.sql(f"select count(*) from read_json('{sys.argv[1]}/**/*.jsonl')").fetchall()[0][0]
print(n, time.perf_counter() - t)
"""

# The same files materialised into a DuckDB file with every contract column typed: what a
# plain "load the logs into a table" costs, a fairer floor for a run that must build and
# store every value than the bare count(*), which projects no columns at all.
COLUMNS = (
    "{v: 'BIGINT', id: 'VARCHAR', ts: 'TIMESTAMP', site: 'VARCHAR', name: 'VARCHAR', "
    "path: 'VARCHAR', visitor: 'VARCHAR', hostname: 'VARCHAR', referrer: 'VARCHAR', "
    "source: 'VARCHAR', utm_source: 'VARCHAR', utm_medium: 'VARCHAR', utm_campaign: 'VARCHAR', "
    "utm_term: 'VARCHAR', utm_content: 'VARCHAR', browser: 'VARCHAR', "
    "browser_version: 'VARCHAR', os: 'VARCHAR', os_version: 'VARCHAR', device: 'VARCHAR', "
    "country: 'VARCHAR', screen_width: 'BIGINT', props: 'JSON', interactive: 'BOOLEAN', "
    "engaged_ms: 'BIGINT', scroll_pct: 'BIGINT'}"
)

MATERIALISE = """
import os, sys, time, duckdb
target = sys.argv[2]
if os.path.exists(target):
    os.remove(target)
con = duckdb.connect(target)
con.execute("set enable_progress_bar = false")
con.execute(f"set memory_limit = '{sys.argv[4]}'")
t = time.perf_counter()
con.execute(f"create table t as select * from read_json('{sys.argv[1]}/**/*.jsonl', "
            f"format = 'newline_delimited', columns = {sys.argv[3]})")
con.execute("checkpoint")
n = con.sql("select count(*) from t").fetchall()[0][0]
took = time.perf_counter() - t
con.close()
os.remove(target)
print(n, took)
"""

RUN = """
import sys, json
from footfall.config import load
from pipeline import run
s = run(load(sys.argv[1]), full=sys.argv[2] == 'full', progress=None)
print(json.dumps({"seconds": s.seconds, "steps": s.steps, "models": s.models,
                  "new_events": s.new_events}))
"""


def measure_rss(code: str, *args: str) -> tuple[float, int, str]:
    """Peak RSS per child, via /usr/bin/time-free accounting: run under a wrapper."""
    wrapper = (
        "import resource, subprocess, sys, json\n"
        "r = subprocess.run([sys.executable, '-c', sys.argv[1], *sys.argv[2:]],"
        " capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "print(json.dumps({'rc': r.returncode, 'out': r.stdout,"
        " 'rss': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024}))\n"
    )
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", wrapper, code, *args],
                         capture_output=True, text=True)
    took = time.perf_counter() - started
    report = json.loads(res.stdout)
    if report["rc"] != 0:
        raise SystemExit(res.stderr)
    return took, int(report["rss"]), str(report["out"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5_200_000,
                        help="total events over 30 days (default 5.2M)")
    parser.add_argument("--memory-limit", default="2GB", help="pipeline.memory_limit")
    parser.add_argument("--threads", type=int, default=0, help="pipeline.threads (0: all)")
    parser.add_argument("--workdir", type=Path, help="keep the data here (default: a temp dir)")
    args = parser.parse_args(argv)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    shutil.rmtree(work / "data", ignore_errors=True)
    shutil.rmtree(work / "site", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    config = {"data_dir": str(work / "data"), "site_dir": str(work / "site"), **CONFIG,
              "pipeline": {"memory_limit": args.memory_limit, "threads": args.threads}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    logs = work / "data" / "logs"
    per_day = args.events // (DAYS * 6)

    started = time.perf_counter()
    for day in range(DAYS - 1):
        generate_day(logs, day, per_day)
    generated = time.perf_counter() - started
    results: dict[str, Any] = {"events": per_day * 6 * DAYS, "memory_limit": args.memory_limit,
                               "generate_s": round(generated, 1)}

    took, rss, out = measure_rss(RUN, str(work / "config.yaml"), "incremental")
    results["initial_29_days"] = {"seconds": round(took, 2), "peak_rss_mb": rss // 2**20}

    generate_day(logs, DAYS - 1, per_day)
    took, rss, out = measure_rss(RUN, str(work / "config.yaml"), "incremental")
    results["incremental_one_day"] = {"seconds": round(took, 2), "peak_rss_mb": rss // 2**20,
                                      "detail": json.loads(out)}

    bare = []
    for _ in range(2):
        took, rss, out = measure_rss(BARE, str(logs))
        bare.append(float(out.split()[1]))
    results["bare_scan"] = {"seconds": round(min(bare), 2), "rows": int(out.split()[0]),
                            "process_seconds": round(took, 2)}

    typed = []
    for _ in range(2):
        took, rss, out = measure_rss(MATERIALISE, str(logs), str(work / "materialised.duckdb"),
                                     COLUMNS, args.memory_limit)
        typed.append(float(out.split()[1]))
    results["typed_table"] = {"seconds": round(min(typed), 2), "rows": int(out.split()[0]),
                              "peak_rss_mb": rss // 2**20}

    took, rss, out = measure_rss(RUN, str(work / "config.yaml"), "full")
    results["full"] = {"seconds": round(took, 2), "peak_rss_mb": rss // 2**20,
                       "detail": json.loads(out)}
    shutil.rmtree(work / "site" / "exports")
    shutil.rmtree(work / "data" / "exports", ignore_errors=True)  # the raw day files
    took, rss, out = measure_rss(RUN, str(work / "config.yaml"), "full")
    results["full_rewriting_exports"] = {"seconds": round(took, 2), "peak_rss_mb": rss // 2**20,
                                         "detail": json.loads(out)}
    size = sum(p.stat().st_size for p in logs.rglob("*.jsonl"))
    results["log_bytes"] = size
    results["database_bytes"] = (work / "data" / "footfall.duckdb").stat().st_size
    generate_day(logs, DAYS, per_day)
    config["sessions"] = {"timeout_minutes": 25}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    took, rss, out = measure_rss(RUN, str(work / "config.yaml"), "incremental")
    results["config_change"] = {"seconds": round(took, 2), "peak_rss_mb": rss // 2**20,
                                "detail": json.loads(out)}
    full = results["full"]["seconds"]
    results["full_vs_bare"] = round(full / results["bare_scan"]["seconds"], 2)
    results["full_vs_typed_table"] = round(full / results["typed_table"]["seconds"], 2)
    rewriting = results["full_rewriting_exports"]["seconds"]
    bare_s = results["bare_scan"]["seconds"]
    results["full_rewriting_exports_vs_bare"] = round(rewriting / bare_s, 2)
    incremental = results["incremental_one_day"]["seconds"]
    results["incremental_vs_full"] = round(incremental / full, 3)
    results["incremental_vs_full_rewriting_exports"] = round(incremental / rewriting, 3)
    print(json.dumps(results, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
