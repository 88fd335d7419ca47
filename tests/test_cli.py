"""The `footfall` command when something is wrong: one line that says what and how to fix it,
a non-zero exit, never a traceback; and nothing published over a live dashboard.

Most cases call `main([...])` in-process; permissions and the entry points run the real
command. As root a 000 file is still readable, so those runs drop the two capabilities that
let root ignore file modes (setpriv), which makes them behave as for any other user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from footfall import config as config_mod
from footfall.cli import main
from footfall.config import Config
from pipeline.checks import names as check_names
from tests import pipeline_oracle as oracle
from tests.helpers import IN_CI, write_config

ROOT = Path(__file__).resolve().parent.parent
# Root reads and writes whatever the file modes say; without these two capabilities it can't.
AS_A_USER = ["setpriv", "--inh-caps=-dac_override,-dac_read_search",
             "--bounding-set=-dac_override,-dac_read_search"]


def run_main(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys: Any, *argv: str) -> str:
    """The one error line of `footfall ARGV` run in-process."""
    code, _, err = run_main(capsys, *argv)
    return one_line(code, err)


def one_line(code: int, err: str) -> str:
    """The error line, after checking the shape every command error has."""
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def footfall(*argv: str, as_a_user: bool = False) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process; `as_a_user` takes root's file-mode bypass away."""
    prefix: list[str] = []
    if as_a_user and os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            if IN_CI:
                pytest.fail("setpriv (util-linux) is missing; the permission tests need it")
            pytest.skip("running as root without setpriv: file modes cannot be tested")
        prefix = AS_A_USER
    return subprocess.run([*prefix, sys.executable, "-m", "footfall", *argv],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


@pytest.fixture
def workspace(tmp_path: Path) -> Config:
    """A config whose data_dir holds a few days of real log lines (nothing run yet)."""
    cfg = config_mod.load(write_config(tmp_path, funnels=oracle.FUNNELS))
    oracle.write_lines(cfg.logs_dir / "2026" / "a.jsonl", oracle.generate(visitors=8, days=2))
    return cfg


@pytest.fixture
def published(workspace: Config, capsys: Any) -> Config:
    """The workspace after one successful `footfall run`: a database and a live site."""
    code, _, err = run_main(capsys, "run", "--config", str(workspace.source))
    assert code == 0, err
    assert (workspace.site_dir / "index.html").is_file()
    return workspace


def site_files(cfg: Config) -> dict[str, bytes]:
    return {str(p.relative_to(cfg.site_dir)): p.read_bytes()
            for p in sorted(cfg.site_dir.rglob("*")) if p.is_file()}


def break_database(cfg: Config) -> None:
    cfg.database.write_bytes(b"this is not a DuckDB file\n" * 100)


# --- the database ------------------------------------------------------------------------


def test_render_without_a_database_refuses_and_leaves_the_live_site(
        published: Config, tmp_path: Path, capsys: Any) -> None:
    before = site_files(published)
    # a typo in data_dir: same site_dir, a data_dir with nothing in it
    typo = config_mod.load(write_config(tmp_path, data_dir=str(tmp_path / "dta"),
                                        funnels=oracle.FUNNELS))
    (tmp_path / "dta").mkdir()
    line = fails(capsys, "render", "--config", str(typo.source))
    assert line.startswith("footfall render: no database at ")
    assert str(typo.database) in line and "footfall run" in line and "data_dir" in line
    assert site_files(published) == before


def test_render_without_data_dir_refuses(tmp_path: Path, capsys: Any) -> None:
    cfg = config_mod.load(write_config(tmp_path))
    line = fails(capsys, "render", "--config", str(cfg.source))
    assert "no database at" in line
    assert not cfg.site_dir.exists()


def test_run_with_a_missing_data_dir_refuses_instead_of_publishing_zeros(
        published: Config, tmp_path: Path, capsys: Any) -> None:
    before = site_files(published)
    typo = config_mod.load(write_config(tmp_path, data_dir=str(tmp_path / "dta"),
                                        funnels=oracle.FUNNELS))
    line = fails(capsys, "run", "--config", str(typo.source))
    assert f"data_dir {typo.data_dir} does not exist" in line
    assert not typo.data_dir.exists()
    assert site_files(published) == before


@pytest.mark.parametrize("command", ["render", "check", "run"])
def test_a_file_that_is_not_a_database(published: Config, command: str, capsys: Any) -> None:
    break_database(published)
    before = site_files(published)
    line = fails(capsys, command, "--config", str(published.source))
    assert line.startswith(f"footfall {command}: ")
    assert "not a valid DuckDB database" in line
    assert f"move it aside (mv {published.database} " in line
    assert "footfall run --full" in line
    assert site_files(published) == before


def test_moving_the_broken_database_aside_and_running_full_recovers(
        published: Config, capsys: Any) -> None:
    """The fix the message gives works."""
    break_database(published)
    published.database.rename(published.database.with_name("footfall.duckdb.broken"))
    code, _, err = run_main(capsys, "run", "--full", "--config", str(published.source))
    assert code == 0, err
    con = duckdb.connect(str(published.database), read_only=True)
    try:
        (events,) = con.execute("select count(*) from events").fetchone() or (0,)
    finally:
        con.close()
    assert events == sum(1 for _ in oracle.generate(visitors=8, days=2))


def test_check_without_a_database(workspace: Config, capsys: Any) -> None:
    line = fails(capsys, "check", "--config", str(workspace.source))
    assert line == (f"footfall check: no database at {workspace.database} yet; "
                    "run `footfall run` first")


def test_check_prints_one_line_when_all_pass(published: Config, capsys: Any) -> None:
    code, out, err = run_main(capsys, "check", "--config", str(published.source))
    assert code == 0, err
    assert err == ""
    assert out.splitlines() == [f"footfall check: all {len(check_names())} data tests passed "
                                f"on {published.database}"]


def test_check_ends_a_failure_with_a_summary_line(published: Config, capsys: Any) -> None:
    con = duckdb.connect(str(published.database))
    con.execute("update sessions set duration_s = -1 where session_id in "
                "(select session_id from sessions limit 1)")
    con.close()
    code, out, err = run_main(capsys, "check", "--config", str(published.source))
    assert code == 1 and out == ""
    assert "no_negative_durations: 1 offending rows" in err
    assert err.strip().splitlines()[-1] == (
        f"footfall check: 1 of {len(check_names())} data tests failed on {published.database}; "
        "the rows above show what to look at")


# --- data_dir and site_dir ---------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "render", "check", "collect"])
def test_data_dir_that_is_a_file(tmp_path: Path, command: str, capsys: Any) -> None:
    (tmp_path / "data").write_text("not a folder")
    path = write_config(tmp_path)
    line = fails(capsys, command, "--config", str(path))
    assert line == (f"footfall {command}: data_dir {tmp_path / 'data'} is a file, not a folder: "
                    f"point data_dir in {path} at a folder (it holds logs/, salts/ and the "
                    "database)")


@pytest.mark.parametrize("command", ["run", "render"])
def test_site_dir_whose_folder_is_missing(published: Config, tmp_path: Path, command: str,
                                          capsys: Any) -> None:
    site = tmp_path / "sitse" / "public"
    path = write_config(tmp_path, site_dir=str(site), funnels=oracle.FUNNELS)
    line = fails(capsys, command, "--config", str(path))
    assert f"site_dir {site} does not exist" in line
    assert f"mkdir -p {site}" in line
    assert not (tmp_path / "sitse").exists()


def test_site_dir_that_is_a_file(published: Config, capsys: Any) -> None:
    shutil.rmtree(published.site_dir)
    published.site_dir.write_text("oops")
    line = fails(capsys, "render", "--config", str(published.source))
    assert f"site_dir {published.site_dir} is a file, not a folder" in line


def test_a_new_site_dir_in_an_existing_folder_is_created(published: Config, tmp_path: Path,
                                                         capsys: Any) -> None:
    site = tmp_path / "fresh-site"
    path = write_config(tmp_path, site_dir=str(site), funnels=oracle.FUNNELS)
    code, _, err = run_main(capsys, "render", "--config", str(path))
    assert code == 0, err
    assert (site / "index.html").is_file()


@pytest.mark.parametrize("command", ["render", "run"])
def test_read_only_site_dir(published: Config, command: str) -> None:
    before = site_files(published)
    published.site_dir.chmod(0o555)
    try:
        res = footfall(command, "--config", str(published.source), as_a_user=True)
    finally:
        published.site_dir.chmod(0o755)
    line = one_line(res.returncode, res.stderr)
    assert line == (f"footfall {command}: site_dir {published.site_dir} is not writable for "
                    f"this user: give it write access (chown or chmod), or point site_dir in "
                    f"{published.source} elsewhere")
    assert site_files(published) == before


def test_unreadable_logs_are_skipped_with_a_warning_that_says_what_to_do(
        workspace: Config) -> None:
    """A malformed or unreadable log is never fatal (issue 11): the run goes on without it,
    says so on stderr with the fix, and reads it once it is readable again."""
    (log,) = workspace.logs_dir.rglob("*.jsonl")
    log.chmod(0)
    try:
        res = footfall("run", "--config", str(workspace.source), as_a_user=True)
    finally:
        log.chmod(0o644)
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert res.stderr == ("data_dir/logs/2026/a.jsonl cannot be read (Permission denied): give "
                          "the user footfall runs read access to it (chown or chmod); it is "
                          "tried again next run\n")


def test_an_unreadable_log_folder_is_skipped_with_a_warning(workspace: Config) -> None:
    (log,) = workspace.logs_dir.rglob("*.jsonl")
    log.parent.chmod(0)
    try:
        res = footfall("run", "--config", str(workspace.source), as_a_user=True)
    finally:
        log.parent.chmod(0o755)
    assert res.returncode == 0 and "Traceback" not in res.stderr
    assert res.stderr == ("data_dir/logs/2026 cannot be listed (Permission denied): give the "
                          "user footfall runs read access to it (chown or chmod); its files are "
                          "read once it can be\n")


# --- the config and the entry points -----------------------------------------------------


def test_yaml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("data_dir: data\nsites:\n  - {domain: a.test, timezone: UTC\n"
                    "site_dir: site\n")
    res = footfall("run", "--config", str(path))
    line = one_line(res.returncode, res.stderr)
    assert line.startswith(f"footfall run: {path}: not valid YAML at line 4, column 9: ")
    assert "<unicode string>" not in line


def test_a_missing_config_file(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "nope.yaml"
    line = fails(capsys, "check", "--config", str(path))
    assert line == (f"footfall check: {path}: file not found; pass --config PATH or create "
                    "config.yaml (see docs/config.md)")


def test_collect_on_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = footfall("collect", "--config", str(write_config(tmp_path)), "--port", str(port))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    # the collector's own JSON log lines come first; the command's answer is the last line
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("footfall collect: ") and "address already in use" in last
    assert "choose another collector.port (or --port)" in last


def test_python_m_collector_points_to_footfall_collect(tmp_path: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "collector", "--config",
                          str(write_config(tmp_path))],
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    line = one_line(res.returncode, res.stderr)
    assert "footfall collect --config PATH" in line


@pytest.mark.parametrize(("argv", "expected"), [
    (["run", "--since", "soon"], "footfall run: argument --since: 'soon' is not a date like "
                                 "2024-05-01; see `footfall run --help`"),
    (["publish"], "footfall: argument COMMAND: invalid choice: 'publish' (choose from 'collect', "
                  "'demo', 'run', 'check', 'render', 'import'); see `footfall --help`"),
])
def test_a_usage_mistake_is_one_line(argv: list[str], expected: str, capsys: Any) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    code = stopped.value.code
    assert isinstance(code, int)
    assert one_line(code, capsys.readouterr().err) == expected
