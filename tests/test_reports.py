"""Reports without a browser: formatting, periods, folding, CSVs, publishing and speed."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from footfall import periods
from reports import format as fmt
from reports import render_site
from reports.data import weighted_median
from reports.site import environment, publish, to_csv
from tests.site_helpers import synthetic_marts


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (999, "999"), (1000, "1k"), (1234, "1.2k"), (9960, "10k"), (12_345, "12k"),
    (999_600, "1M"), (1_234_567, "1.2M"), (None, "–"),
])
def test_compact(value: Any, text: str) -> None:
    assert fmt.compact(value) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0s"), (42.4, "42s"), (200, "3m 20s"), (180, "3m"), (3725, "1h 2m"), (None, "–"),
])
def test_duration(seconds: Any, text: str) -> None:
    assert fmt.duration(seconds) == text


def test_change_reads_and_colours() -> None:
    assert (fmt.change(112, 100).text, fmt.change(112, 100).tone) == ("+12%", "good")
    assert (fmt.change(88, 100).text, fmt.change(88, 100).arrow) == ("−12%", "↓")
    bounce = fmt.change(50, 40, higher_is_better=False)
    assert (bounce.text, bounce.tone) == ("+25%", "bad")
    assert fmt.change(5, 0).text == "new"
    assert fmt.change(None, 3).text == "–"


def test_periods_cover_equal_lengths_and_months() -> None:
    found = {p.key: p for p in periods.for_site(date(2026, 3, 10), date(2026, 1, 20),
                                                 date(2026, 3, 10))}
    assert found["today"].start == found["today"].end == date(2026, 3, 10)
    assert found["yesterday"].previous == (date(2026, 3, 8), date(2026, 3, 8))
    # today is not over: the 6 complete days against the 6 before
    assert (found["7d"].start, found["7d"].compared, found["7d"].previous) == (
        date(2026, 3, 4), (date(2026, 3, 4), date(2026, 3, 9)),
        (date(2026, 2, 26), date(2026, 3, 3)))
    assert found["today"].compared is None and found["today"].previous is None
    # the month to date ends today and compares with the same days of February
    assert (found["2026-03"].end, found["2026-03"].label) == (date(2026, 3, 10),
                                                              "March 2026 to date")
    assert found["2026-03"].previous == (date(2026, 2, 1), date(2026, 2, 9))
    on_30_march = {p.key: p for p in periods.for_site(date(2026, 3, 30), date(2025, 1, 1),
                                                       date(2026, 3, 30))}
    # February has no 29th: the 29 complete days against the 29 days before
    assert on_30_march["2026-03"].previous == (date(2026, 1, 31), date(2026, 2, 28))
    assert (found["ytd"].start, found["ytd"].previous) == (
        date(2026, 1, 1), (date(2025, 1, 1), date(2025, 3, 9)))
    assert found["all"].start == date(2026, 1, 20) and found["all"].previous is None
    on_1st = {p.key: p for p in periods.for_site(date(2026, 12, 1), date(2025, 1, 1),
                                                  date(2026, 12, 1))}
    assert on_1st["2025"].archive and (on_1st["2025"].start, on_1st["2025"].end) == (
        date(2025, 1, 1), date(2025, 12, 31)) and "2026" not in on_1st
    assert on_1st["2026-12"].compared is None and on_1st["2026-11"].end == date(2026, 11, 30)
    assert found["30d"].filename == "index.html"
    assert found["12mo"].start == date(2025, 4, 1) and found["12mo"].granularity == "month"
    assert [k for k in found if found[k].archive] == ["2026-03", "2026-02", "2026-01"]
    assert found["2026-02"].end == date(2026, 2, 28)


def test_weighted_median_of_daily_medians() -> None:
    assert weighted_median([]) is None
    assert weighted_median([(30.0, 4)]) == 30.0
    assert weighted_median([(10.0, 1), (40.0, 5), (90.0, 1)]) == 40.0


def test_csv_is_rfc4180_and_neutralises_formulas() -> None:
    body = to_csv(["path", "visitors"], [["=HYPERLINK(\"x\")", 3], ["a,b", -2], ["@x", 1],
                                         [None, 0]])
    assert body.decode() == ('path,visitors\r\n"\'=HYPERLINK(""x"")",3\r\n"a,b",-2\r\n'
                             "'@x,1\r\n,0\r\n")


def test_one_environment_escapes_and_is_strict() -> None:
    env = environment()
    assert env.autoescape is True or callable(env.autoescape)
    t = env.from_string('<p title="{{ x }}">{{ x }}</p>')
    escaped = "&#34;&gt;&lt;script&gt;"
    assert t.render(x='"><script>') == f'<p title="{escaped}">{escaped}</p>'
    with pytest.raises(Exception, match="undefined"):
        env.from_string("{{ missing }}").render()


def test_publish_rewrites_only_changes_and_removes_what_is_gone(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "exports").mkdir(parents=True)
    (site / "exports" / "keep.csv").write_text("pipeline's")
    first = publish(site, {"index.html": b"a", "x/page.html": b"b", "x/old.html": b"c"})
    assert first.written == 3
    before = (site / "x" / "page.html").stat().st_mtime_ns
    time.sleep(0.01)
    second = publish(site, {"index.html": b"A", "x/page.html": b"b"})
    assert (second.written, second.removed) == (1, 1)
    assert (site / "x" / "page.html").stat().st_mtime_ns == before
    assert not (site / "x" / "old.html").exists()
    assert (site / "exports" / "keep.csv").read_text() == "pipeline's"
    assert not list(site.rglob("*.tmp"))


def test_ten_sites_of_400_days_render_every_page_once(make_config: Any) -> None:
    # how fast this renders is measured by bench/render.py, not asserted here
    sites = [{"domain": f"site{i}.test", "timezone": "Europe/Berlin"} for i in range(10)]
    funnels = [{"name": "Signup", "site": s["domain"],
                "steps": [{"name": "Home", "path": "/"}, {"name": "Done", "event": "x"}]}
               for s in sites]
    cfg = make_config(sites=sites, funnels=funnels)
    cfg.data_dir.mkdir(parents=True)
    synthetic_marts(cfg, 400)
    now = datetime(2026, 2, 5, 12, tzinfo=UTC)
    first = render_site(cfg, now)
    assert first.files > 3000  # 10 sites x ~20 periods x (page + CSVs)
    again = render_site(cfg, now)
    assert (again.written, again.removed, again.pages) == (0, 0, 0)
    assert again.unchanged == first.pages
    page = (cfg.site_dir / "site3.test" / "index.html").read_text()
    assert "/page/0" in page and "Top 10 of 150" in page
