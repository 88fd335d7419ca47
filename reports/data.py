"""Reads the public marts once per render and turns them into plain rows for the templates.

The published database is attached read-only to a private in-memory DuckDB, so a render
never blocks `footfall run` and never sees a half-built state. Each breakdown mart is summed
over every period of every site in one query (a join on a small `periods` table); the rest
(cards, charts, funnels) is arithmetic over the few daily rows per site.

Over a range, visitors are the sum of daily visitors (ids rotate daily), as docs/metrics.md
defines; the pages say so next to every multi-day visitor figure.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import duckdb

from footfall import marts
from footfall import periods as periods_mod
from footfall.config import Config
from footfall.marts import OTHER, Mart, Panel
from footfall.periods import Period
from footfall.sqltext import literal


@dataclass(frozen=True)
class Stats:
    """The headline figures of a day, or of a range of days."""

    visitors: int = 0
    visits: int = 0
    pageviews: int = 0
    views_per_visit: float | None = None
    bounce_rate: float | None = None
    visit_duration_s: float | None = None


@dataclass(frozen=True)
class BreakdownRow:
    group: tuple[str | None, ...]
    label: str | None
    values: tuple[float | int | Decimal | None, ...]  # one per panel figure; first a count


#: A mart's row over a period: its group labels, its label, and every figure by column.
Labelled = tuple[tuple[str | None, ...], str | None, dict[str, Any]]


@dataclass(frozen=True)
class FunnelStep:
    step: int
    name: str
    visits: int
    median_s: float | None


@dataclass(frozen=True)
class Drill:
    """What a filtered dashboard is filtered by: a row of one of its site's panels."""

    parent: str  # the site's domain
    panel: str  # the panel's key
    value: str | None  # the row's label (None: the panel's null label, e.g. direct)


@dataclass
class SiteData:
    domain: str
    title: str
    timezone: str
    today: date
    first: date | None
    last: date | None
    data_until: datetime | None  # local time of the last event
    periods: list[Period]
    days: dict[date, Stats]
    hours: dict[date, dict[int, tuple[int, int]]]  # date → hour → (visitors, pageviews)
    breakdowns: dict[tuple[str, str], list[BreakdownRow]]  # (period key, panel key) → rows
    funnels: dict[str, dict[str, list[FunnelStep]]]  # period key → funnel → steps
    funnel_names: list[str] = field(default_factory=list)
    imported: set[date] = field(default_factory=set)  # days from `footfall import plausible`
    drill: Drill | None = None  # set on a filtered dashboard, whose domain is its key
    #: the site's filtered dashboards, by (panel key, row label)
    filtered: dict[tuple[str, str | None], SiteData] = field(default_factory=dict)

    #: stats() by range: a page asks for the same ranges many times (cards, charts, rates)
    _stats: dict[tuple[date, date], Stats] = field(default_factory=dict)

    def stats(self, start: date, end: date) -> Stats:
        found = self._stats.get((start, end))
        if found is None:
            found = self._stats[(start, end)] = self._add_up(start, end)
        return found

    def _add_up(self, start: date, end: date) -> Stats:
        rows = [s for d, s in self.days.items() if start <= d <= end]
        visits = sum(r.visits for r in rows)

        def weighted(attr: str) -> float | None:
            pairs = [(getattr(r, attr), r.visits) for r in rows if getattr(r, attr) is not None]
            weight = sum(w for _, w in pairs)
            return sum(v * w for v, w in pairs) / weight if weight else None

        return Stats(
            visitors=sum(r.visitors for r in rows),
            visits=visits,
            pageviews=sum(r.pageviews for r in rows),
            views_per_visit=weighted("views_per_visit"),
            bounce_rate=weighted("bounce_rate"),
            visit_duration_s=weighted("visit_duration_s"),
        )



#: The schema of the published database that holds the filtered marts (pipeline/drilldown.py).
DRILL = "drilldown"


def _has(con: duckdb.DuckDBPyConnection, table: str, schema: str = "main") -> bool:
    row = con.execute(
        "select count(*) from duckdb_tables() where database_name = 'ff' "
        "and schema_name = ? and table_name = ?", [schema, table]
    ).fetchone()
    return bool(row and row[0])


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


#: A page: (its SiteData's domain, a filtered dashboard's key included; its period key).
Page = tuple[str, str]
#: Given every SiteData (filtered ones in their site's `filtered`, nothing loaded but their
#: periods) and the digest of each page's rows, the pages whose rows to load.
Choose = Callable[[list[SiteData], dict[Page, str]], Collection[Page]]


def load(cfg: Config, now: datetime | None = None, choose: Choose | None = None
         ) -> list[SiteData]:
    """Everything the site shows, for every configured site, as of `now` (UTC); with
    `choose`, the pages' rows only for the pages it chooses (the daily figures of the sites
    themselves always: the front page reads them)."""
    now = now or datetime.now(UTC)
    con = duckdb.connect(":memory:")
    try:
        if cfg.database.exists():
            con.execute(f"attach {literal(cfg.database)} as ff (read_only)")
        else:
            con.execute("attach ':memory:' as ff")
        return _load(con, cfg, now, choose)
    finally:
        con.close()


def _sources(con: duckdb.DuckDBPyConnection, schema: str) -> list[str]:
    """The tables of `schema` a page reads (its period's rows, and its comparison's)."""
    tables = ["daily_stats", "daily_hours", *(m.table for m in marts.MARTS if m.panels)]
    if schema == "main":
        tables.append("funnel_steps")
    return [t for t in tables if _has(con, t, schema)]


def _digests(con: duckdb.DuckDBPyConnection, sites: list[SiteData]) -> dict[Page, str]:
    """Each page's digest of the rows it reads: every row of every table it reads, on
    the days of its period and of the range its changes compare with. A row's hash is
    summed per site and day (order-free, as a table's rows are), and the days' sums,
    each hashed with its date, per page. DuckDB's hash is not a cryptographic one: the
    digests only tell "changed" from "unchanged", and they stay out of site_dir."""
    ranges = []
    for site in sites:
        for s in [site, *site.filtered.values()]:
            for p in s.periods:
                ranges.append([s.domain, p.key, p.start, p.end])
                if p.previous is not None:
                    ranges.append([s.domain, p.key, *p.previous])
    if not ranges:
        return {}
    con.execute("create or replace temp table page_ranges (site varchar, key varchar, "
                "start_date date, end_date date)")
    con.executemany("insert into page_ranges values (?, ?, ?, ?)", ranges)
    rows = " union all ".join(
        f"select site, date, hash(t, '{schema}.{table}') as h from ff.{schema}.{table} t"
        for schema in ("main", DRILL) for table in _sources(con, schema))
    if not rows:
        return {}
    found = con.execute(
        f"with days as (select site, date, sum(h) as h from ({rows}) group by all) "
        "select r.site, r.key, sum(hash(d.date, d.h))::varchar from page_ranges r "
        "join days d on d.site = r.site and d.date between r.start_date and r.end_date "
        "group by all").fetchall()
    con.execute("drop table page_ranges")
    return {(site, key): digest for site, key, digest in found}


def _load(con: duckdb.DuckDBPyConnection, cfg: Config, now: datetime,
          choose: Choose | None = None) -> list[SiteData]:
    sites: list[SiteData] = []
    bounds: dict[str, tuple[date | None, date | None]] = {}
    if _has(con, "daily_stats"):
        for site, first, last in con.execute(
            "select site, min(date), max(date) from ff.daily_stats group by site"
        ).fetchall():
            bounds[site] = (first, last)
    until: dict[str, datetime] = {}
    if _has(con, "events"):
        for site, last_at in con.execute(
            "select site, max(occurred_at) from ff.events group by site"
        ).fetchall():
            if last_at is not None:
                until[site] = last_at
    for s in cfg.sites:
        today = local_today(now, s.timezone)
        first, last = bounds.get(s.domain, (None, None))
        last_at = until.get(s.domain)
        sites.append(SiteData(
            domain=s.domain, title=s.title, timezone=s.timezone, today=today,
            first=first, last=last,
            data_until=(last_at.replace(tzinfo=UTC).astimezone(ZoneInfo(s.timezone))
                        if last_at else None),
            periods=periods_mod.for_site(today, first, last),
            days={}, hours={}, breakdowns={}, funnels={},
            funnel_names=[f.name for f in cfg.funnels if f.site == s.domain],
        ))
    by_domain = {s.domain: s for s in sites}
    filtered = _filtered(con, by_domain) if cfg.report.drilldown_rows > 0 else {}
    pages = [(s.domain, p.key) for s in [*sites, *filtered.values()] for p in s.periods]
    if choose is not None:
        wanted = set(choose(sites, _digests(con, sites)))
        pages = [page for page in pages if page in wanted]
        # a filtered dashboard none of whose pages is wanted reads nothing at all
        filtered = {k: v for k, v in filtered.items() if any(k == site for site, _ in pages)}
    ranges = {(s.domain, p.key): p for s in [*sites, *filtered.values()] for p in s.periods}
    con.execute("create table periods (site varchar, key varchar, start_date date, "
                "end_date date)")
    if pages:  # DuckDB refuses an empty executemany
        con.executemany("insert into periods values (?, ?, ?, ?)",
                        [[site, key, ranges[site, key].start, ranges[site, key].end]
                         for site, key in pages if (site, key) in ranges])
    for schema, group in (("main", by_domain), (DRILL, filtered)):
        if not group:
            continue
        _days(con, group, schema)
        if not any(site in group for site, _key in pages):
            continue  # the front page reads the sites' days, no page reads more
        _hours(con, group, schema)
        for mart in marts.MARTS:
            if mart.panels and _has(con, mart.table, schema):
                _breakdown(con, mart, group, cfg.privacy.min_visitors, schema)
    if _has(con, "funnel_steps") and pages:
        _funnels(con, by_domain)
    return sites


def _filtered(con: duckdb.DuckDBPyConnection, sites: dict[str, SiteData]
              ) -> dict[str, SiteData]:
    """A SiteData per filter of the drilldown schema, over its site's rolling periods;
    each is also listed in its site's `filtered`."""
    if not _has(con, "filters", DRILL):
        return {}
    out = {}
    for site, panel, value, key in con.execute(
            f"select site, panel, value, key from ff.{DRILL}.filters").fetchall():
        parent = sites.get(site)
        if parent is None:
            continue
        data = SiteData(
            domain=key, title=parent.title, timezone=parent.timezone, today=parent.today,
            first=parent.first, last=parent.last, data_until=parent.data_until,
            periods=[p for p in parent.periods if not p.archive], days={}, hours={},
            breakdowns={}, funnels={}, drill=Drill(site, panel, value))
        parent.filtered[(panel, value)] = data
        out[key] = data
    return out


def _days(con: duckdb.DuckDBPyConnection, sites: dict[str, SiteData], schema: str) -> None:
    if not _has(con, "daily_stats", schema):
        return
    # the filtered dashboards' days only for those with a page to render
    only = "" if schema == "main" else " semi join (select distinct site from periods) using (site)"
    for site, day, *figures in con.execute(
        "select site, date, visitors, visits, pageviews, views_per_visit, bounce_rate, "
        f"visit_duration_s, is_imported from ff.{schema}.daily_stats{only} order by site, date"
    ).fetchall():
        if site in sites:
            v, n, p, vpv, br, dur, imported = figures
            sites[site].days[day] = Stats(int(v or 0), int(n or 0), int(p or 0), vpv, br, dur)
            if imported:
                sites[site].imported.add(day)


def _hours(con: duckdb.DuckDBPyConnection, sites: dict[str, SiteData], schema: str) -> None:
    if not _has(con, "daily_hours", schema):
        return
    rows = con.execute(
        f"select h.site, h.date, h.hour, h.visitors, h.pageviews from ff.{schema}.daily_hours h "
        "semi join (select site, start_date as date from periods "
        "where start_date = end_date) p using (site, date)"
    ).fetchall()
    for site, day, hour, visitors, pageviews in rows:
        if site in sites:
            sites[site].hours.setdefault(day, {})[int(hour)] = (int(visitors), int(pageviews))


#: At most this many rows per panel (per group of a grouped panel) reach its CSV; the rest
#: are folded into `(other)`. A filtered dashboard, which has no CSVs, keeps its panels' own
#: `top`. The page shows a panel's own `top` of them. A bound on render
#: time, memory and page size however many distinct paths, names or values an attacker sends.
PANEL_ROWS = 1000
#: At most this many (event, prop) tables per page in a grouped panel (event properties),
#: the largest by the panel's figure; the rest fold into one `(other) · (other)` table.
PANEL_GROUPS = 20


#: Beside a row's own figures, the visitors of its whole period: a panel figure with
#: `per=PERIOD_VISITORS` is a share of them (a custom event's conversion rate).
PERIOD_VISITORS = marts.PERIOD_VISITORS


def _breakdown(con: duckdb.DuckDBPyConnection, mart: Mart, sites: dict[str, SiteData],
               min_visitors: int, schema: str = "main") -> None:
    """The mart added up over every period of every site, folded by the small-count rule,
    then each of its panels' rows, bounded in SQL (PANEL_ROWS, PANEL_GROUPS). Identifiers
    come from the registry, never from data."""
    labels = [*mart.group, str(mart.dimension)]
    figures = [c.name for c in mart.columns if c.adds]
    columns = ["site", "key", *labels, *figures]
    source = (f"select p.site, p.key, {', '.join(f't.{c}' for c in [*labels, *figures])} "
              f"from ff.{schema}.{mart.table} t join periods p "
              f"on t.site = p.site and t.date between p.start_date and p.end_date")
    query = marts.add_up_sql(mart, source, columns)
    if min_visitors > 0:
        query = marts.add_up_sql(mart, query, columns, fold=True)
    params = {"min_visitors": min_visitors} if min_visitors > 0 else {}
    con.execute(f"create or replace temp table period_rows as {query}", params)
    n = len(labels)
    for panel in mart.panels:
        rows = "select * from period_rows"
        if mart.group:
            group = ", ".join(mart.group)
            ranked = (f"select *, dense_rank() over (partition by site, key order by "
                      f"group_total desc, {group}) as group_rank from (select *, "
                      f"sum({panel.bar}) over (partition by site, key, {group}) as group_total "
                      f"from period_rows)")
            rows = marts.add_up_sql(mart, ranked, columns,
                                    fold_when=f"group_rank > {PANEL_GROUPS}",
                                    fold_labels=tuple(labels))
        rows = marts.top_sql(mart, rows, columns, ["site", "key", *mart.group],
                             panel.order, PANEL_ROWS if schema == "main" else panel.top)
        collected: dict[tuple[str, str], list[Labelled]] = defaultdict(list)
        for row in con.execute(rows).fetchall():
            site, key = row[0], row[1]
            if site in sites:
                *group_labels, label = row[2:2 + n]
                values = dict(zip(figures, row[2 + n:], strict=True))
                collected[(site, key)].append((tuple(group_labels), label, values))
        for (site, key), found in collected.items():
            data = sites[site]
            period = next(p for p in data.periods if p.key == key)
            everyone = data.stats(period.start, period.end).visitors
            for _group, _label, values in found:  # for rates of the period's visitors
                values[PERIOD_VISITORS] = everyone
            data.breakdowns[(key, panel.key)] = panel_rows(panel, found)
    con.execute("drop table period_rows")



def panel_rows(panel: Panel, rows: list[Labelled]) -> list[BreakdownRow]:
    """A panel's figures of each row, largest first and `(other)` last; rows whose bar
    figure is 0 are left out (a page nobody entered is no entry page)."""
    out = []
    counts = [i for i, f in enumerate(panel.figures) if f.column in panel.order]
    for group, label, values in rows:
        figures = tuple(f.value(values) for f in panel.figures)
        if figures[0]:
            out.append(BreakdownRow(group, label, figures))
    # the group last: rows of two groups tie on everything else (each group's `(other)`)
    out.sort(key=lambda r: (r.label == OTHER, [-(r.values[i] or 0) for i in counts],
                            r.label is None, r.label or "",
                            [(g is None, g or "") for g in r.group]))
    return out


def _funnels(con: duckdb.DuckDBPyConnection, sites: dict[str, SiteData]) -> None:
    rows = con.execute(
        "select p.site, p.key, f.funnel, f.step, f.step_name, f.date, f.visits, "
        "f.median_seconds_from_previous from ff.funnel_steps f join periods p "
        "on f.site = p.site and f.date between p.start_date and p.end_date "
        "order by p.site, p.key, f.funnel, f.step, f.date"
    ).fetchall()
    grouped: dict[tuple[str, str, str, int], list[Any]] = defaultdict(list)
    names: dict[tuple[str, str, int], str] = {}
    for site, key, funnel, step, step_name, _day, visits, median in rows:
        grouped[(site, key, funnel, int(step))].append((int(visits or 0), median))
        names[(site, funnel, int(step))] = step_name
    for (site, key, funnel, step), days in grouped.items():
        if site not in sites:
            continue
        visits = sum(v for v, _ in days)
        steps = sites[site].funnels.setdefault(key, {}).setdefault(funnel, [])
        steps.append(FunnelStep(step, names[(site, funnel, step)], visits,
                                weighted_median((m, v) for v, m in days if m is not None)))
    for site in sites.values():
        for funnels in site.funnels.values():
            for steps in funnels.values():
                steps.sort(key=lambda s: s.step)


def weighted_median(pairs: Iterable[tuple[float, int]]) -> float | None:
    """The median of daily medians, each day weighted by its visits; exact for one day."""
    items = sorted((float(m), w) for m, w in pairs if w > 0)
    if not items:
        return None
    total = sum(w for _, w in items)
    if len(items) == 1:
        return items[0][0]
    acc = 0
    for value, w in items:
        acc += w
        if acc * 2 >= total:
            return value
    return statistics.median(v for v, _ in items)  # pragma: no cover
