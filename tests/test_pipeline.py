"""The pipeline against an independent oracle, and the metamorphic properties it must keep.

Every test runs the real thing: JSONL files on disk, `pipeline.run`, a DuckDB file in
tmp_path. Expected figures come from tests/pipeline_oracle.py, which shares no code with
pipeline/.
"""

from __future__ import annotations

import gzip
import math
import random
import shutil
from datetime import date
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
from footfall.marts import MARTS
from pipeline.checks import run_checks


def make_cfg(root: Path, **overrides: Any) -> Config:
    raw: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "site_dir": str(root / "site"),
        "sites": [{"domain": d, "timezone": tz} for d, tz in oracle.SITES.items()],
        "sessions": {"timeout_minutes": 30},
        "funnels": oracle.FUNNELS,
        "pipeline": {"memory_limit": "1GB", "threads": 2},
    }
    raw.update(overrides)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config_mod.load(path)


def snapshot(cfg: Config) -> dict[str, list[tuple[Any, ...]]]:
    """Every public table, rows sorted, for comparing two databases."""
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        return {m.table: sorted(con.sql(f"select * from {m.table}").fetchall(), key=repr)
                for m in MARTS}
    finally:
        con.close()


def query(cfg: Config, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


def assert_checks_pass(cfg: Config) -> None:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        failures = run_checks(con)
    finally:
        con.close()
    assert not failures, "\n".join(f.describe() for f in failures)


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


@pytest.fixture(scope="module")
def dataset() -> list[dict[str, Any]]:
    return oracle.generate()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dataset: list[dict[str, Any]]) -> Config:
    """One full run over the dataset, shared by the oracle tests."""
    cfg = make_cfg(tmp_path_factory.mktemp("oracle"))
    oracle.write_lines(cfg.logs_dir / "2024/03/29/host-1-0.jsonl", dataset)
    summary = pipeline.run(cfg, progress=None)
    assert summary.new_events == len(dataset)
    assert summary.quarantined == 0
    return cfg


# --- the oracle ------------------------------------------------------------------------------


def test_dataset_exercises_the_edge_cases(dataset: list[dict[str, Any]]) -> None:
    sessions = oracle.sessions(dataset)
    assert any(s.started_at.date() != s.ended_at.date() or
               oracle.local_date({"ts": oracle.ts(s.ended_at), "site": s.site}) != s.date
               for s in sessions), "no session crosses midnight"
    assert any(s.is_bounce for s in sessions) and any(not s.is_bounce for s in sessions)
    days = {(s.site, s.date) for s in sessions}
    assert {d for site, d in days if site == "example.com"} >= {date(2024, 3, 31)}


def test_sessions_match_the_oracle(built: Config, dataset: list[dict[str, Any]]) -> None:
    expected = {
        s.session_id: (s.site, s.visitor_id, s.date, s.started_at.replace(tzinfo=None),
                       s.ended_at.replace(tzinfo=None), s.pageviews, len(s.events), s.is_bounce)
        for s in oracle.sessions(dataset)
    }
    durations = {s.session_id: s.duration_s for s in oracle.sessions(dataset)}
    rows = query(built, "select session_id, site, visitor_id, date, started_at, ended_at, "
                        "pageviews, events, is_bounce, duration_s from sessions")
    got = {r[0]: r[1:9] for r in rows}
    assert got == expected
    for r in rows:
        assert close(r[9], durations[r[0]])


def test_every_event_gets_its_session_and_local_date(
    built: Config, dataset: list[dict[str, Any]]
) -> None:
    expected = {}
    for s in oracle.sessions(dataset):
        for e in s.events:
            expected[e["id"]] = (s.session_id, oracle.local_date(e))
    rows = query(built, "select event_id, session_id, date from events")
    got = {r[0]: (r[1], r[2]) for r in rows}
    assert got == expected


def test_daily_stats_match_the_oracle(built: Config, dataset: list[dict[str, Any]]) -> None:
    expected = oracle.daily_stats(dataset)
    rows = query(built, "select site, date, visitors, visits, pageviews, views_per_visit, "
                        "bounce_rate, visit_duration_s from daily_stats")
    assert {(r[0], r[1]) for r in rows} == set(expected)
    for site, day, visitors, visits, pageviews, vpv, bounce, duration in rows:
        want = expected[site, day]
        assert (visitors, visits, pageviews) == (
            want["visitors"], want["visits"], want["pageviews"]), (site, day)
        assert close(vpv, want["views_per_visit"])
        assert close(bounce, want["bounce_rate"])
        assert close(duration, want["visit_duration_s"])


def test_funnels_match_the_oracle(built: Config, dataset: list[dict[str, Any]]) -> None:
    expected = oracle.funnel_steps(dataset)
    rows = query(built, "select site, funnel, date, step, visits, median_seconds_from_previous "
                        "from funnel_steps")
    got = {(r[0], r[1], r[2], r[3]): (r[4], r[5]) for r in rows}
    assert set(got) == set(expected)
    for key, (visits, median) in got.items():
        assert visits == expected[key][0], key
        assert close(median, expected[key][1]), key
    assert any(v > 0 for (_s, _f, _d, step), (v, _m) in got.items() if step == 3)


def test_pages_match_the_oracle(built: Config, dataset: list[dict[str, Any]]) -> None:
    expected = oracle.daily_pages(dataset)
    rows = query(built, "select site, date, path, pageviews, visitors, entries, exits, "
                        "avg_time_on_page_s from daily_pages")
    assert {(r[0], r[1], r[2]) for r in rows} == set(expected)
    for site, day, path, pageviews, visitors, entries, exits, avg_time in rows:
        want = expected[site, day, path]
        assert (pageviews, visitors, entries, exits) == (
            want["pageviews"], want["visitors"], want["entries"], want["exits"])
        assert close(avg_time, want["avg_time_on_page_s"]), (site, day, path)


def test_breakdowns_count_sessions_of_the_day(built: Config, dataset: list[dict[str, Any]]) -> None:
    visits: dict[tuple[str, date, str | None], int] = {}
    for s in oracle.sessions(dataset):
        key = (s.site, s.date, s.events[0].get("source"))
        visits[key] = visits.get(key, 0) + 1
    got = {(r[0], r[1], r[2]): r[3] for r in query(
        built, "select site, date, source, visits from daily_sources")}
    assert got == visits
    totals = query(built, "select sum(visits) from daily_countries")[0][0]
    assert totals == len(oracle.sessions(dataset))


def test_data_tests_pass(built: Config) -> None:
    assert_checks_pass(built)


# --- metamorphic -------------------------------------------------------------------------------


def test_shuffling_and_splitting_across_files_changes_nothing(
    tmp_path: Path, built: Config, dataset: list[dict[str, Any]]
) -> None:
    cfg = make_cfg(tmp_path)
    lines = list(dataset)
    random.Random(3).shuffle(lines)
    cut1, cut2 = len(lines) // 3, 2 * len(lines) // 3
    oracle.write_lines(cfg.logs_dir / "a/one.jsonl", lines[:cut1])
    oracle.write_lines(cfg.logs_dir / "b/c/two.jsonl", lines[cut1:cut2])
    gz = cfg.logs_dir / "three.jsonl.gz"
    gz.write_bytes(gzip.compress(b"".join(msgspec.json.encode(e) + b"\n" for e in lines[cut2:])))
    pipeline.run(cfg, progress=None)
    assert snapshot(cfg) == snapshot(built)


def test_running_twice_changes_nothing(tmp_path: Path, dataset: list[dict[str, Any]]) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "x.jsonl", dataset)
    pipeline.run(cfg, progress=None)
    first = snapshot(cfg)
    summary = pipeline.run(cfg, progress=None)
    assert not summary.published and summary.new_events == 0
    assert snapshot(cfg) == first
    pipeline.run(cfg, full=True, progress=None)
    assert snapshot(cfg) == first
    pipeline.run(cfg, since=date(2024, 3, 31), progress=None)
    assert snapshot(cfg) == first


def test_incremental_runs_after_appends_equal_a_full_run(
    tmp_path: Path, built: Config, dataset: list[dict[str, Any]]
) -> None:
    """Events arrive in time order over several runs, into a growing file, a rotated file and
    a late file from another host; the result equals one full run."""
    cfg = make_cfg(tmp_path)
    ordered = sorted(dataset, key=lambda e: e["ts"])
    late = ordered[::17]  # a host whose log arrives last, with events from every day
    on_time = [e for i, e in enumerate(ordered) if i % 17]
    size = len(on_time) // 4 + 1
    chunks = [on_time[j:j + size] for j in range(0, len(on_time), size)]
    live = cfg.logs_dir / "2024/03/29/host-1-0.jsonl"
    for n, chunk in enumerate(chunks):
        half = len(chunk) // 2
        oracle.write_lines(live, chunk[:half])
        oracle.write_lines(cfg.logs_dir / f"2024/03/29/host-1-{n + 1}.jsonl", chunk[half:])
        summary = pipeline.run(cfg, progress=None)
        assert summary.new_events == len(chunk)
        assert_checks_pass(cfg)
    oracle.write_lines(cfg.logs_dir / "other-host/late.jsonl", late)
    pipeline.run(cfg, progress=None)
    assert snapshot(cfg) == snapshot(built)
    pipeline.run(cfg, full=True, progress=None)
    assert snapshot(cfg) == snapshot(built)


def test_a_late_event_merges_sessions_across_midnight(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    visitor = "0123456789abcdef"

    def event(i: int, at: str, name: str = "pageview") -> dict[str, Any]:
        return {"v": 1, "id": f"e{i}", "ts": at, "site": "example.com", "name": name,
                "path": "/", "visitor": visitor}

    # Berlin is UTC+1 on 30 March: 22:50Z is 23:50 local, 23:30Z is 00:30 the next day
    oracle.write_lines(cfg.logs_dir / "a.jsonl", [event(1, "2024-03-30T22:50:00.000Z"),
                                                  event(3, "2024-03-30T23:30:00.000Z")])
    pipeline.run(cfg, progress=None)
    assert query(cfg, "select date, visits from daily_stats order by date") == [
        (date(2024, 3, 30), 1), (date(2024, 3, 31), 1)]
    oracle.write_lines(cfg.logs_dir / "b.jsonl", [event(2, "2024-03-30T23:10:00.000Z")])
    pipeline.run(cfg, progress=None)
    assert query(cfg, "select date, visits, visitors from daily_stats order by date") == [
        (date(2024, 3, 30), 1, 1), (date(2024, 3, 31), 0, 1)]
    assert query(cfg, "select session_id, date, duration_s, is_bounce from sessions") == [
        ("e1", date(2024, 3, 30), 2400.0, False)]
    assert_checks_pass(cfg)


def test_a_copied_file_is_ingested_once(tmp_path: Path, dataset: list[dict[str, Any]]) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", dataset[:100])
    pipeline.run(cfg, progress=None)
    shutil.copy(cfg.logs_dir / "a.jsonl", cfg.logs_dir / "copy-of-a.jsonl")
    oracle.write_lines(cfg.logs_dir / "b.jsonl", dataset[50:150] + dataset[50:60])
    summary = pipeline.run(cfg, progress=None)
    assert summary.new_events == 50
    assert summary.duplicate_events == 100 + 50 + 10
    assert query(cfg, "select count(*) from events") == [(150,)]


def test_a_config_change_rebuilds_from_stored_events(
    tmp_path: Path, dataset: list[dict[str, Any]]
) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", dataset)
    pipeline.run(cfg, progress=None)
    before = query(cfg, "select count(*) from sessions")[0][0]
    shorter = make_cfg(tmp_path, sessions={"timeout_minutes": 5})
    summary = pipeline.run(shorter, progress=None)
    assert summary.published and summary.new_events == 0
    assert query(shorter, "select count(*) from sessions")[0][0] > before
    assert_checks_pass(shorter)


def test_the_definitions_are_in_docs_metrics_word_for_word() -> None:
    text = " ".join((Path(__file__).parent.parent / "docs" / "metrics.md").read_text().split())
    for sentence in [
        "A visitor's events on one site, ordered by time. A new session starts when the gap "
        "since that visitor's previous event exceeds `sessions.timeout_minutes` (30).",
        "Sessions are not cut at midnight.",
        "A session belongs to the local date of its first event.",
        "All events, including non-interactive ones, extend a session.",
        "Last event time minus first event time, in seconds. Engagement events count, so a "
        "single-page visit with an engagement event has a real duration.",
        "A session with at most one interactive event. Pageviews and custom events count "
        "unless `interactive` is false.",
        "`visitors`: distinct visitor ids among that day's events;",
        "`visits`: sessions that started that day;",
        "`pageviews`: that day's pageview events;",
        "`views_per_visit`: pageviews of that day's sessions divided by visits;",
        "`bounce_rate`: 100 × bounced visits / visits;",
        "`visit_duration_s`: the mean duration of that day's sessions.",
        "Over a range, visitors are the sum of daily visitors",
        "a session reaches step k if it has events matching steps 1..k in time order;",
        "a `path` step matches pageviews by exact path or a `*` glob;",
        "an `event` step matches a custom event by name, optionally with `props` equal to "
        "given values.",
    ]:
        assert sentence in text.replace("**", ""), sentence


# --- the sessioniser, property-based -----------------------------------------------------------

gaps = st.one_of(
    st.integers(0, 5_000),  # milliseconds: ties and near-ties
    st.sampled_from([30 * 60_000 - 1, 30 * 60_000, 30 * 60_000 + 1]),  # right at the timeout
    st.integers(60_000, 3 * 3_600_000),
)
timelines = st.lists(
    st.tuples(st.sampled_from(["pageview", "engagement", "Signup"]), gaps),
    min_size=1, max_size=12,
)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(visitors=st.lists(timelines, min_size=1, max_size=3),
       start=st.integers(0, 48 * 3_600_000), split=st.integers(0, 40))
def test_sessions_match_the_oracle_for_any_timeline(
    tmp_path_factory: pytest.TempPathFactory, visitors: list[list[tuple[str, int]]],
    start: int, split: int,
) -> None:
    """Any visitors' timelines (ties, gaps right at the timeout, midnight in Berlin), read in
    two runs split anywhere, give the oracle's sessions."""
    cfg = make_cfg(tmp_path_factory.mktemp("timeline"))
    events = oracle.timeline_events(visitors, int(oracle.START.timestamp() * 1000) + start,
                                    "example.com")
    shuffled = list(events)
    random.Random(split).shuffle(shuffled)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", shuffled[:split])
    if split:
        pipeline.run(cfg, progress=None)
    oracle.write_lines(cfg.logs_dir / "b.jsonl", shuffled[split:])
    pipeline.run(cfg, progress=None)
    expected = {(s.session_id, s.date, len(s.events), s.is_bounce)
                for s in oracle.sessions(events)}
    got = set(query(cfg, "select session_id, date, events, is_bounce from sessions"))
    assert got == expected
    assert_checks_pass(cfg)
