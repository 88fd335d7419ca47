"""The dashboard's Experiments section: experiment_results as rows, plain words and bars.

The statistics are computed in the pipeline (pipeline/models/marts/experiment_results.sql);
here they are only read, put into words and laid out on a common axis. An experiment covers
its whole date range, not the page's period, so every page of a site shows the same section.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, date, datetime

import duckdb

from footfall.config import Config
from footfall.marts import OTHER
from footfall.sqltext import literal
from reports.data import local_today

#: p-values below this read as significant; the docs (metrics.md) name the same level
ALPHA = 0.05


@dataclass(frozen=True)
class Result:
    """One row of experiment_results (footfall/marts.py documents each column)."""

    site: str
    experiment: str
    variant: str
    is_control: bool
    first_date: date
    last_date: date
    days: int
    visitors: int
    converting_visitors: int
    conversion_rate: float | None
    rate_low: float | None
    rate_high: float | None
    uplift: float | None
    uplift_low: float | None
    uplift_high: float | None
    relative_uplift: float | None
    relative_uplift_low: float | None
    relative_uplift_high: float | None
    p_value: float | None
    test: str | None
    contaminated_visitors: int
    expected_share: float | None
    srm_p_value: float | None
    has_srm: bool


COLUMNS = tuple(f.name for f in fields(Result))


@dataclass(frozen=True)
class VariantView:
    variant: str
    is_control: bool
    visitors: int
    converting: int
    rate: float | None
    rate_low: float | None
    rate_high: float | None
    relative_uplift: float | None
    p_value: float | None
    p_words: str  # "p = 0.035", "p < 0.001", "" for the control
    test: str | None
    # the interval bar on the experiment's axis, in percent of its width
    bar_from: float
    bar_to: float
    dot: float


@dataclass(frozen=True)
class ExperimentView:
    name: str
    first_date: date | None
    last_date: date | None
    days: int
    running: bool
    contaminated: int
    has_srm: bool
    srm_p_value: float | None
    verdicts: list[str]
    variants: list[VariantView]
    axis_max: float  # the rate at the right end of the bars, 0–1


def p_text(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(variant: str, rate: float | None, control_rate: float | None,
            p_value: float | None, running: bool) -> str:
    """One variant against the control, in words."""
    if p_value is None or rate is None or control_rate is None:
        return f"variant {variant}: no visitors to compare yet"
    if p_value < ALPHA:
        better = "better" if rate > control_rate else "worse"
        return f"variant {variant} converts {better}, {p_text(p_value)}"
    still = "not significant yet" if running else "no significant difference"
    return f"variant {variant}: {still} ({p_text(p_value)})"


def _axis(highest: float) -> float:
    """A round right end for the bars: the next step of 1, 2, 5 × 10ⁿ above the highest."""
    if highest <= 0:
        return 0.01
    step = 0.001
    while True:
        for k in (1, 2, 5):
            if k * step >= highest:
                return min(k * step, 1.0)
        step *= 10


def _share(value: float | None, top: float) -> float:
    return round(100 * min(max(value or 0.0, 0.0), top) / top, 2)


def views(rows: list[Result], today: date,
          ends: dict[str, date | None]) -> list[ExperimentView]:
    """The section's experiments, in config order, from experiment_results rows."""
    out = []
    for name, end in ends.items():
        running = end is None or end >= today
        mine = sorted((r for r in rows if r.experiment == name),
                      key=lambda r: (not r.is_control, r.variant))
        if not mine:
            out.append(ExperimentView(name, None, None, 0, running, 0, False, None,
                                      ["no visitors yet"], [], _axis(0)))
            continue
        top = _axis(max(r.rate_high or 0.0 for r in mine))
        control = next((r for r in mine if r.is_control), None)
        first = mine[0]
        words = []
        if first.has_srm:
            words.append(f"sample ratio mismatch ({p_text(first.srm_p_value or 0.0)}): "
                         "the split is broken, so the comparison cannot be trusted")
        words += [verdict(r.variant, r.conversion_rate,
                          control.conversion_rate if control else None, r.p_value, running)
                  for r in mine if not r.is_control and r.variant != OTHER]
        out.append(ExperimentView(
            name=name, first_date=first.first_date, last_date=first.last_date,
            days=first.days, running=running, contaminated=first.contaminated_visitors,
            has_srm=first.has_srm, srm_p_value=first.srm_p_value, verdicts=words,
            variants=[VariantView(
                variant=r.variant, is_control=r.is_control, visitors=r.visitors,
                converting=r.converting_visitors, rate=r.conversion_rate,
                rate_low=r.rate_low, rate_high=r.rate_high,
                relative_uplift=r.relative_uplift, p_value=r.p_value,
                p_words=p_text(r.p_value) if r.p_value is not None else "", test=r.test,
                bar_from=_share(r.rate_low, top), bar_to=_share(r.rate_high, top),
                dot=_share(r.conversion_rate, top),
            ) for r in mine],
            axis_max=top,
        ))
    return out


def load(cfg: Config, now: datetime | None = None) -> dict[str, list[ExperimentView]]:
    """Every site's experiments as the section shows them; sites without any are left out."""
    now = now or datetime.now(UTC)
    if not cfg.experiments:
        return {}
    rows: list[Result] = []
    if cfg.database.exists():
        con = duckdb.connect(":memory:")
        try:
            con.execute(f"attach {literal(cfg.database)} as ff (read_only)")
            found = con.execute(
                "select count(*) from duckdb_tables() where database_name = 'ff' "
                "and table_name = 'experiment_results'").fetchone()
            if found and found[0]:
                rows = [Result(*r) for r in con.execute(
                    f"select {', '.join(COLUMNS)} from ff.experiment_results").fetchall()]
        finally:
            con.close()
    out = {}
    for site in cfg.sites:
        ends = {x.name: x.end for x in cfg.experiments if x.site == site.domain}
        if ends:
            out[site.domain] = views([r for r in rows if r.site == site.domain],
                                     local_today(now, site.timezone), ends)
    return out


def csv_rows(rows: list[ExperimentView]) -> tuple[list[str], list[list[object]]]:
    """The section as a table: one row per experiment and variant."""
    header = ["experiment", "variant", "is_control", "first_date", "last_date", "days",
              "visitors", "converting_visitors", "conversion_rate", "rate_low", "rate_high",
              "relative_uplift", "p_value", "test", "contaminated_visitors", "srm_p_value",
              "has_srm"]
    body: list[list[object]] = [
        [x.name, v.variant, _bool(v.is_control), x.first_date, x.last_date, x.days,
         v.visitors, v.converting, v.rate, v.rate_low, v.rate_high, v.relative_uplift,
         v.p_value, v.test, x.contaminated, x.srm_p_value, _bool(x.has_srm)]
        for x in rows for v in x.variants
    ]
    return header, body


def _bool(value: bool) -> str:
    return "true" if value else "false"  # as the exports (DuckDB) write booleans
