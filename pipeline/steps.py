"""`footfall run`: new log bytes → models → exports, published atomically.

    plan        which bytes are new (sources.py)
    read        staging/stg_log_lines.sql over them; quarantine the refused lines
    model       the rest of models/ in layer order (models.order()), only for the affected
                visitors and days, with HOOKS after some models
                (with pipeline.shards > 1, the read and the per-visitor models run as
                parallel jobs by visitor hash, merged before the marts: shards.py)
    export      CSV and Parquet (exports.py) and the quarantine files, from the private copy
    compact     closed days' raw logs compacted, expired days recorded (lifecycle.py)
    publish     checkpoint the private copy and os.replace it over footfall.duckdb
    (retire)    the raw files the published copy gave up are deleted (lifecycle.py); a run
                first finishes what an interrupted one left, in `finish retiring`

Everything is built in a private copy of the database; exports and quarantine files are
written, each atomically, before the database is published. A run that fails after the export
step has therefore refreshed files that describe a database it did not publish; the next run
writes them again from the state it publishes. The dashboard is rendered afterwards, from the
published database (reports/).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

import duckdb
import msgspec

from footfall import contract
from footfall.config import Config
from footfall.errors import PipelineError
from pipeline import (
    database,
    drilldown,
    exports,
    imports,
    lifecycle,
    models,
    quarantine,
    shards,
    sources,
)


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
    days_compacted: int = 0  # UTC days of raw logs compacted (lifecycle.py)
    days_expired: int = 0  # UTC days of raw logs deleted (retention.raw_days)
    raw_kept_from: str | None = None  # a rebuild's raw logs start here; older events carried
    carried_events: int = 0
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
        if self.raw_kept_from:
            text += (f"; raw logs start on {self.raw_kept_from} (retention.raw_days), so the "
                     f"{self.carried_events:,} events before it were kept from the published "
                     "database, not rebuilt from logs")
        if self.days_compacted:
            text += f"; {self.days_compacted} days of raw logs compacted"
        if self.days_expired:
            text += f"; {self.days_expired} days of raw logs deleted (retention.raw_days)"
        return text


#: Test hook: a run whose environment names a step here kills itself with SIGKILL as that step
#: starts, so tests can crash the pipeline at every stage (tests/test_adversarial_pipeline.py).
KILL_AT_STEP = "FOOTFALL_TEST_KILL_AT_STEP"


def kill_point(name: str) -> None:
    """The KILL_AT_STEP hook, also passed inside steps that change several files."""
    if os.environ.get(KILL_AT_STEP) == name:
        os.kill(os.getpid(), signal.SIGKILL)


class Progress:
    """Step names and timings on a terminal; silent otherwise (cron)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None

    @contextmanager
    def step(self, summary: RunSummary, name: str) -> Iterator[None]:
        kill_point(name)
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
        "experiments": [
            [x.site, x.name, x.prop, x.event, x.control, x.goal.path, x.goal.event,
             x.goal.props, str(x.start), str(x.end), x.weights]
            for x in cfg.experiments
        ],
        "models": models.digest(),
        "raw_exports_published": cfg.exports.publish_raw,  # where the raw day files go
    }
    return hashlib.blake2b(json.dumps(state, sort_keys=True).encode(), digest_size=16).hexdigest()


def _like(glob: str) -> str:
    escaped = glob.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _prop_text(value: contract.PropValue) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


def _seed(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """The config into the small tables the models join (declared in models/state.sql)."""
    con.executemany("insert into pipeline.sites values (?, ?)",
                    [[s.domain, s.timezone] for s in cfg.sites])
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
    _seed_experiments(con, cfg)


def _json_path(key: str) -> str:
    """A JSON path to one key, quoted, so a prop name is never read as path syntax."""
    return "$." + json.dumps(key)


def _seed_experiments(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    rows, props, weights = [], [], []
    for x in cfg.experiments:
        goal = x.goal
        rows.append([x.site, x.name, _json_path(x.prop), x.event, x.control, goal.path,
                     _like(goal.path) if goal.path else None, goal.event,
                     len(goal.props or {}), x.start, x.end])
        props += [[x.site, x.name, _json_path(k), _prop_text(v)]
                  for k, v in (goal.props or {}).items()]
        weights += [[x.site, x.name, k, w] for k, w in (x.weights or {}).items()]
    for table, values in (("experiments", rows), ("experiment_goal_props", props),
                          ("experiment_weights", weights)):
        if values:
            marks = ", ".join("?" * len(values[0]))
            con.executemany(f"insert into pipeline.{table} values ({marks})", values)


def _known(con: duckdb.DuckDBPyConnection | None) -> tuple[dict[str, sources.Consumed], str | None]:
    if con is None or not models.table_exists(con, "files", "pipeline"):
        return {}, None
    known = {
        row[0]: sources.Consumed(row[1], row[2], row[3])
        for row in con.execute("select source, size, consumed, head from pipeline.files").fetchall()
    }
    row = con.execute("select value from pipeline.state where key = 'fingerprint'").fetchone()
    return known, (row[0] if row else None)


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
    now = datetime.now(UTC)
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
            retained = lifecycle.read_state(published)
        finally:
            if published is not None:
                published.close()
        with show.step(summary, "finish retiring"):
            lifecycle.finish(cfg, retained.retired, kill_point, orphans=True)
        new_fingerprint = fingerprint(cfg)
        fresh = full or not cfg.database.exists()
        rebuild_all = not fresh and old_fingerprint != new_fingerprint
        with show.step(summary, "plan"):
            slices, skipped = sources.plan(cfg.logs_dir, known, tmp, full=fresh)
            summary.skipped_files = len(skipped)
            todo = lifecycle.plan(cfg, known, retained, now)
        if not slices and not todo and not rebuild_all and since is None and not fresh:
            summary.seconds = round(time.perf_counter() - started, 3)
            return summary
        con = database.open_build(cfg, fresh=fresh)
        run = Run(cfg, con, summary, show, slices, fresh=fresh, rebuild_all=rebuild_all,
                  params={"timeout_minutes": cfg.sessions.timeout_minutes,
                          "rebuild_all": rebuild_all, "rebuild_from": since},
                  scratch=fresh, raw_plan=todo)
        try:
            with shards.executor(cfg) as run.sharded:
                _build(run, new_fingerprint)
            with show.step(summary, "publish"):
                database.publish(cfg, con)
        except BaseException:
            con.close()
            raise
        summary.published = True
        # not a step: the published state is already the new one (test_adversarial_pipeline)
        kill_point("retire")
        lifecycle.finish(cfg, run.retiring, kill_point)
        summary.seconds = round(time.perf_counter() - started, 3)
        database.clean_work_files(cfg)
    return summary


@dataclass
class Run:
    """One run's context: what every step and model hook reads and updates."""

    cfg: Config
    con: duckdb.DuckDBPyConnection
    summary: RunSummary
    show: Progress
    slices: list[sources.Slice]
    fresh: bool  # nothing stored yet: the public tables start empty
    rebuild_all: bool  # the settings or the models changed: recompute from stored events
    params: dict[str, Any]  # the models' $parameters
    scratch: bool = False  # the build started from an empty database (--full, a first run)
    raw_plan: lifecycle.Plan = field(default_factory=lifecycle.Plan)
    retiring: list[lifecycle.Retired] = field(default_factory=list)  # deleted after publish
    valid_lines: int = 0
    sharded: shards.Sharding | None = None  # the shard jobs, with pipeline.shards > 1


def _after_new_events(run: Run) -> None:
    run.summary.new_events = _count(run.con, "int_new_events")
    run.summary.duplicate_events = run.valid_lines - run.summary.new_events


def _after_affected_days(run: Run) -> None:
    run.summary.days_rebuilt = _count(run.con, "int_affected_days")
    run.summary.visitors_recomputed = _count(run.con, "int_affected_visitors")
    first, last = run.con.execute(
        "select min(date), max(date) from int_affected_days").fetchone() or (None, None)
    # as constants, the bounds let later models skip stored row groups of other days
    run.params.update(first_affected_day=first, last_affected_day=last)


def _after_events(run: Run) -> None:
    # the wide staging rows are spent once the events are stored
    _drop_temp(run.con, "int_new_events", "stg_events", "stg_repeated_ids", "stg_log_lines")


#: What the runner does after a model, by model name: checked against the run order at
#: import, so renaming a model without its hook fails loudly instead of silently.
HOOKS: dict[str, Callable[[Run], None]] = {
    "intermediate/int_new_events": _after_new_events,
    "intermediate/int_affected_days": _after_affected_days,
    "marts/events": _after_events,
}
_unknown = set(HOOKS) - set(models.order())
if _unknown:  # pragma: no cover - a developer's mistake, caught by any import
    raise RuntimeError(f"pipeline.steps.HOOKS names models that do not exist: {_unknown}")


def _build(run: Run, new_fingerprint: str) -> None:
    cfg, con, summary, show = run.cfg, run.con, run.summary, run.show
    sites = frozenset(s.domain for s in cfg.sites)
    models.prepare(con, rebuild=run.rebuild_all)
    if run.scratch and cfg.database.exists():
        with database.published_attached(con, cfg):
            exports.carry_over(con)
            imports.carry_over(con)
            carried, kept_from = lifecycle.carry_over(con)
        if kept_from is not None:
            summary.raw_kept_from, summary.carried_events = kept_from.isoformat(), carried
        if carried:  # stored history now: recomputed with the logs, as after a config change
            run.fresh, run.rebuild_all = False, True
            run.params["rebuild_all"] = True
    _seed(con, cfg)
    models.create_macros(con)

    with show.step(summary, "read"):
        if run.sharded is not None:
            run.slices, reading = shards.read(run, run.sharded)
        else:
            run.slices = read_logs(con, run.slices, run.params, database.tmp_dir(cfg))
            reading = shards.Reading.of(con)
    summary.files_read = len(run.slices)
    summary.bytes_read = sum(s.end - s.start for s in run.slices)
    summary.lines_read = reading.lines
    run.valid_lines = summary.lines_read - sum(reading.refused_by_file.values())

    with show.step(summary, "quarantine"):
        refused_by_file = reading.refused_by_file
        for s in run.slices:
            found = quarantine.store(con, s, sites, refused_by_file.get(str(s.path), 0))
            summary.quarantined += found.lines
            summary.unexplained += found.unexplained

    with show.step(summary, "model"):
        built = {models.READ}  # the read step built it
        if run.sharded is not None:  # the shard jobs built these; their outputs are here
            summary.models.update(shards.model(run, run.sharded))
            built.update(models.PER_VISITOR)
        for name in models.order():
            if name not in built:
                began = time.perf_counter()
                models.materialise(con, models.load(name), run.params, fresh=run.fresh)
                summary.models[name] = round(time.perf_counter() - began, 3)
            hook = HOOKS.get(name)
            if hook is not None:
                hook(run)

    # before the import fills older days: filters are chosen from, and built of, events
    with show.step(summary, "drill-down"):
        drilldown.materialise(con, cfg, rebuild=run.fresh or run.rebuild_all)

    # imported history (footfall import plausible) fills the days before the first event
    imports.apply(con)

    with show.step(summary, "export"):
        exports.write(cfg, con, full=run.fresh or run.rebuild_all)

    with show.step(summary, "quarantine files"):
        quarantine.write_files(con, cfg.quarantine_dir, [s.source for s in run.slices],
                               full=run.scratch)

    for s in run.slices:
        r = s.remembered
        con.execute(
            "insert or replace into pipeline.files values (?, ?, ?, ?)",
            [s.source, r.size, r.consumed, r.head],
        )
    con.execute("insert or replace into pipeline.state values ('fingerprint', ?)",
                [new_fingerprint])
    with show.step(summary, "compact"):
        lifecycle.forget(con, cfg.logs_dir)
        run.retiring, summary.days_compacted, summary.days_expired = lifecycle.apply(
            cfg, con, run.raw_plan, kill_point)
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


def read_logs(
    con: duckdb.DuckDBPyConnection, slices: list[sources.Slice], params: dict[str, Any],
    tmp: Path,
) -> list[sources.Slice]:
    """Build the staging table from the planned bytes; the slices as read.

    A source read in place that grew meanwhile may have shown DuckDB a partial line: then the
    table is built again, reading a private copy (in `tmp`) of exactly the bytes planned for
    each such source (rare, and simpler than patching the table: later models find lines by
    rowid)."""
    model = models.load(models.READ)
    if slices:
        params["files"] = [str(s.path) for s in slices]
    else:
        empty = tmp / "empty.jsonl"
        empty.touch()
        params["files"] = [str(empty)]
    models.materialise(con, model, params)
    copies = {
        s.path: sources.copy_out(s, tmp, n)
        for n, s in enumerate(slices)
        if s.in_place and s.path.stat().st_size != s.size
    }
    if copies:
        slices = [copies.get(s.path, s) for s in slices]
        params["files"] = [str(s.path) for s in slices]
        models.materialise(con, model, params)
    return slices
