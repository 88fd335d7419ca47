"""The demo's dashboard in real headless Chromium, at desktop and phone sizes.

Checks: no console errors, no request outside the site's own files, no sideways scrolling on
a phone, and the key numbers on the page equal what DuckDB says. Screenshots go to
test-artifacts/site/ (gitignored) for a human to look at.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from footfall import demo
from footfall.config import Config
from reports import format as fmt
from reports.data import local_today

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "site"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
              "is_mobile": True, "has_touch": True},
}
PAGES = ["index.html", "example.com/index.html", "example.com/today.html",
         "example.com/yesterday.html", "example.com/12mo.html", "shop.example.org/7d.html",
         "shop.example.org/90d.html"]


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, str, datetime]]:
    now = datetime.now(UTC).replace(microsecond=0)
    result = demo.build(tmp_path_factory.mktemp("demo"), now=now, days=35, scale=0.25,
                        say=lambda *_: None)
    with demo.serve_dir(result.cfg.site_dir, port=0) as url:
        yield result.cfg, url, now


def _open(browser: Any, url: str, size: str, base: str, **extra: Any) -> tuple[Any, Any, list[str]]:
    context = browser.new_context(**VIEWPORTS[size], **extra)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"outside request: {r.url}")
            if not r.url.startswith(base) else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.goto(url, wait_until="load")
    return context, page, problems


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_pages_load_clean_at_desktop_and_phone(browser: Any, demo_site: Any, size: str) -> None:
    _cfg, base, _now = demo_site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for rel in PAGES:
        context, page, problems = _open(browser, base + rel, size, base)
        assert page.locator("link[rel=stylesheet]").count() == 1
        assert page.evaluate("getComputedStyle(document.body).fontFamily").startswith(
            "system-ui")  # the stylesheet applied
        overflow = page.evaluate("document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{rel} scrolls sideways by {overflow}px at {size}"
        page.screenshot(path=str(ARTIFACTS / f"{rel.replace('/', '_')}-{size}.png"),
                        full_page=True)
        context.close()
        assert problems == [], f"{rel} at {size}: {problems}"


def test_dark_scheme_and_file_url(browser: Any, demo_site: Any) -> None:
    cfg, _base, _now = demo_site
    page_file = (cfg.site_dir / "example.com" / "index.html").as_uri()
    context, page, problems = _open(browser, page_file, "desktop", "file://",
                                    color_scheme="dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.screenshot(path=str(ARTIFACTS / "example.com_index-dark.png"))
    context.close()
    assert problems == []
    assert background == "rgb(14, 17, 23)"


def test_key_numbers_equal_duckdb(browser: Any, demo_site: Any) -> None:
    cfg, base, now = demo_site
    today = local_today(now, "Europe/Berlin")
    start = today - timedelta(days=29)
    con = duckdb.connect(str(cfg.database), read_only=True)
    visitors, visits, pageviews = con.execute(
        "select sum(visitors), sum(visits), sum(pageviews) from daily_stats "
        "where site = 'example.com' and date between ? and ?", [start, today]).fetchone()
    top_path, top_views = con.execute(
        "select path, sum(pageviews) from daily_pages where site = 'example.com' "
        "and date between ? and ? group by path order by 2 desc, 1 limit 1",
        [start, today]).fetchone()
    top_country = con.execute(
        "select sum(visitors) from daily_countries where site = 'example.com' "
        "and date between ? and ? group by country order by 1 desc limit 1",
        [start, today]).fetchone()[0]
    signup = [r[0] for r in con.execute(
        "select sum(visits) from funnel_steps where site = 'example.com' and funnel = 'Signup' "
        "and date between ? and ? group by step order by step", [start, today]).fetchall()]
    con.close()

    context, page, problems = _open(browser, base + "example.com/index.html", "desktop", base)
    cards = {el.get_attribute("data-metric"): (el.get_attribute("data-value"), el.inner_text())
             for el in page.locator(".card-value").all()}
    assert cards["visitors"] == (str(visitors), fmt.compact(visitors))
    assert cards["visits"] == (str(visits), fmt.compact(visits))
    assert cards["pageviews"] == (str(pageviews), fmt.compact(pageviews))
    first = page.locator("#pages tbody tr").first
    assert first.locator(".text").inner_text() == top_path
    assert first.locator("td").first.get_attribute("data-value") == str(top_views)
    country = page.locator("#countries tbody tr").first.locator("td").first
    assert country.get_attribute("data-value") == str(top_country)
    steps = [int(v) for v in page.locator(".funnel .step-visits").evaluate_all(
        "els => els.map(e => e.dataset.value)")][:3]
    assert steps == signup and steps[0] > steps[1] > steps[2] > 0
    assert "sum of daily unique visitors" in page.inner_text("footer")
    context.close()

    context, page, _ = _open(browser, base + "index.html", "desktop", base)
    figure = page.locator(".site-card").first.locator(".figure")
    assert figure.get_attribute("data-value") == str(visitors)
    context.close()
    assert problems == []


def _overlaps(page: Any, selector: str) -> list[str]:
    boxes = page.locator(selector).evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect();"
        " return [e.textContent, r.left, r.right]; })")
    return [f"{a[0]!r} and {b[0]!r}" for a, b in itertools.pairwise(boxes)
            if a[2] > b[1] + 0.5]


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_partial_periods_and_chart_labels(browser: Any, demo_site: Any, size: str) -> None:
    _cfg, base, _now = demo_site
    for rel in ["example.com/7d.html", "example.com/index.html", "example.com/12mo.html",
                "example.com/today.html", "shop.example.org/90d.html"]:
        context, page, problems = _open(browser, base + rel, size, base)
        assert _overlaps(page, "#chart-visitors .xaxis span") == [], f"{rel} at {size}"
        compare = page.locator("#compare")  # what the changes compare, or why none
        assert compare.is_visible() and compare.inner_text().startswith(("Changes", "No "))
        if rel.endswith("7d.html"):
            assert "the 6 complete days" in compare.inner_text()
            assert "today is not over" in compare.inner_text()
        if rel.endswith(("7d.html", "index.html")):  # today's bar is drawn apart
            assert page.locator("#chart-visitors .bar.partial").count() == 1
            assert page.locator(".chart-note").is_visible()
        if rel.endswith("7d.html"):  # 7 bars: every one labelled
            assert page.locator("#chart-visitors .xaxis span").count() == 7
        for why in page.locator(".change .why").all():  # every "–" says why, visibly
            assert why.is_visible() and why.inner_text().strip()
        context.close()
        assert problems == [], f"{rel} at {size}: {problems}"


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_drill_down_links_resolve_and_totals_match(browser: Any, demo_site: Any,
                                                   size: str) -> None:
    _cfg, base, _now = demo_site
    context, page, problems = _open(browser, base + "example.com/index.html", size, base)
    links = page.locator("a.drill")
    hrefs = links.evaluate_all("els => els.map(e => e.href)")
    assert len(hrefs) >= 40
    for href in hrefs:  # every drill-down link of the page resolves
        assert page.request.get(href).status == 200, href
    row = page.locator("#sources tbody tr").first
    visits = row.locator("td").nth(1).get_attribute("data-value")
    row.locator("a.drill").click()
    page.wait_for_load_state("load")
    assert page.locator(".chip").is_visible()
    assert page.locator('.card-value[data-metric="visits"]').get_attribute("data-value") \
        == visits
    page.screenshot(path=str(ARTIFACTS / f"drill-down-{size}.png"), full_page=True)
    page.locator(".chip-clear").click()
    page.wait_for_load_state("load")
    assert page.url == base + "example.com/index.html"
    context.close()
    assert problems == []


def test_tap_targets_on_a_phone(browser: Any, demo_site: Any) -> None:
    _cfg, base, _now = demo_site
    context, page, problems = _open(browser, base + "example.com/index.html", "phone", base)
    assert page.locator(".jump a").count() >= 5  # a jump list to the sections
    small = page.locator(".csv, .periods a, .archives summary, a.drill, sup a, .jump a, "
                         ".card-link, .data-table summary, .chip-clear").evaluate_all(
        "els => els.filter(e => e.offsetParent !== null).map(e => {"
        " const r = e.getBoundingClientRect(); return [e.className || e.tagName,"
        " e.textContent.trim().slice(0, 20), Math.round(r.width), Math.round(r.height)]; })"
        ".filter(([, , w, h]) => w < 24 || h < 24)")
    context.close()
    assert small == [] and problems == []


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_each_card_links_its_own_chart(browser: Any, demo_site: Any, size: str) -> None:
    _cfg, base, _now = demo_site
    context, page, problems = _open(browser, base + "example.com/7d.html", size, base)
    assert page.locator("#chart-visitors").is_visible()  # the default, nothing targeted
    assert not page.locator("#chart-visits").is_visible()
    for metric in ("visits", "bounce_rate", "visitors"):
        page.locator(f"#card-{metric} a.card-link").click()
        assert page.url.endswith(f"#chart-{metric}")
        shown = page.locator(".metric-chart").evaluate_all(
            "els => els.filter(e => e.offsetParent !== null).map(e => e.id)")
        assert shown == [f"chart-{metric}"], (metric, shown)
    context.close()
    assert problems == []


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_a_site_without_data_shows_the_first_run_card(browser: Any, make_config: Any,
                                                      size: str) -> None:
    from reports import render_site

    cfg = make_config(sites=[{"domain": "new.example", "timezone": "UTC"}])
    render_site(cfg)
    with demo.serve_dir(cfg.site_dir, port=0) as base:
        context, page, problems = _open(browser, base + "new.example/index.html", size, base)
        card = page.locator("#first-run")
        assert card.is_visible()
        text = card.inner_text()
        assert 'data-domain="new.example"' in text and "/metrics" in text
        assert "footfall run" in text and "within the hour" in text
        assert page.locator(".masthead a[href='#first-run']").is_visible()
        page.screenshot(path=str(ARTIFACTS / f"first-run-{size}.png"), full_page=True)
        context.close()
        context, page, _ = _open(browser, base + "index.html", size, base)
        assert "No data yet" in page.locator(".site-card").inner_text()
        context.close()
    assert problems == []
