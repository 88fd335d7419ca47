"""Hostile beacons through the real collector → pipeline → site, then real Chromium.

Paths, referrers, UTM values, event names and props carry HTML, SVG and JS payloads. No
dialog may fire on any page, no element may be injected, and every payload must read as
plain text where the dashboard shows it.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import duckdb
import pytest

from footfall import config as config_mod
from pipeline import run
from reports import render_site
from tests.helpers import CHROME_UA, IPHONE_UA, read_lines

pytestmark = [pytest.mark.browser, pytest.mark.slow]

UTM = {
    "utm_source": "<img src=x onerror=alert('utm_source')>",
    "utm_medium": "\"><script>alert('utm_medium')</script>",
    "utm_campaign": "</title><svg/onload=alert('utm_campaign')>",
}
PATHS = ["/<script>alert('path')</script>", "/\"><svg onload=alert('attr')>",
         "/javascript:alert('href')"]
REFERRER = "https://evil.test/'><img src=x onerror=alert('referrer')>"
EVENT = "<img src=x onerror=alert('event')>"
PROPS = {"<b onmouseover=alert('key')>k</b>": "javascript:alert('value')",
         "plan": "</td></tr><script>alert('prop')</script>"}


def _post(url: str, body: dict[str, Any], ua: str) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"User-Agent": ua, "Content-Type": "text/plain"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return int(resp.status)


def test_payloads_render_as_text_and_never_run(browser: Any, collector_process: Any,
                                               tmp_path: Path) -> None:
    funnel = {"name": "<i>Signup</i>", "site": "example.com",
              "steps": [{"name": "Evil page", "path": "/*"}, {"name": "Evil event",
                                                               "event": EVENT}]}
    collector = collector_process(funnels=[funnel])
    api = f"{collector.url}/api/event"
    sent = 0
    for i, path in enumerate(PATHS):
        ua = CHROME_UA if i % 2 == 0 else IPHONE_UA
        url = f"https://example.com{path}?{urlencode(UTM)}"
        assert _post(api, {"n": "pageview", "d": "example.com", "u": url, "r": REFERRER},
                     ua) == 202
        assert _post(api, {"n": EVENT, "d": "example.com", "u": url, "p": PROPS}, ua) == 202
        sent += 2
    deadline = time.monotonic() + 10
    while len(read_lines(tmp_path / "data")) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    cfg = config_mod.load(tmp_path / "config.yaml")
    run(cfg, progress=None)
    render_site(cfg)

    con = duckdb.connect(str(cfg.database), read_only=True)
    stored = {str(v) for row in con.execute(
        "select distinct path, referrer, utm_source, utm_medium, utm_campaign from events"
    ).fetchall() for v in row if v}
    stored |= {str(r[0]) for r in con.execute(
        "select distinct name from events where name <> 'pageview'").fetchall()}
    stored |= {str(v) for r in con.execute(
        "select distinct prop, value from daily_event_props").fetchall() for v in r}
    con.close()
    assert any("<script>" in s for s in stored) and EVENT in stored
    assert {UTM["utm_source"], PROPS["plan"]} <= stored

    context = browser.new_context()
    dialogs: list[str] = []
    context.on("page", lambda p: p.on("dialog", lambda d: (dialogs.append(d.message),
                                                           d.dismiss())))
    pages = sorted(cfg.site_dir.glob("*.html")) + sorted(cfg.site_dir.glob("*/*.html"))
    assert len(pages) > 5
    for html in pages:
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(html.as_uri(), wait_until="load")
        page.mouse.move(200, 300)
        injected = page.evaluate("""() => [
            document.scripts.length,
            document.querySelectorAll('img, iframe, object, embed, [onerror], [onload], '
                                      + '[onmouseover], b, i').length,
            [...document.querySelectorAll('a[href]')].filter(a => /^javascript:/i.test(
                a.getAttribute('href'))).length]""")
        assert injected == [0, 0, 0], html
        if html.name == "index.html" and html.parent.name == "example.com":
            text = page.inner_text("body")
            titles = page.evaluate(
                "[...document.querySelectorAll('[title]')].map(e => e.title).join('\\n')")
            for payload in stored:
                if payload not in ("example.com",):
                    assert payload in text, payload
            assert PATHS[1] in titles and "<i>Signup</i>" in text
        page.close()
    context.close()
    assert dialogs == []
    csv_text = (cfg.site_dir / "example.com" / "csv" / "30d" / "utm-source.csv").read_text()
    assert UTM["utm_source"] in csv_text
