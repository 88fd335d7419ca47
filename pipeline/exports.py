"""Tool-neutral exports, written from the marts after each run.

    site_dir/exports/<site>/<stem>.csv                        one per mart, all days
    site_dir/exports/parquet/<stem>/site=<site>/date=<date>/*.parquet  the marts
    data_dir/exports/<site>/raw/<YYYY-MM-DD>.csv              that local day's raw events
                                                              (rows in no particular order)

The raw day files hold one row per event with its visitor and session ids, so they stay
out of the published folder: only `exports.publish_raw: true` writes them to
site_dir/exports/<site>/raw/ instead (`raw_root`), and each run empties the other place.

<stem> is the mart's name in every exported file (footfall/marts.py, `Mart.export`):
`daily_utm_source` → `utm-source`, `daily_stats` → `stats`, `funnel_steps` → `funnel-steps`.
The dashboard's panel CSVs use the same stems.

CSV files are UTF-8 with a header row and RFC 4180 quoting (CRLF line ends; fields with a
comma, quote or line break are quoted). A text cell that starts with `=`, `+`, `-`, `@`, tab
or carriage return gets a leading `'` so spreadsheets do not run it as a formula (OWASP CSV
injection); only text columns are touched, so -3 stays a number.

With `privacy.min_visitors` > 0, the small-count rule (footfall/marts.py, `add_up_sql`) folds
rows with fewer visitors into one `(other)` row per site and day, in the CSV and Parquet
alike, and the raw per-day events files are not written (they would undo the folding). Each
file is written beside its target and moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import date
from pathlib import Path

import duckdb

from footfall import csvcell, marts
from footfall.config import Config
from footfall.sqltext import literal
from pipeline import database


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    rows = con.execute(
        "select column_name, data_type from duckdb_columns() "
        "where table_name = ? and schema_name = 'main' and database_name = current_database() "
        "order by column_index",
        [table],
    ).fetchall()
    return [(str(name), str(kind)) for name, kind in rows]


def folded_query(con: duckdb.DuckDBPyConnection, mart: marts.Mart, min_visitors: int) -> str:
    """The mart as every writer publishes it: the small-count rule applied when it is on."""
    query = f"select * from {mart.table}"
    if min_visitors <= 0 or mart.dimension is None:
        return query
    columns = [name for name, _kind in _columns(con, mart.table)]
    return marts.add_up_sql(mart, query, columns, fold=True)


def _csv_select(con: duckdb.DuckDBPyConnection, columns: list[tuple[str, str]], source: str,
                extra: str = "", nulls: dict[str, str] | None = None) -> str:
    """`nulls`: how a NULL reads in a column where an empty cell would be ambiguous (the
    registry's `Column.csv_null`)."""
    cells = []
    for name, kind in columns:
        if kind in ("VARCHAR", "JSON"):
            cell = csvcell.guard_sql(f"{name}::varchar")
            if nulls and name in nulls:
                cell = f"coalesce({cell}, {literal(nulls[name])})"
            cells.append(f"{cell} as {name}")
        elif kind == "TIMESTAMP":  # ISO 8601; `*_at` columns are UTC, as the names promise
            zone = "Z" if name.endswith("_at") else ""
            cells.append(f"strftime({name}, '%Y-%m-%dT%H:%M:%S.%g{zone}') as {name}")
        else:
            cells.append(name)
    return f"select {', '.join(cells)} from ({source}) {extra}"



def _copy(con: duckdb.DuckDBPyConnection, query: str, target: Path, params: dict[str, object],
          options: str = "format csv, header true, new_line '\\r\\n'") -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    con.execute(f"copy ({query}) to {literal(tmp)} ({options})", params)
    os.replace(tmp, target)


def raw_root(cfg: Config) -> Path:
    """Where the raw day files go: published with the site only when the config says so."""
    return (cfg.site_dir if cfg.exports.publish_raw else cfg.data_dir) / "exports"


def _unpublished_raw_root(cfg: Config) -> Path:
    return (cfg.data_dir if cfg.exports.publish_raw else cfg.site_dir) / "exports"


def write(cfg: Config, con: duckdb.DuckDBPyConnection, full: bool) -> None:
    """Write every export for every site; raw day files only for the affected days."""
    root = cfg.site_dir / "exports"
    min_visitors = cfg.privacy.min_visitors
    con.execute("set preserve_insertion_order = true")
    try:
        for mart in marts.MARTS:
            if not mart.per_site_csv:
                continue
            query = folded_query(con, mart, min_visitors)
            columns = _columns(con, mart.table)
            for site in cfg.sites:
                select = _csv_select(
                    con, columns, query, "where site = $site order by all",
                    {c.name: c.csv_null for c in mart.columns if c.csv_null})
                _copy(con, select, root / site.domain / f"{mart.export}.csv",
                      {"site": site.domain, **_param(query, min_visitors)})
        # switching exports.publish_raw changes the fingerprint (pipeline/steps.py), so that
        # run is full: every day's file is written in its new place, and the old place goes
        for site in cfg.sites:
            shutil.rmtree(_unpublished_raw_root(cfg) / site.domain / "raw", ignore_errors=True)
        _write_raw_days(cfg, con, raw_root(cfg), full)
        _write_parquet(cfg, con, root / "parquet", full)
    finally:
        con.execute("set preserve_insertion_order = false")


def _param(query: str, min_visitors: int) -> dict[str, object]:
    return {"min_visitors": min_visitors} if "$min_visitors" in query else {}


def carry_over(con: duckdb.DuckDBPyConnection) -> None:
    """A `--full` run starts from an empty database; it takes over what the published one
    (attached: database.published_attached) knows of the raw day files on disk, so it too
    rewrites only the days that changed."""
    with contextlib.suppress(duckdb.CatalogException):  # published before the table existed
        con.execute("insert into pipeline.raw_exports "
                    f"select * from {database.PUBLISHED}.pipeline.raw_exports")


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
        f"copy ({select}) to {literal(staging)} (format csv, header true, "
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
    for mart in marts.MARTS:
        if not mart.per_site_csv:
            continue
        table = mart.table
        query = folded_query(con, mart, cfg.privacy.min_visitors)
        target = root / mart.export
        everything = full or not target.exists()
        scope = "(select distinct site, date from events)" if everything \
            else "int_affected_days"
        fresh = root / f".{table}.new"
        shutil.rmtree(fresh, ignore_errors=True)
        con.execute(
            f"copy (select * from ({query}) semi join {scope} using (site, date)) "
            f"to {literal(fresh)} (format parquet, partition_by (site, date))",
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
