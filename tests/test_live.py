"""Live visitors: the reader over log files of several writers, the routes on a real aiohttp
server on loopback, two collector processes feeding one live view, and the page in headless
Chromium."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from collector import live
from collector.app import create_app
from collector.live import LiveReader
from collector.logwriter import LogWriter
from footfall import contract
from tests.helpers import CHROME_UA, CHROMIUM, IN_CI, IPHONE_UA, Clock

TOKEN = "live-token-for-tests-0123456789"
_ids = itertools.count(1)


def _line(clock: Clock, visitor: int, name: str = "pageview", path: str = "/",
          site: str = "example.com", **extra: Any) -> bytes:
    return contract.encode(contract.LogLine(
        v=1, id=f"l{next(_ids):015d}", ts=contract.format_ts(clock()), site=site, name=name,
        path=path, visitor=f"{visitor:016x}", **extra))


def _write(writer: LogWriter, clock: Clock, minutes_ago: float, visitors: range,
           **extra: Any) -> int:
    """One pageview per visitor, `minutes_ago` before the clock; returns the bytes written."""
    now = clock.ms
    clock.ms = now - int(minutes_ago * 60_000)
    written = 0
    for v in visitors:
        line = _line(clock, v, **extra)
        writer.append(line)
        written += len(line)
    clock.ms = now
    return written


def test_two_writers_counted_together_in_the_window(tmp_path: Path) -> None:
    clock = Clock()
    logs = tmp_path / "logs"
    a = LogWriter(logs, clock, 64 * 2**20, 1.0)
    b = LogWriter(logs, clock, 64 * 2**20, 1.0)
    _write(a, clock, 40, range(900, 905))  # before the window
    _write(a, clock, 10, range(60, 71), path="/pricing", source="Google", country="DE")
    _write(a, clock, 4, range(1, 31), source="Google", country="DE")
    _write(b, clock, 2, range(20, 51), path="/blog", country="FR")
    _write(b, clock, 0.5, range(40, 45), name="engagement")
    _write(b, clock, 1, range(500, 510), site="shop.test")
    reader = LiveReader(logs)
    reader.refresh(clock())
    got = reader.summary("example.com", clock())
    assert got["visitors_now"] == 50  # 1–50, from both writers
    assert got["visitors_30m"] == 61  # and 60–70
    assert got["pageviews_30m"] == 11 + 30 + 31
    per_minute = [m["pageviews"] for m in got["pageviews_per_minute"]]
    assert len(per_minute) == 30 and per_minute[-11] == 11 and per_minute[-5] == 30
    assert per_minute[-3] == 31 and sum(per_minute) == 72
    assert got["pages"][:3] == [{"path": "/blog", "pageviews": 31, "visitors": 31},
                                {"path": "/", "pageviews": 30, "visitors": 30},
                                {"path": "/pricing", "pageviews": 11, "visitors": 11}]
    # a visitor's source and country are those of its first pageview in the window
    assert got["sources"] == [{"source": "Google", "visitors": 41},
                              {"source": None, "visitors": 20}]
    assert got["countries"] == [{"country": "DE", "visitors": 41},
                                {"country": "FR", "visitors": 20}]
    assert reader.summary("shop.test", clock())["visitors_now"] == 10
    a.close()
    b.close()


def test_reads_only_what_was_appended_and_forgets_the_past(tmp_path: Path) -> None:
    clock = Clock()
    logs = tmp_path / "logs"
    writer = LogWriter(logs, clock, 64 * 2**20, 1.0)
    first = _write(writer, clock, 1, range(1, 11))
    reader = LiveReader(logs)
    reader.refresh(clock())
    assert reader.bytes_read == first
    more = _write(writer, clock, 0, range(11, 16))
    reader.refresh(clock())
    assert reader.bytes_read == first + more  # the appended bytes, nothing read twice
    assert reader.summary("example.com", clock())["visitors_now"] == 15
    reader.refresh(clock())
    assert reader.bytes_read == first + more
    clock.advance(31 * 60)
    reader.refresh(clock())
    assert reader.events == 0 and reader.minutes == {}
    assert reader.summary("example.com", clock())["visitors_30m"] == 0
    writer.close()


def test_a_large_file_is_entered_at_the_window_not_read_whole(tmp_path: Path) -> None:
    clock = Clock()
    logs = tmp_path / "logs"
    writer = LogWriter(logs, clock, 1024 * 2**20, 1.0)
    clock.advance(-3600 * 11)
    for _ in range(600):  # eleven hours of older traffic
        _write(writer, clock, 0, range(1000, 1050))
        clock.advance(60)
    clock.ms = Clock().ms
    _write(writer, clock, 3, range(1, 21))
    assert writer.path is not None
    size = writer.path.stat().st_size
    reader = LiveReader(logs)
    reader.refresh(clock())
    assert reader.summary("example.com", clock())["visitors_now"] == 20
    assert reader.bytes_read < size * 0.01, (reader.bytes_read, size)
    writer.close()


def test_a_partial_last_line_waits_and_a_malformed_line_is_skipped(tmp_path: Path) -> None:
    clock = Clock()
    folder = tmp_path / "logs" / "2026" / "03" / "10"
    folder.mkdir(parents=True)
    target = folder / "other-host-1-000000-0001.jsonl"
    whole = _line(clock, 1)
    target.write_bytes(whole + b"{not json}\n" + _line(clock, 2)[:20])
    reader = LiveReader(tmp_path / "logs")
    reader.refresh(clock())
    assert reader.summary("example.com", clock())["visitors_now"] == 1
    assert reader.malformed == 1
    with open(target, "ab") as f:
        f.write(_line(clock, 3))  # the writer finishes its line... of a new one, here
    reader.refresh(clock())
    assert reader.malformed == 2  # the torn line joined with the next is not an event


def test_memory_has_a_ceiling(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(live, "MAX_EVENTS", 100)
    clock = Clock()
    writer = LogWriter(tmp_path / "logs", clock, 64 * 2**20, 1.0)
    for minutes_ago in (20, 10, 2):
        _write(writer, clock, minutes_ago, range(minutes_ago * 100, minutes_ago * 100 + 60))
    reader = LiveReader(tmp_path / "logs")
    reader.refresh(clock())
    assert reader.events <= 100
    got = reader.summary("example.com", clock())
    assert got["complete"] is False and got["visitors_now"] == 60  # the newest minute kept
    writer.close()


# --- the routes ----------------------------------------------------------------------------

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def live_client(aiohttp_client: Any, make_config: Any) -> TestClient[Any, Any]:
    cfg = make_config(live={"token": TOKEN, "max_streams": 2, "interval_s": 0.2})
    clock = Clock()
    writer = LogWriter(cfg.logs_dir, clock, 64 * 2**20, 1.0)
    _write(writer, clock, 2, range(1, 8))
    writer.close()
    return await aiohttp_client(create_app(cfg, clock=clock))  # type: ignore[no-any-return]


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN},
])
async def test_every_route_wants_the_token(live_client: Any, headers: dict[str, str]) -> None:
    for route in ("/api/live?site=example.com", "/api/live/stream?site=example.com", "/live/"):
        resp = await live_client.get(route, headers=headers)
        assert resp.status == 401, route
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert TOKEN not in await resp.text()


async def test_json_answer(live_client: Any) -> None:
    resp = await live_client.get("/api/live?site=example.com", headers=AUTH)
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-store"
    body = await resp.json()
    assert body["visitors_now"] == 7 and body["site"] == "example.com"
    resp = await live_client.get("/api/live?site=<script>", headers=AUTH)
    assert resp.status == 400 and "<script>" not in await resp.text()


async def test_stream_sends_updates_and_caps_concurrent_streams(live_client: Any) -> None:
    url = "/api/live/stream?site=example.com"
    first = await live_client.get(url, headers=AUTH)
    second = await live_client.get(url, headers=AUTH)
    assert first.status == second.status == 200
    assert first.headers["Content-Type"] == "text/event-stream"
    third = await live_client.get(url, headers=AUTH)
    assert third.status == 429
    events = []
    while len(events) < 2:
        line = await asyncio.wait_for(first.content.readline(), 10)
        if line.startswith(b"data: "):
            events.append(json.loads(line[6:]))
    assert events[0]["visitors_now"] == events[1]["visitors_now"] == 7
    first.close()
    second.close()
    for _ in range(100):  # the server notices the closed sockets on its next write
        resp = await live_client.get(url, headers=AUTH)
        if resp.status == 200:
            resp.close()
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("closed streams were never released")


async def test_off_without_a_token(aiohttp_client: Any, config: Any) -> None:
    client = await aiohttp_client(create_app(config, clock=Clock()))
    for route in ("/api/live?site=example.com", "/api/live/stream?site=example.com", "/live/"):
        assert (await client.get(route, headers=AUTH)).status == 404


async def test_the_page_has_a_strict_policy(live_client: Any) -> None:
    resp = await live_client.get("/live/", headers=AUTH)
    assert resp.status == 200
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "script-src 'sha256-" in csp
    assert "<script>" in await resp.text()


# --- two collector processes, one live view, the page in Chromium -----------------------------


def _post(url: str, body: dict[str, Any], ip: str, ua: str) -> int:
    request = urllib.request.Request(
        f"{url}/api/event", data=json.dumps(body).encode(), method="POST",
        headers={"User-Agent": ua, "X-Forwarded-For": ip, "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return int(resp.status)


def _get_json(url: str, token: str) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status), json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None


def _drive_the_page(one_url: str, two_url: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        context = browser.new_context()
        page = context.new_page()
        response = page.goto(f"{two_url}/live/?site=example.com")
        # without the token the page comes with the 401: it is the login form
        assert response is not None and response.status == 401
        csp_errors: list[str] = []
        page.on("console", lambda m: csp_errors.append(m.text) if "Content Security" in m.text
                else None)
        page.fill("#token", "not the token")
        page.click("button[type=submit]")
        # locators, not evaluated strings: the page's policy forbids eval, also to the test
        page.locator("#status", has_text="not the live.token").wait_for()
        page.fill("#token", TOKEN)
        page.click("button[type=submit]")
        page.locator("#now[data-value='12']").wait_for()
        assert page.input_value("#token") == ""  # not kept in the form
        # a new visitor arrives: the stream delivers the update
        new = {"n": "pageview", "d": "example.com", "u": "https://example.com/new"}
        assert _post(one_url, new, "81.2.69.99", CHROME_UA) == 202
        page.locator("#now[data-value='13']").wait_for(timeout=15_000)
        assert page.inner_text("#now") == "13"
        assert "/new" in page.inner_text("#pages")
        assert page.evaluate("() => [localStorage.length, sessionStorage.length, "
                             "document.cookie]") == [0, 0, ""]
        assert csp_errors == []
        context.close()
        browser.close()


def test_two_collectors_one_live_view_in_chromium(collector_process: Any) -> None:
    if not os.path.exists(CHROMIUM):
        if IN_CI:
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip("Chromium not installed (apt-get install chromium)")
    settings = {"live": {"token": TOKEN, "interval_s": 0.5},
                "collector": {"trusted_proxies": ["127.0.0.1/32"], "rate_limit_per_min": 0}}
    one = collector_process(**settings)
    two = collector_process(**settings)
    sent = set()
    for i in range(12):  # distinct addresses and agents: distinct visitors
        target = one if i % 2 else two
        ip, ua = f"81.2.69.{10 + i}", CHROME_UA if i % 3 else IPHONE_UA
        assert _post(target.url, {"n": "pageview", "d": "example.com",
                                  "u": f"https://example.com/p{i % 4}"}, ip, ua) == 202
        sent.add((ip, ua))
    # the same visitor again, through the other process: still one visitor
    assert _post(one.url, {"n": "pageview", "d": "example.com", "u": "https://example.com/p0"},
                 "81.2.69.10", IPHONE_UA) == 202

    status, body = _get_json(f"{one.url}/api/live?site=example.com", TOKEN)
    for _ in range(50):  # lines reach the disk within fsync_interval_s; both are counted
        if status == 200 and body["visitors_now"] == len(sent):
            break
        time.sleep(0.2)
        status, body = _get_json(f"{one.url}/api/live?site=example.com", TOKEN)
    assert status == 200 and body["visitors_now"] == len(sent) == 12
    assert body["pageviews_30m"] == 13
    assert _get_json(f"{two.url}/api/live?site=example.com", "nope")[0] == 401

    # Chromium runs in a thread of its own: the sync API keeps an event loop running in the
    # thread that starts it, and later asyncio tests in this process would find it there.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(_drive_the_page, one.url, two.url).result(timeout=120)
    for proc in (one, two):
        _code, err = proc.stop()
        assert TOKEN not in err


def test_the_dashboard_links_the_live_page_when_configured(make_config: Any) -> None:
    from reports import render_site

    url = "https://stats.example.com/live/"
    cfg = make_config(live={"token": TOKEN, "url": url})
    render_site(cfg)
    page = (cfg.site_dir / "example.com" / "index.html").read_text()
    assert f'href="{url}?site=example.com">Live visitors</a>' in page
    cfg = make_config(live={"url": url})  # no token: the routes do not exist
    render_site(cfg)
    assert "Live visitors" not in (cfg.site_dir / "example.com" / "index.html").read_text()


def test_docs_name_every_field_of_the_answer(tmp_path: Path) -> None:
    text = (Path(__file__).parent.parent / "docs" / "live.md").read_text()
    answer = LiveReader(tmp_path).summary("example.com", Clock()())
    for key in answer:
        assert f"`{key}`" in text, key
    for setting in ("live.token", "live.max_streams", "live.interval_s", "live.url"):
        assert f"`{setting}`" in text, setting
    assert f"{live.MAX_EVENTS:,}" in text and f"{live.WINDOW_MINUTES} minutes" in text
