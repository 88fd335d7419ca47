"""footfall's figures from an imported access log agree with GoAccess on the same file.

A realistic combined log (bench/accesslog.py: three days, assets, crawlers, headless browsers
and HTTP libraries, 301s, 404s and 500s, POST and HEAD, IPv4 and IPv6, escaped and very long
user agents, a spam referrer, an id in a path) goes through the real `goaccess --output=json`
with the settings of docs/access-logs.md and through `footfall import logs` plus
`footfall run`. Daily unique visitors and hits per page are then compared both ways against a
model of the log built here from its lines:

    GoAccess == the requests GoAccess counts (2xx/304, not static, not a known crawler)
    footfall == those requests minus the documented differences: other methods than GET,
                agents footfall's bot rules drop, referrer spam; paths with ids masked

so every difference is one of the documented rules, and each one really occurs in the log.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
import yaml

from bench.accesslog import CRAWLERS, generate, goaccess_args, statuses
from collector.accesslog import is_asset
from collector.paths import redact_path
from collector.referrer import Referrers
from collector.useragent import AgentParser
from tests.helpers import IN_CI

ROOT = Path(__file__).resolve().parent.parent
LINE = re.compile(r'(\S+) - - \[(\d\d/\w{3}/\d{4}):[^\]]+\] "(\w+) (\S+) [^"]*" (\d{3}) \d+ '
                  r'"([^"]*)" "((?:[^"\\]|\\.)*)"')
SITE = "example.com"


def _goaccess() -> str:
    found = shutil.which("goaccess")
    if found is None:
        if IN_CI:
            pytest.fail("goaccess not installed; .ci/run must install it")
        pytest.skip("goaccess not installed (apt-get install goaccess)")
    return found


def _model(log: Path) -> dict[str, dict[str, set[tuple[str, str]] | Counter[str]]]:
    """Per side, visitors per day and hits per page, and the requests each rule explains."""
    agents, referrers = AgentParser(), Referrers()
    hosts = frozenset({SITE, f"www.{SITE}"})
    goaccess_visitors: dict[str, set[tuple[str, str]]] = defaultdict(set)
    footfall_visitors: dict[str, set[tuple[str, str]]] = defaultdict(set)
    goaccess_hits: Counter[str] = Counter()
    footfall_hits: Counter[str] = Counter()
    explained: Counter[str] = Counter()
    for text in log.read_text(encoding="utf-8").splitlines():
        match = LINE.fullmatch(text)
        assert match, text
        ip, day, method, target, status, referrer, ua = match.groups()
        code = int(status)
        if not (200 <= code < 300 or code == 304) or is_asset(target, None) or ua in CRAWLERS:
            continue  # GoAccess leaves it out with the settings of docs/access-logs.md
        date = datetime.strptime(day, "%d/%b/%Y").date().isoformat()
        path = target.split("?", 1)[0]
        goaccess_visitors[date].add((ip, ua))
        goaccess_hits[path] += 1
        if method != "GET":
            explained["method"] += 1
        elif agents.parse(ua).bot is not None:
            explained["bot"] += 1
        elif referrer != "-" and referrers.classify(referrer, hosts).spam:
            explained["spam"] += 1
        else:
            footfall_visitors[date].add((ip, ua))
            footfall_hits[redact_path(path)] += 1
            if redact_path(path) != path:
                explained["masked path"] += 1
    return {"goaccess_visitors": goaccess_visitors, "footfall_visitors": footfall_visitors,
            "goaccess_hits": goaccess_hits, "footfall_hits": footfall_hits,
            "explained": explained}  # type: ignore[dict-item]


@pytest.mark.slow
def test_daily_visitors_and_page_hits_agree_with_goaccess(tmp_path: Path) -> None:
    _goaccess()
    log = tmp_path / "access.log"
    generate(log, days=3, visits_per_day=150)
    report = tmp_path / "report.json"
    subprocess.run(goaccess_args(log, report, statuses(log)), check=True, capture_output=True)
    ga = json.loads(report.read_text())
    ga_visitors = {datetime.strptime(row["data"], "%Y%m%d").date().isoformat():
                   row["visitors"]["count"] for row in ga["visitors"]["data"]}
    ga_hits = {row["data"]: row["hits"]["count"] for row in ga["requests"]["data"]}

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"),
                                      "site_dir": str(tmp_path / "site"),
                                      "sites": [{"domain": SITE, "timezone": "UTC"}]}))
    for args in (["import", "logs", str(log), "--site", SITE], ["run", "--no-site"],
                 ["check"]):
        done = subprocess.run([sys.executable, "-m", "footfall.cli", *args, "--config",
                               str(config)], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    with duckdb.connect(str(tmp_path / "data" / "footfall.duckdb"), read_only=True) as con:
        ff_visitors = {d.isoformat(): n for d, n in con.execute(
            "select date, visitors from daily_stats where site = ?", [SITE]).fetchall()}
        ff_hits = dict(con.execute(
            "select path, sum(pageviews)::bigint from daily_pages where site = ? group by path",
            [SITE]).fetchall())

    model = _model(log)
    # The model is GoAccess's: it counts exactly these requests and visitors.
    assert ga_visitors == {d: len(v) for d, v in model["goaccess_visitors"].items()}
    assert ga_hits == dict(model["goaccess_hits"])
    # footfall counts the same minus the documented rules, and nothing else.
    assert ff_visitors == {d: len(v) for d, v in model["footfall_visitors"].items()}
    assert ff_hits == dict(model["footfall_hits"])
    # Each documented difference occurs in this log, so the test shows each one at work.
    explained = model["explained"]
    assert set(explained) == {"method", "bot", "spam", "masked path"}, explained
    # Apart from those, the figures are equal: on most days most visitors are the same.
    assert sum(ff_visitors.values()) < sum(ga_visitors.values())
    assert set(ff_visitors) == set(ga_visitors)
