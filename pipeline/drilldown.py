"""Drill-down: the marts again, for the rows people click, from the same model SQL.

For each site, the top `report.drilldown_rows` rows of every panel with a `drill`
(footfall/marts.py) over each rolling period become a filter. A filter is a predicate on
sessions or events, never a second implementation: the mart models in pipeline/models/marts/
run unchanged over `sessions` and `events` restricted to the filter, with the filter standing
in for the site, and their rows go to the same tables in the `drilldown` schema:

    drilldown.filters       site, panel, value, filter_id, key (the stand-in site: site#id)
    drilldown.<mart>        the mart's columns; `site` is the filter's key

The restricted `sessions`, `events` and `int_affected_days` are temp views of a second
connection (a cursor on the same database), where they shadow the public tables, so each
model reads them by its usual names. As the marts themselves, the filtered marts are rebuilt
only for the affected days, and a filter that is new this run for all its site's days. The
rows are chosen from the days with data up to the last one (a run follows its logs), so a
render later that day links the same rows.
"""

from __future__ import annotations

import functools
import re
from datetime import date, timedelta

import duckdb

from footfall import marts
from footfall.config import Config
from footfall.periods import rolling
from pipeline import models

SCHEMA = "drilldown"


def _drill_panels() -> list[tuple[marts.Mart, marts.Panel]]:
    return [(m, p) for m, p in marts.panels() if p.drill]


def _chosen(con: duckdb.DuckDBPyConnection, cfg: Config) -> list[tuple[str, str, str | None]]:
    """(site, panel, value) of every row a page may link: the first N of each drill panel
    over each rolling period, ranked as the page ranks them, leaving out what the page
    cannot show (`(other)`, rows under the small-count rule, nameless rows it hides)."""
    n = cfg.report.drilldown_rows
    last = dict(con.execute("select site, max(date) from daily_stats group by site").fetchall())
    con.execute("create or replace temp table drill_windows (site varchar, key varchar, "
                "start_date date, end_date date)")
    windows = [[site, p.key, p.start, p.end]
               for site, day in last.items() if day is not None for p in rolling(day)]
    if windows:  # DuckDB refuses an empty executemany; no data yet means no filters
        con.executemany("insert into drill_windows values (?, ?, ?, ?)", windows)
    found: list[tuple[str, str, str | None]] = []
    for mart, panel in _drill_panels():
        dim = str(mart.dimension)
        order = ", ".join(f"{c} desc" for c in panel.order)
        hidden = " and value is not null" if panel.null_label is None else ""
        small = " and visitors >= $min_visitors" if cfg.privacy.min_visitors > 0 else ""
        rows = con.execute(
            f"select distinct site, value from (select w.site, w.key, t.{dim} as value, "
            f"{', '.join(f'sum(t.{c}) as {c}' for c in dict.fromkeys([*panel.order, 'visitors']))}"
            f" from {mart.table} t join drill_windows w on t.site = w.site "
            f"and t.date between w.start_date and w.end_date group by all) "
            f"where {panel.bar} > 0 and value is distinct from '{marts.OTHER}'{hidden}{small} "
            f"qualify row_number() over (partition by site, key order by {order}, "
            f"value nulls last) <= {int(n)}",
            {"min_visitors": cfg.privacy.min_visitors} if small else {}).fetchall()
        found += [(site, panel.key, value) for site, value in rows]
    con.execute("drop table drill_windows")
    return found


def _create(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(f"create schema if not exists {SCHEMA}")
    con.execute(f"create table if not exists {SCHEMA}.filters (site varchar, panel varchar, "
                "value varchar, filter_id integer, key varchar)")
    for table in marts.DRILL_MARTS:
        mart = marts.by_table(table)
        con.execute(mart.create_sql(SCHEMA))


def materialise(con: duckdb.DuckDBPyConnection, cfg: Config, rebuild: bool) -> None:
    """Bring the drilldown schema up to date with this run's marts (built on `con`)."""
    if rebuild or cfg.report.drilldown_rows == 0:
        con.execute(f"drop schema if exists {SCHEMA} cascade")
    if cfg.report.drilldown_rows == 0:
        return
    _create(con)
    chosen = _chosen(con, cfg)
    con.execute("create or replace temp table drill_chosen (site varchar, panel varchar, "
                "value varchar)")
    if chosen:
        con.executemany("insert into drill_chosen values (?, ?, ?)", [list(c) for c in chosen])
    # filters no longer chosen go, with their rows; new ones get the next ids (a NULL value,
    # direct visits say, is a value like any other: `using` would never match it)
    same = "f.site = c.site and f.panel = c.panel and f.value is not distinct from c.value"
    con.execute(f"create or replace temp table drill_gone as select key from {SCHEMA}.filters f "
                f"anti join drill_chosen c on {same}")
    for table in ("filters", *marts.DRILL_MARTS):
        column = "key" if table == "filters" else "site"
        con.execute(f"delete from {SCHEMA}.{table} where {column} in "
                    "(select key from drill_gone)")
    con.execute(
        f"insert into {SCHEMA}.filters select c.site, c.panel, c.value, id, c.site || '#' || id "
        f"from (select *, (select coalesce(max(filter_id), 0) from {SCHEMA}.filters) "
        f"+ row_number() over (order by site, panel, value nulls first) as id from "
        f"(select c.* from drill_chosen c anti join {SCHEMA}.filters f on {same})"
        f") c")
    # the cursor below cannot see this connection's temp tables: the run's affected days,
    # and the filters without rows yet (built for every day of their site), go to the work
    # database, which is never published
    con.execute(f"create or replace table {models.WORK}.drill_affected as "
                "select site, date from int_affected_days")
    con.execute(f"create or replace table {models.WORK}.drill_new as select key "
                f"from {SCHEMA}.filters anti join (select distinct site as key "
                f"from {SCHEMA}.daily_stats) using (key)")
    for first, last in _batches(con):
        cur = con.cursor()  # its temp tables go with it: one batch's copies at a time
        try:
            _build(cur, first, last)
        finally:
            cur.close()
    con.execute(f"drop table {models.WORK}.drill_affected")
    con.execute(f"drop table {models.WORK}.drill_new")
    con.execute("drop table drill_chosen")
    con.execute("drop table drill_gone")


def _matches() -> str:
    """The filters' predicates as one select of (kind, key, session_id, event_id): each
    session a session filter keeps, each event an event filter keeps, within `drill_span`
    (the days being rebuilt, a day either side for visits that cross midnight).
    Identifiers come from the registry; the values are the filters table's."""
    out = []
    for _mart, panel in _drill_panels():
        kind, column = panel.drill.split(":")
        match = (f"f.site = x.site and f.panel = '{panel.key}' "
                 f"and x.{column} is not distinct from f.value")
        # each filter over its own days: a filter new this run covers every day of its
        # site, the others only this run's
        span = ("join drill_span d on d.key = f.key and x.date between d.first_day "
                "and d.last_day where x.date between $low and $high")
        if kind == "session":
            out.append(f"select 'session' as kind, f.key, x.session_id, null as event_id "
                       f"from main.sessions x join {SCHEMA}.filters f on {match} {span}")
        else:
            names = "x.name = 'pageview'" if column == "path" else \
                "x.name not in ('pageview', 'engagement')"
            out.append(f"select 'event' as kind, f.key, x.session_id, x.event_id "
                       f"from main.events x join {SCHEMA}.filters f on {match} and {names} "
                       f"{span}")
    return " union all ".join(out)


@functools.cache
def _read_columns(table: str, alias: str) -> str:
    """The columns of `table` (events or sessions) the drill marts may read: each one that
    their SQL or their tables' columns name. Every event is copied once per filter that keeps
    it, so the copies carry only these (plus the keys the filters join on)."""
    named = {w for t in marts.DRILL_MARTS
             for w in re.findall(r"[a-z_]+", models.load(marts.by_table(t).model).sql)}
    named |= {c.name for t in marts.DRILL_MARTS for c in marts.by_table(t).columns}
    named |= {"event_id", "session_id", "site", "date"}
    return ", ".join(f"{alias}.{c.name}" for c in marts.by_table(table).columns
                     if c.name in named)


#: Events per batch of days: every event is copied once per filter that keeps it (about one
#: per session panel), so a rebuild of the whole history goes a few weeks of days at a time
#: and its copies stay within memory instead of spilling gigabytes to disk.
BATCH_EVENTS = 2_000_000


def _batches(con: duckdb.DuckDBPyConnection) -> list[tuple[date, date]]:
    """Consecutive ranges of the days to rebuild, each holding about BATCH_EVENTS events.

    A filtered mart's rows of a day are built from that day's sessions and events only,
    so building range by range gives the same rows as building all days at once."""
    rows = con.execute(
        f"with days as (select distinct date from {models.WORK}.drill_affected "
        f"union select distinct date from main.daily_stats "
        f"where exists (select 1 from {models.WORK}.drill_new)) "
        f"select date, count(e.date) from days left join main.events e using (date) "
        f"group by date order by date").fetchall()
    batches: list[tuple[date, date]] = []
    first, size = None, 0
    for i, (day, events) in enumerate(rows):
        first, size = first or day, size + events
        if size >= BATCH_EVENTS or i == len(rows) - 1:
            batches.append((first, day))
            first, size = None, 0
    return batches


def _build(cur: duckdb.DuckDBPyConnection, first: date, last: date) -> None:
    models.create_macros(cur)
    # the days to rebuild, from `first` to `last`: the run's affected days for a filter with
    # rows already, every day of its site for a filter that is new
    cur.execute(
        f"create temp table int_affected_days as "
        f"select f.key as site, a.date from {SCHEMA}.filters f "
        f"join {models.WORK}.drill_affected a using (site) "
        f"anti join {models.WORK}.drill_new using (key) where a.date between $first and $last "
        f"union all select f.key as site, d.date from {SCHEMA}.filters f "
        f"join (select distinct site, date from main.daily_stats) d using (site) "
        f"semi join {models.WORK}.drill_new using (key) where d.date between $first and $last",
        {"first": first, "last": last})
    cur.execute(
        "create temp table drill_span as select site as key, min(date) - 1 as first_day, "
        "max(date) + 1 as last_day from int_affected_days group by site")
    # the batch's bounds as constants too, so the scans skip other days' row groups
    near = {"low": first - timedelta(days=1), "high": last + timedelta(days=1)}
    cur.execute(f"create temp table drill_matches as {_matches()}", near)
    # what the models read, on the days being rebuilt only: the sessions a filter keeps,
    # and the events it keeps (session filters: every event of those sessions)
    cur.execute(f"create temp table drill_near as select {_read_columns('events', 'e')} "
                "from main.events e semi join drill_matches m using (session_id) "
                "where e.date between $low and $high", near)
    cur.execute(
        f"create temp table drill_sessions as select m.key, s.* from "
        "(select distinct key, session_id from drill_matches) m "
        f"join (select {_read_columns('sessions', 's')} from main.sessions s "
        "where s.date between $low and $high) s using (session_id) "
        "semi join int_affected_days a on m.key = a.site and s.date = a.date", near)
    cur.execute(
        "create temp table drill_events as select m.key, e.* from "
        "(select distinct key, session_id from drill_matches where kind = 'session') m "
        "join drill_near e using (session_id) "
        "semi join int_affected_days a on m.key = a.site and e.date = a.date "
        "union all select m.key, e.* from drill_matches m "
        "join drill_near e on e.event_id = m.event_id "
        "semi join int_affected_days a on m.key = a.site and e.date = a.date "
        "where m.kind = 'event'")
    cur.execute("drop table drill_near")
    cur.execute("create temp view sessions as select * exclude (site, key), key as site "
                "from drill_sessions")
    cur.execute("create temp view events as select * exclude (site, key), key as site "
                "from drill_events")
    for table in marts.DRILL_MARTS:
        model = models.load(marts.by_table(table).model)
        cur.execute(f"create temp table drill_rows as {model.sql}")
        cur.execute(f"delete from {SCHEMA}.{table} using int_affected_days a "
                    f"where {table}.site = a.site and {table}.date = a.date")
        cur.execute(f"insert into {SCHEMA}.{table} by name select * from drill_rows")
        cur.execute("drop table drill_rows")
