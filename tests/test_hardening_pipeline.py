"""Hostile log files: none stops a run, swamps it, or leaks what lies outside logs/.

Each test is a regression test for a hole issue 11 found; docs/guarantees.md ("Pipeline")
names them. They run the real pipeline on a real DuckDB file, and `footfall run` as cron does
where the process itself is what is measured (its memory, its output, its user).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
from test_pipeline_ingest import count, line, make_cfg

import pipeline
from footfall import contract
from footfall.config import Config
from pipeline import database, quarantine, sources

ROOT = Path(__file__).parent.parent
MAX = sources.MAX_LINE_BYTES


def padded(size: int, random: bool = False, **changes: Any) -> bytes:
    """A valid event line of exactly `size` bytes, made long by an unknown field (of random
    hex digits, which compress only 2:1, or of one letter)."""
    base = line(**changes, pad="")
    n = size - len(base)
    return base[:-2] + (os.urandom(n).hex()[:n].encode() if random else b"x" * n) + b'"}'


def records(cfg: Config, source: str) -> list[dict[str, Any]]:
    path = quarantine.file_for(cfg.quarantine_dir, source)
    return [json.loads(x) for x in path.read_text().splitlines()]


# `footfall run`, then its peak memory: VmHWM belongs to the process's own memory map, while
# ru_maxrss would carry over the forking test process's
RUN = """
import sys
from footfall.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print(next(x.split()[1] for x in status.splitlines() if x.startswith("VmHWM:")))
sys.exit(code)
"""


def footfall_run(cfg: Config, prefix: list[str] | None = None) -> tuple[int, str, float]:
    """`footfall run` in its own process: exit code, stderr and peak memory in MB."""
    res = subprocess.run(
        [*(prefix or []), sys.executable, "-c", RUN, "run", "--no-site",
         "--config", str(cfg.source)],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    peak = int(res.stdout.split()[-1]) / 1024 if res.stdout.strip() else float("nan")
    return res.returncode, res.stderr, peak


# --- item 4: an oversize line or an unreadable file does not stop the run ----------------------


def test_an_oversize_line_is_quarantined_unread_and_the_rest_ingested(tmp_path: Path) -> None:
    """A 20 MB line made every run exit 2 (DuckDB's maximum_object_size); a line of exactly
    MAX_LINE_BYTES is still an event, one byte more is quarantined."""
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "2024/04/01/host-1-0.jsonl"
    log.parent.mkdir(parents=True)
    huge = b'{"v":1,"id":"huge","pad":"' + b"A" * 20_000_000 + b'"}'
    body = [line(id="a"), huge, padded(MAX, id="at-max"), padded(MAX + 1, id="over"),
            line(id="b")]
    log.write_bytes(b"\n".join(body) + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined, summary.unexplained) == (3, 2, 0)
    assert count(cfg, "select count(*) from events where event_id in ('a', 'b', 'at-max')") == 3
    kept = records(cfg, "2024/04/01/host-1-0.jsonl")
    assert [r["offset"] for r in kept] == [len(body[0]) + 1,
                                           sum(len(x) + 1 for x in body[:3])]
    assert f"{len(huge):,} bytes, longer than the {MAX:,}" in kept[0]["reason"]
    assert kept[0]["line"] == kept[1]["line"] == ""  # nothing of it was read

    # appended later: the incremental path cuts it out of the copy of the new bytes
    with open(log, "ab") as f:
        f.write(line(id="c") + b"\n" + padded(3 * MAX, id="again") + b"\n" + line(id="d") + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined, summary.unexplained) == (2, 1, 0)
    assert len(records(cfg, "2024/04/01/host-1-0.jsonl")) == 3


def test_oversize_lines_next_to_malformed_ones_keep_their_offsets(tmp_path: Path) -> None:
    """The quarantine maps lines in a copy with lines cut out back to their source offsets."""
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "a.jsonl"
    log.parent.mkdir(parents=True)
    body = [b"{bad 1", padded(MAX + 10, id="x"), line(id="a"), b"{bad 2",
            padded(2 * MAX, id="y"), padded(2 * MAX, id="z"), b"{bad 3", line(id="b")]
    log.write_bytes(b"\n".join(body) + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined, summary.unexplained) == (2, 6, 0)
    data = log.read_bytes()
    for r in records(cfg, "a.jsonl"):
        if r["line"]:
            assert data[r["offset"]:].startswith(r["line"].encode())
        else:
            assert data[r["offset"]:].startswith(b'{"v": 1, "id": ')


def test_the_largest_line_the_contract_allows_is_far_below_the_limit() -> None:
    worst = "\x01"  # encodes as \u0001: six bytes per character
    url = worst * contract.MAX_URL
    largest = contract.LogLine(
        v=1, id=worst * 64, ts="2024-04-01T10:00:00.000Z", site=url, name=worst * contract.MAX_NAME,
        path=url, visitor="0123456789abcdef", hostname=url, referrer=worst * contract.MAX_REFERRER,
        source=url, utm_source=url, utm_medium=url, utm_campaign=url, utm_term=url,
        utm_content=url, browser=url, browser_version=url, os=url, os_version=url, device=url,
        country="DE", screen_width=-(2**63), interactive=False, engaged_ms=-(2**63),
        scroll_pct=-(2**63),
        props={f"{i:03d}" + worst * (contract.MAX_PROP_KEY - 3): worst * contract.MAX_PROP_VALUE
               for i in range(contract.MAX_PROPS)},
    )
    assert len(contract.encode(largest)) < MAX / 1.5


@pytest.fixture
def unreadable(tmp_path: Path) -> tuple[Config, list[str]]:
    """A config whose logs hold one file (mode 0) the run cannot read, and the command prefix
    to run with: root reads any file, so as root the run goes without the capabilities that
    let it (util-linux's setpriv, which Debian always has)."""
    cfg = make_cfg(tmp_path)
    cfg.logs_dir.mkdir(parents=True)
    secret = cfg.logs_dir / "b-secret.jsonl"
    secret.write_bytes(line(id="secret") + b"\n")
    (cfg.logs_dir / "a.jsonl").write_bytes(line(id="a") + b"\n")
    (cfg.logs_dir / "c.jsonl").write_bytes(line(id="c") + b"\n")
    secret.chmod(0)
    if os.geteuid() != 0:
        return cfg, []
    return cfg, ["setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"]


def test_an_unreadable_file_is_skipped_with_a_warning_and_the_rest_read(
    unreadable: tuple[Config, list[str]],
) -> None:
    cfg, prefix = unreadable
    code, err, _ = footfall_run(cfg, prefix)
    assert code == 0, err
    assert "data_dir/logs/b-secret.jsonl cannot be read (Permission denied)" in err
    assert "Traceback" not in err
    assert count(cfg, "select count(*) from events") == 2
    assert count(cfg, "select count(*) from pipeline.files where source like 'b-%'") == 0
    summary = json.loads(duckdb.connect(str(cfg.database), read_only=True)
                         .execute("select summary from pipeline.runs").fetchone()[0])
    assert summary["skipped_files"] == 1


# --- item 5: the quarantine is bounded -----------------------------------------------------------


def test_the_quarantine_keeps_the_first_lines_of_a_file_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "a.jsonl"
    log.parent.mkdir(parents=True)
    long_bad = b'{"v":1,"bad":"' + "é".encode() * 20_000 + b'"'
    bad = [long_bad] + [f'{{"bad":{i}'.encode() for i in range(quarantine.KEEP_LINES + 499)]
    log.write_bytes(b"\n".join([line(id="a"), *bad, line(id="b")]) + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined, summary.unexplained) == (2, 1500, 0)
    kept = records(cfg, "a.jsonl")
    assert len(kept) == quarantine.KEEP_LINES + 1
    assert len(kept[0]["line"].encode()) <= quarantine.KEEP_BYTES
    assert long_bad.decode().startswith(kept[0]["line"].rstrip("\ufffd"))
    assert kept[-1]["offset"] is None and kept[-1]["reason"].startswith("500 more refused lines")
    assert count(cfg, "select count(*) from pipeline.quarantine") == quarantine.KEEP_LINES

    # the next run's refused lines only add to the count
    with open(log, "ab") as f:
        f.write(b"{more\n" * 10 + line(id="c") + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined) == (1, 10)
    assert records(cfg, "a.jsonl")[-1]["reason"].startswith("510 more refused lines")
    assert count(cfg, "select sum(lines) from pipeline.quarantine_counts") == 1510

    # --full starts again from the logs and finds the same
    pipeline.run(cfg, full=True, progress=None)
    assert records(cfg, "a.jsonl")[-1]["reason"].startswith("510 more refused lines")


def test_random_bytes_are_quarantined_within_the_bounds(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "noise.jsonl"
    log.parent.mkdir(parents=True)
    noise = os.urandom(4_000_000)
    log.write_bytes(line(id="a") + b"\n" + noise + b"\n" + line(id="b") + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert summary.new_events == 2 and summary.unexplained == 0
    assert summary.quarantined == len([x for x in noise.split(b"\n") if x.strip()])
    kept = quarantine.file_for(cfg.quarantine_dir, "noise.jsonl")
    # each kept line is at most KEEP_BYTES, which JSON escaping may grow six times
    assert kept.stat().st_size < (quarantine.KEEP_LINES + 1) * (6 * quarantine.KEEP_BYTES + 300)
    assert count(cfg, "select count(*) from pipeline.quarantine") == quarantine.KEEP_LINES


# --- item 6: gzip bombs, links and loops ---------------------------------------------------------


def test_a_gzip_bomb_is_read_in_bounded_steps_up_to_a_bounded_size(tmp_path: Path) -> None:
    """A 1 MB .jsonl.gz of zeros (about 1 GB) took 2.1 GB of memory."""
    cfg = make_cfg(tmp_path)
    cfg.logs_dir.mkdir(parents=True)
    zeros = bytes(10_000_000)
    with gzip.open(cfg.logs_dir / "bomb.jsonl.gz", "wb", compresslevel=9) as f:
        for _ in range(100):
            f.write(zeros)
    (cfg.logs_dir / "real.jsonl").write_bytes(line(id="a") + b"\n")
    code, err, peak_mb = footfall_run(cfg)
    assert code == 0, err
    assert ("data_dir/logs/bomb.jsonl.gz decompresses to more than 100 times its size; "
            "none of it was read") in err
    # a run over one valid line peaks at about 105 MB; the bomb's 1 GB was held whole before
    assert peak_mb < 400, peak_mb
    assert count(cfg, "select count(*) from events") == 1


def test_a_gzip_of_repeated_valid_lines_is_read_only_up_to_the_expansion_bound(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = make_cfg(tmp_path)
    cfg.logs_dir.mkdir(parents=True)
    one = line(id="same") + b"\n"
    gz = gzip.compress(one * 300_000, 9)
    (cfg.logs_dir / "same.jsonl.gz").write_bytes(gz)
    with caplog.at_level(logging.WARNING):
        summary = pipeline.run(cfg, progress=None)
    assert summary.skipped_files == 1 and "same.jsonl.gz decompresses" in caplog.text
    limit = sources.MAX_GZ_EXPANSION * len(gz)
    assert summary.lines_read == limit // len(one)
    assert summary.new_events == 1
    # unchanged, it is not read again; nothing is lost either, as every line repeats one event
    assert not pipeline.run(cfg, progress=None).published


def test_real_logs_compress_far_below_the_expansion_bound() -> None:
    data = b"".join(contract.encode(contract.LogLine(**e))
                    for e in oracle.generate(seed=3, visitors=300, days=1))
    assert len(data) / len(gzip.compress(data, 9)) < sources.MAX_GZ_EXPANSION / 5


def test_an_oversize_line_inside_a_gz_file_is_cut_out(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    cfg.logs_dir.mkdir(parents=True)
    body = [line(id="a"), padded(3 * MAX + 7, True, id="x"), b"{bad", line(id="b"),
            padded(MAX, True, id="fits")]
    (cfg.logs_dir / "a.jsonl.gz").write_bytes(gzip.compress(b"\n".join(body) + b"\n"))
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined, summary.unexplained) == (3, 2, 0)
    kept = records(cfg, "a.jsonl.gz")
    assert [r["offset"] for r in kept] == [len(body[0]) + 1, len(body[0]) + len(body[1]) + 2]


def test_links_are_not_followed_and_loops_do_not_hold_the_run(tmp_path: Path) -> None:
    """Two links to `..` kept discovery walking for over 30 s; a link to a file outside logs/
    had its contents copied into the quarantine and the database."""
    (tmp_path / "site").mkdir()
    cfg = make_cfg(tmp_path / "site")
    logs = cfg.logs_dir
    (logs / "2024").mkdir(parents=True)
    (logs / "2024/a.jsonl").write_bytes(line(id="a") + b"\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.jsonl").write_bytes(line(id="outside", path="/secret") + b"\n{leak\n")
    (logs / "up1").symlink_to("..")
    (logs / "2024/up2").symlink_to("../..")
    (logs / "stolen.jsonl").symlink_to(outside / "secret.jsonl")
    (logs / "away").symlink_to(outside)
    os.mkfifo(logs / "pipe.jsonl")  # reading it would block the run for ever
    code, err, _ = footfall_run(cfg)
    assert code == 0, err
    for name in ("up1", "2024/up2", "stolen.jsonl", "away"):
        assert f"data_dir/logs/{name} is a symbolic link" in err
    assert "data_dir/logs/pipe.jsonl is not a regular file" in err
    assert count(cfg, "select count(*) from events") == 1
    assert count(cfg, "select count(*) from events where path = '/secret'") == 0
    assert count(cfg, "select count(*) from pipeline.quarantine") == 0
    assert not cfg.quarantine_dir.exists() or not any(cfg.quarantine_dir.rglob("*.jsonl"))


def test_hostile_file_names_neither_stop_the_run_nor_reach_the_terminal_raw(
    tmp_path: Path,
) -> None:
    """A name that is not UTF-8 stopped every run (DuckDB cannot take it); a name with an
    escape sequence would have been printed as one."""
    cfg = make_cfg(tmp_path)
    cfg.logs_dir.mkdir(parents=True)
    logs = os.fsencode(cfg.logs_dir)
    Path(os.fsdecode(logs + b"/\xffbad.jsonl")).write_bytes(line(id="x") + b"\n")
    (cfg.logs_dir / "new\nline.jsonl").write_bytes(line(id="a") + b"\n{bad\n")
    (cfg.logs_dir / "\x1b[31mred.jsonl").symlink_to(cfg.logs_dir / "new\nline.jsonl")
    code, err, _ = footfall_run(cfg)
    assert code == 0, err
    assert "data_dir/logs/\\udcffbad.jsonl has a name that is not UTF-8" in err
    assert "data_dir/logs/\\x1b[31mred.jsonl is a symbolic link" in err
    assert "\x1b" not in err and "\udcff" not in err
    assert count(cfg, "select count(*) from events") == 1
    assert count(cfg, "select count(*) from pipeline.quarantine") == 1
    assert quarantine.file_for(cfg.quarantine_dir, "new\nline.jsonl").is_file()


# --- hostile lines: each quarantined with a reason, the rest read -------------------------------

HOSTILE = {
    "a future version": line(id="h1", v=2),
    "version 0": line(id="h2", v=0),
    "a version past 64 bits": line(id="h3").replace(b'"v": 1', b'"v": 99999999999999999999999'),
    "a float version": line(id="h4").replace(b'"v": 1', b'"v": 1.0'),
    "a string id": line(id=7),
    "a list for props": line(id="h5", props=["a"]),
    "an object for a path": line(id="h6", path={"/": 1}),
    "a raw NUL byte": line(id="h7")[:12] + b"\0" + line(id="h7")[12:],
    "a NUL first": b"\0" + line(id="h8"),
    "a byte-order mark": b"\xef\xbb\xbf" + line(id="h9"),
    "invalid UTF-8 in a key": line(id="h10").replace(b'"name"', b'"na\xffme"'),
    "invalid UTF-8 in a value": line(id="h11", path="/x").replace(b"/x", b"/\xc3\x28"),
    "a lone surrogate": line(id="h12", path="/x").replace(b"/x", b"/\\ud800"),
    "objects nested 100,000 deep": b'{"a":' * 100_000,
    "arrays nested 300,000 deep": b"[" * 300_000,
    "trailing garbage": line(id="h13") + b" x",
    "two objects on a line": line(id="h14") + line(id="h15"),
    "a number out of range": line(id="h16", screen_width=1).replace(b": 1}", b": 1e400}"),
    "a site of 100 KB": line(id="h17", site="s" * 100_000),
}


def test_hostile_lines_are_quarantined_with_a_reason_and_the_run_goes_on(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "hostile.jsonl"
    log.parent.mkdir(parents=True)
    body = [line(id="first"), *HOSTILE.values(), line(id="last")]
    # the final line is cut short, as by a crash: it is not read, and waits
    log.write_bytes(b"\n".join(body) + b"\n" + line(id="truncated")[:25])
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.unexplained) == (2, 0)
    assert summary.quarantined == len(HOSTILE)
    kept = records(cfg, "hostile.jsonl")
    assert len(kept) == len(HOSTILE)
    for record, (case, raw) in zip(kept, HOSTILE.items(), strict=True):
        assert record["reason"], case
        assert len(record["reason"]) < 300, case
        assert log.read_bytes()[record["offset"]:].startswith(raw[:100]), case
    assert count(cfg, "select count(*) from events where event_id in ('first', 'last')") == 2


# --- low: what the pipeline writes is not world-readable ------------------------------------------


def test_the_database_quarantine_and_exports_are_0640_in_0750_folders(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "2024/04/01/a.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(line(id="a") + b"\n{bad\n")
    before = os.umask(0o022)  # what a login shell and most cron daemons give
    try:
        pipeline.run(cfg, progress=None)
        assert os.umask(0o022) == 0o022  # the run restored the caller's umask
    finally:
        os.umask(before)
    files = [cfg.database, *cfg.quarantine_dir.rglob("*"), *(cfg.site_dir / "exports").rglob("*"),
             *database.work_dir(cfg).rglob("*")]
    folders = [cfg.quarantine_dir, cfg.site_dir / "exports", database.work_dir(cfg)]
    assert any(p.suffix == ".csv" for p in files) and any(p.suffix == ".jsonl" for p in files)
    for path in files + folders:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o027 == 0, (path, oct(mode))
        assert mode == (0o750 if path.is_dir() else 0o640), (path, oct(mode))


def test_the_pipeline_guarantees_match_the_code() -> None:
    """docs/guarantees.md states the limits the code holds, and names tests that exist."""
    text = (ROOT / "docs/guarantees.md").read_text()
    section = text[text.index("## Pipeline"):]
    section = section[: section.find("\n## ", 1)] if "\n## " in section[1:] else section
    for limit in (f"{sources.MAX_LINE_BYTES:,} bytes", f"{sources.MAX_GZ_EXPANSION} times",
                  f"{quarantine.KEEP_LINES:,} refused lines", f"{quarantine.KEEP_BYTES:,} bytes",
                  f"umask {database.UMASK:03o}", f"quotes at most {quarantine.QUOTE_CHARS} "):
        assert limit in section, limit
    cited = re.findall(r"`(tests/\w+\.py)::(\w+)`", section)
    assert len(cited) >= 12
    for path, name in cited:
        assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), (path, name)
    # the log contract and the schema page state the same limits
    for page in ("docs/log-format.md", "docs/schema.md"):
        prose = (ROOT / page).read_text()
        for limit in ("1 MiB", f"first {quarantine.KEEP_LINES:,}",
                      f"{quarantine.KEEP_BYTES // 1024} KiB",
                      f"{sources.MAX_GZ_EXPANSION} times" if page.endswith("schema.md")
                      else f"{sources.MAX_GZ_EXPANSION} decompressed bytes"):
            assert limit in prose, (page, limit)
    assert sources.MAX_LINE_BYTES == 1 << 20


def test_duckdb_reads_any_line_the_limit_lets_through() -> None:
    """The staging model's JSON buffer must hold the longest line sources.py passes on."""
    sql = (ROOT / "pipeline/models/staging/stg_log_lines.sql").read_text()
    found = re.search(r"maximum_object_size = (\d+)", sql)
    assert found and int(found[1]) > sources.MAX_LINE_BYTES
