"""Tool-neutral exports in site_dir/exports/, written from the marts after each run.

    exports/<site>/daily_stats.csv, pages.csv, sources.csv, …   one per mart, all days
    exports/<site>/raw/<YYYY-MM-DD>.csv                          that local day's raw events
                                                                 (rows in no particular order)
    exports/parquet/<mart>/site=<site>/date=<date>/*.parquet     the marts, for other engines

CSV files are UTF-8 with a header row and RFC 4180 quoting (CRLF line ends; fields with a
comma, quote or line break are quoted). A text cell that starts with `=`, `+`, `-`, `@`, tab
or carriage return gets a leading `'` so spreadsheets do not run it as a formula (OWASP CSV
injection); only text columns are touched, so -3 stays a number.

With `privacy.min_visitors` > 0, breakdown rows with fewer visitors are folded into one
`(other)` row per site and day (their counts summed), in the CSV and Parquet alike, and the
raw per-day events files are not written (they would undo the folding). Each file is written
beside its target and moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb

from footfall.config import Config


@dataclass(frozen=True)
class Breakdown:
    """How to fold a breakdown mart: the folded dimension, summed and weighted columns."""

    dimension: str
    sums: tuple[str, ...]
    weighted: tuple[tuple[str, str], ...] = ()  # (mean column, its weight column)


#: mart → CSV file name.
CSV_NAMES = {
    "daily_stats": "daily_stats.csv",
    "daily_pages": "pages.csv",
    "daily_sources": "sources.csv",
    "daily_referrers": "referrers.csv",
    "daily_utm_source": "utm_source.csv",
    "daily_utm_medium": "utm_medium.csv",
    "daily_utm_campaign": "utm_campaign.csv",
    "daily_countries": "countries.csv",
    "daily_browsers": "browsers.csv",
    "daily_operating_systems": "operating_systems.csv",
    "daily_devices": "devices.csv",
    "daily_events": "events.csv",
    "daily_event_props": "event_props.csv",
    "daily_hours": "hours.csv",
    "funnel_steps": "funnels.csv",
}

_VISITS = ("visitors", "visits")
BREAKDOWNS = {
    "daily_pages": Breakdown(
        "path", ("pageviews", "visitors", "entries", "exits", "timed_pageviews"),
        (("avg_time_on_page_s", "timed_pageviews"),),
    ),
    "daily_sources": Breakdown("source", _VISITS),
    "daily_referrers": Breakdown("referrer", _VISITS),
    "daily_utm_source": Breakdown("utm_source", _VISITS),
    "daily_utm_medium": Breakdown("utm_medium", _VISITS),
    "daily_utm_campaign": Breakdown("utm_campaign", _VISITS),
    "daily_countries": Breakdown("country", _VISITS),
    "daily_browsers": Breakdown("browser", _VISITS),
    "daily_operating_systems": Breakdown("os", _VISITS),
    "daily_devices": Breakdown("device", _VISITS),
    "daily_events": Breakdown("name", ("events", "visitors")),
    "daily_event_props": Breakdown("value", ("events", "visitors")),
}

OTHER = "(other)"
_FORMULA_START = "('=', '+', '-', '@', chr(9), chr(13))"


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where table_name = ? and schema_name = 'main' and database_name = current_database() "
        "order by column_index",
        [table],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def folded_query(con: duckdb.DuckDBPyConnection, table: str, min_visitors: int) -> str:
    """The mart as exports show it: with rare breakdown rows folded when $min_visitors > 0."""
    spec = BREAKDOWNS.get(table)
    if spec is None or min_visitors <= 0:
        return f"select * from {table}"
    weights = dict(spec.weighted)
    select, keys = [], []
    for name, _kind in _columns(con, table):
        if name == spec.dimension:
            select.append(
                f"case when {name} is not null and visitors < $min_visitors "
                f"then '{OTHER}' else {name} end as {name}"
            )
            keys.append(name)
        elif name in spec.sums:
            select.append(f"sum({name})::bigint as {name}")
        elif name in weights:
            w = weights[name]
            # integer milliseconds, so the mean does not depend on the order of rows
            select.append(f"sum(round({name} * {w} * 1000)::bigint)"
                          f" / nullif(sum({w}), 0) / 1000 as {name}")
        else:
            select.append(name)
            keys.append(name)
    # group by position: the folded dimension is grouped by its folded value
    names = [name for name, _kind in _columns(con, table)]
    group = ", ".join(str(names.index(key) + 1) for key in keys)
    return f"select {', '.join(select)} from {table} group by {group}"


def _csv_select(con: duckdb.DuckDBPyConnection, columns: list[tuple[str, str]], source: str,
                extra: str = "") -> str:
    cells = []
    for name, kind in columns:
        if kind in ("VARCHAR", "JSON"):
            cells.append(
                f"case when left({name}::varchar, 1) in {_FORMULA_START} "
                f"then '''' || {name}::varchar else {name}::varchar end as {name}"
            )
        elif kind == "TIMESTAMP":  # ISO 8601; `*_at` columns are UTC, as the names promise
            zone = "Z" if name.endswith("_at") else ""
            cells.append(f"strftime({name}, '%Y-%m-%dT%H:%M:%S.%g{zone}') as {name}")
        else:
            cells.append(name)
    return f"select {', '.join(cells)} from ({source}) {extra}"


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path, params: dict[str, object],
          options: str = "format csv, header true, new_line '\\r\\n'") -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    con.execute(f"copy ({query}) to '{_quote(tmp)}' ({options})", params)
    os.replace(tmp, target)


def write(cfg: Config, con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """Write every export for every site; raw day files only for the affected days."""
    root = cfg.site_dir / "exports"
    min_visitors = cfg.privacy.min_visitors
    con.execute("set preserve_insertion_order = true")
    try:
        for table, filename in CSV_NAMES.items():
            query = folded_query(con, table, min_visitors)
            columns = _columns(con, table)
            for site in cfg.sites:
                select = _csv_select(
                    con, columns, query, "where site = $site order by all"
                )
                _copy(con, select, root / site.domain / filename,
                      {"site": site.domain, **_param(query, min_visitors)})
        _write_raw_days(cfg, con, root, full)
        _write_parquet(cfg, con, root / "parquet", full)
    finally:
        con.execute("set preserve_insertion_order = false")


def _param(query: str, min_visitors: int) -> dict[str, object]:
    return {"min_visitors": min_visitors} if "$min_visitors" in query else {}


def _write_raw_days(cfg: Config, con: duckdb.DuckDBPyConnection, root: Path, full: bool) -> None:
    """One file per site and local day, for the affected days, written in one pass."""
    if cfg.privacy.min_visitors > 0:
        return
    scope = "select distinct site, date from events" if full else "select * from int_affected_days"
    days = con.execute(f"{scope} order by all").fetchall()
    if not days:
        return
    staging = root / ".raw.new"
    shutil.rmtree(staging, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    # DuckDB's partitioned writer does not keep an ORDER BY, and sorting a day's rows one
    # COPY at a time costs more than the whole export; rows are in no particular order.
    select = _csv_select(
        con, _columns(con, "events"),
        f"select * from events semi join ({scope}) using (site, date)",
    )
    con.execute(
        f"copy ({select}) to '{_quote(staging)}' (format csv, header true, "
        "new_line '\\r\\n', partition_by (site, date), write_partition_columns true)"
    )
    for site, day in days:
        target = root / site / "raw" / f"{day.isoformat()}.csv"
        written = list((staging / f"site={site}" / f"date={day.isoformat()}").glob("*.csv"))
        if not written:  # the day has no events any more
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written[0], target)
    shutil.rmtree(staging, ignore_errors=True)


def _write_parquet(cfg: Config, con: duckdb.DuckDBPyConnection, root: Path, full: bool) -> None:
    """Hive-partitioned Parquet per mart; an incremental run replaces only affected days."""
    root.mkdir(parents=True, exist_ok=True)
    for table in CSV_NAMES:
        query = folded_query(con, table, cfg.privacy.min_visitors)
        target = root / table
        everything = full or not target.exists()
        scope = "(select distinct site, date from events)" if everything \
            else "int_affected_days"
        fresh = root / f".{table}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        con.execute(
            f"copy (select * from ({query}) semi join {scope} using (site, date)) "
            f"to '{_quote(fresh)}' (format parquet, partition_by (site, date))",
            _param(query, cfg.privacy.min_visitors),
        )
        fresh.mkdir(exist_ok=True)  # an empty mart writes no partition
        if everything:
            old = root / f".{table}.old"
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                os.replace(target, old)
            os.replace(fresh, target)
            shutil.rmtree(old, ignore_errors=True)
            continue
        for site, day in con.execute("select site, date from int_affected_days").fetchall():
            part = Path(f"site={site}") / f"date={day.isoformat()}"
            shutil.rmtree(target / part, ignore_errors=True)
            if (fresh / part).exists():
                (target / part).parent.mkdir(parents=True, exist_ok=True)
                os.replace(fresh / part, target / part)
        shutil.rmtree(fresh, ignore_errors=True)
