"""`footfall import plausible`: Plausible's CSV export into the daily marts, for the days
before the site's first footfall event; marked, idempotent, kept by every kind of run."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import duckdb
import pytest

import pipeline
from footfall.cli import main
from footfall.config import Config
from footfall.errors import PipelineError
from pipeline.imports import import_plausible

FIXTURE = Path(__file__).parent / "fixtures" / "plausible-export"


def export_zip(folder: Path, skip: tuple[str, ...] = ()) -> Path:
    """The fixture as Plausible's Export hands it over: one zip of CSVs."""
    path = folder / "plausible-export.zip"
    with zipfile.ZipFile(path, "w") as z:
        for csv in sorted(FIXTURE.glob("*.csv")):
            if not csv.name.startswith(skip):
                z.write(csv, csv.name)
    return path


def tracker_day(cfg: Config) -> None:
    """A footfall event on 3 Feb: from then on the tracker's figures are the truth."""
    cfg.logs_dir.mkdir(parents=True, exist_ok=True)
    (cfg.logs_dir / "a.jsonl").write_text(
        '{"v":1,"id":"e1","ts":"2026-02-03T10:00:00.000Z","site":"example.com",'
        '"name":"pageview","path":"/","visitor":"0123456789abcdef"}\n')


def rows(cfg: Config, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def marts_state(cfg: Config) -> dict[str, list[tuple[Any, ...]]]:
    from footfall.marts import MARTS

    return {m.table: sorted(rows(cfg, f"select * from {m.table}"), key=repr) for m in MARTS}


def test_import_fills_the_days_before_the_first_event(tmp_path: Path, config: Config) -> None:
    tracker_day(config)
    pipeline.run(config, progress=None)
    summary = import_plausible(config, export_zip(tmp_path), "example.com")
    assert (summary.days, summary.skipped_days) == (2, 1)
    assert len(summary.tables) == 10
    stats = rows(config, "select date::varchar, visitors, visits, pageviews, bounce_rate, "
                         "visit_duration_s, is_imported from daily_stats "
                         "where site = 'example.com' order by date")
    assert stats == [
        ("2026-02-01", 40, 44, 95, pytest.approx(100 * 18 / 44), 120.0, True),
        ("2026-02-02", 52, 60, 120, pytest.approx(100 * 20 / 60), 110.0, True),
        ("2026-02-03", 1, 1, 1, 100.0, 0.0, False),  # the tracker's day, not the import's
    ]
    assert rows(config, "select source, visitors, visits from daily_sources "
                        "where date = '2026-02-01' order by source nulls first") == [
        (None, 18, 20), ("Google", 14, 15), ("Newsletter", 8, 9)]
    assert rows(config, "select path, pageviews, visitors, entries, exits from daily_pages "
                        "where date = '2026-02-02' order by path") == [
        ("/", 70, 36, 40, 35), ("/blog/hello", 50, 20, 20, 25)]
    assert rows(config, "select country, sum(visitors) from daily_countries "
                        "where date = '2026-02-01' group by all order by 1") == [
        ("DE", 25), ("US", 15)]
    assert rows(config, "select device from daily_devices where date = '2026-02-02' "
                        "order by 1") == [("desktop",), ("tablet",)]
    assert rows(config, "select browser, visitors from daily_browsers "
                        "where date = '2026-02-01' order by 1") == [("Chrome", 22), ("Firefox", 18)]
    assert rows(config, "select name, prop, value, events from daily_event_props "
                        "order by date, name") == [
        ("Outbound Link: Click", "url", "https://github.com/acme", 5), ("404", "path",
                                                                        "/old-page", 2)]
    # never mixed into events or sessions
    assert rows(config, "select count(*), min(date)::varchar from sessions") == [(1, "2026-02-03")]
    # the exports carry the history, formula guard included
    pages = (config.site_dir / "exports" / "example.com" / "pages.csv").read_text()
    events = (config.site_dir / "exports" / "example.com" / "events.csv").read_text()
    assert "2026-02-01" in pages and "'=1+2" in events


def test_reimport_changes_nothing_and_every_run_keeps_the_history(
        tmp_path: Path, config: Config) -> None:
    tracker_day(config)
    pipeline.run(config, progress=None)
    archive = export_zip(tmp_path)
    import_plausible(config, archive, "example.com")
    first = marts_state(config)
    import_plausible(config, archive, "example.com")
    assert marts_state(config) == first
    pipeline.run(config, full=True, progress=None)
    assert marts_state(config) == first
    (config.logs_dir / "a.jsonl").open("a").write(
        '{"v":1,"id":"e2","ts":"2026-02-03T11:00:00.000Z","site":"example.com",'
        '"name":"pageview","path":"/x","visitor":"0123456789abcdef"}\n')
    pipeline.run(config, progress=None)
    imported = rows(config, "select date::varchar from daily_stats where is_imported "
                            "order by 1")
    assert imported == [("2026-02-01",), ("2026-02-02",)]


def test_before_any_event_every_day_is_imported(tmp_path: Path, config: Config) -> None:
    summary = import_plausible(config, export_zip(tmp_path, skip=("imported_pages",)),
                               "example.com")
    assert (summary.days, summary.skipped_days) == (3, 0)
    assert "imported_pages" not in summary.tables
    assert rows(config, "select count(*) from daily_pages") == [(0,)]  # needs all three files
    pipeline.run(config, progress=None)  # an empty first run keeps it
    assert rows(config, "select count(*) from daily_stats where is_imported") == [(3,)]


@pytest.mark.parametrize(("make", "message"), [
    (lambda d: d / "missing.zip", "does not exist"),
    (lambda d: _write(d / "x.zip", b"not a zip at all"), "not a readable zip"),
    (lambda d: _zip(d / "y.zip", {"readme.txt": "hi"}), "no imported_visitors"),
    (lambda d: _zip(d / "z.zip", {"imported_visitors_20260201_20260201.csv":
                                  "date,visitors\n2026-02-01,3\n"}), "has no column"),
])
def test_a_bad_archive_is_refused_and_changes_nothing(
        tmp_path: Path, config: Config, make: Any, message: str) -> None:
    tracker_day(config)
    pipeline.run(config, progress=None)
    before = config.database.read_bytes()
    with pytest.raises(PipelineError, match=message):
        import_plausible(config, make(tmp_path), "example.com")
    assert config.database.read_bytes() == before


def test_an_unknown_site_is_refused(tmp_path: Path, config: Config) -> None:
    with pytest.raises(PipelineError, match="not a site"):
        import_plausible(config, export_zip(tmp_path), "other.example")


def _write(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, text in members.items():
            z.writestr(name, text)
    return path


def test_the_command_imports_then_renders_and_errors_are_one_line(
        tmp_path: Path, config: Config, capsys: Any) -> None:
    archive = export_zip(tmp_path)
    code = main(["import", "plausible", str(archive), "--site", "example.com",
                 "--config", str(config.source)])
    err = capsys.readouterr().err
    assert code == 0 and "imported 3 days of example.com" in err
    month = (config.site_dir / "example.com" / "2026-02.html").read_text(encoding="utf-8")
    assert "/blog/hello" in month
    assert "3 days of this period were imported from Plausible" in month
    code = main(["import", "plausible", str(tmp_path / "nope.zip"), "--site", "example.com",
                 "--config", str(config.source)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
