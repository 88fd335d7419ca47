"""`footfall import plausible`: a site's history from Plausible's CSV export.

Plausible's "Export" writes a zip of `imported_<table>_<YYYYMMDD>_<YYYYMMDD>.csv` files
(visitors, sources, pages, entry and exit pages, locations, devices, browsers, operating
systems, custom events; the layout of its own CSV importer). They are daily aggregates, not
events, so they go straight into footfall's daily marts, never into `events` or `sessions`:

    read      the zip's known tables into DuckDB, each checked against its header
    store     pipeline/imports/plausible/*.sql map them onto the marts' columns, into the
              `imported` schema, one table per mart (a re-import replaces its site's rows)
    apply     the imported rows of every day before the site's first footfall event replace
              that day's rows in the marts; `daily_stats.is_imported` marks them

The `imported` schema is kept by every run and carried over by `--full`, and `apply` runs at the
end of every run, so a rebuild never loses the history and a day that later receives tracker
events is the tracker's. Importing the same file again changes nothing.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import duckdb
import jinja2

from footfall import marts
from footfall.config import Config
from footfall.errors import PipelineError
from footfall.sqltext import literal
from pipeline import database, exports, models

SCHEMA = "imported"

#: Plausible's tables with the columns footfall reads (either layout of its exporter has
#: them; extra columns are ignored).
TABLES: dict[str, tuple[str, ...]] = {
    "imported_visitors": ("date", "visitors", "pageviews", "bounces", "visits",
                          "visit_duration"),
    "imported_sources": ("date", "source", "utm_medium", "utm_campaign", "visitors", "visits"),
    "imported_pages": ("date", "page", "visitors", "pageviews"),
    "imported_entry_pages": ("date", "entry_page", "entrances"),
    "imported_exit_pages": ("date", "exit_page", "exits"),
    "imported_locations": ("date", "country", "visitors", "visits"),
    "imported_devices": ("date", "device", "visitors", "visits"),
    "imported_browsers": ("date", "browser", "visitors", "visits"),
    "imported_operating_systems": ("date", "operating_system", "visitors", "visits"),
    "imported_custom_events": ("date", "name", "link_url", "path", "visitors", "events"),
}

#: A session breakdown mart's dimension → (Plausible table, the value it takes).
BY_SESSION: dict[str, tuple[str, str]] = {
    "source": ("imported_sources", "source"),
    "referrer": ("imported_sources", "referrer"),
    "utm_source": ("imported_sources", "utm_source"),
    "utm_medium": ("imported_sources", "utm_medium"),
    "utm_campaign": ("imported_sources", "utm_campaign"),
    "utm_term": ("imported_sources", "utm_term"),
    "utm_content": ("imported_sources", "utm_content"),
    "country": ("imported_locations", "nullif(country, 'ZZ')"),
    # Plausible's screen sizes; footfall has no laptop class
    "device": ("imported_devices", "replace(lower(device), 'laptop', 'desktop')"),
    "browser": ("imported_browsers", "browser"),
    "os": ("imported_operating_systems", "operating_system"),
}

_NAME = re.compile(r"^(?:imported_)?(?P<table>[a-z_]+?)_(?P<start>\d{8})_(?P<end>\d{8})\.csv$")
#: A zip member larger than this is refused before it is unpacked (a zip bomb, not an export).
MAX_MEMBER_BYTES = 2 * 1024**3
_TEMPLATES = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)


@dataclass
class ImportSummary:
    tables: list[str] = field(default_factory=list)
    days: int = 0  # days of history now shown from the import
    skipped_days: int = 0  # days the tracker already covers

    def describe(self, site: str) -> str:
        text = (f"imported {self.days} days of {site} from {len(self.tables)} Plausible tables "
                f"({', '.join(t.removeprefix('imported_') for t in self.tables)})")
        if self.skipped_days:
            text += (f"; {self.skipped_days} days left out because footfall has tracker "
                     "events on or before them")
        return text


def _sql(name: str, **identifiers: str) -> str:
    text = (resources.files("pipeline") / "imports" / "plausible" / f"{name}.sql").read_text(
        encoding="utf-8")
    return _TEMPLATES.from_string(text).render(**identifiers) if identifiers else text


def _unpack(archive: Path, into: Path) -> dict[str, Path]:
    """The zip's known tables as CSV files in `into`; anything else in it is ignored."""
    try:
        with zipfile.ZipFile(archive) as z:
            found: dict[str, Path] = {}
            for info in z.infolist():
                name = Path(info.filename).name
                match = _NAME.match(name)
                if info.is_dir() or match is None:
                    continue
                table = "imported_" + match["table"]
                if table not in TABLES:
                    continue
                if info.file_size > MAX_MEMBER_BYTES:
                    raise PipelineError(f"{archive}: {name} unpacks to {info.file_size:,} bytes, "
                                        "more than an export holds; is this Plausible's export?")
                target = into / f"{table}.csv"
                with z.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                found[table] = target
    except (zipfile.BadZipFile, EOFError) as exc:
        raise PipelineError(f"{archive} is not a readable zip ({exc}); pass the zip that "
                            "Plausible's Export produced") from None
    if "imported_visitors" not in found:
        raise PipelineError(f"{archive} holds no imported_visitors_<start>_<end>.csv; pass the "
                            "zip that Plausible's Export produced")
    return found


def _load(con: duckdb.DuckDBPyConnection, files: dict[str, Path]) -> None:
    """Each CSV as a temp table; a missing column is named in the error."""
    for table in TABLES:
        path = files.get(table)
        if path is None:
            continue
        try:
            con.execute(f"create or replace temp table {table} as select * from "
                        f"read_csv({literal(path)}, header = true, all_varchar = false, "
                        "types = {'date': 'DATE'})")
        except duckdb.Error as exc:
            raise PipelineError(f"{path.name} in the export is not a CSV footfall can read: "
                                f"{str(exc).splitlines()[0]}") from None
        have = {name for (name,) in con.execute(
            "select column_name from duckdb_columns() where table_name = ? "
            "and database_name = 'temp'",
            [table]).fetchall()}
        missing = [c for c in TABLES[table] if c not in have]
        if missing:
            raise PipelineError(f"{table} in the export has no column {', '.join(missing)}; "
                                "is this Plausible's CSV export?")


def _store(con: duckdb.DuckDBPyConnection, site: str, loaded: set[str]) -> None:
    """The site's imported rows, as mart rows, replacing what an earlier import stored."""
    ensure_schema(con)
    for mart in marts.MARTS:
        query = _mart_query(mart, loaded)
        con.execute(f"delete from {SCHEMA}.{mart.table} where site = ?", [site])
        if query is not None:
            con.execute(f"insert into {SCHEMA}.{mart.table} by name {query}", {"site": site})


def _mart_query(mart: marts.Mart, loaded: set[str]) -> str | None:
    if mart.template == "_by_session":
        source = BY_SESSION.get(str(mart.dimension))
        if source is None or source[0] not in loaded:
            return None
        table, value = source
        return _sql("by_session", dimension=str(mart.dimension), source_table=table,
                    value=value)
    needs = {"daily_stats": {"imported_visitors"},
             "daily_pages": {"imported_pages", "imported_entry_pages", "imported_exit_pages"},
             "daily_events": {"imported_custom_events"},
             "daily_event_props": {"imported_custom_events"}}.get(mart.table)
    if needs is None or not needs <= loaded:
        return None
    return _sql(mart.table)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The `imported` schema: one table per mart, in the registry's layout."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for mart in marts.MARTS:
        con.execute(mart.create_sql(SCHEMA))


def carry_over(con: duckdb.DuckDBPyConnection) -> None:
    """A `--full` run starts empty: it takes the imported history from the published file
    (attached: database.published_attached)."""
    ensure_schema(con)
    stored = {name for (name,) in con.execute(
        "select table_name from duckdb_tables() where database_name = ? "
        "and schema_name = ?", [database.PUBLISHED, SCHEMA]).fetchall()}
    for mart in marts.MARTS:
        if mart.table in stored:
            con.execute(f"insert into {SCHEMA}.{mart.table} by name "
                        f"select * from {database.PUBLISHED}.{SCHEMA}.{mart.table}")


def apply(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """Put the imported days into the marts: every imported site-day before the site's first
    tracker event replaces that day's rows. Returns (days applied, days the tracker covers)."""
    ensure_schema(con)
    con.execute(
        f"create or replace temp table imported_days as "
        f"select i.site, i.date, i.date < coalesce(first.date, date '9999-12-31') as applies "
        f"from (select distinct site, date from {SCHEMA}.daily_stats) i "
        f"left join (select site, min(date) as date from main.events group by site) first "
        f"using (site)")
    for mart in marts.MARTS:
        # an import holds days; a mart over whole ranges (experiment_results) takes none
        if not models.table_exists(con, mart.table) or "date" not in {c.name for c in mart.columns}:
            continue
        con.execute(f"delete from main.{mart.table} using imported_days d "
                    f"where d.applies and main.{mart.table}.site = d.site "
                    f"and main.{mart.table}.date = d.date")
        con.execute(f"insert into main.{mart.table} by name select i.* from "
                    f"{SCHEMA}.{mart.table} i semi join (select site, date from imported_days "
                    f"where applies) using (site, date)")
    row = con.execute("select count(*) filter (where applies), count(*) filter (where not "
                      "applies) from imported_days").fetchone() or (0, 0)
    con.execute("drop table imported_days")
    return int(row[0]), int(row[1])


def import_plausible(cfg: Config, archive: Path, site: str) -> ImportSummary:
    """Read Plausible's export zip for `site` into the published database, atomically."""
    if site not in {s.domain for s in cfg.sites}:
        raise PipelineError(f"{site} is not a site in {cfg.source}; add it under `sites` first")
    if not archive.is_file():
        raise PipelineError(f"{archive} does not exist; pass the path of Plausible's export zip")
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    summary = ImportSummary()
    with database.run_lock(cfg):
        database.clean_work_files(cfg)
        files = _unpack(archive, database.tmp_dir(cfg))
        con = database.open_build(cfg, fresh=not cfg.database.exists())
        try:
            models.prepare(con)
            _load(con, files)
            summary.tables = sorted(files)
            _store(con, site, set(files))
            summary.days, summary.skipped_days = _site_days(con, site)
            apply(con)
            exports.write(cfg, con, full=True)
            database.publish(cfg, con)
        except BaseException:
            con.close()
            raise
        finally:
            database.clean_work_files(cfg)
    return summary


def _site_days(con: duckdb.DuckDBPyConnection, site: str) -> tuple[int, int]:
    row = con.execute(
        f"select count(*) filter (where first is null or date < first), "
        f"count(*) filter (where date >= first) from {SCHEMA}.daily_stats, "
        f"(select min(date) as first from main.events where site = $site) "
        f"where site = $site", {"site": site}).fetchone() or (0, 0)
    return int(row[0]), int(row[1])
