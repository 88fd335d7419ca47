"""`footfall run`: new log bytes → models → exports, published atomically.

    plan        which bytes are new (sources.py)
    read        staging/stg_log_lines.sql over them; quarantine the refused lines
    model       the rest of models/ in layer order, only for the affected visitors and days
    export      CSV and Parquet into site_dir/exports (exports.py)
    publish     checkpoint the private copy and os.replace it over footfall.duckdb

The site step (reports) will hook in after `export`; `run` returns a RunSummary for it.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, TextIO

import duckdb
import msgspec

from footfall import contract
from footfall.config import Config
from footfall.errors import PipelineError
from pipeline import database, exports, models, quarantine, sources


@dataclass
class RunSummary:
    """What a run did; printed on a terminal and stored in pipeline.runs."""

    files_read: int = 0
    bytes_read: int = 0
    lines_read: int = 0
    new_events: int = 0
    duplicate_events: int = 0
    quarantined: int = 0
    skipped_files: int = 0  # log files (or .gz tails) not read: links, unreadable, bombs
    unexplained: int = 0  # refused by DuckDB but not by the Python check (should stay 0)
    visitors_recomputed: int = 0
    days_rebuilt: int = 0
    published: bool = False
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    models: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.published:
            return "nothing new"
        text = (
            f"{self.new_events:,} new events from {self.bytes_read:,} bytes in "
            f"{self.files_read} files; {self.days_rebuilt} days rebuilt "
            f"in {self.seconds:.1f}s"
        )
        if self.duplicate_events:
            text += f"; {self.duplicate_events:,} duplicate ids skipped"
        if self.quarantined:
            text += f"; {self.quarantined:,} malformed lines quarantined"
        if self.skipped_files:
            text += f"; {self.skipped_files} log files skipped (see the warnings)"
        return text


class Progress:
    """Step names and timings on a terminal; silent otherwise (cron)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None

    @contextmanager
    def step(self, summary: RunSummary, name: str) -> Iterator[None]:
        if self.stream:
            print(f"footfall run: {name}…", end="", flush=True, file=self.stream)
        started = time.perf_counter()
        yield
        took = time.perf_counter() - started
        summary.steps[name] = summary.steps.get(name, 0.0) + round(took, 3)
        if self.stream:
            print(f" {took:.1f}s", file=self.stream, flush=True)


def fingerprint(cfg: Config) -> str:
    """Changes when a setting changes what the models compute, forcing a rebuild."""
    state = {
        "sites": [[s.domain, s.timezone] for s in cfg.sites],
        "timeout": cfg.sessions.timeout_minutes,
        "funnels": [
            [f.site, f.name, [[s.name, s.path, s.event, s.props] for s in f.steps]]
            for f in cfg.funnels
        ],
        "models": models.digest(),
    }
    return hashlib.blake2b(json.dumps(state, sort_keys=True).encode(), digest_size=16).hexdigest()


def _like(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _prop_text(value: contract.PropValue) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _create_state_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists pipeline")
    con.execute(
        "create table if not exists pipeline.files ("
        "source varchar primary key, size bigint, consumed bigint, head varchar)"
    )
    con.execute(
        "create table if not exists pipeline.state (key varchar primary key, value varchar)"
    )
    con.execute(
        "create table if not exists pipeline.runs (finished_at timestamp, summary json)"
    )
    quarantine.create_table(con)
    exports.create_table(con)


def _seed(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """The config as small tables the models join: sites and funnel definitions."""
    con.execute("create or replace table pipeline.sites (site varchar, timezone varchar)")
    con.executemany("insert into pipeline.sites values (?, ?)",
                    [[s.domain, s.timezone] for s in cfg.sites])
    con.execute(
        "create or replace table pipeline.funnel_definitions ("
        "site varchar, funnel varchar, step integer, step_name varchar, path varchar, "
        "path_like varchar, event_name varchar, prop_count integer)"
    )
    con.execute(
        "create or replace table pipeline.funnel_step_props ("
        "site varchar, funnel varchar, step integer, prop varchar, value varchar)"
    )
    steps, props = [], []
    for f in cfg.funnels:
        for i, st in enumerate(f.steps, start=1):
            steps.append([f.site, f.name, i, st.name, st.path,
                          _like(st.path) if st.path else None, st.event, len(st.props or {})])
            props += [[f.site, f.name, i, k, _prop_text(v)] for k, v in (st.props or {}).items()]
    if steps:
        con.executemany("insert into pipeline.funnel_definitions values (?, ?, ?, ?, ?, ?, ?, ?)",
                        steps)
    if props:
        con.executemany("insert into pipeline.funnel_step_props values (?, ?, ?, ?, ?)", props)


def _known(con: duckdb.DuckDBPyConnection | None) -> tuple[dict[str, sources.Consumed], str | None]:
    if con is None or not models.table_exists(con, "files", "pipeline"):
        return {}, None
    known = {
        row[0]: sources.Consumed(row[1], row[2], row[3])
        for row in con.execute("select source, size, consumed, head from pipeline.files").fetchall()
    }
    row = con.execute("select value from pipeline.state where key = 'fingerprint'").fetchone()
    return known, (row[0] if row else None)


def _previous_events_view(con: duckdb.DuckDBPyConnection) -> None:
    """The events stored by earlier runs, as the models' source (dbt's `{{ this }}`)."""
    if models.table_exists(con, "events"):
        con.execute("create or replace temp view previous_events as select * from main.events")
    else:
        con.execute(
            "create or replace temp table previous_events as "
            "select *, null::date as date from stg_events where false"
        )


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    row = con.execute(f"select count(*) from {table}").fetchone()
    return int(row[0]) if row else 0


def run(
    cfg: Config,
    full: bool = False,
    since: date | None = None,
    progress: TextIO | None = sys.stderr,
) -> RunSummary:
    """Ingest new log bytes, rebuild what they affect, export, and publish atomically.

    Raises PipelineError with a message for the operator; the published state is untouched.
    """
    try:
        return _run(cfg, full, since, progress)
    except duckdb.Error as exc:
        raise PipelineError(f"DuckDB stopped the run: {exc}") from exc
    except OSError as exc:
        raise PipelineError(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from exc


def _run(
    cfg: Config, full: bool, since: date | None, progress: TextIO | None
) -> RunSummary:
    summary = RunSummary()
    started = time.perf_counter()
    show = Progress(progress)
    cfg.data_dir.mkdir(parents=True, exist_ok=True)
    with database.run_lock(cfg):
        database.clean_work_files(cfg)
        tmp = database.tmp_dir(cfg)
        try:
            published = database.open_published(cfg)
        except duckdb.Error as exc:
            raise PipelineError(f"cannot read {cfg.database}: {exc}") from None
        try:
            known, old_fingerprint = _known(published)
        finally:
            if published is not None:
                published.close()
        new_fingerprint = fingerprint(cfg)
        fresh = full or not cfg.database.exists()
        rebuild_all = not fresh and old_fingerprint != new_fingerprint
        with show.step(summary, "plan"):
            slices, skipped = sources.plan(cfg.logs_dir, known, tmp, full=fresh)
            summary.skipped_files = len(skipped)
        if not slices and not rebuild_all and since is None and not fresh:
            summary.seconds = round(time.perf_counter() - started, 3)
            return summary
        con = database.open_build(cfg, fresh=fresh)
        try:
            _build(cfg, con, slices, summary, show, rebuild_all, since, fresh, new_fingerprint)
            with show.step(summary, "publish"):
                database.publish(cfg, con)
        except BaseException:
            con.close()
            raise
        summary.published = True
        summary.seconds = round(time.perf_counter() - started, 3)
        database.clean_work_files(cfg)
    return summary


def _build(
    cfg: Config,
    con: duckdb.DuckDBPyConnection,
    slices: list[sources.Slice],
    summary: RunSummary,
    show: Progress,
    rebuild_all: bool,
    since: date | None,
    fresh: bool,
    new_fingerprint: str,
) -> None:
    tmp = database.tmp_dir(cfg)
    params: dict[str, Any] = {
        "timeout_minutes": cfg.sessions.timeout_minutes,
        "rebuild_all": rebuild_all,
        "rebuild_from": since,
    }
    sites = frozenset(s.domain for s in cfg.sites)
    _create_state_tables(con)
    if fresh and cfg.database.exists():
        exports.carry_over(con, cfg.database)
    _seed(con, cfg)
    models.create_macros(con)

    with show.step(summary, "read"):
        if slices:
            params["files"] = [str(s.path) for s in slices]
        else:
            empty = tmp / "empty.jsonl"
            empty.touch()
            params["files"] = [str(empty)]
        models.materialise(con, models.load("staging/stg_log_lines"), params)
        slices = _reread_grown(con, slices, params, tmp)
    summary.files_read = len(slices)
    summary.bytes_read = sum(s.end - s.start for s in slices)
    summary.lines_read = _count(con, "stg_log_lines")
    valid_lines = summary.lines_read - _count(con, "stg_log_lines where not is_valid")

    with show.step(summary, "quarantine"):
        refused_by_file = dict(con.execute(
            "select file, count(*) from stg_log_lines where not is_valid group by file"
        ).fetchall())
        for s in slices:
            found = quarantine.store(con, s, sites, refused_by_file.get(str(s.path), 0))
            summary.quarantined += found.lines
            summary.unexplained += found.unexplained

    with show.step(summary, "model"):
        for name in models.ORDER[1:]:
            began = time.perf_counter()
            model = models.load(name)
            if rebuild_all and model.kind == "incremental":
                # everything is recomputed anyway; recreating the table also takes up a
                # changed column list after an upgrade (events, the store, is merged into)
                con.execute(f"drop table if exists main.{model.name}")
            models.materialise(con, model, params, fresh=fresh)
            summary.models[name] = round(time.perf_counter() - began, 3)
            if name == "staging/stg_events":
                _previous_events_view(con)
            elif name == "intermediate/int_new_events":
                summary.new_events = _count(con, "int_new_events")
                summary.duplicate_events = valid_lines - summary.new_events
            elif name == "marts/events":
                _drop_temp(con, "int_new_events", "stg_events", "stg_repeated_ids",
                           "stg_log_lines")  # the wide staging rows, now spent
            elif name == "intermediate/int_affected_days":
                summary.days_rebuilt = _count(con, "int_affected_days")
                first, last = con.execute(
                    "select min(date), max(date) from int_affected_days").fetchone() or (None, None)
                params.update(first_affected_day=first, last_affected_day=last)
                summary.visitors_recomputed = _count(con, "int_affected_visitors")

    with show.step(summary, "export"):
        exports.write(cfg, con, full=fresh or rebuild_all)

    with show.step(summary, "quarantine files"):
        quarantine.write_files(con, cfg.quarantine_dir, [s.source for s in slices], full=fresh)

    for s in slices:
        r = s.remembered
        con.execute(
            "insert or replace into pipeline.files values (?, ?, ?, ?)",
            [s.source, r.size, r.consumed, r.head],
        )
    con.execute("insert or replace into pipeline.state values ('fingerprint', ?)",
                [new_fingerprint])
    record = {k: v for k, v in asdict(summary).items() if k != "published"}
    con.execute("insert into pipeline.runs values (now()::timestamp, ?)", [json.dumps(record)])
    _drop_temp(con, "int_visitor_events", "int_affected_visitors", "int_event_sessions",
               "int_affected_days")


def _drop_temp(con: duckdb.DuckDBPyConnection, *names: str) -> None:
    """Drop run-scoped views and tables by name, whichever they are."""
    found = dict(con.execute(
        "select view_name, 'view ' || view_name from duckdb_views() where temporary "
        "union all select table_name, 'table ' || table_name from duckdb_tables() "
        "where temporary "
        "union all select table_name, 'table ' || database_name || '.' || table_name "
        "from duckdb_tables() where database_name = ?",
        [models.WORK],
    ).fetchall())
    for name in names:
        if name in found:
            con.execute(f"drop {found[name]}")


def _reread_grown(
    con: duckdb.DuckDBPyConnection,
    slices: list[sources.Slice],
    params: dict[str, Any],
    tmp: Any,
) -> list[sources.Slice]:
    """A source read in place that grew meanwhile may have shown DuckDB a partial line: read
    a private copy of exactly the bytes planned instead."""
    copies = {
        s.path: sources.copy_out(s, tmp, n)
        for n, s in enumerate(slices)
        if s.in_place and s.path.stat().st_size != s.size
    }
    if not copies:
        return slices
    # rebuilt without those lines rather than deleted from: the events mart finds lines by
    # rowid, which a delete followed by a checkpoint may renumber
    w = models.WORK
    con.execute(f"create table {w}.kept_lines as select * from stg_log_lines "
                "where not list_contains($stale, file)", {"stale": [str(p) for p in copies]})
    con.execute(f"drop table {w}.stg_log_lines")
    con.execute(f"alter table {w}.kept_lines rename to stg_log_lines")
    model = models.load("staging/stg_log_lines")
    con.execute(f"insert into stg_log_lines by name {model.sql}",
                {**{k: params[k] for k in model.params},
                 "files": [str(c.path) for c in copies.values()]})
    return [copies.get(s.path, s) for s in slices]
