"""`footfall run` killed with SIGKILL as each of its steps starts, then run again: the published
state is the last good one while it lies dead, and the rerun is byte for byte what a run that
was never killed leaves (marts, exports, quarantine files).

The kill comes from the run itself (pipeline.steps.KILL_AT_STEP), so every step is hit, not
only the ones a timer happens to land in. The step names are read from pipeline/steps.py, so a
new step is attacked without editing this file.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest

from pipeline.steps import KILL_AT_STEP
from tests.helpers import LONG, fill, tmpfs
from tests.test_pipeline_process import make_cfg, snapshot

ROOT = Path(__file__).parent.parent
STEPS = re.findall(r'show\.step\(summary, "([^"]+)"\)',
                   (ROOT / "pipeline" / "steps.py").read_text())
# Quick mode: a kill mid-build and one just before the database is replaced, after the files.
ATTACKED = STEPS if LONG else ["model", "publish"]
MALFORMED = [b'{"v":1,"id":"broken"', b"not json at all", b'{"v":99,"id":"future"}']


def run(root: Path, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KILL_AT_STEP}
    if kill_at is not None:
        env[KILL_AT_STEP] = kill_at
    return subprocess.run(
        [sys.executable, "-m", "footfall.cli", "run", "--config", str(root / "config.yaml")],
        capture_output=True, text=True, timeout=300, cwd=ROOT, env=env,
    )


def published_files(root: Path) -> dict[str, Any]:
    """Every file a run publishes beside the database: exports and quarantine files. Raw
    day files and Parquet hold their rows in no particular order (docs/schema.md), so they
    are compared as sorted rows; every other file byte for byte."""
    data = root / "data"
    skip = {"logs", "salts", ".pipeline"}
    return {str(p.relative_to(data)): _content(p) for p in sorted(data.rglob("*"))
            if p.is_file() and p.relative_to(data).parts[0] not in skip
            and p.name != "footfall.duckdb" and not p.name.startswith("footfall.duckdb")}


def _content(path: Path) -> Any:
    if path.suffix == ".parquet":
        con = duckdb.connect()
        try:
            return sorted(con.execute("select * from read_parquet(?)", [str(path)]).fetchall(),
                          key=repr)
        finally:
            con.close()
    body = path.read_bytes()
    if path.parent.name == "raw":
        header, *rows = body.split(b"\r\n")
        return header, sorted(rows)
    return body


def second_batch(root: Path, events: list[dict[str, Any]]) -> None:
    half = len(events) // 2
    cfg_logs = root / "data" / "logs"
    oracle.write_lines(cfg_logs / "a.jsonl", events[half: 3 * half // 2])
    oracle.write_lines(cfg_logs / "b.jsonl", events[3 * half // 2:])
    with open(cfg_logs / "b.jsonl", "ab") as f:
        f.write(b"\n".join(MALFORMED) + b"\n")


def copy(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst, symlinks=True)
    # the config names its folders: point the copy at its own
    (dst / "config.yaml").write_text((src / "config.yaml").read_text().replace(str(src), str(dst)))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A folder after one good run with a second batch waiting, and what a clean second run
    leaves there."""
    events = oracle.generate(seed=5, visitors=150, days=3)
    base = tmp_path_factory.mktemp("kill") / "base"
    make_cfg(base)
    oracle.write_lines(base / "data" / "logs" / "a.jsonl", events[: len(events) // 2])
    assert run(base).returncode == 0
    second_batch(base, events)
    clean = base.parent / "clean"
    copy(base, clean)
    res = run(clean)
    assert res.returncode == 0, res.stderr
    return base, clean


def test_every_step_is_found() -> None:
    assert {"plan", "read", "model", "export", "publish"} <= set(STEPS), STEPS
    assert set(ATTACKED) <= set(STEPS)


@pytest.mark.parametrize("step", ATTACKED)
def test_kill_9_at_each_step_then_a_rerun_equals_a_clean_run(
        prepared: tuple[Path, Path], tmp_path: Path, step: str) -> None:
    base, clean = prepared
    root = tmp_path / "killed"
    copy(base, root)
    before = snapshot(root / "data" / "footfall.duckdb")
    files_before = published_files(root)

    killed = run(root, kill_at=step)
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    # dead mid-run: readers still see the last good state, whole
    assert snapshot(root / "data" / "footfall.duckdb") == before
    if step in ("plan", "read", "quarantine", "model"):  # the steps before any file is written
        assert published_files(root) == files_before  # nothing was written yet

    res = run(root)
    assert res.returncode == 0, res.stderr
    assert snapshot(root / "data" / "footfall.duckdb") == snapshot(clean / "data" /
                                                                   "footfall.duckdb")
    got, want = published_files(root), published_files(clean)
    assert sorted(got) == sorted(want)
    assert any(name.startswith("quarantine") for name in want)
    for name in want:
        assert got[name] == want[name], f"{name} differs from a clean run's after a kill at {step}"


def test_a_full_disk_fails_the_run_cleanly_and_the_next_run_succeeds(
        prepared: tuple[Path, Path], tmp_path: Path) -> None:
    base, clean = prepared
    with tmpfs(tmp_path / "disk", "64m") as disk:
        root = disk / "full"
        copy(base, root)
        before = snapshot(root / "data" / "footfall.duckdb")
        files_before = published_files(root)
        # room for a few log lines, not for the run's private copy of the database
        filler = fill(disk, leave=64 * 1024)
        failed = run(root)
        assert failed.returncode != 0
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("footfall run: "), failed.stderr
        assert "No space left on device" in lines[0] and "Traceback" not in failed.stderr
        assert snapshot(root / "data" / "footfall.duckdb") == before
        assert published_files(root) == files_before
        filler.unlink()
        res = run(root)
        assert res.returncode == 0, res.stderr
        assert snapshot(root / "data" / "footfall.duckdb") == snapshot(
            clean / "data" / "footfall.duckdb")
        assert published_files(root) == published_files(clean)
