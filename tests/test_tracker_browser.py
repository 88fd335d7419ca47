"""The real tracker in real headless Chromium, against the real collector process.

The page is served from `site.test` and the tracker from `stats.test`. Chromium maps both
to 127.0.0.1, so the tracker does not see localhost, and AutomationControlled is off, so
`navigator.webdriver` is false (see the `browser` fixture in conftest.py).
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import read_lines

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE = """<!doctype html>
<html><head><title>footfall test page</title>
<script defer src="{tracker}" data-domain="example.com"></script></head>
<body style="margin:0"><div style="height:4000px">
<a id="outbound" href="{away}?token=secret#top" target="_blank">elsewhere</a>
</div></body></html>
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Callable[[str, str], str]]:
    """A static file server on loopback; `put(name, html)` publishes a page, returns its path."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]

    def put(name: str, html: str) -> str:
        (root / name).write_text(html, encoding="utf-8")
        return f"/{name}"

    put.port = port  # type: ignore[attr-defined]
    yield put
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def wait_for_lines(data_dir: Path, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(data_dir)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_pageview_spa_custom_event_outbound_click_and_close(
    browser: Any, collector_process: Any, site: Any, tmp_path: Path
) -> None:
    collector = collector_process()
    port = site.port
    away = f"http://elsewhere.test:{port}" + site("away.html", "<!doctype html><p>away</p>")
    page_path = site("index.html", PAGE.format(
        tracker=f"http://stats.test:{collector.port}/tracker.js", away=away))
    data_dir = tmp_path / "data"

    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://site.test:{port}{page_path}?utm_source=newsletter")
    assert page.evaluate("navigator.webdriver") is False
    wait_for_lines(data_dir, 1)

    page.mouse.wheel(0, 1500)
    page.wait_for_function("scrollY > 0")
    # One step at a time: beacons may travel on parallel connections, and only the pair sent
    # together (the engagement of the page left, then the new pageview) may land either way.
    page.evaluate("history.pushState({}, '', '/pricing')")
    wait_for_lines(data_dir, 3)
    page.evaluate("footfall('Signup', {props: {plan: 'pro', seats: 3, annual: true}})")
    wait_for_lines(data_dir, 4)
    with context.expect_page() as popup:
        page.click("#outbound")
    popup.value.close()
    wait_for_lines(data_dir, 5)

    storage = page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]")
    page.close()
    wait_for_lines(data_dir, 6)
    time.sleep(0.5)  # and nothing more arrives
    lines = read_lines(data_dir)

    lines[1:3] = sorted(lines[1:3], key=lambda line: line["name"])
    assert [(line["name"], line["path"]) for line in lines] == [
        ("pageview", "/index.html"),
        ("engagement", "/index.html"),
        ("pageview", "/pricing"),
        ("Signup", "/pricing"),
        ("Outbound Link: Click", "/pricing"),
        ("engagement", "/pricing"),
    ]
    first, leave_first, _, signup, outbound, leave_pricing = lines
    assert first["utm_source"] == "newsletter" and first["source"] == "newsletter"
    assert signup["props"] == {"plan": "pro", "seats": 3, "annual": True}
    # Origin + path only: the query and fragment of a link may carry secrets.
    assert outbound["props"] == {"url": away}
    for engagement in (leave_first, leave_pricing):
        assert engagement["interactive"] is False
        assert engagement["engaged_ms"] > 0
        assert 0 <= engagement["scroll_pct"] <= 100
    assert leave_first["scroll_pct"] > 30  # scrolled 1500px of 4000px with a 720px viewport
    for line in lines:
        assert line["hostname"] == "site.test"
        assert line["screen_width"] > 0
        assert line["browser"] == "Chrome"
        assert line["visitor"] == first["visitor"]
        if line["name"] != "engagement":
            assert "interactive" not in line and "engaged_ms" not in line

    assert storage == [0, 0, ""]
    assert context.cookies() == []
    context.close()


def test_sends_nothing_from_localhost_automation_or_opted_out_browsers(
    browser: Any, collector_process: Any, site: Any, tmp_path: Path
) -> None:
    collector = collector_process()
    port = site.port
    page_path = site("index.html", PAGE.format(
        tracker=f"http://stats.test:{collector.port}/tracker.js", away="/away.html"))
    sent: list[str] = []

    def load(context: Any, url: str) -> None:
        page = context.new_page()
        page.on("request", lambda r: sent.append(r.url) if "/api/event" in r.url else None)
        page.goto(url)
        page.wait_for_function("typeof window.footfall == 'function'")
        page.evaluate("footfall('Signup')")
        page.evaluate("history.pushState({}, '', '/next')")
        page.close()

    plain = browser.new_context()
    load(plain, f"http://localhost:{port}{page_path}")
    load(plain, f"http://127.0.0.1:{port}{page_path}")
    plain.close()

    automated = browser.new_context()
    automated.add_init_script("Object.defineProperty(navigator, 'webdriver', {get: () => true})")
    load(automated, f"http://site.test:{port}{page_path}")
    automated.close()

    opted_out = browser.new_context()
    opted_out.add_init_script("localStorage.setItem('footfall_ignore', '1')")
    load(opted_out, f"http://site.test:{port}{page_path}")
    opted_out.close()

    time.sleep(0.5)
    assert sent == []
    assert read_lines(tmp_path / "data") == []


@pytest.mark.parametrize("hash_mode", [True, False])
def test_hash_routes_are_pages_only_in_hash_mode(
    browser: Any, collector_process: Any, site: Any, tmp_path: Path, hash_mode: bool
) -> None:
    collector = collector_process()
    tag = f'<script defer src="http://stats.test:{collector.port}/tracker.js" ' \
          f'data-domain="example.com"{" data-hash" if hash_mode else ""}></script>'
    page_path = site("app.html", f"<!doctype html><html><head>{tag}</head><body></body></html>")
    data_dir = tmp_path / "data"
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://site.test:{site.port}{page_path}#/home")
    wait_for_lines(data_dir, 1)
    page.evaluate("location.hash = '#/settings'")
    if hash_mode:  # the engagement of the route left, then the new route's pageview
        wait_for_lines(data_dir, 3)
    time.sleep(0.5)  # and nothing more arrives
    context.close()
    lines = read_lines(data_dir)
    pageviews = [line["path"] for line in lines if line["name"] == "pageview"]
    if hash_mode:
        # data-hash sends h: 1, so the collector keeps the route, as Plausible does.
        assert pageviews == ["/app.html#/home", "/app.html#/settings"]
    else:
        assert pageviews == ["/app.html"]
