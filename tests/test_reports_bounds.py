"""The dashboard stays bounded however many distinct values arrive (issue: 200k unique paths,
event names and prop values once made every page 59 MB, with 100,000 prop tables)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import duckdb

from footfall.marts import OTHER
from pipeline import models
from reports import render_site
from reports.data import PANEL_GROUPS, PANEL_ROWS

DAY = "2026-03-09"
UNIQUE = 50_000


def test_unique_values_do_not_grow_pages_or_csvs(make_config: Any) -> None:
    cfg = make_config()
    cfg.data_dir.mkdir(parents=True)
    con = duckdb.connect(str(cfg.database))
    try:
        models.prepare(con)
        con.execute(f"""insert into daily_stats select 'example.com', date '{DAY}',
            {UNIQUE}, {UNIQUE}, {UNIQUE}, 1.0, 100.0, 0.0, false""")
        con.execute(f"""insert into daily_pages select 'example.com', date '{DAY}',
            '/p/' || i, 1, 1, 1, 1, 1, 1, null, 0, null, 0 from range({UNIQUE}) t(i)""")
        con.execute(f"""insert into daily_events select 'example.com', date '{DAY}',
            'event ' || i, 1, 1 from range({UNIQUE}) t(i)""")
        con.execute(f"""insert into daily_event_props select 'example.com', date '{DAY}',
            'event ' || (i % 20000), 'key ' || (i % 7), 'value ' || i, 1, 1
            from range({UNIQUE}) t(i)""")
    finally:
        con.close()
    render_site(cfg, datetime(2026, 3, 10, 12, tzinfo=UTC))
    page = cfg.site_dir / "example.com" / "yesterday.html"
    html = page.read_text(encoding="utf-8")
    assert len(html) < 300_000, len(html)
    props_panel = html.split('id="event-props"', 1)[1].split("</section>", 1)[0]
    assert 1 < props_panel.count("<caption") <= PANEL_GROUPS + 1
    folder = cfg.site_dir / "example.com" / "csv" / "yesterday"
    for name, label in (("pages.csv", "path"), ("events.csv", "name")):
        rows = list(csv.DictReader(io.StringIO((folder / name).read_text(), newline="")))
        assert len(rows) == PANEL_ROWS + 1, name
        other = [r for r in rows if r[label] == OTHER]
        assert len(other) == 1 and int(other[0]["visitors"]) == UNIQUE - PANEL_ROWS
    props = list(csv.DictReader(io.StringIO((folder / "event-props.csv").read_text(),
                                            newline="")))
    groups = {(r["name"], r["prop"]) for r in props}
    assert len(groups) == PANEL_GROUPS + 1 and (OTHER, OTHER) in groups
    assert sum(int(r["events"]) for r in props) == UNIQUE  # folded, never dropped
