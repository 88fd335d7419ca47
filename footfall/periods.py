"""The date ranges a site's pages cover, and what each one's changes compare (shared: the
reports draw them, the pipeline picks the drill-down rows from them).

Rolling periods end on the site's local "today" (inclusive, as Plausible counts them), the
year to date among them; every calendar month and year with data gets an archive page, the
current one ending today; "all time" runs from the first day with data to today.

Today is not over, so a period that contains it would compare a partial day with a whole
one. Its changes compare its complete days only (`compared`, the period without today)
with the same number of days right before (`previous`), and a month to date with the same
days of the month before (a year to date: of the year before). All time has nothing before
it to compare with. With perfectly steady traffic every change is then 0%.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

#: (key, label, days back from today inclusive) for the rolling periods, in switcher order.
ROLLING: tuple[tuple[str, str, int], ...] = (
    ("today", "Today", 1),
    ("yesterday", "Yesterday", 1),
    ("7d", "Last 7 days", 7),
    ("30d", "Last 30 days", 30),
    ("90d", "Last 90 days", 90),
    ("12mo", "Last 12 months", 0),  # from the first day of the month 11 months ago
    ("ytd", "Year to date", 0),  # from 1 January
)

#: The page a site's folder opens on.
DEFAULT = "30d"


@dataclass(frozen=True)
class Period:
    key: str  # also the page's file stem; never data
    label: str
    start: date
    end: date  # inclusive
    archive: bool = False  # a calendar month or year
    partial: bool = False  # ends on today, which is not over
    #: what the changes compare with: "before" (as many days right before), "month" or
    #: "year" (the same days of the month or year before), "" (nothing: all time)
    against: str = "before"

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    @property
    def compared(self) -> tuple[date, date] | None:
        """The days the changes are about: every day but an unfinished today (None when
        that leaves none)."""
        end = self.end - timedelta(days=1) if self.partial else self.end
        return (self.start, end) if end >= self.start else None

    @property
    def month_to_date(self) -> bool:
        return self.against == "month"

    @property
    def previous(self) -> tuple[date, date] | None:
        """What `compared` is compared with: the same days of the month (year) before for a
        month (year) to date, else the equal-length range right before."""
        if self.compared is None or not self.against:
            return None
        start, end = self.compared
        length = (end - start).days + 1
        if self.against in ("month", "year"):
            before = _months_back(start, 1 if self.against == "month" else 12)
            same_end = before + timedelta(days=length - 1)
            if same_end < start:  # the month before has those days (not so on 30 March)
                return before, same_end
        return start - timedelta(days=length), start - timedelta(days=1)

    @property
    def why_not_compared(self) -> str:
        """Why there is no comparison, when `previous` is None."""
        if not self.against:
            return "all time has nothing before it"
        return "today is not over" if self.days == 1 else "no complete day yet"

    @property
    def filename(self) -> str:
        return "index.html" if self.key == DEFAULT else f"{self.key}.html"

    @property
    def granularity(self) -> str:
        """hour for a single day, month for a year, day otherwise."""
        if self.days == 1:
            return "hour"
        return "month" if self.days > 120 else "day"

    def buckets(self) -> list[date]:
        """The first day of each chart bar (hours are handled by the caller)."""
        if self.granularity == "month":
            out, d = [], self.start.replace(day=1)
            while d <= self.end:
                out.append(d)
                d = _next_month(d)
            return out
        return [self.start + timedelta(days=i) for i in range(self.days)]


def _next_month(d: date) -> date:
    return date(d.year + d.month // 12, d.month % 12 + 1, 1)


def _months_back(d: date, n: int) -> date:
    index = d.year * 12 + d.month - 1 - n
    return date(index // 12, index % 12 + 1, 1)


def rolling(today: date) -> list[Period]:
    out = []
    for key, label, days in ROLLING:
        if key == "today":
            out.append(Period(key, label, today, today, partial=True))
        elif key == "yesterday":
            y = today - timedelta(days=1)
            out.append(Period(key, label, y, y))
        elif key == "12mo":
            out.append(Period(key, label, _months_back(today, 11), today, partial=True))
        elif key == "ytd":
            out.append(Period(key, label, today.replace(month=1, day=1), today, partial=True,
                              against="year"))
        else:
            out.append(Period(key, label, today - timedelta(days=days - 1), today,
                              partial=True))
    return out


def months(first: date | None, last: date | None, today: date) -> list[Period]:
    """One archive per calendar month from the first to the last day with data, newest
    first; the current month ends today (a month to date), and none starts after today."""
    if first is None or last is None:
        return []
    out, d = [], first.replace(day=1)
    while d <= min(last, today):
        end = _next_month(d) - timedelta(days=1)
        if end >= today:
            out.append(Period(f"{d:%Y-%m}", f"{d:%B %Y} to date", d, today, archive=True,
                              partial=True, against="month"))
        else:
            out.append(Period(f"{d:%Y-%m}", f"{d:%B %Y}", d, end, archive=True))
        d = _next_month(d)
    return out[::-1]


def years(first: date | None, last: date | None, today: date) -> list[Period]:
    """One archive per calendar year with data, newest first; the current year is the year
    to date's, so it has none of its own."""
    if first is None or last is None:
        return []
    return [Period(str(y), str(y), date(y, 1, 1), date(y, 12, 31), archive=True)
            for y in range(min(last, today).year, first.year - 1, -1) if y < today.year]


def for_site(today: date, first: date | None, last: date | None) -> list[Period]:
    out = rolling(today)
    if first is not None and first <= today:
        out.append(Period("all", "All time", first, today, partial=True, against=""))
    return out + months(first, last, today) + years(first, last, today)
