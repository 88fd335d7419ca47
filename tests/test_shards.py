"""`pipeline.shards`: every published table and file is the same for any number of shards.

Real runs throughout: JSONL on disk, `pipeline.run` with its process pool (or a real Dask
LocalCluster with two worker processes), DuckDB files in tmp_path, `footfall run` killed with
SIGKILL mid-run. The reference is always the same scenario run with `shards: 1`.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline
from footfall import config as config_mod
from footfall.config import Config
from footfall.errors import ConfigError
from footfall.marts import MARTS
from pipeline import models, shards, steps

ROOT = Path(__file__).parent.parent
SUMMARY = ("files_read", "bytes_read", "lines_read", "new_events", "duplicate_events",
           "quarantined", "unexplained", "visitors_recomputed", "days_rebuilt", "published")


def make_cfg(root: Path, n: int, timeout: int = 30, **pipeline_keys: Any) -> Config:
    raw: dict[str, Any] = {
        "sessions": {"timeout_minutes": timeout},
        "data_dir": str(root / "data"),
        "site_dir": str(root / "site"),
        "sites": [{"domain": d, "timezone": tz} for d, tz in oracle.SITES.items()],
        "funnels": oracle.FUNNELS,
        "experiments": [{"name": "Hero", "site": "example.com", "prop": "plan",
                         "control": "free", "goal": {"path": "/pricing"}}],
        "pipeline": {"memory_limit": "1GB", "threads": 2, "shards": n, **pipeline_keys},
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    return config_mod.load(root / "config.yaml")


def _rows(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted(rows, key=repr)


def published(cfg: Config) -> dict[str, Any]:
    """Every public table, the quarantine and the files bookkeeping (rows sorted), and every
    file a run writes: exports (CSV lines sorted, as raw day files have no row order; Parquet
    as sorted rows) and quarantine files."""
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        state: dict[str, Any] = {
            m.table: _rows(con.sql(f"select * from {m.table}").fetchall()) for m in MARTS}
        for table in ("quarantine", "quarantine_counts", "files"):
            state[f"pipeline.{table}"] = _rows(
                con.sql(f"select * from pipeline.{table}").fetchall())
    finally:
        con.close()
    root = cfg.data_dir.parent
    parquet: list[str] = []
    for folder in (cfg.site_dir / "exports", cfg.data_dir / "exports", cfg.quarantine_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if path.suffix == ".parquet":
                parquet.append(str(path))
            else:
                state[str(path.relative_to(root))] = sorted(path.read_bytes().splitlines())
    if parquet:  # one query for them all, each row with its file's name under root
        with duckdb.connect() as con:
            state["parquet"] = _rows(con.execute(
                "select * replace (substr(filename, ?) as filename) from "
                "read_parquet(?, filename = true, union_by_name = true, "
                "hive_partitioning = false)", [len(str(root)) + 2, parquet]).fetchall())
    return state


def run(cfg: Config, **kwargs: Any) -> dict[str, Any]:
    summary = pipeline.run(cfg, progress=None, **kwargs)
    return {"summary": {k: getattr(summary, k) for k in SUMMARY}, **published(cfg)}


def bucket(visitor: str, n: int) -> int:
    with duckdb.connect() as con:
        row = con.execute(f"select {shards.bucket_of(n)} from (select ? as visitor_id)",
                          [visitor]).fetchone()
    assert row is not None
    return int(row[0])


def scenario(root: Path, n: int, events: list[dict[str, Any]],
             **pipeline_keys: Any) -> Iterator[dict[str, Any]]:
    """Four runs over the events, yielding the state after each:

    1. two thirds of them over two files and a .gz, with a copied file, ids repeated under
       other visitors (so in other buckets) and malformed lines;
    2. the rest, appended and in a new file, with stored ids sent again by other visitors;
    3. --since a day, with a late event;
    4. a config change (the session timeout), which recomputes every stored session.
    """
    cfg = make_cfg(root, n, **pipeline_keys)
    ordered = sorted(events, key=lambda e: (e["ts"], e["id"]))
    cut = 2 * len(ordered) // 3
    first, rest = ordered[:cut], ordered[cut:]
    visitors = sorted({e["visitor"] for e in events})
    rnd = random.Random(5)

    def moved(e: dict[str, Any], minutes: int) -> dict[str, Any]:
        other = visitors[(visitors.index(e["visitor"]) + 1) % len(visitors)]
        at = datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%f%z") + timedelta(minutes=minutes)
        return {**e, "visitor": other, "ts": oracle.ts(at)}

    oracle.write_lines(cfg.logs_dir / "a/one.jsonl", first[: cut // 2])
    oracle.write_lines(cfg.logs_dir / "b/two.jsonl", first[cut // 2 :])
    oracle.write_lines(cfg.logs_dir / "b/copy.jsonl", first[:: 9])
    repeated = [moved(e, rnd.choice([-1, 1])) for e in first[3 :: 29]]
    oracle.write_lines(cfg.logs_dir / "c/repeats.jsonl", repeated)
    with open(cfg.logs_dir / "c/repeats.jsonl", "ab") as f:
        f.write(b'{"v":1,"id":"broken"\nnot json\n{"v":99,"id":"future"}\n')
    yield run(cfg)

    oracle.write_lines(cfg.logs_dir / "a/one.jsonl", rest[: len(rest) // 2])
    oracle.write_lines(cfg.logs_dir / "d/three.jsonl", rest[len(rest) // 2 :])
    oracle.write_lines(cfg.logs_dir / "d/again.jsonl", [moved(e, 2) for e in first[5 :: 31]])
    yield run(cfg)

    late = {**ordered[0], "id": "late-1", "ts": "2024-03-31T10:00:00.000Z"}
    oracle.write_lines(cfg.logs_dir / "e/late.jsonl", [late])
    yield run(cfg, since=date(2024, 3, 31))

    yield run(make_cfg(root, n, timeout=10, **pipeline_keys))


@pytest.fixture(scope="module")
def dataset() -> list[dict[str, Any]]:
    return oracle.generate(visitors=40, days=4)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory,
              dataset: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return list(scenario(tmp_path_factory.mktemp("one"), 1, dataset))


def test_the_scenario_repeats_ids_across_buckets(dataset: list[dict[str, Any]]) -> None:
    """The dedupe is only tested if repeated ids really land in other buckets."""
    ordered = sorted(dataset, key=lambda e: (e["ts"], e["id"]))
    visitors = sorted({e["visitor"] for e in dataset})
    for n in (2, 3):
        crossing = [e for e in ordered[3 :: 29]
                    if bucket(e["visitor"], n) != bucket(
                        visitors[(visitors.index(e["visitor"]) + 1) % len(visitors)], n)]
        assert crossing, n


@pytest.mark.parametrize("n", [2, 3])
def test_every_table_and_file_is_the_same_as_with_one_shard(
        tmp_path: Path, dataset: list[dict[str, Any]], reference: list[dict[str, Any]],
        n: int) -> None:
    for step, (got, want) in enumerate(zip(scenario(tmp_path, n, dataset), reference,
                                           strict=True), start=1):
        assert got["summary"]["published"], step
        assert got.keys() == want.keys(), step
        for key in want:
            assert got[key] == want[key], (step, key)
    first = reference[0]["summary"]
    assert first["duplicate_events"] > 0 and first["quarantined"] == 3


def test_the_dask_executor_gives_the_same_tables(
        tmp_path: Path, dataset: list[dict[str, Any]], reference: list[dict[str, Any]]) -> None:
    import distributed  # a dev dependency: never skipped

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        states = scenario(tmp_path, 2, dataset, executor="dask",
                          scheduler=cluster.scheduler_address)
        for step, (got, want) in enumerate(zip(states, reference, strict=True), start=1):
            assert got == want, step


# --- any events -----------------------------------------------------------------------------

gaps = st.sampled_from([0, 1, 1_799_999, 1_800_000, 1_800_001, 3_600_000, 5 * 3_600_000])
timelines = st.lists(st.tuples(st.sampled_from(["pageview", "pageview", "engagement", "Signup"]),
                               gaps), min_size=1, max_size=8)


@settings(max_examples=3, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(visitors=st.lists(timelines, min_size=2, max_size=6),
       repeats=st.lists(st.tuples(st.integers(0, 40), st.integers(0, 5)), max_size=4),
       start=st.integers(0, 48 * 3_600_000), site=st.sampled_from(sorted(oracle.SITES)))
def test_any_events_give_the_same_tables_for_any_shards(
        tmp_path_factory: pytest.TempPathFactory, visitors: list[list[tuple[str, int]]],
        repeats: list[tuple[int, int]], start: int, site: str) -> None:
    """Generated timelines, with some ids repeated under another visitor: one full run."""
    events = oracle.timeline_events(visitors, int(oracle.START.timestamp() * 1000) + start,
                                    site, paths=("/0", "/1", "/2"))
    for which, other in repeats:
        e = events[which % len(events)]
        events.append({**e, "visitor": f"{other % len(visitors):016x}"})
    states = []
    for n in (1, 2, 3):
        cfg = make_cfg(tmp_path_factory.mktemp(f"any{n}"), n)
        oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
        states.append(run(cfg))
    assert states[1] == states[0]
    assert states[2] == states[0]


# --- the design's bookkeeping ---------------------------------------------------------------


def test_the_outputs_are_every_per_visitor_table_read_later() -> None:
    """The run merges shards.OUTPUTS only: every table of a per-visitor model that a later
    model, a hook or another pipeline module reads must be among them."""
    per_visitor = {name.split("/")[1] for name in models.PER_VISITOR}
    assert set(models.PER_VISITOR) <= set(models.BEFORE_MARTS)
    assert set(shards.OUTPUTS) <= per_visitor
    read_later: set[str] = set()
    for name in models.order():
        if name not in models.PER_VISITOR:
            read_later |= set(re.findall(r"\b[a-z_]+\b", models.source(name))) & per_visitor
    for path in (ROOT / "pipeline").glob("*.py"):
        if path.name != "shards.py":
            text = path.read_text()
            read_later |= {t for t in per_visitor if re.search(rf"\b{t}\b", text)}
    # stg_log_lines: the run loads every read row itself
    merged = {*shards.OUTPUTS, "stg_log_lines"}
    assert read_later - merged <= {"stg_events", "stg_repeated_ids", "int_visitor_events"}
    # those three are only dropped by name after the run (steps._drop_temp), never read
    for table in read_later - merged:
        uses = re.findall(rf"\b{table}\b", (ROOT / "pipeline" / "steps.py").read_text())
        drops = re.findall(rf'_drop_temp\([^)]*"{table}"', (ROOT / "pipeline" / "steps.py")
                           .read_text().replace("\n", " "))
        assert len(uses) == len(drops), table
    assert "intermediate/int_new_events" in steps.HOOKS  # its count comes from the merged rows


def test_config_keys_are_validated_all_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "sites": [{"domain": "a.test"}],
        "pipeline": {"shards": 0, "executor": "spark", "scheduler": "10.0.0.5:8786"},
    }))
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    text = str(caught.value)
    for want in ("pipeline.shards: must be 1 (no sharding) to 256",
                 "pipeline.executor: 'spark' is not one of local, dask",
                 "pipeline.scheduler: is only used with executor: dask"):
        assert want in text, text
    path.write_text(yaml.safe_dump({
        "sites": [{"domain": "a.test"}],
        "pipeline": {"shards": "four", "executor": "dask", "scheduler": "10.0.0.5:8786"},
    }))
    with pytest.raises(ConfigError) as caught:
        config_mod.load(path)
    text = str(caught.value)
    assert "pipeline.shards: expected a whole number, got a string ('four')" in text
    assert "pipeline.scheduler: '10.0.0.5:8786' is not a scheduler address; " \
        "use e.g. tcp://10.0.0.5:8786" in text
    path.write_text(yaml.safe_dump({
        "sites": [{"domain": "a.test"}],
        "pipeline": {"shards": 8, "executor": "dask", "scheduler": "tcp://10.0.0.5:8786"},
    }))
    assert config_mod.load(path).pipeline.shards == 8


# --- kill -9 --------------------------------------------------------------------------------


def _footfall_run(cfg: Config, kill_at: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != steps.KILL_AT_STEP}
    if kill_at is not None:
        env[steps.KILL_AT_STEP] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", "run", "--config", str(cfg.source)],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def before_kill(tmp_path_factory: pytest.TempPathFactory,
                dataset: list[dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """A sharded data_dir with a published state and new lines waiting; and the state a run
    over them publishes when nothing breaks."""
    ordered = sorted(dataset, key=lambda e: e["ts"])
    base = tmp_path_factory.mktemp("base")
    cfg = make_cfg(base, 2)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", ordered[: len(ordered) // 2])
    pipeline.run(cfg, progress=None)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", ordered[len(ordered) // 2 :])
    oracle.write_lines(cfg.logs_dir / "b.jsonl", ordered[:: 11])
    clean = tmp_path_factory.mktemp("clean")
    shutil.copytree(base / "data", clean / "data")
    return base, run(make_cfg(clean, 2))


@pytest.mark.parametrize("kill_at", ["model", shards.KILL_FROM_JOB])
def test_kill_9_mid_sharded_run_then_rerun_is_identical(
        tmp_path: Path, before_kill: tuple[Path, dict[str, Any]], kill_at: str) -> None:
    """`footfall run` killed between the read jobs and the bucket jobs, or by a job while
    the jobs run: the published state is the last one, and a rerun publishes what an
    unbroken run does."""
    base, clean = before_kill
    shutil.copytree(base / "data", tmp_path / "data")
    cfg = make_cfg(tmp_path, 2)
    before = published(cfg)
    env = {k: v for k, v in os.environ.items() if k != steps.KILL_AT_STEP}
    killed = subprocess.run(
        [sys.executable, "-m", "footfall.cli", "run", "--config", str(cfg.source)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**env, steps.KILL_AT_STEP: kill_at})
    assert killed.returncode == -9, killed.stderr
    assert published(cfg) == before
    assert run(cfg) == clean


def test_the_jobs_at_once_share_the_memory_limit_and_threads(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, 4)  # memory_limit 1GB, threads 2
    for jobs, slots, at_once in ((4, 2, 2), (1, 2, 1), (3, 8, 3)):
        memory, threads = shards._budget(cfg, jobs, slots)
        per_job = config_mod.size_bytes(memory)
        assert per_job is not None
        assert at_once * per_job <= 10**9 < at_once * (per_job + 1024)
        assert threads == max(1, 2 // at_once)
