"""How numbers read on the dashboard: 1.2k, 3m 20s, 42%, +12% ↑. Registered as Jinja filters."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal


def compact(value: float | int | None) -> str:
    """1234 → 1.2k, 12345 → 12k, 1234567 → 1.2M; small numbers stay whole."""
    if value is None:
        return "–"
    n = abs(float(value))
    sign = "-" if float(value) < 0 else ""
    if n < 1000:
        return f"{sign}{n:.0f}" if n == int(n) else f"{sign}{n:.1f}"
    for limit, suffix in ((1e3, "k"), (1e6, "M"), (1e9, "B")):
        scaled = n / limit
        text = f"{scaled:.1f}" if scaled < 9.95 else f"{scaled:.0f}"
        if float(text) < 1000 or suffix == "B":
            return f"{sign}{text.removesuffix('.0')}{suffix}"
    raise AssertionError("unreachable")  # pragma: no cover


def number(value: float | int | None) -> str:
    """Exact, with thousands separators: 12,345."""
    if value is None:
        return "–"
    return f"{value:,.0f}" if float(value) == int(value) else f"{value:,.2f}"


def duration(seconds: float | None) -> str:
    """42s, 3m 20s, 1h 5m."""
    if seconds is None:
        return "–"
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        m, s = divmod(s, 60)
        return f"{m}m {s}s" if s else f"{m}m"
    h, rest = divmod(s, 3600)
    m = rest // 60
    return f"{h}h {m}m" if m else f"{h}h"


def percent(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}%"


def decimal(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


@dataclass(frozen=True)
class Change:
    text: str  # "+12%", "−3%", "+2.8 pp", "new", "–"
    direction: str  # up, down, flat, none
    tone: str  # good, bad, neutral
    label: str  # for screen readers: "up 12% from 1,234"
    why: str = ""  # shown beside a "–": why there is no comparison

    @property
    def arrow(self) -> str:
        return {"up": "↑", "down": "↓"}.get(self.direction, "")


def no_change(why: str) -> Change:
    """No comparison, and the reason, which the page shows beside the "–"."""
    return Change("–", "none", "neutral", f"no comparison: {why}", why)


def change(current: float | None, previous: float | None, higher_is_better: bool = True,
           points: bool = False) -> Change:
    """The change from the previous period, coloured by whether it is good: relative, or
    with `points` the difference of two percentages in percentage points ("+2.8 pp")."""
    if current is None or previous is None:
        return no_change("no visits to compare")
    if points:
        diff = round(current - previous, 1)
        if diff == 0:
            return Change("0 pp", "flat", "neutral", f"unchanged from {previous:.1f}%")
        up = diff > 0
        text = f"+{diff:.1f} pp" if up else f"−{abs(diff):.1f} pp"
        return Change(text, "up" if up else "down",
                      "good" if up == higher_is_better else "bad",
                      f"{'up' if up else 'down'} {abs(diff):.1f} percentage points from "
                      f"{previous:.1f}%")
    if previous == 0:
        if current == 0:
            return Change("0%", "flat", "neutral", "unchanged")
        return Change("new", "up", "good" if higher_is_better else "bad",
                      "none in the previous period")
    pct = (current - previous) / abs(previous) * 100
    rounded = round(pct)
    if rounded == 0:
        return Change("0%", "flat", "neutral", f"unchanged from {number(previous)}")
    up = rounded > 0
    good = up == higher_is_better
    text = f"+{rounded}%" if up else f"−{abs(rounded)}%"
    return Change(text, "up" if up else "down", "good" if good else "bad",
                  f"{'up' if up else 'down'} {abs(rounded)}% from {number(previous)}")


def day(value: date) -> str:
    """Mon 3 Nov 2025."""
    return f"{value:%a} {value.day} {value:%b %Y}"


def short_day(value: date) -> str:
    return f"{value.day} {value:%b}"


def stamp(value: datetime | None) -> str:
    """3 Nov 2025, 14:05 CET."""
    if value is None:
        return "no data yet"
    return f"{value.day} {value:%b %Y, %H:%M %Z}".strip()


def exact(value: float | int | Decimal | None) -> str:
    """A figure as data (data-value attributes and CSV cells), as DuckDB writes it in the
    exports: the shortest text that reads back as the same number (money: 35, 99.99)."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return "" if value is None else repr(value)


def figure(value: float | int | Decimal | None, unit: str) -> str:
    """A panel figure by its unit (footfall.marts.Figure): count, seconds or percent."""
    if isinstance(value, Decimal):  # money reads like any other figure
        value = float(value)
    if unit == "seconds":
        return duration(value)
    if unit == "percent":
        return percent(value)
    return compact(value)


FILTERS = {
    "compact": compact,
    "number": number,
    "duration": duration,
    "percent": percent,
    "decimal": decimal,
    "day": day,
    "short_day": short_day,
    "stamp": stamp,
}
