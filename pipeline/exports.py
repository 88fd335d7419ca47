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
from datetime import date
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
#: = + - @ tab CR, as code points: comparing ascii() of the first character is about twice as
#: fast as taking it as a string, on every text cell of the raw export
_FORMULA_START = "(61, 43, 45, 64, 9, 13)"


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
                f"case when ascii({name}::varchar) in {_FORMULA_START} "
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


def create_table(con: duckdb.DuckDBPyConnection) -> None:
    """What each raw day file holds, so a run rewrites only the days whose rows changed."""
    con.execute(
        "create table if not exists pipeline.raw_exports ("
        "site varchar, date date, digest ubigint, size bigint, primary key (site, date))"
    )


def carry_over(con: duckdb.DuckDBPyConnection, published: Path) -> None:
    """A `--full` run starts from an empty database; it takes over what the published one
    knows of the raw day files on disk, so it too rewrites only the days that changed."""
    con.execute(f"attach '{_quote(published)}' as published (read_only)")
    try:
        con.execute("insert into pipeline.raw_exports "
                    "select * from published.pipeline.raw_exports")
    except duckdb.CatalogException:  # published by a version without the table
        pass
    finally:
        con.execute("detach published")


def _write_raw_days(cfg: Config, con: duckdb.DuckDBPyConnection, root: Path, full: bool) -> None:
    """One file per site and local day, for the days whose rows changed, in one pass.

    A day's digest combines a hash of every row (in any order) with the file layout. A day
    whose digest matches the one stored for a file still on disk with its recorded size is
    skipped, so `--full` and config-driven rebuilds rewrite only what actually changed, and
    tools that sync the exports see unchanged files untouched.
    """
    if cfg.privacy.min_visitors > 0:  # they would undo the folding; remove any written before
        for site in cfg.sites:
            shutil.rmtree(root / site.domain / "raw", ignore_errors=True)
        con.execute("delete from pipeline.raw_exports")
        return
    columns = _columns(con, "events")
    layout = ",".join(f"{name} {kind}" for name, kind in columns)
    scope = "select distinct site, date from events" if full else "select * from int_affected_days"
    digests = {
        (site, day): digest
        for site, day, digest in con.execute(
            "select site, date, hash(bit_xor(hash(events)), $layout) "
            f"from events semi join ({scope}) using (site, date) group by site, date",
            {"layout": layout},
        ).fetchall()
    }
    recorded = "pipeline.raw_exports" if full else \
        "(select * from pipeline.raw_exports semi join int_affected_days using (site, date))"
    stored = {(site, day): (digest, size) for site, day, digest, size in con.execute(
        f"select site, date, digest, size from {recorded}").fetchall()}
    scope_days = set() if full else set(con.execute(scope).fetchall())

    def target(site: str, day: date) -> Path:
        return root / site / "raw" / f"{day.isoformat()}.csv"

    def unchanged(key: tuple[str, date]) -> bool:
        before = stored.get(key)
        path = target(*key)
        return before is not None and before[0] == digests[key] and path.is_file() \
            and path.stat().st_size == before[1]

    for key in (set(stored) | scope_days) - set(digests):  # the day has no events any more
        target(*key).unlink(missing_ok=True)
        con.execute("delete from pipeline.raw_exports where site = ? and date = ?", list(key))
    changed = sorted(key for key in digests if not unchanged(key))
    if not changed:
        return
    con.execute("create or replace temp table raw_changed (site varchar, date date)")
    con.executemany("insert into raw_changed values (?, ?)", changed)
    staging = root / ".raw.new"
    shutil.rmtree(staging, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    # DuckDB's partitioned writer does not keep an ORDER BY, and sorting a day's rows one
    # COPY at a time costs more than the whole export; rows are in no particular order.
    select = _csv_select(con, columns,
                         "select * from events semi join raw_changed using (site, date)")
    con.execute(
        f"copy ({select}) to '{_quote(staging)}' (format csv, header true, "
        "new_line '\\r\\n', partition_by (site, date), write_partition_columns true)"
    )
    written = []
    for site, day in changed:
        path = target(site, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(next((staging / f"site={site}" / f"date={day.isoformat()}").glob("*.csv")),
                   path)
        written.append([site, day, digests[site, day], path.stat().st_size])
    shutil.rmtree(staging, ignore_errors=True)
    con.executemany("insert or replace into pipeline.raw_exports values (?, ?, ?, ?)", written)


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
