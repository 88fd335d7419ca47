"""The published database and the private copy each run builds in.

Readers open `data_dir/footfall.duckdb` (read-only, or read-write for their own scratch
tables) and are never blocked: `footfall run` never opens that file for writing. It copies the
file to `data_dir/.pipeline/build.duckdb`, works there, checkpoints, and then publishes with
one `os.replace`, which is atomic on POSIX. A reader that already has the old file open keeps
reading that consistent old state; the next open sees the new one. A crash at any point
leaves the last published state, and the next run starts again from it.

Only one run works at a time (`data_dir/.pipeline/run.lock`); a second one fails at once
with a clear message. While it holds the lock, a run creates files 0640 and folders 0750
(umask 027): the database, the quarantine and the exports hold what visitors did, and are
not for every local user to read.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb

from footfall.config import Config
from footfall.errors import PipelineError
from footfall.sqltext import literal
from pipeline import models


def work_dir(cfg: Config) -> Path:
    return cfg.data_dir / ".pipeline"


def build_path(cfg: Config) -> Path:
    return work_dir(cfg) / "build.duckdb"


def work_path(cfg: Config) -> Path:
    return work_dir(cfg) / "work.duckdb"


def tmp_dir(cfg: Config) -> Path:
    return work_dir(cfg) / "tmp"


#: What a run's files and folders may not grant: nothing to others, no writing to the group.
UMASK = 0o027


@contextlib.contextmanager
def run_lock(cfg: Config) -> Iterator[None]:
    previous = os.umask(UMASK)
    try:
        work_dir(cfg).mkdir(parents=True, exist_ok=True)
        path = work_dir(cfg) / "run.lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PipelineError(
                    f"another footfall run is working on {cfg.data_dir} (lock {path}); "
                    "try again when it has finished"
                ) from None
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    finally:
        os.umask(previous)


def clean_work_files(cfg: Config) -> None:
    """Remove what a crashed run left behind."""
    for db in (build_path(cfg), work_path(cfg)):
        for leftover in (db, db.with_name(db.name + ".wal")):
            leftover.unlink(missing_ok=True)
    shutil.rmtree(tmp_dir(cfg), ignore_errors=True)
    tmp_dir(cfg).mkdir(parents=True)


def open_published(cfg: Config) -> duckdb.DuckDBPyConnection | None:
    """A read-only connection to the published database, or None before the first run."""
    if not cfg.database.exists():
        return None
    return duckdb.connect(str(cfg.database), read_only=True)


def open_build(cfg: Config, fresh: bool) -> duckdb.DuckDBPyConnection:
    """A connection to the private build copy: a copy of the published file, or empty."""
    build = build_path(cfg)
    if not fresh and cfg.database.exists():
        shutil.copyfile(cfg.database, build)
    return connect(build, work_path(cfg), tmp_dir(cfg) / "duckdb",
                   cfg.pipeline.memory_limit, cfg.pipeline.threads)


#: The name a `--full` run gives the published database while it takes over what must
#: outlive a rebuild (exports, imports and lifecycle `carry_over`).
PUBLISHED = "published"


@contextlib.contextmanager
def published_attached(con: duckdb.DuckDBPyConnection, cfg: Config) -> Iterator[None]:
    """The published database attached read-only as PUBLISHED, for the carry-overs."""
    con.execute(f"attach {literal(cfg.database)} as {PUBLISHED} (read_only)")
    try:
        yield
    finally:
        con.execute(f"detach {PUBLISHED}")


def connect(
    path: Path, work: Path, spill: Path, memory_limit: str, threads: int
) -> duckdb.DuckDBPyConnection:
    """A run's connection to a database file, within the memory and threads given, spilling
    to `spill`, with the work database `work` attached (also for pipeline/shards.py's jobs)."""
    con = duckdb.connect(str(path))
    con.execute(f"set memory_limit = '{memory_limit}'")  # validated by the config schema
    if threads:
        con.execute(f"set threads = {int(threads)}")
    spill.mkdir(parents=True, exist_ok=True)
    con.execute(f"set temp_directory = {literal(spill)}")
    con.execute("set preserve_insertion_order = false")
    con.execute("set enable_progress_bar = false")  # quiet for cron; steps report progress
    # large staging tables live in a second file, so they never bloat the published one;
    # models find them by name through the search path
    con.execute(f"attach {literal(work)} as {models.WORK}")
    con.execute(f"set search_path = 'main,{models.WORK}'")
    return con


def fsync(path: Path) -> None:
    """Flush a file, or a folder's entries (after a rename into it), to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(cfg: Config, con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoint the build copy and swap it in for the published database atomically."""
    con.execute(f"detach {models.WORK}")
    con.execute("checkpoint")
    con.close()
    build = build_path(cfg)
    fsync(build)
    os.replace(build, cfg.database)
    fsync(cfg.database.parent)
