"""Importing access logs: formats, the pageview rule, ids, resume, quarantine and privacy.

Every import here is the real one (collector/accesslog.py with the collector's Enricher) on
real files in tmp_path; the pipeline runs as `footfall run` in a subprocess.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import pytest

from bench.accesslog import generate
from collector.accesslog import import_logs, is_imported_id
from footfall import contract
from footfall.config import Config
from footfall.errors import FootfallError
from tests.helpers import CHROME_UA, GOOGLEBOT_UA, IPHONE_UA, read_lines

ROOT = Path(__file__).resolve().parent.parent
GB_IP = "81.2.69.142"  # geoip2fast: GB


@pytest.fixture(autouse=True)
def _own_id_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Enricher draws a tracker id for each line before the import puts its own in. The
    process-wide generator never goes back in time, so the log times here (later than other
    tests' frozen clocks) would move it forward for the rest of the session."""
    monkeypatch.setattr(contract, "new_id", contract._UUID7())


def clf(ip: str, when: str, request: str, status: int = 200, referrer: str = "-",
        ua: str = CHROME_UA, vhost: str | None = None) -> str:
    line = f'{ip} - - [{when}] "{request}" {status} 1234 "{referrer}" "{ua}"'
    return f"{vhost} {line}\n" if vhost else line + "\n"


def write(path: Path, *lines: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")
    return path


def imported(cfg: Config) -> list[dict[str, Any]]:
    return [line for line in read_lines(cfg.data_dir) if is_imported_id(line["id"])]


def footfall(cfg: Config, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    assert cfg.source is not None
    return subprocess.run([sys.executable, "-m", "footfall.cli", *args, "--config",
                           str(cfg.source)], cwd=ROOT, capture_output=True, text=True, **kwargs)


# --- formats and the pageview rule -----------------------------------------------------------


def test_combined_line_becomes_the_collectors_pageview(config: Config, tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log", clf(
        GB_IP, "30/Nov/2026:10:00:00 +0000",
        "GET /account/jane@example.org/orders?utm_source=Newsletter&token=s3cr3t HTTP/1.1",
        referrer="https://news.ycombinator.com/item?id=123", ua=IPHONE_UA))
    summary = import_logs(config, "example.com", [str(log)], progress=None)
    assert summary.pageviews == 1 and summary.lines == 1
    [line] = imported(config)
    assert {k: v for k, v in line.items() if k not in ("id", "visitor")} == {
        "v": 1, "ts": "2026-11-30T10:00:00.000Z", "site": "example.com", "name": "pageview",
        "path": "/account/:email/orders", "hostname": "example.com",
        "referrer": "news.ycombinator.com/item", "source": "Hacker News",
        "utm_source": "Newsletter", "browser": "Safari", "browser_version": "17", "os": "iOS",
        "os_version": "17", "device": "mobile", "country": "GB"}
    assert len(line["visitor"]) == 16


def test_common_vcombined_and_caddy_formats(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(sites=[{"domain": "example.com", "timezone": "UTC"}])
    common = write(tmp_path / "in" / "common.log",
                   f'{GB_IP} - - [30/Nov/2026:10:00:00 +0000] "GET /docs HTTP/1.1" 200 512\n',
                   f'{GB_IP} - - [30/Nov/2026:10:00:09 +0000] "GET /app.css HTTP/1.1" 200 51\n')
    assert import_logs(cfg, "example.com", [str(common)], "common", progress=None).pageviews == 1
    vhosts = write(tmp_path / "in" / "vhosts.log",
                   clf(GB_IP, "30/Nov/2026:11:00:00 +0000", "GET /a HTTP/1.1",
                       vhost="www.example.com:443"),
                   clf(GB_IP, "30/Nov/2026:11:00:01 +0000", "GET /b HTTP/1.1",
                       vhost="other.org:80"))
    summary = import_logs(cfg, "example.com", [str(vhosts)], "vcombined", progress=None)
    assert summary.pageviews == 1 and summary.not_pageviews == {"other host": 1}

    def caddy(uri: str, content_type: str, ts: float | str) -> str:
        return json.dumps({
            "level": "info", "ts": ts, "logger": "http.log.access", "msg": "handled request",
            "request": {"remote_ip": "10.0.0.2", "client_ip": GB_IP, "proto": "HTTP/2.0",
                        "method": "GET", "host": "example.com", "uri": uri,
                        "headers": {"User-Agent": [CHROME_UA],
                                    "Referer": ["https://duckduckgo.com/"]}},
            "bytes_read": 0, "duration": 0.01, "size": 900, "status": 200,
            "resp_headers": {"Content-Type": [content_type]}}) + "\n"

    caddy_log = write(tmp_path / "in" / "caddy.log",
                      caddy("/pricing?utm_campaign=spring", "text/html; charset=utf-8",
                            1796040000.25),
                      caddy("/avatar", "image/png", 1796040001.0),  # an asset without extension
                      caddy("/feed", "text/html", "2026-11-30T12:00:05Z"))
    summary = import_logs(cfg, "example.com", [str(caddy_log)], "caddy-json", progress=None)
    assert summary.pageviews == 2 and summary.not_pageviews == {"asset": 1}
    lines = sorted(imported(cfg), key=lambda line: line["ts"])
    assert [(x["ts"], x["path"]) for x in lines] == [
        ("2026-11-30T10:00:00.000Z", "/docs"), ("2026-11-30T11:00:00.000Z", "/a"),
        ("2026-11-30T12:00:00.250Z", "/pricing"), ("2026-11-30T12:00:05.000Z", "/feed")]
    # common logs carry no user agent: no browser, and the client IP (not the proxy) is used
    assert "browser" not in lines[0] and lines[0]["country"] == "GB"
    assert lines[2]["utm_campaign"] == "spring" and lines[2]["source"] == "DuckDuckGo"
    assert lines[2]["country"] == "GB"


def test_only_successful_gets_of_pages_by_people_count(make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(collector={"exclude_paths": ["/admin/*"]})
    t = "30/Nov/2026:10:00:00 +0100"
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, t, "GET / HTTP/1.1"),
                clf(GB_IP, t, "GET /again HTTP/1.1", status=304),
                clf(GB_IP, t, "GET /gone HTTP/1.1", status=404),
                clf(GB_IP, t, "GET /moved HTTP/1.1", status=301),
                clf(GB_IP, t, "GET /broken HTTP/1.1", status=500),
                clf(GB_IP, t, "POST /contact HTTP/1.1"),
                clf(GB_IP, t, "HEAD / HTTP/1.1"),
                clf(GB_IP, t, "GET /static/app.js?v=2 HTTP/1.1"),
                clf(GB_IP, t, "GET /img/LOGO.PNG HTTP/1.1"),
                clf(GB_IP, t, "GET /admin/users HTTP/1.1"),
                clf(GB_IP, t, "GET /pricing HTTP/1.1", ua=GOOGLEBOT_UA),
                clf(GB_IP, t, "GET /pricing HTTP/1.1", ua="-"),
                clf(GB_IP, t, "GET /pricing HTTP/1.1", referrer="http://semalt.com/"),
                clf(GB_IP, t, '\\x16\\x03\\x01\\x02\\x00', status=400))  # TLS to port 80
    summary = import_logs(cfg, "example.com", [str(log)], progress=None)
    assert summary.pageviews == 2 and summary.malformed == 0
    assert summary.not_pageviews == {
        "other status": 3, "other method": 3, "asset": 2, "excluded-path": 1, "crawler": 1,
        "empty-ua": 1, "referrer-spam": 1}
    assert sorted(line["path"] for line in imported(cfg)) == ["/", "/again"]
    with_head = import_logs(cfg, "example.com", [str(log)], head=True, progress=None)
    assert with_head.pageviews == 0  # the file was imported already: nothing is added twice


def test_head_counts_when_asked(config: Config, tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "HEAD /status HTTP/1.1"))
    assert import_logs(config, "example.com", [str(log)], head=True, progress=None).pageviews == 1


def test_refuses_what_it_cannot_do_with_a_reason(config: Config, tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log", clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /"))
    with pytest.raises(FootfallError, match=r"'nosuch\.org' is not one of sites"):
        import_logs(config, "nosuch.org", [str(log)], progress=None)
    with pytest.raises(FootfallError, match="no log file at"):
        import_logs(config, "example.com", [str(tmp_path / "missing.log")], progress=None)
    with pytest.raises(FootfallError, match="unknown log format 'w3c'"):
        import_logs(config, "example.com", [str(log)], "w3c", progress=None)


# --- ids, idempotency and resume -------------------------------------------------------------


def test_importing_twice_or_a_rotated_gzipped_copy_adds_nothing(config: Config,
                                                                tmp_path: Path) -> None:
    log = tmp_path / "in" / "access.log"
    log.parent.mkdir()
    generate(log, days=2, visits_per_day=40)
    first = import_logs(config, "example.com", [str(log)], progress=None)
    assert first.pageviews > 50
    snapshot = {p: p.read_bytes() for p in (config.logs_dir / "import").rglob("*.jsonl")}
    ids = [line["id"] for line in imported(config)]
    assert len(ids) == len(set(ids)) == first.pageviews
    assert all(is_imported_id(i) for i in ids)

    again = import_logs(config, "example.com", [str(log)], progress=None)
    rotated = tmp_path / "in" / "access.log.1.gz"
    rotated.write_bytes(gzip.compress(log.read_bytes()))
    log.unlink()
    from_gz = import_logs(config, "example.com", [str(rotated)], progress=None)
    assert again.pageviews == from_gz.pageviews == 0
    assert {p: p.read_bytes() for p in (config.logs_dir / "import").rglob("*.jsonl")} == snapshot


def test_a_grown_log_adds_only_its_new_lines(config: Config, tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /one HTTP/1.1"),
                clf(GB_IP, "30/Nov/2026:10:00:05 +0000", "GET /two HTTP/1.1"),
                # the web server is still writing this one: it waits for the next import
                f'{GB_IP} - - [30/Nov/2026:10:00:09 +0000] "GET /thr')
    assert import_logs(config, "example.com", [str(log)], progress=None).pageviews == 2
    with open(log, "a", encoding="utf-8") as f:
        f.write('ee HTTP/1.1" 200 5 "-" "' + CHROME_UA + '"\n')
        f.write(clf(GB_IP, "30/Nov/2026:10:01:00 +0000", "GET /four HTTP/1.1"))
    summary = import_logs(config, "example.com", [str(log)], progress=None)
    assert summary.pageviews == 2 and summary.lines == 2
    assert [line["path"] for line in imported(config)] == ["/one", "/two", "/three", "/four"]
    # the same visitor on the same day: one id across both imports... unless the salt went
    # with the first import, which it did (docs/access-logs.md: import a day in one go)
    assert not (config.salts_dir / "import").exists()


def test_stdin_is_a_source_too(config: Config, tmp_path: Path) -> None:
    data = clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /piped HTTP/1.1").encode()
    with open(write(tmp_path / "in" / "x.log", data.decode()), "rb") as stdin:
        assert import_logs(config, "example.com", ["-"], stdin=stdin,
                           progress=None).pageviews == 1
    packed = write(tmp_path / "in" / "x.log.gz", "")
    packed.write_bytes(gzip.compress(data))
    with open(packed, "rb") as stdin:  # gzip on stdin is read as gzip: the same source
        again = import_logs(config, "example.com", ["-"], stdin=stdin, progress=None)
    assert (again.sources, again.lines, again.pageviews, again.malformed) == (1, 0, 0, 0)
    assert [line["path"] for line in imported(config)] == ["/piped"]


def test_a_damaged_gzip_keeps_the_lines_before_the_damage(config: Config,
                                                           tmp_path: Path) -> None:
    lines = [clf(GB_IP, f"30/Nov/2026:10:{i:02d}:00 +0000", f"GET /p{i} HTTP/1.1")
             for i in range(40)]
    packed = gzip.compress("".join(lines).encode())
    log = tmp_path / "in" / "access.log.2.gz"
    log.parent.mkdir()
    log.write_bytes(packed[: len(packed) // 2])  # cut short, as by a full disk
    summary = import_logs(config, "example.com", [str(log)], progress=None)
    assert summary.damaged == [str(log)]
    assert 0 < summary.pageviews < 40
    assert "damaged gzip" in summary.warnings()[0]


def test_removed_events_are_imported_again_and_blank_lines_ignored(config: Config,
                                                                   tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /a HTTP/1.1"), "\n", "  \n",
                clf(GB_IP, "30/Nov/2026:10:00:05 +0000", "GET /b HTTP/1.1"))
    first = import_logs(config, "example.com", [str(log)], progress=None)
    assert first.pageviews == 2 and first.malformed == 0
    ids = [line["id"] for line in imported(config)]
    for events in (config.logs_dir / "import").rglob("*.jsonl"):
        events.unlink()
    assert import_logs(config, "example.com", [str(log)], progress=None).pageviews == 2
    assert [line["id"] for line in imported(config)] == ids  # the pipeline ingests each once


_IMPORT = """
import sys
from collector.accesslog import import_logs
from footfall.config import load
import_logs(load(sys.argv[1]), "example.com", [sys.argv[2]], progress=None)
"""


@pytest.mark.slow
def test_kill_9_mid_import_resumes_without_loss_or_duplicates(tmp_path: Path,
                                                              make_config: Any) -> None:
    cfg = make_config(sites=[{"domain": "example.com", "timezone": "UTC"}])
    log = tmp_path / "in" / "access.log"
    log.parent.mkdir()
    generate(log, days=4, visits_per_day=1200)  # ~60k lines, many flushes
    assert cfg.source is not None
    proc = subprocess.Popen([sys.executable, "-c", _IMPORT, str(cfg.source), str(log)],
                            cwd=ROOT)
    states = cfg.logs_dir / "import" / "example.com"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            found = list(states.glob("*.state")) if states.is_dir() else []
            if found and json.loads(found[0].read_text() or "{}").get("offset", 0) > 0:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "the import finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    partial = len(imported(cfg))
    assert partial > 0
    assert (cfg.salts_dir / "import").is_dir()  # kept for the resume
    import_logs(cfg, "example.com", [str(log)], progress=None)
    assert not (cfg.salts_dir / "import").exists()

    # The same file imported in one go, into a workspace that shares the source key (so the
    # same ids) but not the visitor salts.
    other = tmp_path / "other"
    shutil.copytree(cfg.salts_dir / "import-sources", other / "data" / "salts" / "import-sources")
    ref_cfg = Config(data_dir=other / "data", site_dir=other / "site", sites=cfg.sites)
    import_logs(ref_cfg, "example.com", [str(log)], progress=None)
    resumed, reference = imported(cfg), imported(ref_cfg)
    assert len(resumed) > partial
    assert [x["id"] for x in resumed] == [x["id"] for x in reference]
    strip = [{k: v for k, v in x.items() if k != "visitor"} for x in resumed]
    assert strip == [{k: v for k, v in x.items() if k != "visitor"} for x in reference]
    # one salt per day through the crash: the visitors of each day are the same people
    def per_day(lines: list[dict[str, Any]]) -> Counter[str]:
        return Counter(day for day, _ in {(x["ts"][:10], x["visitor"]) for x in lines})
    assert per_day(resumed) == per_day(reference)


# --- malformed lines -------------------------------------------------------------------------


def test_malformed_lines_are_quarantined_without_their_content(config: Config,
                                                               tmp_path: Path) -> None:
    log = tmp_path / "in" / "access.log"
    log.parent.mkdir()
    good = clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /first HTTP/1.1")
    with open(log, "wb") as f:
        f.write(good.encode())
        f.write(b"this is not an access log line 203.0.113.99\n")
        f.write(clf("203.0.113.99", "31/Nov/2026:10:00:00 +0000", "GET /x HTTP/1.1").encode())
        f.write(b"\xff\xfe\x00binary\n")
        f.write(b"203.0.113.99 - - [" + b"A" * 70_000 + b"\n")
        f.write(clf(GB_IP, "30/Nov/2026:10:05:00 +0000", "GET /last HTTP/1.1").encode())
    summary = import_logs(config, "example.com", [str(log)], progress=None)
    assert summary.malformed == 4 and summary.pageviews == 2
    assert [line["path"] for line in imported(config)] == ["/first", "/last"]
    [quarantine] = summary.quarantine
    assert quarantine.parent == config.quarantine_dir / "import" / "example.com"
    entries = [json.loads(x) for x in quarantine.read_text().splitlines()]
    assert [(e["line"], e["reason"]) for e in entries] == [
        (2, "does not match the combined format"),
        (3, "time is not like 10/Oct/2000:13:55:36 +0000"),
        (4, "does not match the combined format"),
        (5, "longer than 65536 bytes")]
    assert all(e["source"] == str(log) for e in entries)
    assert b"203.0.113.99" not in quarantine.read_bytes()
    # importing again quarantines nothing twice
    assert import_logs(config, "example.com", [str(log)], progress=None).malformed == 0
    assert len(quarantine.read_text().splitlines()) == 4


def test_forged_times_and_proxy_requests_are_not_views(config: Config, tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET http://evil.test/x HTTP/1.1"),
                clf(GB_IP, "30/Nov/2026:10:00:01 +0000", "GET https://Example.com/y HTTP/1.1"),
                clf(GB_IP, "01/Jan/1900:00:00:00 +0000", "GET /old HTTP/1.1"),
                clf(GB_IP, "01/Jan/9999:00:00:00 +0000", "GET /new HTTP/1.1"))
    summary = import_logs(config, "example.com", [str(log)], progress=None)
    assert summary.pageviews == 1 and summary.not_pageviews == {"other host": 1}
    assert summary.malformed == 2
    assert [line["path"] for line in imported(config)] == ["/y"]
    caddy = write(tmp_path / "in" / "caddy.log", *(json.dumps(
        {"ts": ts, "status": 200, "request": {"remote_ip": GB_IP, "method": "GET",
                                              "uri": "/z"}}) + "\n"
        for ts in (1e999, -5.0, "yesterday")))
    summary = import_logs(config, "example.com", [str(caddy)], "caddy-json", progress=None)
    assert summary.malformed == 3 and summary.pageviews == 0


# --- days that already have tracker events ---------------------------------------------------


def test_days_with_tracker_events_are_refused(collector_process: Any, tmp_path: Path) -> None:
    proc = collector_process()
    request = urllib.request.Request(
        proc.url + "/api/event", method="POST", headers={"User-Agent": CHROME_UA},
        data=json.dumps({"n": "pageview", "u": "https://example.com/tracked",
                         "d": "example.com"}).encode())
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 202
    tracked_at = datetime.now(UTC)
    from footfall.config import load

    cfg = load(tmp_path / "config.yaml")
    berlin = ZoneInfo("Europe/Berlin")

    def log_for(name: str, *moments: datetime) -> Path:
        return write(tmp_path / "in" / name, *(
            clf(f"81.2.69.{i + 1}", f"{m:%d/%b/%Y:%H:%M:%S} +0000", f"GET /p{i} HTTP/1.1")
            for i, m in enumerate(moments)))

    moments = (tracked_at - timedelta(days=2), tracked_at - timedelta(seconds=30))
    tracked_day = tracked_at.astimezone(berlin).date()
    refused = {m.astimezone(berlin).date() for m in moments} & {tracked_day}
    # from the log not yet ingested
    summary = import_logs(cfg, "example.com", [str(log_for("a.log", *moments))], progress=None)
    assert summary.tracked_days == refused == {tracked_day}
    assert summary.pageviews == 1
    # from the published database, once `footfall run` has ingested the tracker's log
    done = footfall(cfg, "run", "--no-site")
    assert done.returncode == 0, done.stderr
    later = (tracked_at - timedelta(days=3), tracked_at - timedelta(seconds=20))
    summary = import_logs(cfg, "example.com", [str(log_for("b.log", *later))], progress=None)
    assert summary.tracked_days == {tracked_day} and summary.pageviews == 1
    assert all(datetime.fromisoformat(x["ts"].replace("Z", "+00:00")).astimezone(berlin).date()
               != tracked_day for x in imported(cfg))


# --- privacy ---------------------------------------------------------------------------------

CANARY_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36 CanaryAgent/7.7")
CANARY_IPS = ("81.2.69.160", "2a02:c7f:7e0e:1:2:3:4:5", "203.0.113.77")
CANARY_QUERY = "secretq=hunter2"


def _written_bytes(root: Path) -> bytes:
    out = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            out.append(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return b"\n".join(out)


@pytest.mark.slow
def test_no_ip_user_agent_or_referrer_query_reaches_any_written_byte(
        make_config: Any, tmp_path: Path) -> None:
    cfg = make_config(sites=[{"domain": "example.com", "timezone": "UTC"}])
    t = "30/Nov/2026:10:{:02d}:00 +0000"
    log = write(tmp_path / "in" / "access.log",
                clf(CANARY_IPS[0], t.format(1), "GET / HTTP/1.1", ua=CANARY_UA,
                    referrer=f"https://news.example.org/item?{CANARY_QUERY}"),
                clf(CANARY_IPS[1], t.format(2), "GET /pricing HTTP/1.1", ua=CANARY_UA),
                clf(CANARY_IPS[2], t.format(3), "GET /p HTTP/1.1", ua=f"{CANARY_UA} bot"),
                f"{CANARY_IPS[2]} {CANARY_UA} garbage\n",
                clf(CANARY_IPS[0], t.format(4), "GET /docs HTTP/1.1", ua=CANARY_UA))
    outputs = []
    for args in (["import", "logs", str(log), "--site", "example.com", "-v"], ["run", "-v"]):
        done = footfall(cfg, *args)
        assert done.returncode == 0, done.stderr
        outputs.append((done.stdout + done.stderr).encode())
    assert len(imported(cfg)) == 3
    assert (tmp_path / "site" / "index.html").is_file()  # one import and a run: the dashboard
    written = _written_bytes(tmp_path / "data") + _written_bytes(tmp_path / "site")
    written += b"".join(outputs)
    [quarantine] = (cfg.quarantine_dir / "import").rglob("*.ndjson")
    assert len(quarantine.read_text().splitlines()) == 1  # the garbage line, scanned below
    for secret in (*CANARY_IPS, "CanaryAgent", CANARY_QUERY):
        assert secret.encode() not in written, secret
    # and not in a compressed column of the database either
    with duckdb.connect(str(cfg.database), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where data_type = 'VARCHAR'").fetchall()
        for schema, table, column in columns:
            hits = con.execute(
                f'select count(*) from "{schema}"."{table}" where '
                f'"{column}" similar to ?',
                [".*(" + "|".join(s.replace(".", r"\.") for s in (*CANARY_IPS, "CanaryAgent",
                                                                  CANARY_QUERY)) + ").*"],
            ).fetchone()
            assert hits == (0,), (schema, table, column)
    assert not (cfg.salts_dir / "import").exists()


# --- docs/access-logs.md is checked against the code -----------------------------------------


def test_the_docs_list_the_formats_extensions_reasons_and_bounds(config: Config,
                                                                 tmp_path: Path) -> None:
    from collector import accesslog, useragent

    text = (ROOT / "docs" / "access-logs.md").read_text(encoding="utf-8")
    listed = text.split("<!-- asset-extensions -->")[1].split("<!-- /asset-extensions -->")[0]
    assert listed.replace("`", "").split() == sorted(accesslog.ASSET_EXTENSIONS)
    for fmt in accesslog.FORMATS:
        assert f"| `{fmt}`" in text
    assert f"{accesslog.MAX_LINE // 1024} KiB" in text
    years = [datetime.fromtimestamp(ms / 1000, UTC).year
             for ms in (accesslog._EARLIEST_MS, accesslog._LATEST_MS)]
    assert text.count(f"{years[0]}–{years[1]}") == 2
    assert f"shorter than {useragent._MIN_UA_LENGTH} characters" in text
    # every reason a line can be turned away for is named, in italics
    t = "30/Nov/2026:10:00:00 +0000"
    log = write(tmp_path / "in" / "r.log",
                clf(GB_IP, t, "POST /x HTTP/1.1", vhost="example.com"),
                clf(GB_IP, t, "GET /x HTTP/1.1", status=404, vhost="example.com"),
                clf(GB_IP, t, "GET /x HTTP/1.1", vhost="other.org"))
    reasons = set(import_logs(config, "example.com", [str(log)], "vcombined",
                              progress=None).not_pageviews)
    reasons |= {"asset", "unreadable URL", "excluded-path", "referrer-spam"}
    reasons |= {agent.bot for agent in useragent._BOTS.values() if agent.bot}
    for reason in reasons:
        assert f"*{reason}*" in text, reason


# --- the command -----------------------------------------------------------------------------


def test_the_command_is_quiet_under_cron_and_shows_progress_on_a_terminal(
        config: Config, tmp_path: Path) -> None:
    import pty

    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /a HTTP/1.1"))
    quiet = footfall(config, "import", "logs", str(log), "--site", "example.com")
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "", "")
    assert len(imported(config)) == 1

    again = write(tmp_path / "in" / "other.log",
                  clf(GB_IP, "30/Nov/2026:11:00:00 +0000", "GET /b HTTP/1.1"))
    leader, follower = pty.openpty()
    assert config.source is not None
    proc = subprocess.run([sys.executable, "-m", "footfall", "import", "logs", str(again),
                           "--site", "example.com", "--config", str(config.source)],
                          cwd=ROOT, stdout=subprocess.PIPE, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the terminal's other end is closed and drained
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    text = shown.decode()
    assert "footfall import: 1 lines, 0.0 MB," in text and "lines/s" in text
    assert "1 pageviews" in text and "`footfall run` builds the reports" in text


def test_command_errors_are_one_line_with_the_fix(config: Config, tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /a HTTP/1.1"),
                "not a log line\n")
    for args, expected in (
        ([str(tmp_path / "nope.log"), "--site", "example.com"],
         f"footfall import: no log file at {tmp_path / 'nope.log'}; pass existing files, "
         "or - for stdin"),
        ([str(log), "--site", "example.org"],
         "footfall import: 'example.org' is not one of sites[].domain in the config "
         "(example.com, shop.test); add it there or pass --site with one of those"),
    ):
        done = footfall(config, "import", "logs", *args)
        assert done.returncode == 2 and done.stderr.strip() == expected, done.stderr
    # a malformed line is worth a line under cron too, and the import goes on
    done = footfall(config, "import", "logs", str(log), "--site", "example.com")
    assert done.returncode == 0 and len(imported(config)) == 1
    [warning] = done.stderr.splitlines()
    assert warning.startswith("footfall import: 1 malformed lines quarantined in ")
    # the pipeline's own quarantine clean-up (after --full) leaves the import's alone
    where = Path(warning.split(" quarantined in ", 1)[1])
    assert footfall(config, "run", "--full", "--no-site").returncode == 0
    assert len(where.read_text().splitlines()) == 1


def test_follow_imports_lines_as_they_are_written_until_sigterm(config: Config,
                                                                tmp_path: Path) -> None:
    log = write(tmp_path / "in" / "access.log",
                clf(GB_IP, "30/Nov/2026:10:00:00 +0000", "GET /first HTTP/1.1"))
    assert config.source is not None
    proc = subprocess.Popen(
        [sys.executable, "-m", "footfall", "import", "logs", str(log), "--site", "example.com",
         "--follow", "--config", str(config.source)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def wait_for(paths: list[str]) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if [line["path"] for line in imported(config)] == paths:
                return
            time.sleep(0.05)
        raise AssertionError(f"{[line['path'] for line in imported(config)]} != {paths}")

    try:
        wait_for(["/first"])
        with open(log, "a", encoding="utf-8") as f:
            f.write(clf(GB_IP, "30/Nov/2026:10:00:30 +0000", "GET /second HTTP/1.1"))
        wait_for(["/first", "/second"])
        assert (config.salts_dir / "import").is_dir()  # the day's salt, while it follows
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and err == ""
    assert not (config.salts_dir / "import").exists()
    # the same visitor on the same day kept one id while followed
    assert len({line["visitor"] for line in imported(config)}) == 1


def test_follow_needs_files(config: Config) -> None:
    with pytest.raises(FootfallError, match="leave --follow out"):
        import_logs(config, "example.com", ["-"], follow=True, progress=None)
