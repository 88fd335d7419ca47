"""The raw log lifecycle: compact each closed UTC day that runs have read, delete the days past
`retention.raw_days`, and carry the events of deleted days over a `--full` rebuild.

    data_dir/logs/YYYY/MM/DD/<host>-<pid>-<HHMMSS>-<seq>.jsonl    what the collector writes
    data_dir/logs/YYYY/MM/DD/compacted-<digest>.jsonl.gz          the same bytes, compacted

A day is closed SETTLE after its UTC midnight, once none of its files has changed for SETTLE
(the collector rotates at midnight; a host that ships its tree late gets the same grace). A
closed day whose `.jsonl` files a published run has read to their last byte is compacted: the
files, concatenated in name order byte for byte, become one gzip file, malformed lines
included, so a `--full` run reads and quarantines exactly what it would have read before. A
day more than `retention.raw_days` before today whose every file a published run has read is
deleted. Files anywhere else under logs/ (imports, hand-copied files) are never touched; nor is
a day with a file not read to its end (it waits for the run that reads it).

Every change is write, fsync, record, publish, rename, delete, so a kill -9 at any point leaves
either the old files and nothing recorded, or a published record the next run finishes:

    compact   in the build        `.compacted-….jsonl.gz.tmp` beside the day's files, fsynced
                                  and read back; recorded as consumed in pipeline.files, and
                                  each source in pipeline.retired with it as its target
    expire    in the build        each file of an expired day in pipeline.retired without a
                                  target; pipeline.state `raw_kept_from` moves past the day
    publish                       pipeline/steps.py
    retire    after publish, and  the temp renamed into place, then the retired files deleted
              first in every run  (each only if it still has the size it was retired at), and
                                  emptied day folders removed
    forget    the next build      retired files that are gone leave pipeline.files and
                                  pipeline.retired

Deleted days leave their events in the database. A `--full` run builds a fresh database from
the logs, so it first takes over the published events from before `raw_kept_from`
(`carry_over`) and recomputes every table from those and the logs: the marts of deleted days
stay. The collector stamps `ts` with the clock that names the day folder, so a day folder
holds that UTC day's events; a tool that writes other days' events into a day folder breaks
that, and a `--full` run after the day expired would lose the events outside it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb

from footfall.config import Config
from pipeline import database, models, sources

log = logging.getLogger(__name__)

#: How long after its UTC midnight a day, and after its last change a file, counts as closed.
SETTLE = timedelta(hours=1)

#: gzip level of compacted days; bench/lifecycle.py measures it (docs/benchmarks.md).
LEVEL = 6

PREFIX = "compacted-"
_CHUNK = 1 << 20
_KEPT_FROM = "raw_kept_from"

#: Called with a point's name as the run passes it: the kill -9 tests' hook (steps.kill_point).
Checkpoint = Callable[[str], None]


@dataclass(frozen=True)
class Retired:
    """A raw file a published run has given up: its bytes are in `target`, or deleted."""

    source: str  # relative to logs/, like pipeline.files
    size: int  # when retired: a file that changed since is kept
    target: str | None


@dataclass(frozen=True)
class State:
    """What the published database records of the lifecycle."""

    retired: list[Retired] = field(default_factory=list)
    kept_from: date | None = None  # the first UTC day whose raw logs may still exist


@dataclass(frozen=True)
class RawFile:
    source: str
    path: Path
    size: int
    unfinished: bool = False  # ends in a line without its newline, which will never come


@dataclass
class Plan:
    """What this run compacts and deletes, by UTC day."""

    compact: dict[date, list[RawFile]] = field(default_factory=dict)
    expire: dict[date, list[RawFile]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.compact or self.expire)


def read_state(con: duckdb.DuckDBPyConnection | None) -> State:
    if con is None or not models.table_exists(con, "retired", "pipeline"):
        return State()
    retired = [Retired(*row) for row in con.execute(
        "select source, size, target from pipeline.retired order by source").fetchall()]
    return State(retired, _kept_from(con, "pipeline.state"))


def _kept_from(con: duckdb.DuckDBPyConnection, table: str) -> date | None:
    row = con.execute(f"select value from {table} where key = ?", [_KEPT_FROM]).fetchone()
    return date.fromisoformat(row[0]) if row else None


def day_of(source: str) -> date | None:
    """The UTC day of a file in the collector's layout (YYYY/MM/DD/<file>), else None."""
    parts = source.split("/")
    if len(parts) != 4 or [len(p) for p in parts[:3]] != [4, 2, 2]:
        return None
    if not "".join(parts[:3]).isdigit():
        return None
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def plan(cfg: Config, known: dict[str, sources.Consumed], state: State, now: datetime) -> Plan:
    """The closed days to compact and the expired days to delete; writes nothing. `known` is
    what the published database records as read."""
    found, _skipped = sources.discover(cfg.logs_dir)  # plan() warns of what it skips
    days: dict[date, list[tuple[str, Path]]] = {}
    for source, path in found:
        day = day_of(source)
        if day is not None:
            days.setdefault(day, []).append((source, path))
    pending = {r.source for r in state.retired}
    raw_days = cfg.retention.raw_days
    horizon = now.date() - timedelta(days=raw_days) if raw_days is not None else None
    result = Plan()
    unwritable = []
    for day, files in sorted(days.items()):
        if now < _midnight(day) + timedelta(days=1) + SETTLE:
            continue
        expired = horizon is not None and day < horizon
        if not expired and not any(source.endswith(".jsonl") for source, _ in files):
            continue  # compacted already
        if any(source in pending for source, _ in files):
            continue  # a retirement this run's build forgets or the next run finishes
        if not os.access(files[0][1].parent, os.W_OK | os.X_OK):
            unwritable.append(day)
            continue
        ready = _read_and_settled(files, known, now)
        if ready is None:
            continue
        if expired:
            result.expire[day] = ready
        else:
            result.compact[day] = [f for f in ready if f.source.endswith(".jsonl")]
    if unwritable:
        log.warning("data_dir/logs/%s and %d other closed days cannot be compacted or deleted: "
                    "give the user footfall runs write access to their folders (the "
                    "collector's group, chmod g+w)", f"{unwritable[0]:%Y/%m/%d}",
                    len(unwritable) - 1)
    return result


def _read_and_settled(
    files: list[tuple[str, Path]], known: dict[str, sources.Consumed], now: datetime
) -> list[RawFile] | None:
    """The day's files when a published run read every line of each and none changed for
    SETTLE; else None."""
    ready = []
    for source, path in files:
        try:
            st = path.lstat()
            if datetime.fromtimestamp(st.st_mtime, UTC) > now - SETTLE:
                return None
            before = known.get(source)
            if before is None or not sources.read_to_the_end(path, before):
                return None
        except OSError:  # gone or unreadable since discovery: not this run
            return None
        unfinished = source.endswith(".jsonl") and before.consumed < st.st_size
        ready.append(RawFile(source, path, st.st_size, unfinished))
    return ready


def _temp(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp")


def apply(
    cfg: Config, con: duckdb.DuckDBPyConnection, todo: Plan, checkpoint: Checkpoint
) -> tuple[list[Retired], int, int]:
    """Carry out the plan inside the build: compacted temps written and recorded, expired
    files recorded. Returns what the publish retires, days compacted, days expired."""
    retiring: list[Retired] = []
    if todo.expire:
        kept_from = max(todo.expire) + timedelta(days=1)
        stored = _kept_from(con, "pipeline.state")
        if stored is None or stored < kept_from:
            con.execute("insert or replace into pipeline.state values (?, ?)",
                        [_KEPT_FROM, kept_from.isoformat()])
        retiring += [Retired(f.source, f.size, None) for files in todo.expire.values()
                     for f in files]
        # the refused lines quarantined from an expired day are raw log lines too
        for day in todo.expire:
            for table in ("quarantine", "quarantine_counts"):
                con.execute(f"delete from pipeline.{table} where starts_with(source, ?)",
                            [f"{day:%Y/%m/%d}/"])
    compacted = 0
    for _day, files in sorted(todo.compact.items()):
        done = _compact(cfg.logs_dir, files)
        if done is None:
            continue
        target, remembered = done
        con.execute("insert or replace into pipeline.files values (?, ?, ?, ?)",
                    [target, remembered.size, remembered.consumed, remembered.head])
        retiring += [Retired(f.source, f.size, target) for f in files]
        compacted += 1
        checkpoint("compact: written")
    if retiring:
        con.executemany("insert or replace into pipeline.retired values (?, ?, ?)",
                        [[r.source, r.size, r.target] for r in retiring])
    return retiring, compacted, len(todo.expire)


def _compact(logs_dir: Path, files: list[RawFile]) -> tuple[str, sources.Consumed] | None:
    """The files, concatenated in name order, gzipped into a temp beside them, fsynced and read
    back. None (and no temp) when a file changed meanwhile or the result would not be read
    whole (sources.MAX_GZ_EXPANSION)."""
    files = sorted(files, key=lambda f: f.source)
    names = "\n".join(f.source for f in files).encode()
    digest = hashlib.blake2b(names, digest_size=8).hexdigest()
    target = files[0].path.parent / f"{PREFIX}{digest}.jsonl.gz"
    try:
        return _write(logs_dir, files, target)
    except OSError as exc:  # a full disk, say: the day stays raw, the run goes on
        _temp(target).unlink(missing_ok=True)
        log.warning("data_dir/logs/%s was not compacted (%s); it is tried again next run",
                    sources.printable(target.parent.relative_to(logs_dir).as_posix()),
                    exc.strerror or exc)
        return None


def _write(logs_dir: Path, files: list[RawFile], target: Path
           ) -> tuple[str, sources.Consumed] | None:
    temp = _temp(target)
    written = hashlib.blake2b(digest_size=16)
    total = 0
    # mtime 0 in the gzip header: the same files always compact to the same bytes
    deflate = zlib.compressobj(LEVEL, zlib.DEFLATED, 31)
    with open(temp, "wb") as out:
        for f in files:
            with sources.open_source(f.path) as src:
                pos = 0
                while pos < f.size:
                    chunk = os.pread(src.fileno(), min(_CHUNK, f.size - pos), pos)
                    if not chunk:
                        break
                    written.update(chunk)
                    out.write(deflate.compress(chunk))
                    pos += len(chunk)
                changed = pos != f.size or os.fstat(src.fileno()).st_size != f.size
            if changed:
                break
            if f.unfinished:  # ended, so the next file's first line stays whole
                written.update(b"\n")
                out.write(deflate.compress(b"\n"))
            total += f.size + f.unfinished
        out.write(deflate.flush())
        out.flush()
        # the newest source's time: the day's data last changed then, not now (SETTLE)
        latest = max(f.path.stat().st_mtime_ns for f in files)
        os.utime(out.fileno(), ns=(latest, latest))
        os.fsync(out.fileno())
    size = temp.stat().st_size
    if changed or gunzipped(temp) != (total, written.digest()) \
            or total * 2 > size * sources.MAX_GZ_EXPANSION:
        temp.unlink()
        return None
    database.fsync(temp.parent)
    return target.relative_to(logs_dir).as_posix(), sources.remember_gz(temp, total)


def gunzipped(path: Path) -> tuple[int, bytes]:
    """Length and digest of a gzip file's decompressed bytes, read in bounded steps."""
    digest = hashlib.blake2b(digest_size=16)
    total = 0
    d = zlib.decompressobj(wbits=31)
    with open(path, "rb") as f:
        while data := f.read(_CHUNK):
            while data:
                chunk = d.decompress(data, _CHUNK)
                digest.update(chunk)
                total += len(chunk)
                data = d.unconsumed_tail
    return total, digest.digest()


def finish(cfg: Config, retired: list[Retired], checkpoint: Checkpoint,
           orphans: bool = False) -> int:
    """Retire what a published run recorded: temps renamed into place, then the retired files
    deleted, with the quarantine files of expired days, and emptied day folders removed.
    Idempotent; with `orphans`, temps no published run recorded (a build killed before
    publishing) are removed too. Returns files deleted."""
    logs_dir = cfg.logs_dir
    targets = {r.target for r in retired if r.target is not None}
    for target in sorted(targets):
        path = logs_dir / target
        if not path.exists() and _temp(path).exists():
            try:
                os.replace(_temp(path), path)
            except OSError as exc:  # its sources stay until it is in place
                log.warning("data_dir/logs/%s cannot be put in place (%s)",
                            sources.printable(target), exc.strerror or exc)
                continue
            database.fsync(path.parent)
            checkpoint("retire: renamed")
    if orphans:
        _remove_orphans(logs_dir, {_temp(logs_dir / t) for t in targets})
    deleted = 0
    folders: set[Path] = set()
    for r in retired:
        path = logs_dir / r.source
        if r.target is not None and not (logs_dir / r.target).exists():
            continue  # its bytes are nowhere else: forget() gives the file back to the logs
        try:
            st = path.lstat()
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size != r.size:
            log.warning("data_dir/logs/%s changed after it was retired; it is kept",
                        sources.printable(r.source))
            continue
        try:
            path.unlink()
        except OSError as exc:  # the next run tries again
            log.warning("data_dir/logs/%s cannot be deleted (%s)", sources.printable(r.source),
                        exc.strerror or exc)
            continue
        deleted += 1
        folders.add(path.parent)
        checkpoint(f"retire: deleted {deleted}")
    for folder in sorted(folders, reverse=True):
        database.fsync(folder)
        _remove_empty(folder, logs_dir)
    for day in sorted({Path(r.source).parent for r in retired if r.target is None}):
        _remove_quarantine(cfg, day)
    return deleted


def _remove_quarantine(cfg: Config, day: Path) -> None:
    """The quarantine files of an expired day whose log files are gone (the database forgot
    their lines when it recorded the day as expired)."""
    folder = cfg.quarantine_dir / day
    if not folder.is_dir():
        return
    for path in folder.glob("*.jsonl"):
        logged = cfg.logs_dir / day / path.name
        if not logged.exists() and not logged.with_name(path.name + ".gz").exists():
            path.unlink()
    _remove_empty(folder, cfg.quarantine_dir)


def _remove_orphans(logs_dir: Path, keep: set[Path]) -> None:
    for root, _dirs, files in os.walk(logs_dir):
        for name in files:
            if name.startswith(f".{PREFIX}") and name.endswith(".tmp"):
                path = Path(root) / name
                if path not in keep:
                    path.unlink(missing_ok=True)


def _remove_empty(folder: Path, logs_dir: Path) -> None:
    """The day folder, and its month and year, while they are empty."""
    while folder != logs_dir and logs_dir in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty, or gone
            return
        database.fsync(folder.parent)
        folder = folder.parent


def forget(con: duckdb.DuckDBPyConnection, logs_dir: Path) -> None:
    """In the build: the bookkeeping of retired files that are gone is dropped; a file that
    could not be retired (changed, or its compacted copy is missing) goes back to the logs."""
    gone, back, lost_targets = [], [], set()
    for source, size, target in con.execute(
            "select source, size, target from pipeline.retired").fetchall():
        path = logs_dir / source
        try:
            st = path.lstat()
        except FileNotFoundError:
            gone.append(source)
            continue
        target_path = logs_dir / target if target is not None else None
        if target_path is not None and not target_path.exists() \
                and not _temp(target_path).exists():
            back.append(source)
            lost_targets.add(target)
        elif st.st_size != size:
            back.append(source)
    for table, names in (("files", gone + sorted(lost_targets)), ("retired", gone + back)):
        if names:
            con.execute(f"delete from pipeline.{table} where source in "
                        "(select unnest($names::varchar[]))", {"names": names})


def carry_over(con: duckdb.DuckDBPyConnection) -> tuple[int, date | None]:
    """A `--full` run starts empty: it takes the published events (attached:
    database.published_attached) of the days whose raw logs were deleted, and the date they
    start from. Returns (events carried, that date)."""
    kept_from = _kept_from(con, f"{database.PUBLISHED}.pipeline.state")
    if kept_from is None:
        return 0, None
    con.execute("insert or replace into pipeline.state values (?, ?)",
                [_KEPT_FROM, kept_from.isoformat()])
    con.execute(f"insert into main.events by name select * from {database.PUBLISHED}.main.events "
                "where occurred_at < ?",
                [datetime(kept_from.year, kept_from.month, kept_from.day)])
    row = con.execute("select count(*) from main.events").fetchone()
    return (int(row[0]) if row else 0), kept_from
