"""Drill-down pages: a filtered dashboard's figures equal the oracle computed on the
filtered sessions and events (tests/pipeline_oracle.py, which shares no code with the
pipeline), they agree with the row that links them, and every link of the site resolves."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pipeline_oracle as oracle
import pytest
from test_pipeline import make_cfg

import pipeline
from footfall import marts
from footfall.config import Config
from reports import contexts, data, render_site
from tests.site_helpers import read_panels

CARD = re.compile(r'data-metric="(visitors|visits|pageviews)" data-value="(\d+)"')


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, list[dict[str, Any]],
                                                              datetime]:
    cfg = make_cfg(tmp_path_factory.mktemp("filters"))
    events = oracle.generate()
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    last = max(oracle.local_date(e) for e in events if e["site"] == "example.com")
    now = datetime.combine(last, datetime.min.time(), UTC).replace(hour=20)
    render_site(cfg, now)
    return cfg, events, now


def test_filtered_cards_equal_the_oracle_and_the_row_that_links_them(built: Any) -> None:
    cfg, events, now = built
    panels = {p.key: p for _m, p in marts.panels()}
    checked: dict[str, int] = {}
    for site in data.load(cfg, now):
        for period in site.periods:
            links = contexts.drill_links(site, period, cfg.report.drilldown_rows)
            parent = {p.key: p for p in read_panels(cfg.site_dir / site.domain / period.filename)}
            for (key, value), rel in links.items():
                kind, column = panels[key].drill.split(":")
                want = oracle.filtered_daily(events, kind, column, value)
                days = [period.start + timedelta(days=i) for i in range(period.days)]
                total = {m: sum(want.get((site.domain, d), {}).get(m, 0) for d in days)
                         for m in ("visitors", "visits", "pageviews")}
                page = (cfg.site_dir / site.domain / rel).read_text(encoding="utf-8")
                cards = {m: int(v) for m, v in CARD.findall(page)}
                assert cards == total, (site.domain, period.key, key, value)
                # the row that links here: its n-th row (rel ends in -<n>.html)
                n = int(rel.rsplit("-", 1)[1].removesuffix(".html"))
                _label, row = parent[key].rows[0][n - 1]
                if key == "pages":  # pageviews, visitors of the path
                    assert [int(row[0]), int(row[1])] == [cards["pageviews"], cards["visitors"]]
                elif key == "events":  # visitors who sent it, events, conversion rate
                    assert int(row[0]) == cards["visitors"]
                elif key == "entry-pages":  # unique entrances, entrances
                    assert int(row[1]) == cards["visits"]
                else:  # visitors, visits of the sessions with that value
                    assert int(row[1]) == cards["visits"]
                checked[key] = checked.get(key, 0) + 1
    assert set(checked) == {p.key for p in panels.values() if p.drill}, checked
    assert sum(checked.values()) > 100


def test_every_link_of_the_site_resolves(built: Any) -> None:
    cfg, _events, _now = built
    href = re.compile(r'href="([^"#]+)"')
    pages = list(Path(cfg.site_dir).rglob("*.html"))
    drill = [p for p in pages if re.fullmatch(r"[a-z-]+-\d+\.html", p.name)]
    assert len(drill) > 100
    for page in pages:
        for target in href.findall(page.read_text(encoding="utf-8")):
            if target.startswith("data:"):
                continue
            assert (page.parent / target).resolve().is_file(), f"{page}: {target}"


def test_drill_down_off_writes_no_filtered_page(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, report={"drilldown_rows": 0})
    events = oracle.generate(visitors=10, days=2)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    last = max(oracle.local_date(e) for e in events)
    render_site(cfg, datetime.combine(last, datetime.min.time(), UTC).replace(hour=20))
    assert not list(cfg.site_dir.rglob("*-1.html"))
    assert 'class="drill"' not in (cfg.site_dir / "example.com" / "index.html").read_text()


def _filtered_marts(cfg: Config) -> dict[str, list[tuple[Any, ...]]]:
    """Every filtered mart's rows, the filter named by its site, panel and value (ids are
    the run's own)."""
    import duckdb

    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        return {table: sorted(con.execute(
            f"select f.site, f.panel, f.value, t.* exclude (site) from drilldown.{table} t "
            "join drilldown.filters f on t.site = f.key").fetchall(), key=repr)
            for table in marts.DRILL_MARTS}
    finally:
        con.close()


def test_incremental_runs_build_the_same_filtered_marts_as_a_full_run(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    events = sorted(oracle.generate(visitors=30), key=lambda e: e["ts"])
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events[: len(events) // 2])
    pipeline.run(cfg, progress=None)
    oracle.write_lines(cfg.logs_dir / "b.jsonl", events[len(events) // 2:])
    pipeline.run(cfg, progress=None)
    incremental = _filtered_marts(cfg)
    pipeline.run(cfg, full=True, progress=None)
    full = _filtered_marts(cfg)
    assert sum(len(rows) for rows in full.values()) > 1000
    assert incremental == full
