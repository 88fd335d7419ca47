"""Ingestion: offsets, half-written lines, .gz files, quarantine, and the SQL checks agreeing
with the Python reasons."""

from __future__ import annotations

import gzip
import json
import threading
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pipeline_oracle as oracle
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pipeline
from footfall import config as config_mod
from footfall.config import Config
from pipeline import models, quarantine

GOOD = {"v": 1, "id": "id-1", "ts": "2024-04-01T10:00:00.000Z", "site": "example.com",
        "name": "pageview", "path": "/", "visitor": "0123456789abcdef"}


def make_cfg(root: Path) -> Config:
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump({
        "data_dir": str(root / "data"), "site_dir": str(root / "site"),
        "sites": [{"domain": d, "timezone": tz} for d, tz in oracle.SITES.items()],
    }))
    return config_mod.load(path)


def line(**changes: Any) -> bytes:
    event = {**GOOD, **changes}
    return json.dumps({k: v for k, v in event.items() if v is not ...}).encode()


def count(cfg: Config, sql: str) -> int:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


MALFORMED = {
    b'{"v":1,"id":"x"': "bad JSON",
    b"not json at all": "bad JSON",
    b"[1, 2]": "Expected `object`",
    b"null": "Expected `object`",
    line(id="m1", visitor=...): "missing required field `visitor`",
    line(id="m2", screen_width="wide"): "Expected `int | null`, got `str`",
    line(id="m3", v="1"): "Expected `int`, got `str`",
    line(id="m4", props={"a": {"nested": 1}}): "props",
    line(id="m5", site="nope.test"): "site 'nope.test' is not one of sites[].domain",
    line(id="m6", ts="2024-02-30T10:00:00.000Z"): "not a real date",
    line(id="m7", ts="2024-04-01 10:00:00"): "ts is not RFC 3339",
    line(id="m8", country="de"): "country is not ISO 3166",
    line(id="m9", path="no-slash"): "path starting with /",
    line(id="m10", interactive="no"): "Expected `bool | null`",
    line(id="m11", site=12): "Expected `str`, got `int`",
    line(id="m12", screen_width=1.5): "Expected `int | null`, got `float`",
    b'{"v":1,"id":"m13","ts":"2024-04-01T10:00:00.000Z","site":"example.com","name":"pageview",'
    b'"path":"/\xff\xfe","visitor":"0123456789abcdef"}': "",
}


def test_malformed_lines_go_to_quarantine_with_a_reason(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "2024/04/01/host-1-0.jsonl"
    log.parent.mkdir(parents=True)
    good = [line(id=f"g{i}") for i in range(5)]
    body = [good[0], *MALFORMED, good[1], b"", b"   ", good[2], good[3]]
    log.write_bytes(b"\n".join(body) + b"\n" + good[4][:30])  # the last line is half-written
    summary = pipeline.run(cfg, progress=None)
    assert summary.quarantined == len(MALFORMED)
    assert summary.unexplained == 0
    assert summary.new_events == 4
    records = [json.loads(x) for x in (cfg.quarantine_dir / "2024/04/01/host-1-0.jsonl")
               .read_text().splitlines()]
    assert len(records) == len(MALFORMED)
    for record, (raw, why) in zip(records, MALFORMED.items(), strict=True):
        assert record["source"] == "2024/04/01/host-1-0.jsonl"
        assert why in record["reason"], (raw, record["reason"])
        assert record["line"] == raw.decode("utf-8", errors="replace")
        assert log.read_bytes()[record["offset"]:].startswith(raw)

    # the collector finishes the half-written line: it is read then, and nothing else again
    with open(log, "ab") as f:
        f.write(good[4][30:] + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined, summary.lines_read) == (1, 0, 1)
    assert count(cfg, "select count(*) from events") == 5
    assert count(cfg, "select count(*) from pipeline.quarantine") == len(MALFORMED)
    assert len((cfg.quarantine_dir / "2024/04/01/host-1-0.jsonl").read_text().splitlines()) \
        == len(MALFORMED)


def test_a_half_line_abandoned_by_a_crash_is_quarantined_once_the_next_line_lands(
    tmp_path: Path,
) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "a.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(line(id="a") + b"\n" + line(id="b")[:20])
    assert pipeline.run(cfg, progress=None).new_events == 1
    with open(log, "ab") as f:  # a restarted collector starts a fresh line
        f.write(b"\n" + line(id="c") + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.quarantined) == (1, 1)


def test_gz_files_are_reread_whole_when_they_change(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    gz = cfg.logs_dir / "old/host.jsonl.gz"
    gz.parent.mkdir(parents=True)
    first = b"".join(line(id=f"z{i}") + b"\n" for i in range(3))
    gz.write_bytes(gzip.compress(first))
    assert pipeline.run(cfg, progress=None).new_events == 3
    assert not pipeline.run(cfg, progress=None).published
    gz.write_bytes(gzip.compress(first + line(id="z3") + b"\n" + b"{bad\n"))
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.duplicate_events, summary.quarantined) == (1, 3, 1)
    # a truncated .gz (still being written) yields its complete lines
    data = gzip.compress(b"".join(line(id=f"t{i}") + b"\n" for i in range(200)))
    (cfg.logs_dir / "partial.jsonl.gz").write_bytes(data[: len(data) // 2])
    summary = pipeline.run(cfg, progress=None)
    assert 0 < summary.new_events < 200 and summary.quarantined == 0


def test_a_replaced_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "a.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(line(id="r1") + b"\n" + line(id="r2") + b"\n")
    pipeline.run(cfg, progress=None)
    log.write_bytes(b"\n".join([line(id="r3", path="/x"), line(id="r1"), line(id="r4")]) + b"\n")
    summary = pipeline.run(cfg, progress=None)
    assert (summary.new_events, summary.duplicate_events) == (2, 1)
    assert count(cfg, "select count(*) from events") == 4


def test_only_new_bytes_are_read(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "a.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"".join(line(id=f"o{i}") + b"\n" for i in range(100)))
    pipeline.run(cfg, progress=None)
    more = b"".join(line(id=f"n{i}") + b"\n" for i in range(3))
    with open(log, "ab") as f:
        f.write(more)
    summary = pipeline.run(cfg, progress=None)
    assert (summary.bytes_read, summary.lines_read, summary.new_events) == (len(more), 3, 3)


# --- the SQL checks and the Python reasons agree -----------------------------------------------


@pytest.fixture(scope="module")
def validator(tmp_path_factory: pytest.TempPathFactory) -> Any:
    con = duckdb.connect()
    con.execute("create schema pipeline")
    con.execute("create table pipeline.sites as select * from (values "
                "('example.com', 'Europe/Berlin'), ('shop.test', 'UTC')) v(site, timezone)")
    models.create_macros(con)
    sql = models.load("staging/stg_log_lines").sql
    folder = tmp_path_factory.mktemp("lines")
    sites = frozenset(oracle.SITES)

    def verdicts(raw: bytes) -> tuple[bool, bool]:
        path = folder / "line.jsonl"
        path.write_bytes(raw + b"\n")
        rows = con.execute(f"select is_valid from ({sql})", {"files": [str(path)]}).fetchall()
        assert len(rows) == 1, raw
        return rows[0][0], quarantine.reason(raw, sites) is None

    return verdicts


scalars = st.one_of(st.none(), st.booleans(), st.integers(-10, 10**12), st.floats(allow_nan=False),
                    st.text(max_size=8), st.sampled_from(["", "/", "/a", "DE", "de", "1", "EUR",
                                                           "19.99", "-0.5", "1e3", "1.1234567",
                                                           "\u0663"]))
values = st.one_of(scalars, st.lists(scalars, max_size=2),
                   st.dictionaries(st.text(max_size=3), scalars, max_size=2))
fields = st.sampled_from([*GOOD, "screen_width", "props", "interactive", "engaged_ms",
                          "country", "referrer", "scroll_pct", "browser", "revenue_amount",
                          "revenue_currency"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(fields, st.one_of(values, st.just(...)), max_size=3),
       cut=st.one_of(st.none(), st.integers(1, 150)))
def test_sql_checks_agree_with_python_reasons(validator: Any, changes: dict[str, Any],
                                              cut: int | None) -> None:
    event = {**GOOD, **changes}
    raw = msgspec.json.encode({k: v for k, v in event.items() if v is not ...})
    if cut is not None:
        raw = raw[:cut]
    if not raw.strip():
        return
    sql_ok, python_ok = validator(raw)
    assert sql_ok == python_ok, (raw, quarantine.reason(raw, frozenset(oracle.SITES)))


def test_a_file_growing_while_it_is_read_loses_and_repeats_nothing(tmp_path: Path) -> None:
    """The collector appends to today's file during a run: the lines it adds while DuckDB
    reads the file in place are taken by the next run, whole and once."""
    cfg = make_cfg(tmp_path)
    log = cfg.logs_dir / "today.jsonl"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"".join(line(id=f"a{i}") + b"\n" for i in range(40_000)))
    stop = threading.Event()
    appended = 0

    def collector() -> None:
        nonlocal appended
        with open(log, "ab", buffering=0) as f:
            while not stop.is_set():
                f.write(line(id=f"b{appended}") + b"\n")
                appended += 1
                stop.wait(0.0005)

    writer = threading.Thread(target=collector)
    writer.start()
    try:
        first = pipeline.run(cfg, progress=None)
    finally:
        stop.set()
        writer.join()
    second = pipeline.run(cfg, progress=None)
    assert appended > 0
    assert first.quarantined == second.quarantined == 0
    assert first.new_events + second.new_events == 40_000 + appended
    assert count(cfg, "select count(distinct event_id) from events") == 40_000 + appended


def test_endless_unique_event_names_and_props_are_capped_per_day(tmp_path: Path) -> None:
    """Hostile traffic with a new name, prop or value on every event: the daily marts keep
    the first 1,000 of each per site and day and count the rest under (other); nothing is
    dropped, and the events table keeps every name."""
    cfg = make_cfg(tmp_path)
    n = 1500
    lines = [line(id=f"n{i}", name=f"name {i}", props={f"key {i}": "x"}) for i in range(n)]
    lines += [line(id=f"v{i}", name="Signup", props={"plan": f"value {i}"}) for i in range(n)]
    (cfg.logs_dir).mkdir(parents=True)
    (cfg.logs_dir / "hostile.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    pipeline.run(cfg, progress=None)
    assert count(cfg, "select count(distinct name) from events") == n + 1
    assert count(cfg, "select count(*) from daily_events") == 1000 + 1
    assert count(cfg, "select sum(events) from daily_events") == 2 * n
    assert count(cfg, "select events from daily_events where name = '(other)'") == n + 1 - 1000
    assert count(cfg, "select count(*) from daily_event_props "
                      "where name = '(other)' and prop = '(other)'") == 1
    assert count(cfg, "select count(distinct (name, prop)) from daily_event_props") == 1000 + 1
    assert count(cfg, "select count(*) from daily_event_props "
                      "where name = 'Signup' and prop = 'plan'") == 1000 + 1
    assert count(cfg, "select sum(events) from daily_event_props") == 2 * n
