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

Rendering is incremental. Each page (a site's or a filtered dashboard's period, with its
CSVs) has a digest of everything its bytes depend on: the rows it reads (reports/data.py
sums DuckDB hashes of every row of its period and comparison range), its period, what
every page of its site shows (the period list, the filters, the experiments), the config
and the renderer's own code and templates. The digests and each page's files are kept in
`data_dir/render-state.json` (outside site_dir: a digest of rows is not for readers),
with a digest of the `.footfall-site` listing the render wrote, so a state is only used by
the next render into the same folder. A
page whose digest is unchanged and whose files are all there is not read or rendered at
all; the front page, the downloads pages and the stylesheet are always rendered (they are
cheap). A filtered page's period switcher links the same filter where each rolling period
links it, so its digest holds its site's rolling pages' digests too.

Every file is rendered in memory first. A file whose bytes are unchanged is not rewritten;
a changed one is written beside its target and moved into place with os.replace, so a host
never serves half a file. Files this renderer wrote before and no longer produces (say, a
site removed from the config) are deleted, using the list kept in `.footfall-site`. The
state is removed before publishing and written last: a crash between costs a full render
next time, never a stale page.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jinja2

from footfall import csvcell, marts, periods
from footfall.config import Config
from footfall.periods import Period
from reports import contexts, data, experiments
from reports import format as fmt

MANIFEST = ".footfall-site"
#: In data_dir: each page's digest and files as of the last render (see the docstring).
STATE = "render-state.json"


@dataclass
class RenderSummary:
    files: int = 0
    written: int = 0
    removed: int = 0
    seconds: float = 0.0
    pages: int = 0  # pages (with their CSVs) rendered
    unchanged: int = 0  # pages whose inputs had not changed: not rendered at all
    rendered: list[str] = field(default_factory=list)  # the rendered pages' HTML files

    def describe(self) -> str:
        return (f"{self.files} files, {self.written} changed, {self.removed} removed, "
                f"{self.pages} pages rendered ({self.unchanged} unchanged), "
                f"in {self.seconds:.2f}s")


@dataclass
class Built:
    """A render in memory: every file of the site by path (None: an unchanged page's file,
    left as it is) and the state to keep for the next render."""

    files: dict[str, bytes | None]
    state: dict[str, tuple[str, list[str]]]  # page id → (digest, its files)
    rendered: list[str] = field(default_factory=list)  # as RenderSummary's
    unchanged: int = 0


def _page_id(page: data.Page) -> str:
    return "\t".join(page)


def code_version(package: Path = Path(__file__).parent) -> str:
    """The renderer's own code and templates (every file of `package`), and the modules it
    renders from: a change to any of them changes every page's digest."""
    files = {p.relative_to(package).as_posix(): p for p in package.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    files.update({m.__name__: Path(m.__file__) for m in (marts, periods, csvcell)
                  if m.__file__})
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].read_bytes())
    return digest.hexdigest()


def _digest(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _plan(cfg: Config, sites: list[data.SiteData], rows: dict[data.Page, str],
          trials: dict[str, list[experiments.ExperimentView]]) -> dict[data.Page, str]:
    """Every page's digest, from the digests of its rows (`rows`) and everything else it
    shows."""
    # where the files go is no input of a page (and the state must not differ by it)
    placed = dataclasses.replace(cfg, data_dir=Path(), site_dir=Path(), source=None)
    common = _digest(code_version(), repr(placed))
    out = {}
    for site in sites:
        shared = _digest(common, site.domain, site.title, site.timezone, site.first,
                         [(p.key, p.label, p.filename, p.archive) for p in site.periods],
                         sorted(site.filtered, key=repr))
        rolling = _digest([rows.get((site.domain, p.key)) for p in site.periods
                           if not p.archive])
        for p in site.periods:
            out[(site.domain, p.key)] = _digest(
                shared, p, rows.get((site.domain, p.key)),
                contexts.data_until(site, p), trials.get(site.domain, []))
        for f in site.filtered.values():
            for p in f.periods:
                out[(f.domain, p.key)] = _digest(
                    shared, p, rows.get((f.domain, p.key)), f.drill, rolling,
                    contexts.data_until(f, p))
    return out


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


def _files_of(site: data.SiteData, period: Period) -> list[str]:
    """A site's page for `period` and its CSVs, by path relative to site_dir."""
    folder = f"{site.domain}/csv/{period.key}"
    return [f"{site.domain}/{period.filename}",
            *(f"{folder}/{p.csv}" for _m, p in marts.panels()),
            f"{folder}/timeseries.csv", f"{folder}/funnels.csv"]


def build(cfg: Config, now: datetime | None = None,
          before: dict[str, Any] | None = None) -> Built:
    """Every file of the site, by path relative to site_dir, rendered in memory; with
    `before` (the last render's state), the pages whose digest is unchanged and whose files
    are all in site_dir are left out (None), neither read nor rendered."""
    now = now or datetime.now(UTC)
    env = environment()
    trials = experiments.load(cfg, now)
    kept = (before or {}).get("pages", {})
    plan: dict[data.Page, str] = {}
    render: set[data.Page] = set()
    load: set[data.Page] = set()

    def choose(sites: list[data.SiteData], rows: dict[data.Page, str]) -> set[data.Page]:
        plan.update(_plan(cfg, sites, rows, trials))
        for page, digest in plan.items():
            old = kept.get(_page_id(page))
            if not (old and old[0] == digest
                    and all((cfg.site_dir / rel).is_file() for rel in old[1])):
                render.add(page)
        load.update(render)
        for site in sites:  # a filtered page's switcher reads its site's rolling pages
            if any((f.domain, p.key) in render for f in site.filtered.values()
                   for p in f.periods):
                load.update((site.domain, p.key) for p in site.periods if not p.archive)
        return load

    sites = data.load(cfg, now, choose)
    out = Built(files={}, state={})
    for page, digest in plan.items():  # unchanged pages keep their files as they are
        if page not in render:
            files = list(kept[_page_id(page)][1])
            out.files.update(dict.fromkeys(files))
            out.state[_page_id(page)] = (digest, files)
            out.unchanged += 1
    out.files["style.css"] = env.get_template("style.css").render().encode()
    template = env.get_template("period.html")
    live_url = cfg.live.url if cfg.live.token else None
    for site in sites:
        setup = contexts.first_run(site.domain, f"{cfg.collector.host}:{cfg.collector.port}")
        links = {p.key: contexts.drill_links(site, p, cfg.report.drilldown_rows)
                 for p in site.periods if (site.domain, p.key) in load}
        for period in site.periods:
            page = (site.domain, period.key)
            if page in render:
                bodies = _page_files(template, site, period, links[period.key], setup,
                                     trials.get(site.domain, []), live_url)
                out.files.update(bodies)
                out.state[_page_id(page)] = (plan[page], sorted(bodies))
                out.rendered.append(f"{site.domain}/{period.filename}")
        for filtered in site.filtered.values():
            assert filtered.drill is not None
            for period in filtered.periods:
                page = (filtered.domain, period.key)
                if page not in render:
                    continue
                # a filter among the first rows of some rolling periods only: no page in
                # the others, and nothing to render there until its digest changes
                rel = links[period.key].get((filtered.drill.panel, filtered.drill.value))
                out.state[_page_id(page)] = (plan[page], [f"{site.domain}/{rel}"] if rel else [])
                if rel is None:
                    continue
                # experiments cover whole ranges, not a filter: only the unfiltered page has them
                out.files[f"{site.domain}/{rel}"] = template.render(
                    v=contexts.filtered_page(site, filtered, period, links), site=filtered,
                    period=period, experiments=[], experiments_csv="",
                    live_url=live_url).encode()
                out.rendered.append(f"{site.domain}/{rel}")
        out.files[f"{site.domain}/downloads.html"] = env.get_template("downloads.html").render(
            site=site, periods=site.periods,
            files=[p.csv for _m, p in marts.panels()] + ["timeseries.csv", "funnels.csv"],
            exports=[f"{m.export}.csv" for m in marts.MARTS if m.per_site_csv]).encode()
        if site.domain in trials:
            out.files[f"{site.domain}/csv/experiments.csv"] = to_csv(
                *experiments.csv_rows(trials[site.domain]))
    out.files["index.html"] = env.get_template("index.html").render(
        v=contexts.index(sites), generated=fmt.stamp(now.astimezone(UTC))).encode()
    return out


def _page_files(page: jinja2.Template, site: data.SiteData,
                period: Period, links: contexts.Links, setup: contexts.FirstRun,
                trials: list[experiments.ExperimentView], live_url: str | None
                ) -> dict[str, bytes]:
    """A site's page for one period and its CSVs (`_files_of` names them)."""
    view = contexts.page(site, period, links, setup)
    html, *csvs = _files_of(site, period)
    bodies = [page.render(v=view, site=site, period=period, experiments=trials,
                          experiments_csv="csv/experiments.csv", live_url=live_url).encode(),
              *_panel_csvs(site, period).values(), _chart_csv(view.chart),
              _funnel_csv(view.funnels)]
    return dict(zip([html, *csvs], bodies, strict=True))


def _write(target: Path, body: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(body)
    os.replace(tmp, target)


def publish(site_dir: Path, files: dict[str, bytes | None]) -> RenderSummary:
    """Write what changed (deepest first, the front page last) and drop what is gone; a
    file whose body is None is kept as it is."""
    summary = RenderSummary(files=len(files))
    site_dir.mkdir(parents=True, exist_ok=True)
    order = sorted(files, key=lambda p: (p == "index.html", -p.count("/"), p))
    for rel in order:
        target = site_dir / rel
        body = files[rel]
        if body is None:
            continue
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


def _listing(site_dir: Path) -> str:
    """A digest of site_dir's manifest: the state belongs to the render that wrote it."""
    try:
        return hashlib.sha256((site_dir / MANIFEST).read_bytes()).hexdigest()
    except OSError:
        return ""


def _read_state(cfg: Config) -> dict[str, Any] | None:
    """The last render's state, if it reads back and the last render into site_dir wrote
    it (not a render into another folder, nor one that stopped before its end)."""
    try:
        state = json.loads((cfg.data_dir / STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    pages = state.get("pages") if isinstance(state, dict) else None
    if not isinstance(pages, dict) or state.get("manifest") != _listing(cfg.site_dir):
        return None
    return {"pages": {k: v for k, v in pages.items() if isinstance(v, list) and len(v) == 2
                      and isinstance(v[0], str) and isinstance(v[1], list)}}


def _write_state(cfg: Config, built: Built) -> None:
    """Kept for the next render; one that cannot be kept (a read-only data_dir) only costs
    the next render its shortcut."""
    body = json.dumps({"manifest": _listing(cfg.site_dir), "pages": built.state},
                      sort_keys=True).encode()
    with contextlib.suppress(OSError):
        _write(cfg.data_dir / STATE, body)


def _drop_state(cfg: Config) -> None:
    """Before publishing: a render that stops halfway leaves no state that claims its
    pages are as the state says."""
    with contextlib.suppress(FileNotFoundError):
        (cfg.data_dir / STATE).unlink()


def render_site(cfg: Config, now: datetime | None = None, incremental: bool = True
                ) -> RenderSummary:
    """Render the dashboard for `cfg` into cfg.site_dir; `now` freezes the clock for tests.
    Pages whose inputs did not change since the last render are not rendered again, unless
    `incremental` is False."""
    started = time.perf_counter()
    built = build(cfg, now, _read_state(cfg) if incremental else None)
    _drop_state(cfg)
    summary = publish(cfg.site_dir, built.files)
    _write_state(cfg, built)
    summary.pages, summary.unchanged = len(built.rendered), built.unchanged
    summary.rendered = built.rendered
    summary.seconds = round(time.perf_counter() - started, 3)
    return summary
