"""`pipeline.shards` > 1: the per-visitor part of `footfall run` as parallel jobs.

    read     the planned slices in disjoint groups, one job per group: each parses its lines
             (staging/stg_log_lines), counts the refused ones per file for the quarantine,
             and writes its valid rows as Parquet, each with a key, split into buckets by
             `bucket_of` (a hash of the visitor id)
    dedupe   the run itself, once over the ids of every bucket: the copies of an id read
             more than once that stg_events does not choose, and the ids the database holds
             already. So an event id is ingested once, whichever buckets its copies fell in
    model    one job per bucket: the narrow columns of its rows less those, and the stored
             events of its visitors (from the published database, read-only: the state
             before this run; after a rebuild that carried older events over, a Parquet
             copy of those), through models.PER_VISITOR; each writes its OUTPUTS as Parquet
    merge    the run loads every read row as stg_log_lines, and the union of the buckets'
             OUTPUTS under their names, each line_id turned from the job's into the run's by
             the rows' keys; then it goes on as with one shard: int_affected_days, the marts
             and everything after them are computed once, over the merged rows

A session never spans two visitors and a bucket holds all of a visitor's events, so the merged
tables are the ones a single job builds, row for row; and as the marts (medians included) are
computed from them once, every published table is the same for any number of shards.

The jobs run in a process pool on this machine (`pipeline.executor: local`) or as Dask tasks
(`dask`), the same function either way. They read and write only paths under the run's own
folder, data_dir/.pipeline/tmp/shards-<run>/, and the published database, so a Dask worker on
another machine needs data_dir mounted at the same path. Each job's DuckDB gets
`pipeline.memory_limit` and `pipeline.threads` divided by the jobs that run at once, so the
total holds. Nothing is published before the run's own publish step; a run killed at any point
leaves its folder behind, and the next run removes it (database.clean_work_files).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import duckdb

from footfall import marts
from footfall.config import Config, size_bytes
from footfall.errors import PipelineError
from footfall.sqltext import literal
from pipeline import database, models, sources

if TYPE_CHECKING:
    from pipeline.steps import Run

#: What the bucket jobs hand back: with stg_log_lines (every read row, loaded from the read
#: jobs' files), the per-visitor tables that later models and the hooks read
#: (tests/test_shards.py holds the list to the SQL).
OUTPUTS = ("int_new_events", "int_affected_visitors", "int_event_sessions")

#: The columns of stg_log_lines that the per-visitor models read: a bucket job carries only
#: these (a model reading another fails loudly, as a column not found).
PER_VISITOR_COLUMNS = ("event_id", "site", "visitor_id", "occurred_at", "name", "path", "props",
                       "interactive", "engaged_ms", "is_valid")

#: The value of steps.KILL_AT_STEP at which a shard job of the local executor kills its run
#: with SIGKILL while the jobs are in flight (tests/test_shards.py).
KILL_FROM_JOB = "shard job"

# A read line's key across jobs: the read job's number above these bits, its rowid below.
_LINE_BITS = 40


def bucket_of(shards: int) -> str:
    """The bucket of a row with a visitor_id column: one expression for the logs and the
    stored events, so a visitor's old and new events meet in one job."""
    return f"hash(visitor_id) % {int(shards)}"


@dataclass(frozen=True)
class Reading:
    """What the read step found: lines read, and the refused ones per file DuckDB read."""

    lines: int
    refused_by_file: dict[str, int]

    @classmethod
    def of(cls, con: duckdb.DuckDBPyConnection) -> Reading:
        row = con.execute("select count(*) from stg_log_lines").fetchone()
        refused = con.execute(
            "select file, count(*) from stg_log_lines where not is_valid group by file"
        ).fetchall()
        return cls(int(row[0]) if row else 0, dict(refused))


# --- executors ------------------------------------------------------------------------------

Job = TypeVar("Job")
Result = TypeVar("Result")


class Executor:
    """Runs a job function over specs, `slots` jobs at once."""

    slots: int = 1

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _Local(Executor):
    def __init__(self, slots: int) -> None:
        self.slots = slots
        # spawned, not forked: the run holds a DuckDB connection and its threads
        self.pool = ProcessPoolExecutor(max_workers=slots, mp_context=get_context("spawn"),
                                        initializer=_follow_run, initargs=(os.getpid(),))

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        try:
            return list(self.pool.map(fn, jobs))
        except BrokenProcessPool:
            raise PipelineError(
                "a shard job's process died (killed, or out of memory); nothing was published: "
                "run again, or lower pipeline.shards or pipeline.memory_limit"
            ) from None

    def close(self) -> None:
        self.pool.shutdown(cancel_futures=True)


def _follow_run(run: int) -> None:
    """A pool process ends with its run. Killed with SIGKILL, a run cannot stop its jobs, and
    an orphan would write on into a folder the next run removes, and hold the run's stdout
    and stderr open (cron, or a test, waits for them to close)."""

    def watch() -> None:
        while os.getppid() == run:
            time.sleep(0.1)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="follow-run", daemon=True).start()


class _Dask(Executor):
    def __init__(self, scheduler: str | None) -> None:
        try:
            # typed as Any: distributed's own functions carry no annotations for mypy
            distributed: Any = importlib.import_module("distributed")
        except ImportError:
            raise PipelineError(
                "pipeline.executor: dask needs Dask installed: pip install 'footfall[dask]', "
                "or set pipeline.executor: local"
            ) from None
        self.cluster: Any = None
        if scheduler is None:
            # one single-threaded worker per core; no Dask memory limit, as DuckDB keeps its own
            self.cluster = distributed.LocalCluster(
                processes=True, threads_per_worker=1, memory_limit=0, dashboard_address=None)
            self.client: Any = distributed.Client(self.cluster)
        else:
            self.client = distributed.Client(scheduler, timeout=30)
        self.slots = max(1, sum(self.client.nthreads().values()))

    def map(self, fn: Callable[[Job], Result], jobs: Sequence[Job]) -> list[Result]:
        futures = self.client.map(fn, list(jobs), pure=False)
        return list(self.client.gather(futures))

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


@dataclass(frozen=True)
class Sharding:
    """One run's shard jobs: how many buckets, what runs them, and the run's own folder."""

    shards: int
    executor: Executor
    folder: Path


@contextlib.contextmanager
def executor(cfg: Config) -> Iterator[Sharding | None]:
    """The run's Sharding, or None with pipeline.shards: 1; closed when the run ends."""
    p = cfg.pipeline
    if p.shards <= 1:
        yield None
        return
    runner: Executor
    if p.executor == "dask":
        runner = _Dask(p.scheduler)
    else:
        runner = _Local(max(1, min(p.shards, p.threads or os.cpu_count() or 1)))
    folder = database.tmp_dir(cfg) / f"shards-{uuid.uuid4().hex[:12]}"
    folder.mkdir(parents=True)
    try:
        yield Sharding(p.shards, runner, folder)
    finally:
        runner.close()


def _budget(cfg: Config, jobs: int, slots: int) -> tuple[str, int]:
    """Each job's DuckDB memory limit and threads: the run's, shared by the jobs at once."""
    at_once = max(1, min(jobs, slots))
    total = size_bytes(cfg.pipeline.memory_limit) or 0  # validated by the config schema
    threads = cfg.pipeline.threads or os.cpu_count() or 1
    return f"{max(1, total // at_once // 1024)}KiB", max(1, threads // at_once)


# --- the jobs (each in its own process) -------------------------------------------------------


def _kill_hook() -> None:
    from pipeline.steps import KILL_AT_STEP  # steps imports this module

    if os.environ.get(KILL_AT_STEP) == KILL_FROM_JOB:
        os.kill(os.getppid(), signal.SIGKILL)


def _open(cfg: Config, folder: Path, memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    """A job's own database, with the config's small tables and the macros, as a run's."""
    from pipeline import steps  # steps imports this module

    folder.mkdir(parents=True, exist_ok=True)
    con = database.connect(folder / "job.duckdb", folder / "work.duckdb", folder / "spill",
                           memory_limit, threads)
    models.create_state(con)
    con.execute(marts.EVENTS.create_sql("main"))  # the history, empty unless a job attaches it
    steps._seed(con, cfg)
    models.create_macros(con)
    return con


@dataclass(frozen=True)
class ReadJob:
    cfg: Config
    number: int
    shards: int
    slices: list[sources.Slice]
    folder: Path
    memory_limit: str
    threads: int


def read_job(job: ReadJob) -> tuple[list[sources.Slice], Reading]:
    """Parse one group of slices; write the valid rows, bucketed, under job.folder/lines/."""
    from pipeline import steps  # steps imports this module

    _kill_hook()
    con = _open(job.cfg, job.folder, job.memory_limit, job.threads)
    try:
        slices = steps.read_logs(con, job.slices, {}, job.folder)
        reading = Reading.of(con)
        con.execute(
            "create temp view shard_lines as select *, "
            f"{int(job.number)} * (1::bigint << {_LINE_BITS}) + rowid as line_key, "
            f"{bucket_of(job.shards)} as bucket from stg_log_lines where is_valid"
        )
        # a bucket without rows has no file: this one gives every reader the columns
        con.execute("copy (select * exclude (bucket) from shard_lines limit 0) "
                    f"to {literal(job.folder / 'schema.parquet')} (format parquet)")
        con.execute(f"copy (select * from shard_lines) to {literal(job.folder / 'lines')} "
                    "(format parquet, partition_by (bucket))")
    finally:
        con.close()
    return slices, reading


@dataclass(frozen=True)
class BucketJob:
    cfg: Config
    bucket: int
    shards: int
    lines: list[str]  # the bucket's rows from every read job (Parquet)
    dropped_lines: str  # line_keys of copies not chosen (Parquet)
    dropped_ids: str  # ids stored already (Parquet)
    stored: Path | None  # the stored events: a database file or Parquet; None when none
    fresh: bool
    params: dict[str, Any]
    folder: Path
    memory_limit: str
    threads: int


def bucket_job(job: BucketJob) -> dict[str, float]:
    """models.PER_VISITOR over one bucket; OUTPUTS under job.folder. Returns model timings."""
    _kill_hook()
    con = _open(job.cfg, job.folder, job.memory_limit, job.threads)
    timings: dict[str, float] = {}
    try:
        if job.stored is not None:
            if job.stored.suffix == ".parquet":
                history = f"read_parquet({literal(job.stored)})"
            else:
                con.execute(f"attach {literal(job.stored)} as stored (read_only)")
                history = "stored.events"
            con.execute("drop table main.events")
            con.execute(f"create view main.events as select * from {history} "
                        f"where {bucket_of(job.shards)} = {int(job.bucket)}")
        con.execute(
            f"create table main.stg_log_lines as select line_key, {', '.join(PER_VISITOR_COLUMNS)} "
            "from (select * from read_parquet($lines) as bucket_lines "
            "anti join read_parquet($dropped_lines) as dropped using (line_key)"
            ") as kept anti join read_parquet($dropped_ids) as stored using (event_id)",
            {"lines": job.lines, "dropped_lines": job.dropped_lines,
             "dropped_ids": job.dropped_ids},
        )
        last = models.BEFORE_MARTS.index(models.PER_VISITOR[-1])
        for name in models.BEFORE_MARTS[1 : last + 1]:
            began = time.perf_counter()
            models.materialise(con, models.load(name), job.params, fresh=job.fresh)
            timings[name] = time.perf_counter() - began
        for table in OUTPUTS:
            rows = f"select * from {table}"
            if "line_id" in _columns(con, rows):  # a rowid here: it goes back as its row's key
                rows = (f"select rows.* replace (keys.line_key as line_id) from {table} as rows "
                        "left join (select rowid as line_id, line_key from stg_log_lines) "
                        "as keys using (line_id)")
            con.execute(f"copy ({rows}) to {literal(job.folder / f'{table}.parquet')} "
                        "(format parquet)")
    finally:
        con.close()
    return timings


# --- the run's side ---------------------------------------------------------------------------


def _groups(slices: list[sources.Slice], n: int) -> list[list[sources.Slice]]:
    """At most n groups of about equal bytes (largest first into the lightest); at least one,
    so that even a run without new lines has a read job to give the columns."""
    groups: list[list[sources.Slice]] = [[] for _ in range(max(1, min(n, len(slices))))]
    sizes = [0] * len(groups)
    for s in sorted(slices, key=lambda s: s.end - s.start, reverse=True):
        lightest = sizes.index(min(sizes))
        groups[lightest].append(s)
        sizes[lightest] += s.end - s.start
    return [sorted(g, key=lambda s: s.source) for g in groups]


def read(run: Run, sh: Sharding) -> tuple[list[sources.Slice], Reading]:
    """The read step in parallel: the slices as read, and what was found in them."""
    groups = _groups(run.slices, sh.shards)
    memory_limit, threads = _budget(run.cfg, len(groups), sh.executor.slots)
    jobs = [ReadJob(run.cfg, n, sh.shards, group, sh.folder / f"read-{n}", memory_limit, threads)
            for n, group in enumerate(groups)]
    results = sh.executor.map(read_job, jobs)
    read_as = {s.source: s for slices, _ in results for s in slices}
    refused: dict[str, int] = {}
    for _, reading in results:
        refused.update(reading.refused_by_file)
    return ([read_as[s.source] for s in run.slices],
            Reading(sum(reading.lines for _, reading in results), refused))


def _dedupe(con: duckdb.DuckDBPyConnection, files: list[str], folder: Path) -> tuple[str, str]:
    """The copies of repeated ids that stg_events leaves out, and the ids stored already,
    decided over every bucket at once: (line_keys file, event ids file)."""
    every_line = "read_parquet([" + ", ".join(literal(f) for f in files) + "])"
    con.execute(f"create temp view stg_log_lines as select * from {every_line}")
    models.materialise(con, models.load("staging/stg_repeated_ids"), {})
    con.execute("drop view stg_log_lines")
    # stg_events chooses one copy of each repeated id, over those ids' lines only
    con.execute(f"create temp table stg_log_lines as select * from {every_line} "
                "semi join stg_repeated_ids using (event_id)")
    models.materialise(con, models.load("staging/stg_events"), {})
    lines, ids = folder / "dropped-lines.parquet", folder / "dropped-ids.parquet"
    con.execute("copy (select line_key from (select rowid as line_id, line_key from "
                "stg_log_lines) anti join stg_events using (line_id)) "
                f"to {literal(lines)} (format parquet)")
    con.execute(f"copy (select distinct event_id from {every_line} semi join main.events "
                f"using (event_id)) to {literal(ids)} (format parquet)")
    con.execute("drop view stg_events")
    con.execute("drop table stg_log_lines")
    con.execute("drop table stg_repeated_ids")
    return str(lines), str(ids)


def model(run: Run, sh: Sharding) -> dict[str, float]:
    """models.PER_VISITOR in one job per bucket, then their OUTPUTS merged into run.con
    under the same names. Returns the models' timings, summed over the jobs."""
    con = run.con
    schemas = sorted(str(p) for p in sh.folder.glob("read-*/schema.parquet"))
    every_line = schemas + sorted(str(p) for p in sh.folder.glob("read-*/lines/*/*.parquet"))
    dropped_lines, dropped_ids = _dedupe(con, every_line, sh.folder)
    memory_limit, threads = _budget(run.cfg, sh.shards, sh.executor.slots)
    params = {k: v for k, v in run.params.items() if k != "files"}
    stored: Path | None = None
    if run.scratch and not run.fresh:
        # a rebuild that carried older events over (lifecycle.carry_over): that history is
        # only in the build, which a job in another process cannot open
        stored = sh.folder / "stored-events.parquet"
        con.execute(f"copy main.events to {literal(stored)} (format parquet)")
    elif not run.fresh:
        stored = run.cfg.database  # the build is a copy of it until the marts run
    jobs = [
        BucketJob(
            run.cfg, b, sh.shards,
            schemas + sorted(str(p) for p in sh.folder.glob(f"read-*/lines/bucket={b}/*")),
            dropped_lines, dropped_ids, stored, run.fresh,
            params, sh.folder / f"bucket-{b}", memory_limit, threads,
        )
        for b in range(sh.shards)
    ]
    timings: dict[str, float] = {}
    for done in sh.executor.map(bucket_job, jobs):
        for name, took in done.items():
            timings[name] = round(timings.get(name, 0.0) + took, 3)
    _merge(con, every_line, [job.folder for job in jobs])
    return timings


def _merge(con: duckdb.DuckDBPyConnection, lines: list[str], folders: list[Path]) -> None:
    """Every read row as stg_log_lines, and the union of the buckets' OUTPUTS under their
    names, each row's key in a line_id turned into that row's rowid in stg_log_lines."""
    con.execute(f"create or replace table {models.WORK}.stg_log_lines as "
                "select * from read_parquet($files)", {"files": lines})
    for table in OUTPUTS:
        files = [str(f / f"{table}.parquet") for f in folders]
        union = "select * from read_parquet($files)"
        if "line_id" in _columns(con, union, {"files": files}):
            union = ("select rows.* replace (keys.line_id as line_id) "
                     "from read_parquet($files) as rows left join (select rowid as line_id, "
                     f"line_key from {models.WORK}.stg_log_lines) as keys "
                     "on rows.line_id = keys.line_key")
        con.execute(f"create or replace temp table {table} as {union}", {"files": files})


def _columns(con: duckdb.DuckDBPyConnection, query: str,
             params: dict[str, Any] | None = None) -> set[str]:
    return {row[0] for row in con.execute(f"describe {query}", params).fetchall()}
