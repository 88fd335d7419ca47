"""Benchmark `footfall run` at 5M, 20M and 50M events against DuckDB's own load of the same files.

    python -m bench.pipeline --workdir /big/disk/bench --results pipeline.json
                                                  # 5M, 20M, 50M events (16 GB of JSONL)
    python -m bench.pipeline --sizes 5M           # one size (29 days, about 1.7 GB)
    python -m bench.pipeline --sizes 1M           # a quicker look
    python -m bench.pipeline --generate-only --sizes 50M --workdir DIR   # the logs, ahead
    python -m bench.pipeline --memory-limit 3GB --threads 2             # pipeline settings

History grows by days, not by denser days: every UTC day holds the same 172,800 events, so
5M is the first 29 days, 20M the first 116 and 50M the first 289, and the incremental day is
the same size at every size (what "flat as history grows" compares). The days are generated
once, with DuckDB, into `workdir/pool` in the collector's layout (data_dir/logs/YYYY/MM/DD/);
each size's data_dir links the first days' files (hard links: no second copy). Then, at each
size, each in a fresh process:

    bare         select count(*) from read_json('<logs>/**/*.jsonl') over every day but
                 the last                                          (best of --repeat)
    typed table  create table t as select * from read_json(..., columns = {every contract
                 column typed}) into a DuckDB file, checkpointed    (best of --repeat)
    full         footfall run over the same files into a fresh database: everything is
                 read, built and written        (target ≤ 3× the typed table, < 4 GB RSS)
    incremental  footfall run after the last day's file lands      (target ≤ 10% of full)

and at the smallest size only (each costs about as much as the full run again):

    full again   footfall run --full: the raw day exports are unchanged, so it skips
                 rewriting them
    full, exports rewritten
                 the same after deleting the exports, so every raw day file
                 is written again: the cost when every day's rows changed
    config change
                 one more day lands and sessions.timeout_minutes changes: the
                 run ingests the day and recomputes every stored session

For each run: wall seconds, CPU seconds (user + system: `pipeline.threads` bounds them),
peak RSS (target < 4 GB at 50M) and the peak bytes of data_dir/.pipeline (the build copy,
the work database and DuckDB's spill directory). Per size: bytes of JSONL, of the DuckDB
file and of the exports. Results go to --results as each number comes, so a long run can be
read while it works. The events look like real traffic: visitors with one to three sessions
of a few pageviews, engagement events, some custom events with props, referrers, UTM tags,
browsers, countries; two sites, one in Europe/Berlin; a three-step funnel.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import yaml

START = "2024-03-01"
#: visitors a day, 6 events each: 172,800 events, about 58 MB of JSONL
VISITORS_PER_DAY = 28_800
EVENTS_PER_DAY = VISITORS_PER_DAY * 6

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
        timestamp '2024-03-01' + to_days($day)
            + to_seconds(start_s + k * (20 + hash(v, k) % 300)::bigint
                         + case when comes_back and k >= 3 then 2700 else 0 end)
            + to_milliseconds((hash(v, k, 'ms') % 1000)::bigint) as at_ts
    from visitors, range(6) s(k)
)
select
    1 as v,
    -- a UUIDv7 as the collector makes it: the event's millisecond first, so ids sort by time
    printf('%08x-%04x-7%03x-%04x-%012x', epoch_ms(at_ts) // 65536, epoch_ms(at_ts) % 65536,
           hash(v, k, 'a') % 4096, 32768 + hash(v, k, 'b') % 16384,
           hash(v, k, 'c') % 281474976710656) as id,
    strftime(at_ts, '%Y-%m-%dT%H:%M:%S.%gZ') as ts,
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


def day_path(logs: Path, day: int) -> Path:
    d = date.fromisoformat(START) + timedelta(days=day)
    return logs / f"{d:%Y/%m/%d}" / "bench-1-0.jsonl"


def generate_day(logs: Path, day: int, visitors: int = VISITORS_PER_DAY) -> Path:
    """Write one UTC day of events (6 per visitor) as the collector would: one file per day.

    Kept if it exists: a file appears only complete (written aside, then renamed)."""
    path = day_path(logs, day)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.part")
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    sql = GENERATE.replace("$day", str(day)).replace("$first_visitor", str(day * visitors))
    sql = sql.replace("$visitors", str(visitors))
    # absent rather than null, as the collector writes them; one CSV column with neither
    # quotes nor a delimiter that JSON text can hold is the line as it is, and COPY writes it
    # without passing every row through Python
    con.execute(
        f"copy (select regexp_replace(to_json(e), ',\"[a-z_]+\":null', '', 'g') "
        f"from ({sql}) e) to '{partial}' "
        "(format csv, header false, quote '', escape '', delimiter '\x01')"
    )
    con.close()
    os.replace(partial, path)
    return path


def link_days(pool: Path, logs: Path, days: range) -> None:
    """Give a size's logs folder the pool's files for `days`, as hard links."""
    for day in days:
        source, target = day_path(pool, day), day_path(logs, day)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)


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


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            # a run's temp file may go between listing and stat
            with contextlib.suppress(FileNotFoundError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def measure(code: str, *args: str, watch: Path | None = None) -> dict[str, Any]:
    """Run `code` in a fresh process: wall and CPU seconds, peak RSS, peak bytes of `watch`."""
    wrapper = (
        "import resource, subprocess, sys, json\n"
        "r = subprocess.run([sys.executable, '-c', sys.argv[1], *sys.argv[2:]],"
        " capture_output=True, text=True)\n"
        "sys.stderr.write(r.stderr)\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'rc': r.returncode, 'out': r.stdout,"
        " 'cpu': u.ru_utime + u.ru_stime, 'rss': u.ru_maxrss * 1024}))\n"
    )
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while watch is not None and not done.wait(0.5):
            peak[0] = max(peak[0], _tree_bytes(watch))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    started = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", wrapper, code, *args],
                         capture_output=True, text=True)
    took = time.perf_counter() - started
    done.set()
    poller.join()
    report = json.loads(res.stdout)
    if report["rc"] != 0:
        raise SystemExit(res.stderr)
    out = {"seconds": round(took, 2), "cpu_seconds": round(report["cpu"], 1),
           "peak_rss_mb": int(report["rss"]) // 2**20, "out": str(report["out"])}
    if watch is not None:
        out["peak_work_mb"] = peak[0] // 2**20
    return out


def parse_size(text: str) -> int:
    scale = {"K": 1_000, "M": 1_000_000, "G": 1_000_000_000}.get(text[-1:].upper(), 1)
    return int(float(text.rstrip("KMGkmg")) * scale)


def days_for(events: int) -> int:
    return max(2, round(events / EVENTS_PER_DAY))


class Results:
    """The numbers so far, rewritten to a file after each one (and printed at the end)."""

    def __init__(self, path: Path | None, meta: dict[str, Any]) -> None:
        self.path, self.data = path, {**meta, "sizes": {}}

    def put(self, size: str, key: str, value: Any) -> None:
        self.data["sizes"].setdefault(size, {})[key] = value
        if self.path is not None:
            partial = self.path.with_name(self.path.name + ".part")
            partial.write_text(json.dumps(self.data, indent=2) + "\n")
            os.replace(partial, self.path)


def run_size(work: Path, pool: Path, days: int, args: argparse.Namespace, results: Results,
             extras: bool) -> None:
    label = f"{days * EVENTS_PER_DAY / 1e6:.3g}M"
    root = work / "runs" / label
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    config: dict[str, Any] = {
        "data_dir": str(root / "data"), "site_dir": str(root / "site"), **CONFIG,
        "pipeline": {"memory_limit": args.memory_limit, "threads": args.threads}}
    config_file = root / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    logs, pipeline_dir = root / "data" / "logs", root / "data" / ".pipeline"
    cores = args.threads or os.cpu_count() or 1

    def put(key: str, value: Any) -> None:
        results.put(label, key, value)

    put("days", days)
    put("events", days * EVENTS_PER_DAY)

    def run(mode: str) -> dict[str, Any]:
        m = measure(RUN, str(config_file), mode, watch=pipeline_dir)
        detail = json.loads(m.pop("out"))
        m["steps"], m["models"] = detail["steps"], detail["models"]
        m["new_events"] = detail["new_events"]
        # starting Python and DuckDB, copying the published database into the build file,
        # preparing the tables: what the run's own step timings leave out
        m["outside_steps_s"] = round(m["seconds"] - sum(detail["steps"].values()), 2)
        return m

    # the baselines read exactly the files the fresh build reads
    link_days(pool, logs, range(days - 1))
    bare = [measure(BARE, str(logs)) for _ in range(args.repeat)]
    put("bare_scan", {"seconds": min(float(b["out"].split()[1]) for b in bare),
                      "rows": int(bare[0]["out"].split()[0]),
                      "cpu_seconds": min(b["cpu_seconds"] for b in bare)})
    typed = [measure(MATERIALISE, str(logs), str(root / "materialised.duckdb"), COLUMNS,
                     args.memory_limit) for _ in range(args.repeat)]
    put("typed_table", {"seconds": min(float(t["out"].split()[1]) for t in typed),
                        "rows": int(typed[0]["out"].split()[0]),
                        "peak_rss_mb": max(t["peak_rss_mb"] for t in typed),
                        "cpu_seconds": min(t["cpu_seconds"] for t in typed)})
    full = run("incremental")  # a fresh database: everything is read, built and written
    put("full", full)
    db = root / "data" / "footfall.duckdb"
    log_bytes = sum(p.stat().st_size for p in logs.rglob("*.jsonl"))
    built = (days - 1) * EVENTS_PER_DAY
    put("bytes", {"jsonl": log_bytes, "duckdb": db.stat().st_size,
                  "exports": _tree_bytes(root / "site" / "exports")
                  + _tree_bytes(root / "data" / "exports"),
                  "jsonl_per_event": round(log_bytes / built, 1),
                  "duckdb_per_event": round(db.stat().st_size / built, 1)})

    link_days(pool, logs, range(days - 1, days))
    incremental = run("incremental")
    put("incremental", incremental)
    typed_s, bare_s = results.data["sizes"][label]["typed_table"]["seconds"], \
        results.data["sizes"][label]["bare_scan"]["seconds"]
    typed_cpu = results.data["sizes"][label]["typed_table"]["cpu_seconds"]
    put("ratios", {
        "full_vs_typed_table": round(full["seconds"] / typed_s, 2),
        "full_vs_typed_table_cpu": round(full["cpu_seconds"] / typed_cpu, 2),
        "full_vs_bare": round(full["seconds"] / bare_s, 2),
        "incremental_vs_full": round(incremental["seconds"] / full["seconds"], 3),
        "incremental_vs_full_cpu": round(incremental["cpu_seconds"] / full["cpu_seconds"], 3),
        "drilldown_share_of_incremental": round(
            incremental["steps"].get("drill-down", 0.0) / incremental["seconds"], 3),
        # capacity planning: what one core of the pipeline gets through
        "full_events_per_hour_per_core": round(built / (full["seconds"] * cores) * 3600),
        "full_events_per_cpu_hour": round(built / full["cpu_seconds"] * 3600),
        "incremental_events_per_cpu_hour": round(
            EVENTS_PER_DAY / incremental["cpu_seconds"] * 3600),
    })
    if extras:
        put("full_again", run("full"))  # raw day exports unchanged: not rewritten
        shutil.rmtree(root / "site" / "exports")
        shutil.rmtree(root / "data" / "exports", ignore_errors=True)  # the raw day files
        put("full_rewriting_exports", run("full"))
        link_days(pool, logs, range(days, days + 1))
        config["sessions"] = {"timeout_minutes": 25}
        config_file.write_text(yaml.safe_dump(config))
        put("config_change", run("incremental"))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="5M,20M,50M",
                        help="total events at each size, comma-separated (default 5M,20M,50M)")
    parser.add_argument("--events", type=int,
                        help="one size, as a number of events (the same as --sizes N)")
    parser.add_argument("--memory-limit", default="3GB", help="pipeline.memory_limit")
    parser.add_argument("--threads", type=int, default=0, help="pipeline.threads (0: all)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs of each baseline, the best kept (default 2)")
    parser.add_argument("--workdir", type=Path,
                        help="the generated logs and the runs (default: a temp dir)")
    parser.add_argument("--results", type=Path, help="write the numbers here as they come")
    parser.add_argument("--generate-only", action="store_true",
                        help="only generate the logs into workdir/pool, for a later run")
    parser.add_argument("--no-extras", action="store_true",
                        help="skip the smallest size's extra runs (full again, exports "
                             "rewritten, config change)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the generated logs and each size's data afterwards")
    args = parser.parse_args(argv)

    sizes = [args.events] if args.events else [parse_size(s) for s in args.sizes.split(",")]
    all_days = sorted(days_for(n) for n in sizes)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="footfall-bench-"))
    pool = work / "pool" / "logs"
    results = Results(args.results, {
        "memory_limit": args.memory_limit, "threads": args.threads,
        "cpus": os.cpu_count(), "duckdb": duckdb.__version__,
        "events_per_day": EVENTS_PER_DAY, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_at_start": os.getloadavg()})
    # one day past the largest size: the smallest size's config-change run adds one
    needed = max(all_days[-1], all_days[0] + 1)
    started = time.perf_counter()
    for day in range(needed if args.generate_only else all_days[0] + 1):
        generate_day(pool, day)
    results.data["generate_s"] = round(time.perf_counter() - started, 1)
    if args.generate_only:
        print(json.dumps(results.data, indent=2))
        return 0
    for i, days in enumerate(all_days):
        for day in range(days):
            generate_day(pool, day)  # kept when it exists
        run_size(work, pool, days, args, results, extras=i == 0 and not args.no_extras)
        results.data["sizes"][f"{days * EVENTS_PER_DAY / 1e6:.3g}M"]["load_average_after"] = \
            os.getloadavg()
        results.put(f"{days * EVENTS_PER_DAY / 1e6:.3g}M", "finished",
                    time.strftime("%Y-%m-%d %H:%M:%S"))
    print(json.dumps(results.data, indent=2))
    if not args.keep:
        shutil.rmtree(work / "pool", ignore_errors=True)
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
