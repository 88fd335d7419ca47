"""Renders the static dashboard into site_dir and publishes it safely.

    site_dir/index.html                         every site: 30-day visitors, change, sparkline
    site_dir/style.css                          the one stylesheet (no fonts, no CDN)
    site_dir/<domain>/index.html                last 30 days
    site_dir/<domain>/<period>.html             today, yesterday, 7d, 90d, 12mo, YYYY-MM
    site_dir/<domain>/csv/<period>/<panel>.csv  the full list behind each panel
    site_dir/<domain>/<period>/<panel>-<n>.html the dashboard filtered to row n of a panel
    site_dir/<domain>/downloads.html            every CSV of the site, by period
    site_dir/<domain>/csv/experiments.csv       the Experiments section (whole ranges)
    site_dir/exports/                           written by the pipeline, never touched here

Every file is rendered in memory first. A file whose bytes are unchanged is not rewritten;
a changed one is written beside its target and moved into place with os.replace, so a host
never serves half a file. Files this renderer wrote before and no longer produces (say, a
site removed from the config) are deleted, using the list kept in `.footfall-site`.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jinja2

from footfall import csvcell, marts
from footfall.config import Config
from footfall.periods import Period
from reports import contexts, data, experiments
from reports import format as fmt

MANIFEST = ".footfall-site"


@dataclass
class RenderSummary:
    files: int = 0
    written: int = 0
    removed: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        return (f"{self.files} files, {self.written} changed, {self.removed} removed, "
                f"in {self.seconds:.2f}s")


def environment() -> jinja2.Environment:
    """The one Jinja environment: autoescape everywhere, strict undefined, tidy blocks."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=True,  # every template, including the .svg and .css partials
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,  # templates are package files: no stat() per include per page
    )
    env.filters.update(fmt.FILTERS)
    return env


def _cell(value: object) -> str:
    if isinstance(value, str):
        return csvcell.guard(value)
    if isinstance(value, (int, float, Decimal)) or value is None:
        return fmt.exact(value)
    return str(value)


def to_csv(header: list[str], rows: list[list[object]]) -> bytes:
    """RFC 4180: UTF-8, a header row, CRLF line ends, quotes where needed."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(v) for v in row])
    return out.getvalue().encode("utf-8")


def _panel_csvs(site: data.SiteData, period: Period) -> dict[str, bytes]:
    out = {}
    for mart, panel in marts.panels():
        rows = site.breakdowns.get((period.key, panel.key), [])
        header = [*mart.group, str(mart.dimension), *(f.key for f in panel.figures)]
        null = mart.column(str(mart.dimension)).csv_null  # as the exports write it
        body: list[list[object]] = [[*r.group, null if r.label is None else r.label, *r.values]
                                    for r in rows]
        out[panel.csv] = to_csv(header, body)
    return out


def _chart_csv(chart: contexts.Chart) -> bytes:
    header = [chart.unit, "visitors", "pageviews"] + (["visits"] if chart.unit != "hour" else [])
    header += ["so_far"] if chart.partial else []
    rows: list[list[object]] = [
        [b.key, b.visitors, b.pageviews] + ([b.visits] if chart.unit != "hour" else [])
        + ([str(b.partial).lower()] if chart.partial else [])
        for b in chart.bars
    ]
    return to_csv(header, rows)


def _funnel_csv(funnels: list[contexts.FunnelView]) -> bytes:
    rows: list[list[object]] = [
        [f.name, s.step, s.name, s.visits, s.of_first, s.dropped, s.median_s]
        for f in funnels for s in f.steps
    ]
    return to_csv(["funnel", "step", "step_name", "visits", "percent_of_step_1",
                   "dropped_from_previous", "median_seconds_from_previous"], rows)


def build(cfg: Config, now: datetime | None = None) -> dict[str, bytes]:
    """Every file of the site, by path relative to site_dir, rendered in memory."""
    now = now or datetime.now(UTC)
    env = environment()
    sites = data.load(cfg, now)
    trials = experiments.load(cfg, now)
    files: dict[str, bytes] = {}
    files["style.css"] = env.get_template("style.css").render().encode()
    page = env.get_template("period.html")
    for site in sites:
        setup = contexts.first_run(site.domain, f"{cfg.collector.host}:{cfg.collector.port}")
        links = {p.key: contexts.drill_links(site, p, cfg.report.drilldown_rows)
                 for p in site.periods}
        for period in site.periods:
            view = contexts.page(site, period, links[period.key], setup)
            files[f"{site.domain}/{period.filename}"] = page.render(
                v=view, site=site, period=period, experiments=trials.get(site.domain, []),
                experiments_csv="csv/experiments.csv",
                live_url=cfg.live.url if cfg.live.token else None).encode()
            for (panel, value), rel in links[period.key].items():
                filtered = site.filtered[(panel, value)]
                # experiments cover whole ranges, not a filter: only the unfiltered page has them
                files[f"{site.domain}/{rel}"] = page.render(
                    v=contexts.filtered_page(site, filtered, period, links), site=filtered,
                    period=period, experiments=[], experiments_csv="",
                    live_url=cfg.live.url if cfg.live.token else None).encode()
            folder = f"{site.domain}/csv/{period.key}"
            for name, body in _panel_csvs(site, period).items():
                files[f"{folder}/{name}"] = body
            files[f"{folder}/timeseries.csv"] = _chart_csv(view.chart)
            files[f"{folder}/funnels.csv"] = _funnel_csv(view.funnels)
        files[f"{site.domain}/downloads.html"] = env.get_template("downloads.html").render(
            site=site, periods=site.periods,
            files=[p.csv for _m, p in marts.panels()] + ["timeseries.csv", "funnels.csv"],
            exports=[f"{m.export}.csv" for m in marts.MARTS if m.per_site_csv]).encode()
        if site.domain in trials:
            files[f"{site.domain}/csv/experiments.csv"] = to_csv(
                *experiments.csv_rows(trials[site.domain]))
    files["index.html"] = env.get_template("index.html").render(
        v=contexts.index(sites), generated=fmt.stamp(now.astimezone(UTC))).encode()
    return files


def _write(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(body)
    os.replace(tmp, target)


def publish(site_dir: Path, files: dict[str, bytes]) -> RenderSummary:
    """Write what changed (deepest first, the front page last) and drop what is gone."""
    summary = RenderSummary(files=len(files))
    site_dir.mkdir(parents=True, exist_ok=True)
    order = sorted(files, key=lambda p: (p == "index.html", -p.count("/"), p))
    for rel in order:
        target = site_dir / rel
        body = files[rel]
        try:
            if target.stat().st_size == len(body) and target.read_bytes() == body:
                continue
        except FileNotFoundError:
            pass
        _write(target, body)
        summary.written += 1
    manifest = site_dir / MANIFEST
    try:
        before = set(manifest.read_text(encoding="utf-8").splitlines())
    except FileNotFoundError:
        before = set()
    for rel in sorted(before - set(files)):
        path = site_dir / rel
        if rel and not rel.startswith(("exports/", "/")) and ".." not in rel:
            try:
                path.unlink()
                summary.removed += 1
            except FileNotFoundError:
                pass
    listing = "\n".join(sorted(files)) + "\n"
    if not manifest.exists() or manifest.read_text(encoding="utf-8") != listing:
        _write(manifest, listing.encode())
    return summary


def render_site(cfg: Config, now: datetime | None = None) -> RenderSummary:
    """Render the dashboard for `cfg` into cfg.site_dir; `now` freezes the clock for tests."""
    started = time.perf_counter()
    summary = publish(cfg.site_dir, build(cfg, now))
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
