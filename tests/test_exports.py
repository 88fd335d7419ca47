"""site_dir/exports: CSV per mart and site, raw days, Parquet, formula injection, privacy."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
import yaml

import pipeline
from footfall import config as config_mod
from footfall.config import Config
from footfall.marts import MARTS

VISITOR = "0123456789abcdef"


def make_cfg(root: Path, **overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "data_dir": str(root / "data"), "site_dir": str(root / "site"),
        "sites": [{"domain": d, "timezone": tz} for d, tz in oracle.SITES.items()],
        "funnels": oracle.FUNNELS, **overrides,
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.yaml").write_text(yaml.safe_dump(raw))
    return config_mod.load(root / "config.yaml")


def read_csv(path: Path) -> list[dict[str, str]]:
    raw = path.read_bytes()
    assert raw.endswith(b"\r\n")
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))


def event(i: int, **fields: Any) -> dict[str, Any]:
    return {"v": 1, "id": f"x{i}", "ts": f"2024-04-01T10:{i:02d}:00.000Z", "site": "shop.test",
            "name": "pageview", "path": "/", "visitor": VISITOR, **fields}


HOSTILE = ["=HYPERLINK(\"http://evil\")", "+SUM(A1)", "-2+3", "@cmd", "\tTAB", "\rCR"]


def test_csv_cells_are_quoted_and_neutralised(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    events = [event(i, path=f"/{p}" if i % 2 else "/x", name="pageview", visitor=f"{i:016x}",
                    source=p, utm_campaign=f'a,"quoted"\nline {i}', screen_width=-5)
              for i, p in enumerate(HOSTILE)]
    events += [event(10 + i, name=p, props={"k": p}) for i, p in enumerate(HOSTILE)]
    events.append(event(30, path="/ünïcode", referrer="bücher.example/ß"))
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    root = cfg.site_dir / "exports" / "shop.test"

    sources = {row["source"] for row in read_csv(root / "sources.csv")}
    for text in HOSTILE:
        assert "'" + text in sources, text
        assert text not in sources
    names = {row["name"] for row in read_csv(root / "events.csv")}
    assert {"'" + t for t in HOSTILE} <= names
    values = {(row["prop"], row["value"]) for row in read_csv(root / "event-props.csv")}
    assert ("k", "'=HYPERLINK(\"http://evil\")") in values

    raw = read_csv(root / "raw" / "2024-04-01.csv")
    assert len(raw) == len(events)
    assert {row["screen_width"] for row in raw if row["name"] == "pageview"} >= {"-5"}
    assert any(row["utm_campaign"] == "a,\"quoted\"\nline 1" for row in raw)
    assert any(row["path"] == "/ünïcode" for row in raw)
    assert raw[0]["occurred_at"].endswith("Z") and "T" in raw[0]["occurred_at"]
    for row in raw:
        for cell in row.values():
            assert not cell or cell[0] not in "=+-@\t\r" or cell.lstrip("-").isdigit()


def test_every_mart_is_exported_per_site_with_a_header(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    dataset = oracle.generate(visitors=15)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", dataset)
    pipeline.run(cfg, progress=None)
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        for table, stem in ((m.table, m.export) for m in MARTS if m.per_site_csv):
            for site in oracle.SITES:
                path = cfg.site_dir / "exports" / site / f"{stem}.csv"
                header = path.read_text(encoding="utf-8").splitlines()[0]
                assert header.startswith("site,"), (path, header)
                rows = read_csv(path)
                want = con.execute(f"select count(*) from {table} where site = ?",
                                   [site]).fetchone()
                assert want is not None and len(rows) == want[0], table
            parquet = cfg.site_dir / "exports" / "parquet" / stem
            got = con.execute(
                "select count(*) from read_parquet(?, hive_partitioning = true)",
                [str(parquet / "**" / "*.parquet")],
            ).fetchone() if any(parquet.rglob("*.parquet")) else (0,)
            assert got == con.execute(f"select count(*) from {table}").fetchone(), table
        days = {r[0] for r in con.execute("select distinct date from events "
                                          "where site = 'example.com'").fetchall()}
    finally:
        con.close()
    raw = {p.stem for p in (cfg.site_dir / "exports" / "example.com" / "raw").iterdir()}
    assert raw == {d.isoformat() for d in days}


def test_privacy_folds_rare_rows_into_other(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, privacy={"min_visitors": 3})
    events = []
    for v in range(5):  # five visitors on /popular, one each on two rare paths
        events.append(event(v, visitor=f"{v:016x}", path="/popular"))
    events += [event(10, visitor="a" * 16, path="/rare-1"), event(11, visitor="b" * 16,
                                                                   path="/rare-2")]
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    pages = {row["path"]: row for row in read_csv(
        cfg.site_dir / "exports" / "shop.test" / "pages.csv")}
    assert set(pages) == {"/popular", "(other)"}
    assert pages["(other)"]["pageviews"] == "2" and pages["(other)"]["visitors"] == "2"
    assert not (cfg.site_dir / "exports" / "shop.test" / "raw").exists()
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:  # the database keeps every row; parquet is folded like the CSV
        assert con.execute("select count(*) from daily_pages").fetchone() == (3,)
        paths = {r[0] for r in con.execute(
            "select path from read_parquet(?, hive_partitioning = true)",
            [str(cfg.site_dir / "exports/parquet/pages/**/*.parquet")]).fetchall()}
    finally:
        con.close()
    assert paths == {"/popular", "(other)"}


@pytest.mark.parametrize("min_visitors", [0, 2])
def test_exports_are_rewritten_identically_by_a_full_run(tmp_path: Path, min_visitors: int) -> None:
    cfg = make_cfg(tmp_path, privacy={"min_visitors": min_visitors})
    dataset = sorted(oracle.generate(visitors=12), key=lambda e: e["ts"])
    oracle.write_lines(cfg.logs_dir / "a.jsonl", dataset[: len(dataset) // 2])
    pipeline.run(cfg, progress=None)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", dataset[len(dataset) // 2:])
    pipeline.run(cfg, progress=None)
    root = cfg.site_dir / "exports"

    def contents() -> dict[Any, Any]:
        # raw day files list their rows in no particular order; the mart files are sorted
        files: dict[Any, Any] = {
            p: sorted(map(tuple, csv.reader(io.StringIO(p.read_text(), newline=""))))
            if p.parent.name == "raw" else p.read_bytes() for p in root.rglob("*.csv")}
        con = duckdb.connect()
        for stem in (m.export for m in MARTS if m.per_site_csv):
            parts = root / "parquet" / stem
            files[stem] = sorted(con.execute(
                "select * from read_parquet(?, hive_partitioning = true)",
                [str(parts / "**" / "*.parquet")]).fetchall(), key=repr
            ) if any(parts.rglob("*.parquet")) else []  # an empty mart writes no partition
        con.close()
        return files

    incremental = contents()
    pipeline.run(cfg, full=True, progress=None)
    assert contents() == incremental


def test_only_changed_raw_days_are_rewritten(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", oracle.generate(visitors=12))
    pipeline.run(cfg, progress=None)
    raw = sorted((cfg.site_dir / "exports").glob("*/raw/*.csv"))
    assert len(raw) > 4

    def stamps() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns)
                for p in (cfg.site_dir / "exports").glob("*/raw/*.csv")}

    before = stamps()
    pipeline.run(cfg, full=True, progress=None)
    assert stamps() == before  # same rows: the files are left alone

    raw[0].unlink()
    raw[1].write_text("edited by hand\r\n")
    pipeline.run(cfg, full=True, progress=None)
    after = stamps()
    assert set(after) == set(before)
    assert {p for p in after if after[p] != before[p]} == {raw[0], raw[1]}
    assert read_csv(raw[1])[0]["event_id"]

    # a shorter session timeout changes session ids: every affected day is written again
    cfg = make_cfg(tmp_path, sessions={"timeout_minutes": 1})
    pipeline.run(cfg, progress=None)
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        for path in raw:
            site, day = path.parent.parent.name, path.stem
            want = set(con.execute("select event_id, session_id from events "
                                   "where site = ? and date = ?", [site, day]).fetchall())
            assert {(r["event_id"], r["session_id"]) for r in read_csv(path)} == want, path
    finally:
        con.close()

    # turning small-count suppression on removes the raw days written before
    cfg = make_cfg(tmp_path, sessions={"timeout_minutes": 1}, privacy={"min_visitors": 2})
    pipeline.run(cfg, full=True, progress=None)
    assert not any((cfg.site_dir / "exports").glob("*/raw/*.csv"))
