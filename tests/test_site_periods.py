"""Figures that must not mislead: periods that hold the unfinished today, rates in points,
every "–" explained on the page, and no day after today on any label or axis.

The property: with perfectly steady traffic (the same figures every day), every change on
every page is 0% (or 0 pp), whatever the hour of the day and the day of the month.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from footfall.marts import by_table
from reports import render_site
from tests.site_helpers import synthetic_marts

CHANGE = re.compile(r'<span class="change [a-z]+"><span aria-hidden="true">[^<]*</span>'
                    r'([^<]*?)(?: <span class="why">([^<]*)</span>)?<span class="sr">')
DAY = re.compile(r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (\d{1,2}) ([A-Z][a-z]{2}) (\d{4})\b")


def _render(make_config: Any, now: datetime, first: str = "2024-01-01") -> Path:
    cfg = make_config(sites=[{"domain": "steady.test", "timezone": "UTC"}])
    cfg.data_dir.mkdir(parents=True)
    days = (now.date() - date.fromisoformat(first)).days + 1
    synthetic_marts(cfg, days, start=first, steady=True)
    # steady traffic: today has had only the hours elapsed so far
    con = duckdb.connect(str(cfg.database))
    share = (now.hour + now.minute / 60) / 24
    for table in ("daily_stats", "daily_pages", "daily_sources"):
        figures = [c.name for c in by_table(table).columns if c.adds == "sum"]
        con.execute(f"update {table} set " + ", ".join(
            f"{c} = floor({c} * {share})::bigint" for c in figures) + " where date = ?",
            [now.date()])
    con.close()
    render_site(cfg, now)
    return cfg.site_dir


# 4 hours into 1 December (the example), month end after a short February, and a
# plain mid-month afternoon
@pytest.mark.parametrize("now", [datetime(2026, 12, 1, 4, tzinfo=UTC),
                                 datetime(2026, 3, 31, 23, tzinfo=UTC),
                                 datetime(2026, 3, 30, 9, tzinfo=UTC),
                                 datetime(2026, 7, 15, 13, tzinfo=UTC)])
def test_steady_traffic_changes_nothing_on_any_page(make_config: Any, now: datetime) -> None:
    site = _render(make_config, now)
    pages = sorted(p for p in site.glob("**/*.html") if p.name != "downloads.html")
    assert len(pages) > 20
    zero = 0
    for page in pages:
        text = page.read_text(encoding="utf-8")
        changes = CHANGE.findall(text)
        assert changes, page
        for shown, why in changes:
            if shown == "–":
                assert why, f"{page.name}: a '–' without its reason on the page"
            else:
                assert shown in ("0%", "0 pp"), f"{page.relative_to(site)}: {shown}"
                zero += 1
    assert zero > 100


@pytest.mark.parametrize("now", [datetime(2026, 12, 1, 4, tzinfo=UTC),
                                 datetime(2026, 3, 10, 15, tzinfo=UTC)])
def test_no_label_or_axis_shows_a_day_after_today(make_config: Any, now: datetime) -> None:
    site = _render(make_config, now, first="2025-06-01")
    today = now.date()
    months = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul",
                                          "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
    seen = 0
    for page in site.glob("steady.test/**/*.html"):
        text = page.read_text(encoding="utf-8")
        for d, m, y in DAY.findall(text):
            seen += 1
            assert date(int(y), months[m], int(d)) <= today, f"{page.name}: {d} {m} {y}"
    assert seen > 100
    mtd = (site / "steady.test" / f"{today:%Y-%m}.html").read_text(encoding="utf-8")
    assert f"{today:%B %Y} to date" in mtd
    week = (site / "steady.test" / "7d.html").read_text(encoding="utf-8")
    # the unfinished day's bar is drawn apart and said to be "so far", in each of the six
    # metric charts
    assert week.count('<g class="bar partial">') == 6 and "(so far)" in week
    assert "today is not over" in week
    assert "the 6 complete days" in week


def test_the_first_comparable_month_says_why_before_it(make_config: Any) -> None:
    site = _render(make_config, datetime(2026, 3, 10, 15, tzinfo=UTC), first="2026-01-20")
    january = (site / "steady.test" / "2026-01.html").read_text(encoding="utf-8")
    whys = {why for shown, why in CHANGE.findall(january) if shown == "–"}
    assert whys == {"no data before 20 Jan"}
    assert "No changes: no data before 20 Jan" in january
