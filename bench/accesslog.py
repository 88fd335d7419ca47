"""Benchmark `footfall import logs` against GoAccess parsing the same file, in the same run.

    python -m bench.accesslog                 # 1M lines of a combined log (about 330 MB)
    python -m bench.accesslog --lines 200000  # a quicker look

`generate` writes a realistic nginx/Apache combined log; tests/test_accesslog_goaccess.py uses
it too. Each measured step runs in a fresh process, best of two:

    goaccess   goaccess FILE --log-format=COMBINED -o report.json with the settings that match
               footfall's pageview rule (docs/access-logs.md)
    footfall   footfall's import of the same file into a fresh data_dir (the salts and state
               of the first attempt are removed before the second)

and reports lines/s of each and footfall's time as a multiple of GoAccess's.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import yaml

SITE = "example.com"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

BROWSERS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
    "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/16.6 Mobile/15E148 Safari/604.1",
    # Odd but human: nginx's \xHH escape of non-ASCII bytes, and a very long one.
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/123.0.0.0 Safari/537.36 \\xE2\\x80\\x94 Kiosk",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/122.0.0.0 Safari/537.36 " + " ".join(f"Ext{i}/1.{i}" for i in range(90)),
)
#: Crawlers both footfall and GoAccess (--ignore-crawlers) recognise.
CRAWLERS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
)
#: Automated clients footfall's bot rules drop and GoAccess's crawler list lets through:
#: headless browsers, HTTP libraries and agents too short to be a browser.
FOOTFALL_ONLY_BOTS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "-",
)
PAGES = ("/", "/pricing", "/about", "/blog/", "/blog/hello-world", "/blog/second-post",
         "/docs/install", "/docs/config", "/contact", "/user/48213377/settings")
ASSETS = ("/static/app.css?v=3", "/static/app.js", "/img/logo.png", "/fonts/inter.woff2",
          "/favicon.ico")
REFERRERS = ("-", "-", "-", "https://www.google.com/", "https://news.ycombinator.com/item?id=1",
             "https://t.co/abc", "https://duckduckgo.com/", "https://semalt.com/")


@dataclass(frozen=True)
class Client:
    ip: str
    ua: str


def _ip(rng: random.Random, v6: bool) -> str:
    if v6:
        return f"2a02:{rng.randrange(0x1000, 0xffff):x}:{rng.randrange(0xffff):x}::" \
               f"{rng.randrange(1, 0xffff):x}"
    first = rng.choice((81, 89, 93, 175, 186, 216))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _clf_time(moment: datetime) -> str:
    return (f"{moment.day:02d}/{MONTHS[moment.month - 1]}/{moment.year}:"
            f"{moment:%H:%M:%S} +0000")


def _line(client: Client, moment: datetime, method: str, target: str, status: int,
          referrer: str) -> tuple[datetime, str]:
    size = 0 if status == 304 else 512 + len(target) * 37
    return moment, (f'{client.ip} - - [{_clf_time(moment)}] "{method} {target} HTTP/1.1" '
                    f'{status} {size} "{referrer}" "{client.ua}"\n')


def _visit(rng: random.Random, client: Client, start: datetime) -> list[tuple[datetime, str]]:
    out = []
    moment = start
    referrer = rng.choice(REFERRERS)
    if referrer == "https://semalt.com/" and rng.random() < 0.9:
        referrer = "-"  # spam stays rare
    campaign = "?utm_source=newsletter&utm_medium=email" if rng.random() < 0.1 else ""
    seen: set[str] = set()
    for i in range(rng.choice((1, 1, 2, 3, 4, 6))):
        page = rng.choice(PAGES)
        roll = rng.random()
        if roll < 0.04:
            out.append(_line(client, moment, "GET", "/old-page", 301, referrer))
            page = "/blog/hello-world"
        elif roll < 0.08:
            out.append(_line(client, moment, "GET", "/no-such-page", 404, referrer))
            moment += timedelta(seconds=rng.randrange(2, 20))
            continue
        elif roll < 0.09:
            out.append(_line(client, moment, "GET", page, 500, referrer))
            continue
        elif roll < 0.11:
            out.append(_line(client, moment, "POST", "/contact", 200, f"https://{SITE}/contact"))
            continue
        status = 304 if page in seen and rng.random() < 0.5 else 200
        seen.add(page)
        out.append(_line(client, moment, "GET", page + (campaign if i == 0 else ""), status,
                         referrer if i == 0 else f"https://{SITE}/"))
        for asset in ASSETS:
            if rng.random() < 0.7:
                out.append(_line(client, moment + timedelta(milliseconds=300), "GET", asset,
                                 304 if i else 200, f"https://{SITE}{page}"))
        moment += timedelta(seconds=rng.randrange(5, 400))
    return out


def generate(path: Path, days: int = 3, visits_per_day: int = 200, seed: int = 7,
             start: date = date(2026, 11, 28)) -> int:
    """Write a combined log of `days` days; returns the number of lines."""
    rng = random.Random(seed)
    humans = [Client(_ip(rng, v6=i % 5 == 0), rng.choice(BROWSERS)) for i in range(400)]
    bots = [Client(_ip(rng, v6=False), ua) for ua in CRAWLERS for _ in range(3)]
    scripts = [Client(_ip(rng, v6=i % 2 == 1), ua)
               for i, ua in enumerate(FOOTFALL_ONLY_BOTS) for _ in range(2)]
    entries: list[tuple[datetime, str]] = []
    for d in range(days):
        midnight = datetime.combine(start + timedelta(days=d), datetime.min.time(), UTC)
        for _ in range(visits_per_day):
            begin = midnight + timedelta(seconds=rng.randrange(86_000))
            entries += _visit(rng, rng.choice(humans), begin)
        for client in bots + scripts:
            for _ in range(rng.randrange(3, 12)):
                moment = midnight + timedelta(seconds=rng.randrange(86_000))
                target = rng.choice((*PAGES, "/robots.txt", "/sitemap.xml"))
                entries.append(_line(client, moment, "GET", target, 200, "-"))
        monitor = Client("216.160.83.56", BROWSERS[0])
        for hour in range(0, 24, 6):
            entries.append(_line(monitor, midnight + timedelta(hours=hour), "HEAD", "/", 200, "-"))
    entries.sort(key=lambda e: e[0])
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(line for _, line in entries)
    return len(entries)


def goaccess_args(log: Path, report: Path, statuses: set[int]) -> list[str]:
    """GoAccess settings that match footfall's pageview rule as far as GoAccess can."""
    from collector.accesslog import ASSET_EXTENSIONS

    args = ["goaccess", str(log), "--no-global-config", "--log-format=COMBINED",
            "--ignore-crawlers", "--ignore-statics=panel", "--all-static-files",
            "--no-query-string", "--http-method=no", "--http-protocol=no",
            "--no-progress", "--no-parsing-spinner", "-o", str(report)]
    # GoAccess matches extensions case-sensitively; footfall does not.
    for ext in sorted(ASSET_EXTENSIONS):
        args += [f"--static-file={ext}", f"--static-file={ext.upper()}"]
    for status in sorted(s for s in statuses if not (200 <= s < 300 or s == 304)):
        args.append(f"--ignore-status={status}")
    return args


def statuses(log: Path) -> set[int]:
    found = set()
    with open(log, encoding="utf-8") as f:
        for line in f:
            after = line.split('" ', 1)[1] if '" ' in line else ""
            if after[:3].isdigit():
                found.add(int(after[:3]))
    return found


_IMPORT = """
import sys
from collector.accesslog import import_logs
from footfall.config import load
summary = import_logs(load(sys.argv[1]), "example.com", [sys.argv[2]], progress=None)
print(summary.pageviews)
"""


def _timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="about this many lines")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="footfall-bench-accesslog-") as tmp_name:
        tmp = Path(tmp_name)
        log = tmp / "access.log"
        days = 10
        # about 12 lines per visit (the page, its assets, the next pages), plus the bots
        lines = generate(log, days=days, visits_per_day=max(1, args.lines // days // 12))
        size = log.stat().st_size
        print(f"log: {lines:,} lines, {size / 1e6:,.0f} MB", file=sys.stderr)
        goaccess_cmd = goaccess_args(log, tmp / "report.json", statuses(log))
        config = tmp / "config.yaml"
        config.write_text(yaml.safe_dump({"data_dir": str(tmp / "data"),
                                          "site_dir": str(tmp / "site"),
                                          "sites": [{"domain": SITE, "timezone": "UTC"}]}))
        footfall_cmd = [sys.executable, "-c", _IMPORT, str(config), str(log)]
        times: dict[str, float] = {}
        for name, cmd in (("goaccess", goaccess_cmd), ("footfall", footfall_cmd)):
            best = float("inf")
            for _ in range(2):
                shutil.rmtree(tmp / "data", ignore_errors=True)
                best = min(best, _timed(cmd))
            times[name] = best
        result = {
            "lines": lines, "megabytes": round(size / 1e6, 1),
            "goaccess_s": round(times["goaccess"], 2),
            "footfall_s": round(times["footfall"], 2),
            "goaccess_lines_per_s": round(lines / times["goaccess"]),
            "footfall_lines_per_s": round(lines / times["footfall"]),
            "footfall_vs_goaccess": round(times["footfall"] / times["goaccess"], 2),
        }
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
