"""Helpers shared by the site tests (tests/test_site*.py): datasets and HTML reading."""

from __future__ import annotations

import csv
import html.parser
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from footfall.config import Config

#: The frozen clock of the snapshot and of the fixed dataset.
FROZEN_NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def build_dataset(workspace: Path, now: datetime = FROZEN_NOW, days: int = 12,
                  scale: float = 0.05) -> Config:
    """The demo's generator at a small scale and a fixed clock, written through the real log
    writer and run through the real pipeline; everything but the live beacons."""
    from footfall import demo
    from pipeline import run

    cfg = demo.write_workspace(workspace)
    events = demo.generate(now, days=days, scale=scale)
    demo.write_past(cfg, events)
    run(cfg, progress=None)
    return cfg


def synthetic_marts(cfg: Config, days: int, start: str = "2025-01-01",
                    steady: bool = False, drill: int = 0) -> None:
    """Marts with realistic row counts made by SQL alone, for the render benchmark; with
    `steady`, every day has exactly the same traffic; with `drill`, filtered marts for the
    first `drill` rows of each drill-down panel."""
    con = duckdb.connect(str(cfg.database))
    sites = [s.domain for s in cfg.sites]
    con.execute("create table s (site varchar)")
    con.executemany("insert into s values (?)", [[s] for s in sites])
    day = "0" if steady else "i::integer"
    con.execute(f"""create table d as select site, (date '{start}' + i::integer)::date as date,
                    {day} as i from s, range({days}) t(i)""")
    con.execute("""create table daily_stats as select site, date,
        (200 + i % 50)::bigint as visitors, (230 + i % 60)::bigint as visits,
        (600 + i % 90)::bigint as pageviews, 2.5 as views_per_visit, 41.5 as bounce_rate,
        95.0 as visit_duration_s, false as is_imported from d""")
    con.execute("""create table daily_pages as select site, date, '/page/' || p as path,
        (1000 // (p + 1))::bigint as pageviews, (800 // (p + 1))::bigint as visitors,
        (300 // (p + 1))::bigint as entries, (280 // (p + 1))::bigint as entry_visitors,
        (290 // (p + 1))::bigint as exits, (270 // (p + 1))::bigint as exit_visitors,
        30.0 as avg_time_on_page_s, 10::bigint as timed_pageviews,
        55.0 as avg_scroll_pct, 8::bigint as scrolled_visits from d, range(150) t(p)""")
    for table, dim, n in [("daily_sources", "source", 15), ("daily_referrers", "referrer", 40),
                          ("daily_utm_source", "utm_source", 6),
                          ("daily_utm_medium", "utm_medium", 4),
                          ("daily_utm_campaign", "utm_campaign", 8),
                          ("daily_countries", "country", 60), ("daily_browsers", "browser", 8),
                          ("daily_operating_systems", "os", 7), ("daily_devices", "device", 3)]:
        con.execute(f"""create table {table} as select site, date, 'v' || k as {dim},
            (100 // (k + 1))::bigint as visitors, (110 // (k + 1))::bigint as visits
            from d, range({n}) t(k)""")
    con.execute("""create table daily_events as select site, date, 'Event ' || k as name,
        (50 // (k + 1))::bigint as events, (40 // (k + 1))::bigint as visitors
        from d, range(6) t(k)""")
    con.execute("""create table daily_event_props as select site, date, 'Event ' || (k % 3)
        as name, 'prop' || (k % 2) as prop, 'value ' || k as value,
        (20 // (k + 1))::bigint as events, (15 // (k + 1))::bigint as visitors
        from d, range(30) t(k)""")
    con.execute("""create table daily_revenue as select site, date, 'EUR' as currency,
        'Purchase ' || k as name, (99.5 * (3 - k))::decimal(38, 6) as revenue,
        (3 - k)::bigint as conversions, (3 - k)::bigint as visitors,
        99.5::decimal(38, 6) as average_revenue from d, range(3) t(k)""")
    con.execute("""create table daily_hours as select site, date, h as hour,
        (10 + h)::bigint as visitors, (20 + h)::bigint as pageviews from d, range(24) t(h)""")
    con.execute("""create table funnel_steps as select site, 'Signup' as funnel, date,
        st as step, 'Step ' || st as step_name, (100 // st)::bigint as visits,
        case when st > 1 then 30.0 * st end as median_seconds_from_previous
        from d, range(1, 4) t(st)""")
    con.execute("""create table events as select site, max(date)::timestamp + interval 20 hour
        as occurred_at from d group by site""")
    if drill:
        _synthetic_drill(con, drill)
    con.close()


def _synthetic_drill(con: duckdb.DuckDBPyConnection, rows: int) -> None:
    """Filtered marts as pipeline/drilldown.py writes them: the first `rows` values of every
    drill-down panel become filters, each with a tenth of its site's figures and a third of
    its breakdown rows (the demo's filtered marts hold 15-25 times its marts' rows)."""
    from footfall import marts

    con.execute("create schema drilldown")
    con.execute("create table drilldown.filters (site varchar, panel varchar, value varchar, "
                "filter_id integer, key varchar)")
    for mart, panel in marts.panels():
        if panel.drill:
            con.execute(f"""insert into drilldown.filters select site, '{panel.key}', value,
                0, '' from (select *, row_number() over (partition by site order by total desc,
                value) as n from (select site, {mart.dimension} as value, sum({panel.bar})
                as total from {mart.table} group by all)) where n <= {int(rows)}""")
    con.execute("""update drilldown.filters set filter_id = rowid + 1,
                   key = site || '#' || (rowid + 1)""")
    for table in marts.DRILL_MARTS:
        mart = marts.by_table(table)
        figures = {c.name for c in mart.columns if c.adds == "sum"}
        select = ", ".join(
            "f.key as site" if c.name == "site"
            else f"(t.{c.name} // 10)::bigint as {c.name}" if c.name in figures
            else f"t.{c.name}" for c in mart.columns)
        keep = (f" where hash(f.filter_id, t.{mart.dimension}) % 3 = 0"
                if mart.dimension else "")
        con.execute(f"create table drilldown.{table} as select {select} from {table} t "
                    f"join drilldown.filters f on t.site = f.site{keep}")


@dataclass
class PanelRead:
    key: str
    csv: str
    captions: list[str | None] = field(default_factory=list)
    rows: list[list[tuple[str, list[str]]]] = field(default_factory=list)  # per table
    totals: list[int] = field(default_factory=list)


class _Panels(html.parser.HTMLParser):
    """Reads each `<article data-panel>`: its CSV link and its rows (label, exact values)."""

    def __init__(self) -> None:
        super().__init__()
        self.panels: list[PanelRead] = []
        self._panel: PanelRead | None = None
        self._depth = 0
        self._in: str | None = None
        self._text = ""
        self._row: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "article" and a.get("data-panel"):
            self._panel = PanelRead(str(a["data-panel"]), "")
            self._depth = 0
        if self._panel is None:
            return
        if tag == "article":
            self._depth += 1
        if tag == "a" and "csv" in (a.get("class") or "").split():
            self._panel.csv = str(a["href"])
        elif tag == "table":
            self._panel.captions.append(None)
            self._panel.rows.append([])
        elif tag == "caption":
            self._in, self._text = "caption", ""
        elif tag == "span" and a.get("class") == "text":
            self._in, self._text = "label", ""
        elif tag == "td" and a.get("data-value") is not None and self._row is not None:
            self._row[1].append(str(a["data-value"]))

    def handle_endtag(self, tag: str) -> None:
        if self._panel is None:
            return
        if tag == "caption":
            self._panel.captions[-1] = self._text
            self._in = None
        elif tag == "span" and self._in == "label":
            self._row = (self._text, [])
            self._in = None
        elif tag == "tr" and self._row is not None:
            self._panel.rows[-1].append(self._row)
            self._row = None
        elif tag == "article":
            self._depth -= 1
            if self._depth == 0:
                self.panels.append(self._panel)
                self._panel = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._text += data


def read_panels(page: Path) -> list[PanelRead]:
    parser = _Panels()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.panels


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))

