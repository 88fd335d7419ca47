"""The raw log lifecycle (pipeline/lifecycle.py): closed days compacted once read, expired days
deleted once read, a `--full` rebuild that keeps the marts of deleted days, and kill -9 at
every point of it, against real files, a real DuckDB database and the real CLI."""

from __future__ import annotations

import gzip
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pipeline_oracle as oracle
import pytest

from footfall.config import Config
from footfall.errors import ConfigError
from pipeline import lifecycle, steps
from pipeline.steps import KILL_AT_STEP
from tests.helpers import LONG, fill, tmpfs
from tests.test_adversarial_pipeline import copy
from tests.test_pipeline_process import make_cfg, snapshot

ROOT = Path(__file__).parent.parent
TODAY = datetime.now(UTC).date()
MALFORMED = b'{"v":1,"id":"torn"'


def shifted(events: list[dict[str, Any]], last_day: date) -> list[dict[str, Any]]:
    """The oracle's events moved so that the last of them falls on last_day (UTC)."""
    latest = max(datetime.fromisoformat(e["ts"]) for e in events)
    delta = timedelta(days=(last_day - latest.date()).days)
    return [{**e, "ts": oracle.ts(datetime.fromisoformat(e["ts"]) + delta)} for e in events]


def write_days(logs: Path, events: list[dict[str, Any]], files_per_day: int = 2) -> list[Path]:
    """The events in the collector's layout: per UTC day, a few files, one with a malformed
    line; every file dated back past lifecycle.SETTLE, as a closed day's files are."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_day[datetime.fromisoformat(e["ts"]).date()].append(e)
    written = []
    for day, day_events in sorted(by_day.items()):
        for k in range(files_per_day):
            path = logs / f"{day:%Y/%m/%d}" / f"test-1-000000-{k + 1:04d}.jsonl"
            oracle.write_lines(path, day_events[k::files_per_day])
            written.append(path)
        with open(written[-1], "ab") as f:
            f.write(MALFORMED + b"\n")
    age(logs)
    return written


def age(logs: Path) -> None:
    old = time.time() - 2 * lifecycle.SETTLE.total_seconds()
    for path in logs.rglob("*.jsonl*"):
        os.utime(path, (old, old))


def day_bytes(logs: Path) -> dict[str, bytes]:
    """Each day folder's raw bytes: its `.jsonl` files concatenated in name order, and any
    compacted file decompressed, in name order."""
    out: dict[str, bytes] = {}
    for folder in sorted({p.parent for p in logs.rglob("*.jsonl*")}):
        data = b""
        for p in sorted(folder.iterdir()):
            if p.name.endswith(".jsonl.gz"):
                data += gzip.decompress(p.read_bytes())
            elif p.name.endswith(".jsonl"):
                data += p.read_bytes()
        out[folder.relative_to(logs).as_posix()] = data
    return out


def listing(logs: Path) -> list[str]:
    return sorted(p.relative_to(logs).as_posix() for p in logs.rglob("*") if p.is_file())


def run(cfg: Config, full: bool = False) -> steps.RunSummary:
    return steps.run(cfg, full=full, progress=None)


def events_in(cfg: Config) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        return sorted(con.execute("select * exclude (session_id) from events").fetchall(),
                      key=repr)
    finally:
        con.close()


def test_closed_days_are_compacted_once_read_and_never_read_again(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    events = oracle.generate(seed=3, visitors=40, days=3)
    write_days(cfg.logs_dir, events)
    now = datetime.now(UTC)
    today_file = cfg.logs_dir / f"{TODAY:%Y/%m/%d}" / "test-1-000000-0001.jsonl"
    oracle.write_lines(today_file, [{**events[0], "id": "today", "ts": oracle.ts(now)}])
    raw = day_bytes(cfg.logs_dir)
    past_days = len(raw) - 1

    first = run(cfg)
    assert first.days_compacted == 0  # no published run had read them yet
    assert first.quarantined == past_days
    published = snapshot(cfg.database)
    stored = events_in(cfg)

    second = run(cfg)
    assert second.published and second.days_compacted == past_days
    assert (second.bytes_read, second.new_events, second.quarantined) == (0, 0, 0)
    assert f"{past_days} days of raw logs compacted" in second.describe()
    for folder in raw:
        names = [p.name for p in (cfg.logs_dir / folder).iterdir()]
        if folder == f"{TODAY:%Y/%m/%d}":
            assert names == [today_file.name]  # today is not closed
            continue
        assert len(names) == 1 and names[0].startswith(lifecycle.PREFIX), names
        assert names[0].endswith(".jsonl.gz")
    assert day_bytes(cfg.logs_dir) == raw  # every byte, the malformed lines too
    assert snapshot(cfg.database) == published

    third = run(cfg)  # the compacted files are known as read
    assert not third.published and third.bytes_read == 0

    full = run(cfg, full=True)  # reads the compacted history as it read the raw files
    assert full.new_events == len(events) + 1 and full.quarantined == past_days
    assert full.raw_kept_from is None and "raw logs start" not in full.describe()
    assert snapshot(cfg.database) == published
    assert events_in(cfg) == stored


def test_a_day_with_unread_or_recent_bytes_waits(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    events = shifted(oracle.generate(seed=4, visitors=20, days=3), TODAY - timedelta(days=3))
    files = write_days(cfg.logs_dir, events[1:])
    run(cfg)
    grown, touched = files[0], files[-1]
    oracle.write_lines(grown, [events[0]])  # lands after the run: not read yet
    age(cfg.logs_dir)
    os.utime(touched)  # changed just now: its day is not settled
    days = len({p.parent for p in files})

    second = run(cfg)
    assert second.new_events == 1 and second.days_compacted == days - 2
    assert grown.exists() and touched.exists()
    age(cfg.logs_dir)
    third = run(cfg)
    assert third.new_events == 0 and third.days_compacted == 2
    assert not grown.exists() and not touched.exists()
    assert len(events_in(cfg)) == len(events)


def test_an_unfinished_last_line_of_a_closed_day_is_ended_not_glued_on(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    first, second, *_rest = write_days(cfg.logs_dir, oracle.generate(seed=10, visitors=10))
    with open(first, "ab") as f:
        f.write(b'{"v":1,"id":"cut-off')  # a crash mid-line: its newline never comes
    age(cfg.logs_dir)
    expected = first.read_bytes() + b"\n" + second.read_bytes()
    days = len(day_bytes(cfg.logs_dir))
    stored = run(cfg).new_events
    assert run(cfg).days_compacted == days
    (compacted,) = first.parent.iterdir()
    assert gzip.decompress(compacted.read_bytes()) == expected
    full = run(cfg, full=True)  # the cut-off line is a line now, quarantined; no event lost
    assert full.new_events == stored and full.quarantined == days + 1


# with shards the carried history lives only in the build, which the shard jobs cannot open
@pytest.mark.parametrize("shards", [1, 2])
def test_expired_days_are_deleted_and_a_full_rebuild_keeps_their_marts(
    tmp_path: Path, shards: int
) -> None:
    cfg = make_cfg(tmp_path, retention={"raw_days": 3}, pipeline={"shards": shards})
    events = shifted(oracle.generate(seed=6, visitors=60, days=5), TODAY - timedelta(days=2))
    write_days(cfg.logs_dir, events)
    horizon = TODAY - timedelta(days=3)
    first_day = min(datetime.fromisoformat(e["ts"]).date() for e in events)
    expired = (horizon - first_day).days
    assert expired >= 2

    first = run(cfg)
    assert first.days_expired == 0 and first.new_events == len(events)
    published, stored = snapshot(cfg.database), events_in(cfg)

    second = run(cfg)
    assert second.days_expired == expired and second.days_compacted == 2
    assert f"{expired} days of raw logs deleted (retention.raw_days)" in second.describe()
    left = {datetime.strptime(f.rsplit("/", 1)[0], "%Y/%m/%d").date()
            for f in listing(cfg.logs_dir)}
    assert min(left) == horizon  # the folders of expired days are gone, empty parents too
    assert all(folder.iterdir() for folder in cfg.logs_dir.rglob("*") if folder.is_dir())
    assert snapshot(cfg.database) == published and events_in(cfg) == stored
    # the refused lines of expired days go with them, in the folder and in the database
    quarantined = {p.parent.relative_to(cfg.quarantine_dir).as_posix()
                   for p in cfg.quarantine_dir.rglob("*.jsonl")}
    assert quarantined == {f.rsplit("/", 1)[0] for f in listing(cfg.logs_dir)}
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        sources = {s for (s,) in con.execute("select source from pipeline.quarantine union "
                                             "select source from pipeline.quarantine_counts")
                   .fetchall()}
    finally:
        con.close()
    assert {s.rsplit("/", 1)[0] for s in sources} == quarantined

    full = run(cfg, full=True)
    assert full.quarantined == len(quarantined)  # the kept days' lines, read again
    kept = sum(datetime.fromisoformat(e["ts"]).date() < horizon for e in events)
    assert full.raw_kept_from == horizon.isoformat() and full.carried_events == kept
    assert full.new_events == len(events) - kept
    assert f"raw logs start on {horizon}" in full.describe()
    assert f"the {kept:,} events before it were kept" in full.describe()
    assert snapshot(cfg.database) == published  # every mart, the deleted days' rows too
    assert events_in(cfg) == stored
    again = run(cfg, full=True)  # and the horizon itself survives a rebuild
    assert again.raw_kept_from == horizon.isoformat() and snapshot(cfg.database) == published


def test_without_retention_raw_logs_are_kept_forever(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    events = oracle.generate(seed=8, visitors=10, days=2)  # 2024: years ago
    write_days(cfg.logs_dir, events)
    raw = day_bytes(cfg.logs_dir)
    run(cfg)
    assert run(cfg).days_expired == 0
    assert day_bytes(cfg.logs_dir) == raw


def test_files_outside_day_folders_are_never_touched(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, retention={"raw_days": 1})
    oracle.write_lines(cfg.logs_dir / "import" / "a.jsonl", oracle.generate(seed=9, visitors=5))
    oracle.write_lines(cfg.logs_dir / "2024" / "03" / "x.jsonl", oracle.generate(visitors=3))
    age(cfg.logs_dir)
    before = listing(cfg.logs_dir)
    run(cfg)
    assert not run(cfg).published
    assert listing(cfg.logs_dir) == before


def test_retention_raw_days_is_validated(tmp_path: Path) -> None:
    for bad, why in ((0, "must be 1 or more"), (-3, "must be 1 or more"),
                     ("a week", "expected a whole number")):
        with pytest.raises(ConfigError) as info:
            make_cfg(tmp_path, retention={"raw_days": bad})
        assert any(p.startswith(f"retention.raw_days: {why}") for p in info.value.problems)
    assert make_cfg(tmp_path, retention={"raw_days": 30}).retention.raw_days == 30
    assert make_cfg(tmp_path).retention.raw_days is None


def test_a_full_log_disk_leaves_the_days_raw_and_the_run_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = make_cfg(tmp_path)
    with tmpfs(cfg.logs_dir, "16m") as logs:
        write_days(logs, oracle.generate(seed=5, visitors=20, days=2))
        days = len(day_bytes(logs))
        run(cfg)
        raw = day_bytes(logs)
        filler = fill(logs)  # a real full disk under the logs only: the database has room
        second = run(cfg)
        assert second.published and second.days_compacted == 0
        assert day_bytes(logs) == raw and not list(logs.rglob("*.tmp"))
        assert "was not compacted (No space left on device); it is tried again next run" \
            in caplog.text
        filler.unlink()
        assert run(cfg).days_compacted == days
        assert day_bytes(logs) == raw


# --- kill -9 ---------------------------------------------------------------------------------

#: Every point of the lifecycle a kill can land on: as its steps start, and inside them
#: between one file and the next (pipeline.steps.kill_point).
POINTS = ["finish retiring", "compact", "compact: written", "publish", "retire",
          "retire: renamed", "retire: deleted 1", "retire: deleted 3"]
# Quick mode: a temp written but not recorded, a record published but nothing retired yet, and
# half the files deleted; FOOTFALL_LONG=1 attacks every point.
ATTACKED = POINTS if LONG else ["compact: written", "retire", "retire: deleted 3"]


def cli_run(root: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_STEP}
    if kill_at is not None:
        env[KILL_AT_STEP] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", "run", *args, "--config",
         str(root / "config.yaml")], capture_output=True, text=True, timeout=300, cwd=ROOT,
        env=env)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """After one run over five days, with raw_days 3: the next run expires the oldest days
    and compacts the rest. And what that next run leaves when nobody kills it."""
    base = tmp_path_factory.mktemp("lifecycle") / "base"
    cfg = make_cfg(base, retention={"raw_days": 3})
    events = shifted(oracle.generate(seed=12, visitors=40, days=5), TODAY - timedelta(days=2))
    write_days(cfg.logs_dir, events)
    assert cli_run(base).returncode == 0
    clean = base.parent / "clean"
    copy(base, clean)
    res = cli_run(clean)
    assert res.returncode == 0, res.stderr
    return base, clean, len(events)


@pytest.mark.parametrize("point", ATTACKED)
def test_kill_9_anywhere_in_the_lifecycle_then_a_rerun_converges(
        prepared: tuple[Path, Path, int], tmp_path: Path, point: str) -> None:
    base, clean, total = prepared
    root = tmp_path / "killed"
    copy(base, root)
    logs, db = root / "data" / "logs", root / "data" / "footfall.duckdb"
    raw_before = day_bytes(logs)

    killed = cli_run(root, kill_at=point)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    # dead: every byte of every day is still on disk, or in a compacted file a published
    # database records, or its day is recorded as expired in a published database
    now_raw = day_bytes(logs)
    con = duckdb.connect(str(db), read_only=True)
    try:
        state = lifecycle.read_state(con)
        recorded = {r.source for r in state.retired}
    finally:
        con.close()
    for folder, data in raw_before.items():
        if now_raw.get(folder) != data:
            assert any(s.startswith(folder + "/") for s in recorded), (point, folder)

    res = cli_run(root)
    assert res.returncode == 0, res.stderr
    assert snapshot(db) == snapshot(clean / "data" / "footfall.duckdb")
    assert listing(logs) == listing(clean / "data" / "logs")  # no temp, no leftover original
    assert day_bytes(logs) == day_bytes(clean / "data" / "logs")
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert con.execute("select count(*) from events").fetchone() == (total,)
    finally:
        con.close()
    settled = cli_run(root, "--verbose")  # the compacted files are known: nothing to read
    assert settled.returncode == 0 and "nothing new" in settled.stderr, settled.stderr
    full = cli_run(root, "--full", "--verbose")  # and the deleted days' marts stay
    assert full.returncode == 0 and "raw logs start on" in full.stderr, full.stderr
    assert snapshot(db) == snapshot(clean / "data" / "footfall.duckdb")


def test_compacted_lines_read_back_as_the_original_lines(tmp_path: Path) -> None:
    """A compacted file is a valid `.jsonl.gz` source: its lines decode as the log contract."""
    cfg = make_cfg(tmp_path)
    events = oracle.generate(seed=2, visitors=5, days=2)
    write_days(cfg.logs_dir, events, files_per_day=1)
    run(cfg)
    run(cfg)
    (compacted, *_rest) = sorted(cfg.logs_dir.rglob(f"{lifecycle.PREFIX}*.jsonl.gz"))
    lines = [ln for ln in gzip.decompress(compacted.read_bytes()).split(b"\n") if ln]
    assert lines[-1] == MALFORMED
    assert all(msgspec.json.decode(ln)["id"] for ln in lines[:-1])


def test_a_temp_no_published_run_recorded_is_removed(
        prepared: tuple[Path, Path, int], tmp_path: Path) -> None:
    base, _clean, _total = prepared
    root = tmp_path / "killed"
    copy(base, root)
    logs = root / "data" / "logs"
    assert cli_run(root, kill_at="compact: written").returncode == -signal.SIGKILL
    (temp,) = logs.rglob(f".{lifecycle.PREFIX}*.tmp")
    # a late file makes the day's next compaction a different one, so the temp is an orphan
    oracle.write_lines(temp.parent / "late-1-000000-0001.jsonl",
                       [{**oracle.generate(visitors=1)[0], "id": "late"}])
    assert cli_run(root).returncode == 0
    assert not list(logs.rglob("*.tmp"))
