"""A/B experiments: the experiment_results mart from real log lines through the real
pipeline, its statistics against reference values, and the assignment rules.

The reference numbers were computed once with scipy 1.17.1 and statsmodels 0.15.0 (neither is
a dependency): `proportion_confint(method="wilson")`, `confint_proportions_2indep(method=
"newcomb", compare="diff")` and `(method="log", compare="ratio")`, the pooled z-test as
`2 * norm.sf(|z|)`, `fisher_exact(...).pvalue` and `chisquare(...).pvalue`.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import itertools
import re
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
from test_pipeline import assert_checks_pass, make_cfg

import pipeline
from footfall.config import Config
from footfall.errors import ConfigError
from reports import experiments, render_site

SITE = "shop.test"  # UTC, so the local dates below are the UTC dates
START = datetime(2026, 3, 2, 8, tzinfo=UTC)
_ids = itertools.count(1)


@dataclass
class Traffic:
    lines: list[dict[str, Any]]

    def add(self, visitor: str, at: datetime, name: str, path: str = "/", **extra: Any) -> None:
        self.lines.append({"v": 1, "id": f"x{next(_ids):015d}", "ts": oracle.ts(at),
                           "site": SITE, "name": name, "path": path, "visitor": visitor,
                           **extra})

    def arm(self, prop: str, variant: str, visitors: int, converting: int) -> None:
        """`visitors` visitors see `variant` on a pageview; the first `converting` of them
        then send the goal event (Signup with plan=pro), spread over three days."""
        for i in range(visitors):
            visitor = f"{next(_ids):016x}"
            at = START + timedelta(days=i % 3, minutes=i % 600)
            self.add(visitor, at, "pageview", props={prop: variant})
            if i < converting:
                self.add(visitor, at + timedelta(seconds=5), "Signup", props={"plan": "pro"})


def _experiment(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "site": SITE, "prop": name, "control": "A",
            "goal": {"event": "Signup", "props": {"plan": "pro"}}, **extra}


#: (experiment, {variant: (visitors, converting)}, extra config)
ARMS: list[tuple[str, dict[str, tuple[int, int]], dict[str, Any]]] = [
    ("big", {"A": (1000, 100), "B": (1000, 130)}, {}),
    ("small", {"A": (20, 1), "B": (20, 6)}, {}),
    ("zero", {"A": (25, 3), "B": (30, 0)}, {}),
    ("all", {"A": (15, 9), "B": (12, 12)}, {}),
    ("weighted", {"A": (500, 0), "B": (520, 0), "C": (900, 0)},
     {"weights": {"A": 1, "B": 1, "C": 2}}),
    ("four", {"A": (100, 0), "B": (120, 0), "C": (90, 0), "D": (130, 0)}, {}),
    ("five", {"A": (200, 0), "B": (210, 0), "C": (190, 0), "D": (260, 0), "E": (205, 0)}, {}),
    ("broken", {"A": (1000, 0), "B": (1300, 0)}, {}),
]


def _results(cfg: Config) -> dict[tuple[str, str], dict[str, Any]]:
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        cur = con.execute("select * from experiment_results")
        names = [d[0] for d in cur.description]
        return {(r[1], r[2]): dict(zip(names, r, strict=True)) for r in cur.fetchall()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def built_cfg(tmp_path_factory: pytest.TempPathFactory) -> Config:
    traffic = Traffic([])
    for name, arms, _extra in ARMS:
        for variant, (visitors, converting) in arms.items():
            traffic.arm(name, variant, visitors, converting)
    cfg = make_cfg(tmp_path_factory.mktemp("experiments"),
                   experiments=[_experiment(name, **extra) for name, _arms, extra in ARMS])
    oracle.write_lines(cfg.logs_dir / "a.jsonl", traffic.lines)
    pipeline.run(cfg, progress=None)
    return cfg


@pytest.fixture(scope="module")
def built(built_cfg: Config) -> dict[tuple[str, str], dict[str, Any]]:
    return _results(built_cfg)


def test_the_data_checks_pass(built_cfg: Config) -> None:
    assert_checks_pass(built_cfg)  # pipeline/checks/experiment_figures_in_range.sql among them


def test_counts_and_rates(built: dict[tuple[str, str], dict[str, Any]]) -> None:
    for name, arms, _extra in ARMS:
        for variant, (visitors, converting) in arms.items():
            row = built[(name, variant)]
            assert (row["visitors"], row["converting_visitors"]) == (visitors, converting)
            assert row["conversion_rate"] == pytest.approx(converting / visitors)
            assert row["is_control"] == (variant == "A")
            assert (row["first_date"], row["last_date"], row["days"]) == \
                (date(2026, 3, 2), date(2026, 3, 4), 3)
    control = built[("big", "A")]
    assert control["uplift"] is None and control["p_value"] is None and control["test"] is None


# (experiment, variant): the reference values; rel=1e-6 covers the erfc approximation
REFERENCE = {
    ("big", "B"): {
        "test": "z", "p_value": 0.03548845046647471,
        "rate_low": 0.11056377462484193, "rate_high": 0.1522680266544689,
        "uplift_low": 0.0020023487152830075, "uplift_high": 0.05807048502220285,
        "relative_uplift_low": 0.01698427097104549, "relative_uplift_high": 0.6617759470226023,
    },
    ("small", "B"): {
        "test": "fisher", "p_value": 0.09147609147609148,
        "rate_low": 0.14547724486760422, "rate_high": 0.5189728183535234,
        "uplift_low": 0.008086579480147738, "uplift_high": 0.47279997852425115,
        "relative_uplift_low": -0.2074364837722099, "relative_uplift_high": 44.42222706811206,
    },
    ("zero", "B"): {
        "test": "fisher", "p_value": 0.08766914427291783,
        "rate_low": 0.0, "rate_high": 0.1135133931739688,
        "uplift_low": -0.2995579392092733, "uplift_high": 0.0179172425236655,
        "relative_uplift_low": None, "relative_uplift_high": None,
    },
    ("all", "B"): {
        "test": "fisher", "p_value": 0.020029728725380898,
        "rate_low": 0.7575059933447589, "rate_high": 0.9999999999999999,
        "uplift_low": 0.08455041788142081, "uplift_high": 0.642531698793754,
        "relative_uplift_low": 0.102553590766993, "relative_uplift_high": 1.5194038648456196,
    },
}


@pytest.mark.parametrize("key", sorted(REFERENCE))
def test_statistics_match_the_reference(built: dict[tuple[str, str], dict[str, Any]],
                                        key: tuple[str, str]) -> None:
    row = built[key]
    for column, expected in REFERENCE[key].items():
        if expected is None or isinstance(expected, str):
            assert row[column] == expected, column
        else:
            assert row[column] == pytest.approx(expected, rel=1e-6, abs=1e-12), column


def test_relative_uplift_is_the_ratio_of_rates(
        built: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert built[("big", "B")]["relative_uplift"] == pytest.approx(0.3)
    assert built[("big", "B")]["uplift"] == pytest.approx(0.03)
    assert built[("zero", "B")]["relative_uplift"] == pytest.approx(-1.0)


SAMPLE_RATIO = {  # scipy.stats.chisquare(visitors, f_exp=…).pvalue
    "big": 1.0,
    "weighted": 0.019094912640027266,
    "four": 0.028106302856955485,
    "five": 0.007325084052755113,
    "broken": 3.9641597078900225e-10,
}


@pytest.mark.parametrize("name", sorted(SAMPLE_RATIO))
def test_sample_ratio_mismatch(built: dict[tuple[str, str], dict[str, Any]], name: str) -> None:
    rows = [r for (experiment, _v), r in built.items() if experiment == name]
    assert len(rows) > 1
    for r in rows:
        assert r["srm_p_value"] == pytest.approx(SAMPLE_RATIO[name], rel=1e-6)
        assert r["has_srm"] == (SAMPLE_RATIO[name] < 0.001)


def test_configured_weights_set_the_expected_shares(
        built: dict[tuple[str, str], dict[str, Any]]) -> None:
    assert [built[("weighted", v)]["expected_share"] for v in "ABC"] == [0.25, 0.25, 0.5]
    assert [built[("four", v)]["expected_share"] for v in "ABCD"] == [0.25] * 4


def _run_rules(root: Path, lines: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    shutil.rmtree(root, ignore_errors=True)
    cfg = make_cfg(root, experiments=[_experiment("rules", **extra)])
    oracle.write_lines(cfg.logs_dir / "a.jsonl", lines)
    pipeline.run(cfg, progress=None)
    return {variant: row for (_e, variant), row in _results(cfg).items()}


def test_assignment_rules(tmp_path: Path) -> None:
    t = Traffic([])
    at = START + timedelta(days=1)
    # first value wins; converting after exposure counts
    t.add("a000000000000001", at, "pageview", props={"rules": "B"})
    t.add("a000000000000001", at + timedelta(seconds=1), "Signup", props={"plan": "pro"})
    # a goal before the first exposure does not count
    t.add("a000000000000002", at, "Signup", props={"plan": "pro"})
    t.add("a000000000000002", at + timedelta(seconds=1), "pageview", props={"rules": "B"})
    # the goal's props must match
    t.add("a000000000000003", at, "pageview", props={"rules": "A"})
    t.add("a000000000000003", at + timedelta(seconds=1), "Signup", props={"plan": "free"})
    # two values: in no variant, counted as contaminated
    t.add("a000000000000004", at, "pageview", props={"rules": "A"})
    t.add("a000000000000004", at + timedelta(seconds=1), "pageview", props={"rules": "B"})
    t.add("a000000000000004", at + timedelta(seconds=2), "Signup", props={"plan": "pro"})
    # the same value twice is one variant; a number is a variant as text
    t.add("a000000000000005", at, "pageview", props={"rules": "A"})
    t.add("a000000000000005", at + timedelta(seconds=9), "pageview", props={"rules": "A"})
    t.add("a000000000000006", at, "pageview", props={"rules": 2})
    # outside the date range: not counted
    t.add("a000000000000007", START, "pageview", props={"rules": "A"})
    t.add("a000000000000008", START + timedelta(days=3), "pageview", props={"rules": "A"})
    ranged = {"start": "2026-03-03", "end": "2026-03-04"}
    rows = _run_rules(tmp_path / "one", t.lines, **ranged)
    assert {v: (r["visitors"], r["converting_visitors"]) for v, r in rows.items()} == \
        {"A": (2, 0), "B": (2, 1), "2": (1, 0)}
    assert {r["contaminated_visitors"] for r in rows.values()} == {1}
    assert {(r["first_date"], r["last_date"], r["days"]) for r in rows.values()} == \
        {(date(2026, 3, 3), date(2026, 3, 3), 1)}

    # with `event`, only that event assigns: the pageviews above no longer do
    t.add("a000000000000009", at, "Hero", props={"rules": "A"})
    t.add("a000000000000009", at, "pageview", path="/thanks/1")
    rows = _run_rules(tmp_path / "two", t.lines, event="Hero",
                      goal={"path": "/thanks/*"}, **ranged)
    assert {v: (r["visitors"], r["converting_visitors"]) for v, r in rows.items()} == \
        {"A": (1, 1)}


def test_incremental_runs_equal_one_run(tmp_path: Path) -> None:
    """A new day changes every figure of a running experiment: two runs over the logs in two
    parts give what one run over all of them gives."""
    traffic = Traffic([])
    traffic.arm("big", "A", 300, 30)
    traffic.arm("big", "B", 300, 45)
    ordered = sorted(traffic.lines, key=lambda e: e["ts"])
    half = len(ordered) // 2
    experiments = [_experiment("big")]
    once = make_cfg(tmp_path / "once", experiments=experiments)
    oracle.write_lines(once.logs_dir / "a.jsonl", ordered)
    pipeline.run(once, progress=None)
    twice = make_cfg(tmp_path / "twice", experiments=experiments)
    oracle.write_lines(twice.logs_dir / "a.jsonl", ordered[:half])
    pipeline.run(twice, progress=None)
    first = _results(twice)
    oracle.write_lines(twice.logs_dir / "b.jsonl", ordered[half:])
    pipeline.run(twice, progress=None)
    assert first != _results(twice)
    assert _results(twice) == _results(once)


def test_a_config_change_recomputes(tmp_path: Path) -> None:
    traffic = Traffic([])
    traffic.arm("big", "A", 50, 5)
    traffic.arm("big", "B", 50, 9)
    cfg = make_cfg(tmp_path, experiments=[_experiment("big")])
    oracle.write_lines(cfg.logs_dir / "a.jsonl", traffic.lines)
    pipeline.run(cfg, progress=None)
    assert _results(cfg)[("big", "A")]["is_control"]
    cfg = make_cfg(tmp_path, experiments=[_experiment("big", control="B")])
    pipeline.run(cfg, progress=None)
    rows = _results(cfg)
    assert rows[("big", "B")]["is_control"] and rows[("big", "A")]["uplift"] is not None
    cfg = make_cfg(tmp_path, experiments=[])
    pipeline.run(cfg, progress=None)
    assert _results(cfg) == {}


def test_the_dashboard_section_and_its_csv(built_cfg: Config) -> None:
    now = datetime(2026, 3, 5, 12, tzinfo=UTC)
    render_site(built_cfg, now=now)
    page = (built_cfg.site_dir / SITE / "index.html").read_text()
    section = page[page.index('id="experiments"'):]
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", section)).split())
    assert "Experiments" in page
    assert "variant B converts better, p = 0.035" in text
    assert "variant B: not significant yet (p = 0.091)" in text  # "small": Fisher
    assert "variant B converts worse" not in text.split("zero")[0]
    assert "sample ratio mismatch (p < 0.001)" in text  # "broken"
    assert "3 days, running" in text
    assert "makes a false winner far more likely than 5%" in text
    assert "Fisher's exact test" in text and "z-test" in text
    # the interval bar of big/B: its Wilson interval on the 0–20% axis
    assert 'x="55.28" y="2" width="20.85"' in section
    rows = list(csv.DictReader(io.StringIO(
        (built_cfg.site_dir / SITE / "csv" / "experiments.csv").read_text())))
    big_b = next(r for r in rows if r["experiment"] == "big" and r["variant"] == "B")
    assert (big_b["visitors"], big_b["converting_visitors"], big_b["test"]) == ("1000", "130", "z")
    assert float(big_b["p_value"]) == pytest.approx(0.035, abs=5e-4)
    assert len(rows) == sum(len(arms) for _n, arms, _e in ARMS)
    # a site without experiments has no section and no CSV
    other = (built_cfg.site_dir / "example.com" / "index.html").read_text()
    assert 'id="experiments"' not in other
    assert not (built_cfg.site_dir / "example.com" / "csv" / "experiments.csv").exists()


def test_an_ended_experiment_says_so(built_cfg: Config) -> None:
    ended = dataclasses.replace(built_cfg, experiments=[
        dataclasses.replace(x, end=date(2026, 3, 4)) for x in built_cfg.experiments])
    trials = experiments.load(ended, now=datetime(2026, 3, 9, tzinfo=UTC))[SITE]
    small = next(x for x in trials if x.name == "small")
    assert not small.running
    assert small.verdicts == ["variant B: no significant difference (p = 0.091)"]


def test_experiment_config_problems_are_listed_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        make_cfg(tmp_path, experiments=[
            {"name": "x", "site": "nowhere.test", "prop": "v", "control": "A",
             "goal": {"path": "pricing", "event": "Signup"}, "start": "2026-03-09",
             "end": "2026-03-01", "weights": {"B": 1}},
            {"name": "y", "site": SITE, "prop": "v", "control": "A", "goal": {"event": "S"},
             "start": "March"},
        ])
    text = str(caught.value)
    for expected in ["experiments[0].site: 'nowhere.test' is not one of sites[].domain",
                     "experiments[0].goal: give exactly one of 'path'",
                     "experiments[0].goal.path: 'pricing' must start with /",
                     "experiments[0].end: 2026-03-01 is before start 2026-03-09",
                     "experiments[0].weights: give a weight for each variant",
                     "experiments[0].weights: the control 'A' needs a weight too",
                     "experiments[1].start: expected a date like 2026-03-01, got a string"]:
        assert expected in text, expected


def test_the_definitions_are_in_docs_metrics() -> None:
    text = " ".join((Path(__file__).parent.parent / "docs" / "metrics.md").read_text().split())
    for sentence in [
        "A visitor's variant is the first value of the experiment's prop seen in the range",
        "A visitor seen with two values is counted in neither and reported as "
        "`contaminated_visitors`.",
        "have a goal event (a pageview of the goal `path`, or the goal `event` with its "
        "`props`) at or after their first exposure, in the range.",
        "when the smallest expected cell of the 2×2 table (visitors × converting or not) is "
        "below 5, Fisher's exact test",
    ]:
        assert sentence in text.replace("**", ""), sentence


def test_endless_variants_are_bounded(tmp_path: Path) -> None:
    """Variants are whatever the prop arrives with: 30 of them keep the control and the 20
    largest, the rest add up into '(other)', which no split expects."""
    t = Traffic([])
    at = START + timedelta(days=1)
    visitor = itertools.count(1)
    for k in range(30):
        for _ in range(40 - k if k else 5):  # the control is the smallest, and still kept
            variant = "A" if k == 0 else f"v{k:02d}"
            t.add(f"{next(visitor):016x}", at, "pageview", props={"rules": variant})
    rows = _run_rules(tmp_path, t.lines)
    assert len(rows) == 22 and "A" in rows and "v20" in rows and "v21" not in rows
    assert rows["(other)"]["visitors"] == sum(40 - k for k in range(21, 30))
    assert rows["(other)"]["p_value"] is None and rows["(other)"]["expected_share"] == 0
    assert all(r["has_srm"] for r in rows.values())
    assert rows["v01"]["expected_share"] == pytest.approx(1 / 21)
