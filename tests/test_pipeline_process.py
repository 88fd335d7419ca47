"""`footfall run` and `footfall check` as cron runs them: separate processes, readers holding
the database open, and kill -9 at any moment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
import yaml

from footfall import config as config_mod
from footfall.config import Config
from footfall.marts import MARTS

ROOT = Path(__file__).parent.parent


def make_cfg(root: Path, **overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "data_dir": str(root / "data"), "site_dir": str(root / "site"),
        "sites": [{"domain": d, "timezone": tz} for d, tz in oracle.SITES.items()],
        "funnels": oracle.FUNNELS,
        **overrides,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    return config_mod.load(root / "config.yaml")


def footfall(cfg: Config, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", *args, "--config", str(cfg.source)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, **kwargs,
    )


def start_run(cfg: Config, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "footfall.cli", "run", *args, "--config", str(cfg.source)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )


def snapshot(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {m.table: sorted(con.sql(f"select * from {m.table}").fetchall(), key=repr)
                for m in MARTS}
    finally:
        con.close()


@pytest.fixture(scope="module")
def big_dataset() -> list[dict[str, Any]]:
    """Large enough that a run takes a noticeable moment."""
    return oracle.generate(seed=11, visitors=2500, days=6)


def test_run_is_quiet_on_success_and_check_passes(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", oracle.generate(visitors=10))
    res = footfall(cfg, "run")
    assert (res.returncode, res.stdout, res.stderr) == (0, "", "")
    res = footfall(cfg, "run", "--verbose")
    assert res.returncode == 0 and "nothing new" in res.stderr
    res = footfall(cfg, "check")
    assert (res.returncode, res.stderr) == (0, "")


def test_run_reports_a_failure_clearly(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    cfg.data_dir.mkdir(parents=True)
    (cfg.data_dir / "footfall.duckdb").write_text("this is not a database")
    oracle.write_lines(cfg.logs_dir / "a.jsonl", oracle.generate(visitors=3))
    res = footfall(cfg, "run")
    assert res.returncode != 0
    assert "footfall run:" in res.stderr and "Traceback" not in res.stderr


def test_check_fails_on_broken_data(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", oracle.generate(visitors=10))
    assert footfall(cfg, "run").returncode == 0
    con = duckdb.connect(str(cfg.database))
    con.execute("update sessions set ended_at = started_at - interval 1 minute, "
                "duration_s = -60 where session_id = (select min(session_id) from sessions)")
    con.execute("update daily_stats set visits = visits + 1 where date = (select min(date) "
                "from daily_stats)")
    con.execute("update funnel_steps set visits = 999 where step = 2")
    con.close()
    res = footfall(cfg, "check")
    assert res.returncode == 1
    for name in ("no_negative_durations", "daily_visits_equal_sessions",
                 "funnel_steps_never_grow"):
        assert name in res.stderr


def test_a_second_run_at_the_same_time_is_refused(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    import fcntl

    (cfg.data_dir / ".pipeline").mkdir(parents=True)
    with open(cfg.data_dir / ".pipeline/run.lock", "a+") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        res = footfall(cfg, "run")
    assert res.returncode == 2 and "another footfall run" in res.stderr


READER = textwrap.dedent("""
    import sys, time, duckdb
    path, stop = sys.argv[1], sys.argv[2]
    import os
    held = duckdb.connect(path, read_only=True)   # held open for the whole run
    first = held.execute("select count(*) from events").fetchone()[0]
    reads = 0
    while not os.path.exists(stop):
        # the held connection keeps seeing one consistent state
        assert held.execute("select count(*) from events").fetchone()[0] == first
        # fresh readers open while the run works, and see a whole state, old or new
        con = duckdb.connect(path, read_only=True)
        visits, sessions = con.execute(
            "select (select sum(visits) from daily_stats), (select count(*) from sessions)"
        ).fetchone()
        assert visits == sessions, (visits, sessions)
        con.close()
        reads += 1
    print(reads)
""")


def test_readers_are_never_blocked_and_never_see_a_half_built_state(
    tmp_path: Path, big_dataset: list[dict[str, Any]]
) -> None:
    cfg = make_cfg(tmp_path)
    half = len(big_dataset) // 2
    oracle.write_lines(cfg.logs_dir / "a.jsonl", big_dataset[:half])
    assert footfall(cfg, "run").returncode == 0
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(cfg.database), str(stop)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        oracle.write_lines(cfg.logs_dir / "b.jsonl", big_dataset[half:])
        res = footfall(cfg, "run")
        assert res.returncode == 0, res.stderr
        res = footfall(cfg, "run", "--full")
        assert res.returncode == 0, res.stderr
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert int(out) > 0
    con = duckdb.connect(str(cfg.database), read_only=True)
    assert con.execute("select count(*) from events").fetchone() == (len(big_dataset),)
    con.close()


@pytest.mark.slow
def test_kill_9_mid_run_then_rerun_equals_a_clean_run(
    tmp_path: Path, big_dataset: list[dict[str, Any]]
) -> None:
    clean = make_cfg(tmp_path / "clean")
    oracle.write_lines(clean.logs_dir / "a.jsonl", big_dataset)
    started = time.perf_counter()
    assert footfall(clean, "run").returncode == 0
    took = time.perf_counter() - started
    expected = snapshot(clean.database)

    cfg = make_cfg(tmp_path / "killed")
    third = len(big_dataset) // 3
    oracle.write_lines(cfg.logs_dir / "a.jsonl", big_dataset[:third])
    assert footfall(cfg, "run").returncode == 0
    oracle.write_lines(cfg.logs_dir / "a.jsonl", big_dataset[third:2 * third])
    oracle.write_lines(cfg.logs_dir / "b.jsonl", big_dataset[2 * third:])
    killed = 0
    for fraction in (0.15, 0.35, 0.55, 0.75, 0.9):
        proc = start_run(cfg)
        time.sleep(took * fraction)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=60)
        # whatever the moment, the published database is a whole, consistent state
        state = snapshot(cfg.database)
        assert sum(r[3] for r in state["daily_stats"]) == len(state["sessions"])
        if proc.returncode == 0:  # it finished: start over from a fresh copy
            break
    assert killed > 0
    res = footfall(cfg, "run")
    assert res.returncode == 0, res.stderr
    assert snapshot(cfg.database) == expected
    quarantine_dir = cfg.quarantine_dir
    assert not quarantine_dir.exists() or not any(quarantine_dir.rglob("*.jsonl"))
