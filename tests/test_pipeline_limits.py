"""`pipeline.memory_limit` and `pipeline.threads` bound everything a run does in DuckDB.

A run works in one DuckDB instance: the build copy, the work database attached to it and the
drill-down's cursor share its buffer manager, its threads and its spill folder. These tests
open the real build connection, and run the real pipeline over the benchmark's generated
traffic under tight settings, which must change nothing but speed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

import pipeline
from bench.pipeline import CONFIG, generate_day
from footfall import config as config_mod
from footfall.config import Config
from footfall.marts import DRILL_MARTS, MARTS
from pipeline import database, drilldown, models


def make_cfg(root: Path, memory_limit: str, threads: int) -> Config:
    raw: dict[str, Any] = {
        "data_dir": str(root / "data"), "site_dir": str(root / "site"), **CONFIG,
        "pipeline": {"memory_limit": memory_limit, "threads": threads},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    return config_mod.load(root / "config.yaml")


def settings(con: duckdb.DuckDBPyConnection) -> tuple[Any, ...]:
    row = con.execute(
        "select current_setting('memory_limit'), current_setting('threads'), "
        "current_setting('temp_directory')").fetchone()
    assert row is not None
    return tuple(row)


def test_build_connection_work_database_and_cursors_share_the_limits(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, memory_limit="300MB", threads=1)
    database.clean_work_files(cfg)
    con = database.open_build(cfg, fresh=True)
    try:
        limit, threads, spill = settings(con)
        # DuckDB reports the limit in its own units (300MB = 286.1 MiB)
        assert limit == "286.1 MiB"
        assert threads == 1
        assert Path(spill) == database.tmp_dir(cfg) / "duckdb"
        # the work database is attached to this instance, not opened as a second one with
        # its own default limit (80% of the machine's memory)
        attached = {name for (name,) in con.execute(
            "select database_name from duckdb_databases()").fetchall()}
        assert models.WORK in attached
        con.execute(f"create table {models.WORK}.probe as select range from range(10)")
        cur = con.cursor()  # as drill-down builds its filtered marts
        try:
            assert settings(cur) == (limit, threads, spill)
            row = cur.execute(f"select count(*) from {models.WORK}.probe").fetchone()
            assert row == (10,)
        finally:
            cur.close()
    finally:
        con.close()


def public_and_drilldown(cfg: Config) -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        tables = [m.table for m in MARTS]
        tables += [f"{drilldown.SCHEMA}.{t}" for t in ("filters", *DRILL_MARTS)]
        return {t: sorted(con.sql(f"select * from {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()


def test_tight_memory_and_one_thread_change_nothing_but_speed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    loose = make_cfg(tmp_path / "loose", memory_limit="1GB", threads=0)
    # near the floor: read_json holds buffers of its 16 MiB maximum object size, and a run
    # under 48MB fails there with DuckDB's out-of-memory error (a clear message, no crash)
    tight = make_cfg(tmp_path / "tight", memory_limit="100MB", threads=1)
    for cfg in (loose, tight):
        if cfg is tight:
            # the tight run sessionises its visitors in several batches, as a run of tens of
            # millions of events does under its limit; the loose one in one query
            monkeypatch.setattr(models, "ROWS_PER_GIB", 50_000)
            assert models.load("intermediate/int_event_sessions").batched is not None
            assert models.visitor_batches(2 * 1500 * 6, 100_000_000) >= 3
        for day in range(2):
            generate_day(cfg.logs_dir, day, visitors=1500)
        summary = pipeline.run(cfg, progress=None)
        assert summary.new_events == 2 * 1500 * 6
    assert public_and_drilldown(tight) == public_and_drilldown(loose)
