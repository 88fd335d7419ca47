"""Page contexts: what each template receives, as plain rows and precomputed chart geometry.

Everything here is numbers, dates and the raw strings from the marts; the templates escape
the strings (autoescape), and chart geometry is numbers we compute, so no value from the
data ever reaches a URL, a style or a script.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any

from markupsafe import Markup, escape

from footfall import marts
from footfall.marts import OTHER, Mart, Panel
from footfall.periods import Period
from reports import format as fmt
from reports.data import BreakdownRow, SiteData, Stats

# --- small value objects the templates read ----------------------------------------------


@dataclass(frozen=True)
class Link:
    label: str
    href: str
    current: bool = False


@dataclass(frozen=True)
class Card:
    key: str
    label: str
    value: float | int | None
    text: str
    change: fmt.Change
    note: bool = False  # carries the sum-of-daily-uniques footnote marker


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # the bucket, e.g. "Mon 3 Nov 2025" or "14:00"; "(so far)" when partial
    visitors: int
    visits: int
    pageviews: int
    partial: bool = False  # holds today, which is not over: drawn lighter
    #: the bucket as data, the CSV's first column: 2026-11-02, 2026-11, or the hour 0-23 as
    #: the daily_hours export has it (a spreadsheet reads "14:00" as a time and shows it
    #: in its own locale, "2:00:00 PM")
    key: str = ""
    text: str = ""  # the chart's own metric in this bucket, as it reads


@dataclass(frozen=True)
class Tick:
    at: float  # percent from the bottom or the left
    text: str
    sub: str = ""  # a second line: the month or year where it changes


@dataclass(frozen=True)
class Chart:
    title: str
    unit: str  # hour, day, month
    bars: list[Bar]
    width: int
    yticks: list[Tick]
    xticks: list[Tick]
    peak: int
    every: bool = False  # every bar has its tick
    metric: str = "visitors"  # the card it belongs to (its anchor: #chart-<metric>)
    name: str = "Visitors"
    peak_text: str = ""
    missing: bool = False  # the metric is not recorded at this granularity (hours)

    @property
    def bars_svg(self) -> Markup:
        """The bars as SVG, built here rather than by a template loop: six charts a page,
        hundreds of pages. Numbers we computed, and labels escaped."""
        return Markup("".join(
            f'<g class="bar{" partial" if b.partial else ""}"><rect class="hit" '
            f'x="{b.x - 0.5:g}" y="0" width="{b.width + 1:g}" height="100"/>'
            f'<rect x="{b.x:g}" y="{b.y:g}" width="{b.width:g}" height="{b.height:g}"/>'
            f"<title>{escape(b.label)}: {escape(b.text)}</title></g>\n"
            for b in self.bars))

    @property
    def partial(self) -> bool:
        return any(b.partial for b in self.bars)


@dataclass(frozen=True)
class Cell:
    text: str
    exact: str  # the unrounded figure ("" when there is none), for data-value and the CSV
    title: str = ""  # a count's exact value when the cell shows it rounded (1.2k)


@dataclass(frozen=True)
class RowView:
    label: str
    muted: bool  # a stand-in label such as "Direct / none" or "(other)"
    cells: list[Cell]
    share: int  # bar width in whole percent of the top row (a CSS class, never a style)
    href: str = ""  # its filtered dashboard (drill-down), a path we make from our own keys


@dataclass(frozen=True)
class Table:
    caption: str | None  # for grouped panels: "Signup · plan"
    rows: list[RowView]
    total: int  # rows in the CSV


@dataclass(frozen=True)
class PanelView:
    key: str
    wide: bool
    title: str
    heading: str
    metrics: list[str]
    tables: list[Table]
    csv: str  # "" on a filtered dashboard, which has no CSVs of its own
    visitors_note: bool

    @property
    def empty(self) -> bool:
        return not any(t.rows for t in self.tables)


@dataclass(frozen=True)
class Section:
    name: str
    panels: list[PanelView]

    @property
    def columns(self) -> int:
        """Three narrow panels share a row; otherwise two per row (wide ones take a row)."""
        return 3 if len(self.panels) == 3 and not any(p.wide for p in self.panels) else 2


@dataclass(frozen=True)
class StepView:
    step: int
    name: str
    visits: int
    of_first: float | None  # percent of step 1
    dropped: int | None  # visits lost since the previous step
    dropped_pct: float | None
    median_s: float | None


@dataclass(frozen=True)
class FunnelView:
    name: str
    steps: list[StepView]

    @property
    def conversion(self) -> float | None:
        return self.steps[-1].of_first if self.steps else None


@dataclass
class PageView:
    site: SiteData
    period: Period
    root: str  # relative path to the site root, "../"
    switcher: list[Link]
    archives: list[Link]
    cards: list[Card]
    chart: Chart  # visitors: the default chart, its table and its CSV
    sections: list[Section]
    funnels: list[FunnelView]
    csv_dir: str  # "" on a filtered dashboard
    multi_day: bool
    compare: str  # what the changes compare, said once on the page
    empty: bool
    charts: list[Chart] = field(default_factory=list)  # one per card, visitors first
    domain: str = ""  # the site's domain (a filtered dashboard's SiteData has its key)
    chip: Chip | None = None  # what a filtered dashboard is filtered by
    first_run: FirstRun | None = None  # the site has no data at all yet
    imported_days: int = 0  # days of the period that came from an import, not events
    until: datetime | None = None  # see data_until()


@dataclass(frozen=True)
class FirstRun:
    """What a site without any data shows: how to start counting."""

    snippet: str
    metrics_url: str


@dataclass(frozen=True)
class Chip:
    """"Filtered by Source: Google ×", the × linking back to the unfiltered page."""

    heading: str
    value: str
    back: str


@dataclass(frozen=True)
class SiteSummary:
    domain: str
    title: str
    href: str
    visitors: int
    change: fmt.Change
    spark: str  # SVG polyline points, numbers only
    spark_label: str
    data_until: str
    has_data: bool = True


@dataclass
class IndexView:
    sites: list[SiteSummary] = field(default_factory=list)


# --- countries ----------------------------------------------------------------------------

_COUNTRY_FIXES = {"GB": "United Kingdom", "US": "United States", "KR": "South Korea",
                  "KP": "North Korea", "RU": "Russia", "VN": "Vietnam", "TW": "Taiwan",
                  "IR": "Iran", "SY": "Syria", "LA": "Laos", "BO": "Bolivia",
                  "VE": "Venezuela", "TZ": "Tanzania", "MD": "Moldova", "CZ": "Czechia"}


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """ISO 3166 names from the tz database's iso3166.tab (the tzdata package ships it)."""
    names: dict[str, str] = {}
    try:
        text = importlib.resources.files("tzdata").joinpath("zoneinfo/iso3166.tab").read_text(
            encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        text = ""
    for line in text.splitlines():
        if line and not line.startswith("#") and "\t" in line:
            code, name = line.split("\t", 1)
            names[code.strip()] = name.strip()
    return {**names, **_COUNTRY_FIXES}


def country_name(code: str) -> str:
    return _countries().get(code, code)


# --- building -----------------------------------------------------------------------------


def page_href(p: Period) -> str:
    return p.filename


def _label(panel: Panel, row: BreakdownRow) -> tuple[str, bool]:
    if row.label is None:
        return panel.null_label or "(none)", True
    if row.label == OTHER:
        return OTHER, True
    if panel.kind == "country":
        return country_name(row.label), False
    if panel.kind == "title":
        return row.label[:1].upper() + row.label[1:], False
    return row.label, False


#: A drill-down link target: (panel key, row label) → the filtered page, from the period's
#: folder. Only our own keys and a row number go into it, never the label.
Links = dict[tuple[str, str | None], str]


def _table(panel: Panel, rows: list[BreakdownRow], caption: str | None,
           links: Links | None = None) -> Table:
    top = rows[: panel.top]
    peak = float(max((r.values[0] or 0 for r in top), default=0)) or 1.0
    views = []
    for r in top:
        text, muted = _label(panel, r)
        cells = [Cell(fmt.figure(v, f.unit), fmt.exact(v),
                      fmt.number(float(v or 0)) if f.unit == "count" and f.per is None
                      else "")
                 for f, v in zip(panel.figures, r.values, strict=True)]
        views.append(RowView(text, muted, cells, round(100 * float(r.values[0] or 0) / peak),
                             (links or {}).get((panel.key, r.label), "")))
    return Table(caption, views, len(rows))


def shown_rows(panel: Panel, rows: list[BreakdownRow]) -> list[BreakdownRow]:
    """The rows a page shows of an ungrouped panel, in order: its CSV keeps every row, the
    page hides the NULL label where the panel gives it no name (a referrer panel has no
    row for direct visits) and shows the first `top`."""
    if panel.null_label is None:
        rows = [r for r in rows if r.label is not None]
    return rows[: panel.top]


def drill_links(site: SiteData, period: Period, limit: int) -> Links:
    """Each shown row among the first `limit` of a drill-down panel that has a filtered
    dashboard, and its file: `<period>/<panel>-<row number>.html`."""
    out: Links = {}
    if period.archive:
        return out
    for _mart, panel in marts.panels():
        if not panel.drill:
            continue
        rows = shown_rows(panel, site.breakdowns.get((period.key, panel.key), []))
        for n, r in enumerate(rows[:limit], start=1):
            if r.label != OTHER and (panel.key, r.label) in site.filtered:
                out[(panel.key, r.label)] = f"{period.key}/{panel.key}-{n}.html"
    return out


def panel_view(mart: Mart, panel: Panel, rows: list[BreakdownRow], period: Period,
               csv_dir: str, links: Links | None = None) -> PanelView:
    """The panel on the page (see `shown_rows`), its rows linking to their filtered
    dashboards where `links` has them."""
    if panel.null_label is None:
        rows = [r for r in rows if r.label is not None]
    tables: list[Table] = []
    if mart.group:
        groups: dict[tuple[str | None, ...], list[BreakdownRow]] = {}
        for r in rows:
            groups.setdefault(r.group, []).append(r)
        # ties by the group's labels: the rows come from SQL in no fixed order
        for g, grows in sorted(groups.items(),
                               key=lambda kv: (-sum(r.values[0] or 0 for r in kv[1]),
                                               [(p is None, p or "") for p in kv[0]])):
            caption = " · ".join("(none)" if part is None else part for part in g)
            tables.append(_table(panel, grows, caption))
    else:
        tables.append(_table(panel, rows, None, links))
    return PanelView(
        key=panel.key, wide=panel.wide, title=panel.title, heading=panel.heading,
        metrics=[f.heading for f in panel.figures], tables=tables,
        csv=f"{csv_dir}/{panel.csv}" if csv_dir else "",
        visitors_note=period.days > 1 and any(f.column == "visitors" for f in panel.figures),
    )


def _nice(peak: int) -> int:
    if peak <= 4:
        return 4
    magnitude = 10 ** (len(str(peak)) - 1)
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        top = int(step * magnitude)
        if top >= peak:
            return top
    return int(10 * magnitude)  # pragma: no cover


#: Up to this many bars, every bar has its own label; above, ticks fall evenly.
LABEL_EVERY = 14
#: At most this many ticks when not every bar is labelled (they fit a 390 px phone).
MAX_TICKS = 6


#: The six card metrics: key (a Stats field), name in a chart title, how a value reads.
METRICS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("visitors", "Visitors", fmt.compact),
    ("visits", "Visits", fmt.compact),
    ("pageviews", "Pageviews", fmt.compact),
    ("views_per_visit", "Views per visit", fmt.decimal),
    ("bounce_rate", "Bounce rate", fmt.percent),
    ("visit_duration_s", "Visit duration", fmt.duration),
)


def chart(site: SiteData, period: Period, metric: str = "visitors") -> Chart:
    """The chart of one card's metric over the period (hours hold visitors and pageviews
    only: another metric's hourly chart has no bars, and says so)."""
    # (label, tick, sub, figures, partial, key)
    buckets: list[tuple[str, str, str, Stats, bool, str]] = []
    today = site.today
    name, reads = next((n, f) for k, n, f in METRICS if k == metric)
    if period.granularity == "hour":
        hours = site.hours.get(period.start, {})
        for h in range(24):
            v, pv = hours.get(h, (0, 0))
            buckets.append((f"{h:02d}:00–{h:02d}:59", f"{h:02d}:00", "",
                            Stats(visitors=v, pageviews=pv), False, str(h)))
        title = f"{name} per hour, {fmt.day(period.start)}"
    elif period.granularity == "month":
        for start in period.buckets():
            nxt = date(start.year + start.month // 12, start.month % 12 + 1, 1)
            end = min(nxt - timedelta(days=1), period.end)
            partial = period.partial and end == today
            buckets.append((f"{start:%B %Y}" + (" (so far)" if partial else ""),
                            f"{start:%b}", f"{start:%Y}" if start.month == 1 else "",
                            site.stats(max(start, period.start), end), partial,
                            f"{start:%Y-%m}"))
        title = f"{name} per month, {fmt.day(period.start)} to {fmt.day(period.end)}"
    else:
        for d in period.buckets():
            partial = period.partial and d == today
            buckets.append((fmt.day(d) + (" (so far)" if partial else ""), f"{d.day}",
                            f"{d:%b}" if d.day == 1 else "", site.days.get(d) or Stats(),
                            partial, d.isoformat()))
        title = f"{name} per day, {fmt.day(period.start)} to {fmt.day(period.end)}"
    hourly = period.granularity == "hour" and metric not in ("visitors", "pageviews")
    n = len(buckets)
    values = [None if hourly else getattr(b[3], metric) for b in buckets]
    peak_value = max((v for v in values if v is not None), default=0)
    top = _nice(math.ceil(peak_value))
    slot = 10
    gap = 2 if n <= 40 else 1
    bars = []
    for i, ((label, _tick, _sub, st, partial, key), value) in enumerate(
            zip(buckets, values, strict=True)):
        height = round(100 * (value or 0) / top, 2)
        bars.append(Bar(i * slot + gap / 2, round(100 - height, 2), slot - gap, height, label,
                        st.visitors, st.visits, st.pageviews, partial, key, reads(value)))
    yticks = [Tick(0, reads(0)), Tick(50, reads(top / 2)), Tick(100, reads(top))]
    every = n <= LABEL_EVERY
    step = 1 if every else -(-n // MAX_TICKS)  # evenly spaced: every step-th bar
    xticks = []
    for i in range(0, n, step):
        _label, tick, sub, *_ = buckets[i]
        if i == 0 and period.granularity != "hour":  # the first tick says which month/year
            sub = (f"{period.start:%Y}" if period.granularity == "month"
                   else f"{period.start:%b}")
        elif not every and period.granularity == "day":
            sub = f"{period.start + timedelta(days=i):%b}"
        xticks.append(Tick(round(100 * (i + 0.5) / n, 2), tick, sub))
    return Chart(title, period.granularity, bars, n * slot, yticks, xticks,
                 int(peak_value) if metric in ("visitors", "visits", "pageviews") else 0,
                 every, metric, name, reads(peak_value), hourly)


@dataclass(frozen=True)
class Comparison:
    """What a page's changes compare, or why it has none."""

    now: Stats | None  # the figures of the compared days
    before: Stats | None
    why: str  # "" when there is a comparison
    sentence: str  # said on the page


def _range(start: date, end: date) -> str:
    return fmt.day(start) if start == end else f"{fmt.short_day(start)} – {fmt.day(end)}"


def comparison(site: SiteData, period: Period) -> Comparison:
    """The complete days of `period` against the range `Period.previous` names; none when
    there is no complete day yet or the data begins inside that range (a change would only
    measure the start of the data)."""
    compared, previous = period.compared, period.previous
    if compared is None or previous is None:
        why = period.why_not_compared
        return Comparison(None, None, why,
                          f"No changes: {why}.")
    if site.first is None or previous[0] < site.first:
        why = ("no data yet" if site.first is None
               else f"no data before {fmt.short_day(site.first)}")
        return Comparison(None, None, why, f"No changes: {why}, so there is no whole "
                          f"{_range(*previous)} to compare with.")
    n = (compared[1] - compared[0]).days + 1
    days = f"{n} day{'s' if n != 1 else ''}"
    before = (f"the same days of {previous[0]:%B}" if period.month_to_date
              else f"the {days} before")
    if period.partial:
        sentence = (f"Changes compare the {n} complete day{'s' if n != 1 else ''} "
                    f"({_range(*compared)}) with {before} ({_range(*previous)}); today is "
                    f"not over, so its figures so far are left out of every change.")
    else:
        sentence = f"Changes compare with {before} ({_range(*previous)})."
    return Comparison(site.stats(*compared), site.stats(*previous), "", sentence)


def cards(site: SiteData, period: Period, compare: Comparison) -> list[Card]:
    now = site.stats(period.start, period.end)
    a, b = compare.now, compare.before
    multi = period.days > 1

    def change(attr: str, better: bool = True, points: bool = False) -> fmt.Change:
        if a is None or b is None:
            return fmt.no_change(compare.why)
        return fmt.change(getattr(a, attr), getattr(b, attr), better, points)

    return [
        Card("visitors", "Unique visitors" if not multi else "Visitors", now.visitors,
             fmt.compact(now.visitors), change("visitors"), note=multi),
        Card("visits", "Visits", now.visits, fmt.compact(now.visits), change("visits")),
        Card("pageviews", "Pageviews", now.pageviews, fmt.compact(now.pageviews),
             change("pageviews")),
        Card("views_per_visit", "Views per visit", now.views_per_visit,
             fmt.decimal(now.views_per_visit), change("views_per_visit")),
        Card("bounce_rate", "Bounce rate", now.bounce_rate, fmt.percent(now.bounce_rate),
             change("bounce_rate", better=False, points=True)),
        Card("visit_duration_s", "Visit duration", now.visit_duration_s,
             fmt.duration(now.visit_duration_s), change("visit_duration_s")),
    ]


def funnels(site: SiteData, period: Period) -> list[FunnelView]:
    out = []
    found = site.funnels.get(period.key, {})
    for name in site.funnel_names:
        steps = found.get(name, [])
        views = []
        first = steps[0].visits if steps else 0
        prev: int | None = None
        for s in steps:
            views.append(StepView(
                s.step, s.name, s.visits,
                100 * s.visits / first if first else None,
                None if prev is None else prev - s.visits,
                None if not prev else 100 * (prev - s.visits) / prev,
                s.median_s,
            ))
            prev = s.visits
        out.append(FunnelView(name, views))
    return out


def first_run(domain: str, collector: str) -> FirstRun:
    """The tracker snippet for `domain` and where the collector (`host:port`) counts."""
    return FirstRun(
        f'<script defer src="https://stats.example.com/tracker.js" data-domain="{domain}">'
        "</script>", f"http://{collector}/metrics")


def data_until(site: SiteData, period: Period) -> datetime | None:
    """When data last arrived, on a page whose period reaches that day; a page of days
    before it is complete and says nothing, so new data leaves it unchanged (and
    unrendered: reports/site.py)."""
    last = site.data_until
    return last if last is not None and period.end >= last.date() else None


def page(site: SiteData, period: Period, links: Links | None = None,
         setup: FirstRun | None = None) -> PageView:
    """A site's page for one period; `links` are its rows' filtered dashboards, `setup`
    the first-run card, shown while the site has no data."""
    rolling = [p for p in site.periods if not p.archive]
    archives = [p for p in site.periods if p.archive]
    csv_dir = f"csv/{period.key}"
    view = _view(site, period, csv_dir, links, root="../")
    view.switcher = [Link(p.label, page_href(p), p.key == period.key) for p in rolling]
    view.archives = [Link(p.label, page_href(p), p.key == period.key) for p in archives]
    view.first_run = setup if site.first is None else None
    return view


def filtered_page(parent: SiteData, site: SiteData, period: Period,
                  links: dict[str, Links]) -> PageView:
    """A filtered dashboard (`site.drill`) for one period, in the folder `<period>/`:
    every figure of the page, from the filtered marts. Its period switcher leads to the
    same filter where that period's page links it, else to that unfiltered page; `links`
    are the parent's drill-down links by period key."""
    assert site.drill is not None
    panel = next(p for _m, p in marts.panels() if p.key == site.drill.panel)
    view = _view(site, period, "", None, root="../../")
    view.domain = parent.domain
    text, _muted = _label(panel, BreakdownRow((), site.drill.value, ()))
    view.chip = Chip(panel.heading, text, f"../{page_href(period)}")
    target = (site.drill.panel, site.drill.value)
    view.switcher = [
        Link(p.label, f"../{links.get(p.key, {}).get(target) or page_href(p)}",
             p.key == period.key)
        for p in parent.periods if not p.archive]
    view.archives = [Link(p.label, f"../{page_href(p)}") for p in parent.periods if p.archive]
    return view


def _view(site: SiteData, period: Period, csv_dir: str, links: Links | None,
          root: str) -> PageView:
    by_section: dict[str, list[PanelView]] = {}
    for mart, panel in marts.panels():
        rows = site.breakdowns.get((period.key, panel.key), [])
        by_section.setdefault(panel.section, []).append(
            panel_view(mart, panel, rows, period, csv_dir, links))
    compare = comparison(site, period)
    view = PageView(
        site=site, period=period, root=root, switcher=[], archives=[],
        cards=cards(site, period, compare), chart=chart(site, period),
        sections=[Section(name, panels) for name, panels in by_section.items()],
        funnels=funnels(site, period), csv_dir=csv_dir, multi_day=period.days > 1,
        compare=compare.sentence, empty=False, domain=site.domain,
        imported_days=sum(period.start <= d <= period.end for d in site.imported),
        until=data_until(site, period),
    )
    view.charts = [view.chart, *(chart(site, period, key) for key, _n, _f in METRICS[1:])]
    view.empty = view.cards[0].value == 0 and view.cards[2].value == 0
    return view


def index(sites: list[SiteData]) -> IndexView:
    out = IndexView()
    for site in sites:
        thirty = next(p for p in site.periods if p.key == "30d")
        now = site.stats(thirty.start, thirty.end)
        compare = comparison(site, thirty)
        values = [site.days[d].visitors if d in site.days else 0 for d in thirty.buckets()]
        peak = max(values) or 1
        step = 100 / max(len(values) - 1, 1)
        points = " ".join(f"{i * step:.1f},{30 - 28 * v / peak:.1f}" for i, v in enumerate(values))
        out.sites.append(SiteSummary(
            domain=site.domain, title=site.title, href=f"{site.domain}/index.html",
            visitors=now.visitors,
            change=(fmt.change(compare.now.visitors, compare.before.visitors)
                    if compare.now and compare.before else fmt.no_change(compare.why)),
            spark=points,
            spark_label=f"Daily visitors over the last 30 days, peak {fmt.number(max(values))}",
            data_until=fmt.stamp(site.data_until), has_data=site.data_until is not None,
        ))
    return out

