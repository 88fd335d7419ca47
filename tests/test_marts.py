"""The mart registry (footfall/marts.py) against everything that reads it: the real database,
the models' SQL, docs/schema.md, exports and the site; and the one small-count rule."""

from __future__ import annotations

import csv
import io
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
from test_pipeline import make_cfg

import pipeline
from footfall import marts
from footfall.config import Config
from footfall.marts import OTHER
from pipeline import database, models
from reports import render_site

SCHEMA_DOC = Path(__file__).parent.parent / "docs" / "schema.md"
_BEGIN, _END = "<!-- generated tables: begin -->\n", "<!-- generated tables: end -->"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Config:
    cfg = make_cfg(tmp_path_factory.mktemp("marts"))
    oracle.write_lines(cfg.logs_dir / "a.jsonl", oracle.generate(visitors=20))
    pipeline.run(cfg, progress=None)
    return cfg


def _registry() -> dict[str, list[tuple[str, str]]]:
    return {m.table: [(c.name, c.type) for c in m.columns] for m in marts.MARTS}


def test_the_database_holds_exactly_the_registry(built: Config) -> None:
    con = duckdb.connect(str(built.database), read_only=True)
    try:
        rows = con.execute("select table_name, column_name, data_type from duckdb_columns() "
                           "where schema_name = 'main' and database_name = current_database() "
                           "and not internal order by table_name, column_index"
                           ).fetchall()
    finally:
        con.close()
    found: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        found.setdefault(table, []).append((column, kind))
    assert found == _registry()


def test_every_model_computes_the_columns_the_registry_declares(built: Config) -> None:
    """The tables are created from the registry, so the SQL must produce what it says: the
    models before the marts are built again over the logs, then each mart's query is
    described without running it."""
    con = database.open_build(built, fresh=False)
    try:
        models.create_macros(con)
        params: dict[str, Any] = {
            "files": [str(p) for p in built.logs_dir.glob("*.jsonl")],
            "timeout_minutes": 30, "rebuild_all": True, "rebuild_from": None,
        }
        for name in models.BEFORE_MARTS:
            models.materialise(con, models.load(name), params)
        params["first_affected_day"], params["last_affected_day"] = con.execute(
            "select min(date), max(date) from int_affected_days").fetchone() or (None, None)
        for mart in marts.MARTS:
            model = models.load(mart.model)
            described = con.execute(f"describe {model.sql}",
                                    {k: params[k] for k in model.params}).fetchall()
            assert [(r[0], r[1]) for r in described] == _registry()[mart.table], mart.table
    finally:
        con.close()
        database.clean_work_files(built)


def test_schema_doc_is_generated_from_the_registry() -> None:
    text = SCHEMA_DOC.read_text(encoding="utf-8")
    before, rest = text.split(_BEGIN)
    _, after = rest.split(_END)
    want = before + _BEGIN + marts.schema_doc() + _END + after
    if os.environ.get("FOOTFALL_UPDATE_DOCS"):
        SCHEMA_DOC.write_text(want, encoding="utf-8")
        text = want
    assert text == want, "docs/schema.md is stale: FOOTFALL_UPDATE_DOCS=1 rewrites it"
    documented = set(re.findall(r"^### `([a-z_]+)`", text, flags=re.M))
    assert documented == {m.table for m in marts.MARTS}


def test_registry_names_are_unique_and_consistent() -> None:
    tables = [m.table for m in marts.MARTS]
    stems = [m.export for m in marts.MARTS if m.per_site_csv]  # only these export by stem
    keys = [p.key for _, p in marts.panels()]
    assert len(set(tables)) == len(tables) and len(set(stems)) == len(stems)
    assert len(set(keys)) == len(keys)
    for mart in marts.MARTS:
        names = [c.name for c in mart.columns]
        for name in (mart.dimension, *mart.group):
            if name is not None:
                assert name in names, (mart.table, name)
        for col in mart.columns:
            assert col.weight is None or col.weight in names, (mart.table, col.name)
        for panel in mart.panels:
            assert all(f.column in names for f in panel.figures), (mart.table, panel.key)
        if mart.panels:  # a mart's first panel carries the mart's own stem
            assert mart.panels[0].key == mart.export


def _fold(rows: list[tuple[Any, ...]], columns: list[str], mart: marts.Mart, k: int
          ) -> list[tuple[Any, ...]]:
    con = duckdb.connect()
    try:
        values = ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
        source = f"select * from (values {values}) t({', '.join(columns)})"
        return sorted(con.execute(marts.add_up_sql(mart, source, columns, fold=True),
                                  {"min_visitors": k}).fetchall(), key=repr)
    finally:
        con.close()


def _literal(value: Any) -> str:
    return "null" if value is None else repr(value)


def test_small_counts_fold_into_other_with_null_labels_and_groups() -> None:
    referrers = marts.by_table("daily_referrers")
    cols = ["site", "date", "referrer", "visitors", "visits"]
    rows = [("a", "d1", "a.example", 9, 10), ("a", "d1", "b.example", 2, 2),
            ("a", "d1", None, 1, 3), ("a", "d2", "b.example", 2, 2)]
    assert _fold(rows, cols, referrers, 3) == sorted([
        ("a", "d1", "a.example", 9, 10), ("a", "d1", OTHER, 3, 5), ("a", "d2", OTHER, 2, 2)],
        key=repr)
    assert _fold(rows, cols, referrers, 0) == sorted(rows, key=repr)
    props = marts.by_table("daily_event_props")
    cols = ["site", "date", "name", "prop", "value", "events", "visitors"]
    rows = [("a", "d", "Signup", "plan", "pro", 5, 5), ("a", "d", "Signup", "plan", "team", 1, 1),
            ("a", "d", "Buy", "sku", "x1", 1, 1)]
    assert {(r[2], r[3], r[4]) for r in _fold(rows, cols, props, 2)} == {
        ("Signup", "plan", "pro"), ("Signup", "plan", OTHER), ("Buy", "sku", OTHER)}
    pages = marts.by_table("daily_pages")
    cols = [c.name for c in pages.columns]
    rows = [("a", "d", "/x", 2, 1, 1, 1, 1, 1, 10.0, 1, 50.0, 1),
            ("a", "d", "/y", 4, 2, 0, 0, 0, 0, 40.0, 3, None, 0)]
    assert _fold(rows, cols, pages, 5) == [("a", "d", OTHER, 6, 3, 1, 1, 1, 1, 32.5, 4, 50.0, 1)]


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))


def test_no_published_row_is_below_min_visitors(tmp_path: Path) -> None:
    k = 3
    cfg = make_cfg(tmp_path, privacy={"min_visitors": k})
    events = oracle.generate(visitors=25, days=3)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    last = max(oracle.local_date(e) for e in events if e["site"] == "example.com")
    render_site(cfg, datetime.combine(last, datetime.min.time(), UTC).replace(hour=12))
    by_name = {p.csv: m for m, p in marts.panels()} | {
        f"{m.export}.csv": m for m in marts.MARTS if m.per_site_csv}
    checked = 0
    for path in cfg.site_dir.rglob("*.csv"):
        mart = by_name.get(path.name)
        if mart is None or mart.dimension is None:
            continue
        rows = _csv(path)
        if rows and "visitors" not in rows[0]:
            continue  # entry and exit pages: the same folded paths as the pages CSV beside it
        for row in rows:
            checked += 1
            assert row[mart.dimension] == OTHER or not 0 < int(row["visitors"]) < k, (path, row)
    con = duckdb.connect()
    try:
        for mart in marts.MARTS:
            if mart.dimension and mart.per_site_csv:
                folder = cfg.site_dir / "exports" / "parquet" / mart.export
                if not any(folder.rglob("*.parquet")):
                    continue  # an empty mart writes no partition
                glob = str(folder / "**" / "*.parquet")
                bad = con.execute(
                    f"select count(*) from read_parquet(?, hive_partitioning = true) "
                    f"where visitors > 0 and visitors < ? and {mart.dimension} <> ?",
                    [glob, k, OTHER]).fetchone()
                assert bad == (0,), mart.table
    finally:
        con.close()
    assert checked > 100
    # the site's one-day CSV of a panel holds exactly the export's rows of that day
    day = cfg.site_dir / "example.com" / "csv" / "yesterday"
    export = cfg.site_dir / "exports" / "example.com"
    yesterday = (last - timedelta(days=1)).isoformat()
    compared, folded = 0, 0
    for mart, panel in marts.panels():
        if panel.key != mart.export:
            continue
        exported_rows = _csv(export / f"{mart.export}.csv")
        # a panel's rates of the period (a goal's conversion rate) are not mart columns
        stored = set(exported_rows[0]) if exported_rows else set()
        shown = [{c: v for c, v in r.items() if c in stored} for r in _csv(day / panel.csv)]
        columns = list(shown[0]) if shown else []
        exported = [{c: r[c] for c in columns} for r in exported_rows
                    if r["date"] == yesterday]
        assert sorted(shown, key=_items) == sorted(exported, key=_items), mart.table
        compared += len(shown)
        folded += sum(r[str(mart.dimension)] == OTHER for r in shown)
    assert compared > 20 and folded > 0


def _items(row: dict[str, str]) -> list[tuple[str, str]]:
    return sorted(row.items())


def test_one_registry_entry_adds_a_breakdown_end_to_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/dashboard.md's promise: a new breakdown is one entry, and its mart, its export
    and its panel (with its CSV) all appear."""
    entry = marts.by_session("utm_term", "the landing URL's utm_term", "UTM term",
                             "Campaigns", "Term")
    monkeypatch.setattr(marts, "MARTS", (*marts.MARTS, entry))
    cfg = make_cfg(tmp_path)
    events = oracle.generate(visitors=12, days=2)
    for i, e in enumerate(events):
        if i % 3 == 0:
            e["utm_term"] = f"term-{i % 2}"
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        stored = con.execute("select sum(visits) from daily_utm_term where utm_term is not null"
                             ).fetchone()
    finally:
        con.close()
    assert stored is not None and stored[0] > 0
    assert (cfg.site_dir / "exports" / "example.com" / "utm-term.csv").is_file()
    last = max(oracle.local_date(e) for e in events)
    render_site(cfg, datetime.combine(last, datetime.min.time(), UTC).replace(hour=12))
    page = (cfg.site_dir / "example.com" / "index.html").read_text(encoding="utf-8")
    assert 'id="utm-term"' in page and "UTM term" in page
    assert "term-0" in page or "term-1" in page
    panel_csv = cfg.site_dir / "example.com" / "csv" / "30d" / "utm-term.csv"
    assert "term-0" in {r["utm_term"] for r in _csv(panel_csv)}
