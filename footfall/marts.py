"""The registry of public tables (marts): one entry names everything about a mart.

Each `Mart` says what one row is, its columns with their types and how each adds up, the
column it breaks down by, the name its exported files carry, and the dashboard panels drawn
from it. Everything else reads this table:

    pipeline/models.py     the run order of the marts, and which SQL builds each one
    pipeline/exports.py    one CSV per mart and site, Parquet per mart
    reports/data.py        each panel's rows for each period
    docs/schema.md         the tables section, generated (tests/test_marts.py holds them equal)

A breakdown of sessions by one of their columns (source, country, …) needs no SQL file of its
own: `by_session` builds it from the one template `pipeline/models/marts/_by_session.sql`.
Adding such a breakdown is one `by_session(...)` entry below; its mart, CSV and panel follow.
A new column goes at the end of its mart's list (and of its model's select): the runner adds
it to an existing database at the end too, so old and new files keep one column order.

The small-count rule (`privacy.min_visitors`) is `add_up_sql(..., fold=True)`, here once for
every writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

#: The label a folded row takes.
OTHER = "(other)"
#: How visits without a source or referrer read in a CSV (on a page: "Direct / none").
DIRECT = "(direct)"


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # as DuckDB's duckdb_columns() reports it
    doc: str
    #: how rows add up over days or folded values: "sum", "mean:<weight column>", or "" for a
    #: label or key (grouped, never added)
    adds: str = ""
    #: how a NULL reads in a CSV cell, where an empty cell would be ambiguous ("(direct)")
    csv_null: str | None = None

    @property
    def weight(self) -> str | None:
        return self.adds.removeprefix("mean:") if self.adds.startswith("mean:") else None


@dataclass(frozen=True)
class Figure:
    """A column a panel shows, with its heading; with `per`, the rate 100 × column ÷ per
    over the row (exit rate: exits per pageview of the page)."""

    column: str
    heading: str
    unit: str = "count"  # how it reads: count, seconds, percent
    per: str | None = None
    name: str = ""  # its CSV column when not the column's own name (a rate)

    @property
    def key(self) -> str:
        return self.name or self.column

    def value(self, row: dict[str, Any]) -> float | int | Decimal | None:
        """The figure of a row added up over a period (every column of its mart)."""
        if self.per is not None:
            whole = row.get(self.per) or 0
            return round(100 * (row.get(self.column) or 0) / whole, 1) if whole else None
        found = row.get(self.column)
        if self.unit == "count":  # whole counts stay whole; money (DECIMAL) keeps its cents
            return found if isinstance(found, (int, float, Decimal)) else 0
        return None if found is None else float(found)


@dataclass(frozen=True)
class Panel:
    """A dashboard panel drawn from its mart's rows, summed over a period."""

    key: str  # anchor id and CSV stem
    title: str
    section: str  # panels sharing a section sit side by side
    heading: str  # the label column's heading
    figures: tuple[Figure, ...]
    null_label: str | None = None  # how a NULL label reads; None hides such rows on the page
    kind: str = "text"  # how labels render: text, path, country, title (capitalised)
    top: int = 10
    wide: bool = False  # spans the whole row
    #: drill-down: its rows link to the dashboard filtered to them. "session:<column>"
    #: keeps the sessions whose column has the value (and their events); "event:<column>"
    #: keeps the events whose column has it (pageviews for path, custom events for name)
    #: and the sessions that hold one. See docs/metrics.md, "Filters".
    drill: str = ""

    @property
    def bar(self) -> str:
        """The figure the bars and the order follow; rows where it is 0 are left out."""
        return self.figures[0].column

    @property
    def order(self) -> list[str]:
        """The columns its rows are ranked by: its counts, in order."""
        return [f.column for f in self.figures if f.unit == "count" and f.per is None]

    @property
    def csv(self) -> str:
        return f"{self.key}.csv"


@dataclass(frozen=True)
class Mart:
    table: str
    doc: str  # what one row is
    columns: tuple[Column, ...]
    dimension: str | None = None  # the breakdown column, which the small-count rule folds
    group: tuple[str, ...] = ()  # label columns above the dimension (a small table each)
    template: str | None = None  # the model template that builds it; None: marts/<table>.sql
    panels: tuple[Panel, ...] = ()
    per_site_csv: bool = True  # one CSV per site of all its rows (not for per-event tables)

    @property
    def export(self) -> str:
        """The stem of every file exported from it: `daily_utm_source` → `utm-source`."""
        return _stem(self.table)

    @property
    def model(self) -> str:
        return f"marts/{self.table}"

    def create_sql(self, schema: str) -> str:
        """DDL for an empty table of this mart's layout in `schema` (kept if it exists)."""
        columns = ", ".join(f"{c.name} {c.type}" for c in self.columns)
        return f"create table if not exists {schema}.{self.table} ({columns})"

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _stem(table: str) -> str:
    return table.removeprefix("daily_").replace("_", "-")


_SITE = Column("site", "VARCHAR", "the site's domain")
_DATE = Column("date", "DATE", "local date in the site's time zone")
_VISITORS = Column("visitors", "BIGINT", "distinct visitor ids (daily ids; see metrics.md)", "sum")
_VISITS = Column("visits", "BIGINT", "sessions that started that day", "sum")
_VISITORS_FIGURE = Figure("visitors", "Visitors")
_PEOPLE = (_VISITORS_FIGURE, Figure("visits", "Visits"))


def by_session(dimension: str, doc: str, title: str, section: str, heading: str,
               null_label: str | None = None, kind: str = "text",
               table: str | None = None, drill: bool = False,
               csv_null: str | None = None) -> Mart:
    """A breakdown of the sessions that started each day by one of their columns."""
    return Mart(
        table or f"daily_{dimension}",
        f"visits and visitors per site, local date and the session's `{dimension}`",
        (_SITE, _DATE, Column(dimension, "VARCHAR", doc, csv_null=csv_null), _VISITORS,
         _VISITS),
        dimension=dimension,
        template="_by_session",
        panels=(Panel(_stem(table or f"daily_{dimension}"), title, section, heading,
                      _PEOPLE, null_label=null_label, kind=kind,
                      drill=f"session:{dimension}" if drill else ""),),
    )


_TEXT = "VARCHAR"
_OPTIONAL = "the optional log field ([log-format.md](log-format.md))"

EVENTS = Mart(
    "events", "one row per event",
    (
        Column("event_id", _TEXT, "the log line's `id`; unique"),
        _SITE,
        Column("occurred_at", "TIMESTAMP", "UTC, millisecond precision"),
        _DATE,
        Column("hour", "BIGINT", "local hour, 0–23"),
        Column("local_time", "TIMESTAMP", "local wall-clock time"),
        Column("name", _TEXT, "`pageview`, `engagement` or a custom event name"),
        Column("path", _TEXT, "page path, no query string"),
        Column("visitor_id", _TEXT, "16 hex characters; rotates daily"),
        Column("session_id", _TEXT, "the session it belongs to"),
        *(Column(name, _TEXT, _OPTIONAL) for name in (
            "hostname", "referrer", "source", "utm_source", "utm_medium", "utm_campaign",
            "utm_term", "utm_content", "browser", "browser_version", "os", "os_version",
            "device", "country")),
        Column("screen_width", "BIGINT", _OPTIONAL),
        Column("props", "JSON", "custom props, an object"),
        Column("interactive", "BOOLEAN", "the log field as sent (NULL when absent)"),
        Column("engaged_ms", "BIGINT", _OPTIONAL),
        Column("scroll_pct", "BIGINT", _OPTIONAL),
        Column("is_interactive", "BOOLEAN",
               "counts towards bounce: not an engagement event, not `interactive: false`"),
        Column("time_on_page_s", "DOUBLE",
               "pageviews only: engaged time, else the gap to the session's next pageview"),
        Column("revenue_amount", "DECIMAL(18,6)",
               "the optional revenue of the event (a goal's value), in `revenue_currency`"),
        Column("revenue_currency", _TEXT, "ISO 4217 code of `revenue_amount`"),
    ),
    per_site_csv=False,
)

_FIRST = "from the session's first event"
SESSIONS = Mart(
    "sessions", "one row per session",
    (
        Column("session_id", _TEXT, "the id of the session's first event"),
        _SITE,
        Column("visitor_id", _TEXT, "16 hex characters; rotates daily"),
        Column("date", "DATE", "local date of the first event"),
        Column("started_at", "TIMESTAMP", "UTC time of the first event"),
        Column("ended_at", "TIMESTAMP", "UTC time of the last event"),
        Column("duration_s", "DOUBLE", "seconds from the first event to the last"),
        Column("pageviews", "BIGINT", "pageview events"),
        Column("events", "BIGINT", "all events"),
        Column("interactive_events", "BIGINT", "events that count towards bounce"),
        Column("is_bounce", "BOOLEAN", "at most one interactive event"),
        Column("entry_page", _TEXT, "the first pageview's path (NULL without pageviews)"),
        Column("exit_page", _TEXT, "the last pageview's path (NULL without pageviews)"),
        *(Column(name, _TEXT, _FIRST) for name in (
            "referrer", "source", "utm_source", "utm_medium", "utm_campaign", "utm_term",
            "utm_content", "browser", "os", "device", "country")),
    ),
    per_site_csv=False,
)

_PAGEVIEWS = Figure("pageviews", "Pageviews")
#: What a rate of the whole period's visitors divides by (the reports add it to each row).
PERIOD_VISITORS = "period_visitors"

#: Every public table, in build order (a mart reads only marts above it).
MARTS: tuple[Mart, ...] = (
    EVENTS,
    SESSIONS,
    Mart(
        "daily_stats", "per site and local date",
        (
            _SITE, _DATE, _VISITORS, _VISITS,
            Column("pageviews", "BIGINT", "pageview events", "sum"),
            Column("views_per_visit", "DOUBLE", "pageviews ÷ visits", "mean:visits"),
            Column("bounce_rate", "DOUBLE", "bounced visits ÷ visits × 100", "mean:visits"),
            Column("visit_duration_s", "DOUBLE", "mean visit duration in seconds",
                   "mean:visits"),
            Column("is_imported", "BOOLEAN",
                   "the day comes from an import (`footfall import plausible`), not events"),
        ),
    ),
    Mart(
        "daily_pages", "per site, local date and path",
        (
            _SITE, _DATE, Column("path", _TEXT, "page path"),
            Column("pageviews", "BIGINT", "pageviews of the path", "sum"),
            Column("visitors", "BIGINT", "distinct visitors who viewed it", "sum"),
            Column("entries", "BIGINT", "sessions that started on it", "sum"),
            Column("entry_visitors", "BIGINT",
                   "distinct visitors among those sessions (unique entrances)", "sum"),
            Column("exits", "BIGINT", "sessions that ended on it", "sum"),
            Column("exit_visitors", "BIGINT",
                   "distinct visitors among those sessions (unique exits)", "sum"),
            Column("avg_time_on_page_s", "DOUBLE", "mean time on page in seconds",
                   "mean:timed_pageviews"),
            Column("timed_pageviews", "BIGINT", "how many pageviews the mean is over", "sum"),
            Column("avg_scroll_pct", "DOUBLE",
                   "mean scroll depth, 0–100, of the visits that reported one",
                   "mean:scrolled_visits"),
            Column("scrolled_visits", "BIGINT", "how many visits the mean is over", "sum"),
        ),
        dimension="path",
        panels=(
            Panel("pages", "Top pages", "Pages", "Page",
                  (_PAGEVIEWS, _VISITORS_FIGURE,
                   Figure("avg_time_on_page_s", "Time on page", unit="seconds"),
                   Figure("avg_scroll_pct", "Scroll depth", unit="percent")),
                  kind="path", wide=True, drill="event:path"),
            Panel("entry-pages", "Entry pages", "Pages", "Page",
                  (Figure("entry_visitors", "Unique entrances"),
                   Figure("entries", "Entrances")), kind="path", drill="session:entry_page"),
            Panel("exit-pages", "Exit pages", "Pages", "Page",
                  (Figure("exit_visitors", "Unique exits"), Figure("exits", "Exits"),
                   Figure("exits", "Exit rate", unit="percent", per="pageviews",
                          name="exit_rate")), kind="path"),
        ),
    ),
    by_session("source", "the source's name (NULL: direct or unknown)", "Sources",
               "Acquisition", "Source", null_label="Direct / none", table="daily_sources",
               csv_null=DIRECT,
               drill=True),
    by_session("referrer", "the referrer's host and path (NULL: none)", "Referrers",
               "Acquisition", "Referrer", table="daily_referrers", csv_null=DIRECT),
    by_session("utm_source", "the landing URL's utm_source", "UTM source", "Campaigns",
               "Source"),
    by_session("utm_medium", "the landing URL's utm_medium", "UTM medium", "Campaigns",
               "Medium"),
    by_session("utm_campaign", "the landing URL's utm_campaign", "UTM campaign", "Campaigns",
               "Campaign"),
    by_session("country", "ISO 3166 alpha-2 code", "Countries", "Audience", "Country",
               null_label="Unknown", kind="country", table="daily_countries", drill=True),
    by_session("device", "desktop, mobile, tablet or NULL", "Devices", "Audience", "Device",
               null_label="Unknown", kind="title", table="daily_devices", drill=True),
    by_session("browser", "browser family", "Browsers", "Technology", "Browser",
               null_label="Unknown", table="daily_browsers", drill=True),
    by_session("os", "operating system family", "Operating systems", "Technology", "OS",
               null_label="Unknown", table="daily_operating_systems", drill=True),
    Mart(
        "daily_events", "custom events (every name but pageview and engagement) per site, "
        "local date and name",
        (_SITE, _DATE, Column("name", _TEXT, "the event's name"),
         Column("events", "BIGINT", "events", "sum"),
         Column("visitors", "BIGINT", "distinct visitors who sent it", "sum")),
        dimension="name",
        panels=(Panel("events", "Custom events", "Events", "Event",
                      (_VISITORS_FIGURE, Figure("events", "Events"),
                       Figure("visitors", "Conversion rate", unit="percent",
                              per=PERIOD_VISITORS, name="conversion_rate")),
                      drill="event:name"),),
    ),
    Mart(
        "daily_event_props", "custom events per site, local date, name, prop and value",
        (_SITE, _DATE, Column("name", _TEXT, "the event's name"),
         Column("prop", _TEXT, "the prop's key"),
         Column("value", _TEXT, "the prop's value as text"),
         Column("events", "BIGINT", "events with that value", "sum"),
         Column("visitors", "BIGINT", "distinct visitors who sent it", "sum")),
        dimension="value",
        group=("name", "prop"),
        panels=(Panel("event-props", "Event properties", "Events", "Value",
                      (Figure("events", "Events"), _VISITORS_FIGURE), null_label="(none)",
                      top=8),),
    ),
    Mart(
        "daily_revenue", "revenue goals per site, local date, currency and event name",
        (_SITE, _DATE, Column("currency", _TEXT, "ISO 4217 code; amounts in different "
                              "currencies are never added together"),
         Column("name", _TEXT, "the event's name (the goal)"),
         Column("revenue", "DECIMAL(38,6)", "the sum of the events' revenue", "sum"),
         Column("conversions", "BIGINT", "visits with such an event", "sum"),
         Column("visitors", "BIGINT", "distinct visitors with such an event", "sum"),
         Column("average_revenue", "DECIMAL(38,6)", "revenue per converting visit",
                "mean:conversions")),
        dimension="name",
        group=("currency",),
        panels=(Panel("revenue", "Revenue", "Events", "Goal",
                      (Figure("revenue", "Revenue"), Figure("conversions", "Conversions"),
                       Figure("average_revenue", "Average")), null_label="(none)"),),
    ),
    Mart(
        "daily_hours", "per site, local date and local hour, for the hourly chart",
        (_SITE, _DATE, Column("hour", "BIGINT", "local hour, 0–23"),
         Column("visitors", "BIGINT", "distinct visitors in that hour", "sum"),
         Column("pageviews", "BIGINT", "pageviews in that hour", "sum")),
    ),
    Mart(
        "funnel_steps", "per site, funnel, local date and step",
        (_SITE, Column("funnel", _TEXT, "the funnel's name from the config"), _DATE,
         Column("step", "INTEGER", "1-based"),
         Column("step_name", _TEXT, "the step's name from the config"),
         Column("visits", "BIGINT", "sessions of that date that reached the step", "sum"),
         Column("median_seconds_from_previous", "DOUBLE",
                "median seconds from the previous step (NULL for step 1)")),
    ),
    Mart(
        "experiment_results", "per site, experiment and variant, over the experiment's whole "
        "date range (not per day; see metrics.md)",
        (_SITE, Column("experiment", _TEXT, "the experiment's name from the config"),
         Column("variant", _TEXT, "the prop's value as text"),
         Column("is_control", "BOOLEAN", "the configured control variant"),
         Column("first_date", "DATE", "first local date a visitor was assigned"),
         Column("last_date", "DATE", "last local date a visitor was assigned"),
         Column("days", "BIGINT", "days from first_date to last_date, both included"),
         Column("visitors", "BIGINT", "visitors assigned to the variant (daily ids)"),
         Column("converting_visitors", "BIGINT", "of them, those who reached the goal"),
         Column("conversion_rate", "DOUBLE", "converting_visitors ÷ visitors, 0–1"),
         Column("rate_low", "DOUBLE", "the rate's 95% Wilson interval, lower end"),
         Column("rate_high", "DOUBLE", "the rate's 95% Wilson interval, upper end"),
         Column("uplift", "DOUBLE", "rate − the control's rate (NULL for the control)"),
         Column("uplift_low", "DOUBLE", "uplift's 95% interval (Newcombe), lower end"),
         Column("uplift_high", "DOUBLE", "uplift's 95% interval (Newcombe), upper end"),
         Column("relative_uplift", "DOUBLE", "rate ÷ the control's rate − 1"),
         Column("relative_uplift_low", "DOUBLE", "its 95% interval (log ratio), lower end"),
         Column("relative_uplift_high", "DOUBLE", "its 95% interval (log ratio), upper end"),
         Column("p_value", "DOUBLE", "two-sided, against the control"),
         Column("test", _TEXT, "`z` (two-proportion z-test) or `fisher` (small counts)"),
         Column("contaminated_visitors", "BIGINT",
                "visitors of the experiment seen with two variants, counted in none"),
         Column("expected_share", "DOUBLE", "the share of visitors the split intends"),
         Column("srm_p_value", "DOUBLE", "sample-ratio chi-square p-value of the experiment"),
         Column("has_srm", "BOOLEAN", "srm_p_value < 0.001: the assignment looks broken")),
        per_site_csv=False,
    ),
)


def by_table(table: str) -> Mart:
    return next(m for m in MARTS if m.table == table)


def panels() -> list[tuple[Mart, Panel]]:
    """Every panel with the mart it is drawn from, in registry order."""
    return [(m, p) for m in MARTS for p in m.panels]


#: The marts a filtered dashboard is built from: the same models, run over the filtered
#: sessions and events (pipeline/drilldown.py).
DRILL_MARTS: tuple[str, ...] = ("daily_stats", "daily_hours",
                                *(m.table for m in MARTS if m.panels))


#: The small-count rule (`privacy.min_visitors`) as a condition on a row.
SMALL_COUNT = "visitors > 0 and visitors < $min_visitors"


def add_up_sql(mart: Mart, source: str, columns: list[str], fold: bool = False,
               fold_when: str | None = None, fold_labels: tuple[str, ...] = ()) -> str:
    """`source`, a query with the given `columns`, added up: one row per value of every
    column the mart does not add (labels and keys, and any column it does not know, such as
    a period), each figure by its own rule, weighted means staying weighted.

    With `fold`, this is also the small-count rule (`privacy.min_visitors`): the dimension of
    every row with 0 < visitors < $min_visitors becomes `(other)` first, so those rows add up
    into one `(other)` row of their table. NULL labels fold like any other. The dashboard's
    tables and CSVs, the exports and the Parquet files all fold through here, so none of them
    shows a row that another hides; `visitors` is then the row's own figure (a day's, or a
    period's once `source` has added the days up).

    `fold_when` folds by another condition on the source's rows (which may use columns not in
    `columns`, such as a rank), and `fold_labels` names the labels a fold sets to `(other)`
    (by default the dimension alone).
    """
    when = SMALL_COUNT if fold else fold_when
    folded = fold_labels or ((mart.dimension,) if mart.dimension else ())
    known = {c.name: c for c in mart.columns}
    select, keys = [], []
    for position, name in enumerate(columns, start=1):
        col = known.get(name)
        if when is not None and name in folded:
            select.append(f"case when {when} then '{OTHER}' else {name} end as {name}")
            keys.append(str(position))
        elif col is not None and col.adds == "sum":
            select.append(f"sum({name})::{col.type} as {name}")
        elif col is not None and col.weight:
            w = col.weight
            # integer milliseconds, so the mean does not depend on the order of rows
            select.append(f"(sum(round({name} * {w} * 1000)::bigint)"
                          f" / nullif(sum({w}), 0) / 1000)::{col.type} as {name}")
        else:
            select.append(name)
            keys.append(str(position))
    # group by position: a folded label is grouped by its folded value
    return f"select {', '.join(select)} from ({source}) group by {', '.join(keys)}"


def top_sql(mart: Mart, source: str, columns: list[str], within: list[str],
            order: list[str], limit: int, fold_labels: tuple[str, ...] = ()) -> str:
    """Keep the `limit` first rows of each `within` group by `order` (largest first, ties by
    the labels), and fold every later row into `(other)`: a bound on what a table shows
    however many distinct values an attacker sends."""
    labels = [*mart.group, str(mart.dimension)]
    ranking = ", ".join([*(f"{c} desc" for c in order), *(f"{c} nulls last" for c in labels)])
    ranked = (f"select *, row_number() over (partition by {', '.join(within)} "
              f"order by {ranking}) as row_rank from ({source})")
    return add_up_sql(mart, ranked, columns, fold_when=f"row_rank > {int(limit)}",
                      fold_labels=fold_labels)


def schema_doc() -> str:
    """The tables section of docs/schema.md, written from the registry."""
    out = []
    for mart in MARTS:
        out += [f"### `{mart.table}`: {mart.doc}", ""]
        notes = []
        if mart.dimension:
            notes.append(f"Breaks down by `{mart.dimension}`"
                         + (f" within {', '.join(f'`{g}`' for g in mart.group)}"
                            if mart.group else "")
                         + "; the small-count rule folds it.")
        if mart.per_site_csv:
            notes.append(f"Exported as `{mart.export}`.")
        if mart.panels:
            notes.append("Panels: " + ", ".join(p.title for p in mart.panels) + ".")
        if notes:
            out += [" ".join(notes), ""]
        out += ["| column | type | adds up as | |", "|---|---|---|---|"]
        for c in mart.columns:
            adds = "sum" if c.adds == "sum" else (f"mean weighted by `{c.weight}`"
                                                  if c.weight else "")
            out.append(f"| `{c.name}` | {c.type} | {adds} | {c.doc} |")
        out.append("")
    return "\n".join(out)
