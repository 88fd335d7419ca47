"""The dashboard's breakdown panels, as one declarative list (like GoAccess's panel table).

Each entry names its title, source mart, the column it breaks down by, the figures it
shows and how it sorts. `reports.data` sums each panel's mart over a period with one query
built from these identifiers only; the templates draw every panel the same way. Adding a
breakdown is one entry here.

All SQL identifiers below are fixed strings in this file, never data.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    column: str  # a summed column of the mart
    heading: str


@dataclass(frozen=True)
class Panel:
    key: str  # anchor id and CSV file stem
    title: str
    section: str  # panels sharing a section sit side by side
    table: str  # the mart
    dimension: str  # its label column
    heading: str  # the label column's heading
    metrics: tuple[Metric, ...]
    null_label: str | None = None  # how a NULL label reads; None leaves such rows out
    group: tuple[str, ...] = ()  # extra label columns: one small table per group
    kind: str = "text"  # how labels render: text, path, country, title (capitalised)
    top: int = 10
    wide: bool = False  # spans the whole row

    @property
    def bar(self) -> str:
        """The figure the bars and the order follow; rows where it is 0 are left out."""
        return self.metrics[0].column

    @property
    def csv(self) -> str:
        return f"{self.key}.csv"


VISITORS = Metric("visitors", "Visitors")
VISITS = Metric("visits", "Visits")
_PEOPLE = (VISITORS, VISITS)

PANELS: tuple[Panel, ...] = (
    Panel("pages", "Top pages", "Pages", "daily_pages", "path", "Page",
          (Metric("pageviews", "Pageviews"), VISITORS), kind="path", wide=True),
    Panel("entry-pages", "Entry pages", "Pages", "daily_pages", "path", "Page",
          (Metric("entries", "Entries"), VISITORS), kind="path"),
    Panel("exit-pages", "Exit pages", "Pages", "daily_pages", "path", "Page",
          (Metric("exits", "Exits"), VISITORS), kind="path"),
    Panel("sources", "Sources", "Acquisition", "daily_sources", "source", "Source", _PEOPLE,
          null_label="Direct / none"),
    Panel("referrers", "Referrers", "Acquisition", "daily_referrers", "referrer", "Referrer",
          _PEOPLE),
    Panel("utm-source", "UTM source", "Campaigns", "daily_utm_source", "utm_source", "Source",
          _PEOPLE),
    Panel("utm-medium", "UTM medium", "Campaigns", "daily_utm_medium", "utm_medium", "Medium",
          _PEOPLE),
    Panel("utm-campaign", "UTM campaign", "Campaigns", "daily_utm_campaign", "utm_campaign",
          "Campaign", _PEOPLE),
    Panel("countries", "Countries", "Audience", "daily_countries", "country", "Country",
          _PEOPLE, null_label="Unknown", kind="country"),
    Panel("devices", "Devices", "Audience", "daily_devices", "device", "Device", _PEOPLE,
          null_label="Unknown", kind="title"),
    Panel("browsers", "Browsers", "Technology", "daily_browsers", "browser", "Browser",
          _PEOPLE, null_label="Unknown"),
    Panel("operating-systems", "Operating systems", "Technology", "daily_operating_systems",
          "os", "OS", _PEOPLE, null_label="Unknown"),
    Panel("events", "Custom events", "Events", "daily_events", "name", "Event",
          (Metric("events", "Events"), VISITORS)),
    Panel("event-props", "Event properties", "Events", "daily_event_props", "value", "Value",
          (Metric("events", "Events"), VISITORS), null_label="(none)", group=("name", "prop"),
          top=8),
)


def by_key(key: str) -> Panel:
    return next(p for p in PANELS if p.key == key)
