"""A generated event dataset and the pipeline's figures computed independently in plain Python.

The oracle follows docs/metrics.md word for word and shares no code with pipeline/: it sorts
each visitor's events, cuts sessions at gaps over the timeout, and counts.
"""

from __future__ import annotations

import random
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

SITES = {"example.com": "Europe/Berlin", "shop.test": "UTC"}
START = datetime(2024, 3, 29, 20, 0, tzinfo=UTC)  # Berlin moves to summer time on 31 March
PATHS = ["/", "/pricing", "/blog/a", "/blog/b", "/docs", "/signup"]
FUNNELS = [
    {"name": "Signup", "site": "example.com", "steps": [
        {"name": "Landing", "path": "/"},
        {"name": "Blog", "path": "/blog/*"},
        {"name": "Signed up", "event": "Signup", "props": {"plan": "pro"}},
    ]},
    {"name": "Buy", "site": "shop.test", "steps": [
        {"name": "Pricing", "path": "/pricing"},
        {"name": "Signed up", "event": "Signup"},
    ]},
]


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def generate(seed: int = 7, visitors: int = 60, days: int = 4) -> list[dict[str, Any]]:
    """Events as log line dicts: several sessions per visitor, gaps right at the timeout,
    sessions across local midnight, engagement and non-interactive events, ties in time."""
    rnd = random.Random(seed)
    events: list[dict[str, Any]] = []
    n = 0

    def add(site: str, visitor: str, at: datetime, name: str, path: str, **extra: Any) -> None:
        nonlocal n
        n += 1
        line = {"v": 1, "id": f"{rnd.getrandbits(64):016x}-{n:06d}", "ts": ts(at), "site": site,
                "name": name, "path": path, "visitor": visitor}
        line.update({k: v for k, v in extra.items() if v is not None})
        events.append(line)

    for site in SITES:
        for i in range(visitors):
            visitor = f"{rnd.getrandbits(64):016x}"
            context = {
                "referrer": rnd.choice([None, "news.ycombinator.com/item", "www.google.com/"]),
                "source": rnd.choice([None, "Hacker News", "Google", "=cmd"]),
                "utm_source": rnd.choice([None, None, "newsletter"]),
                "utm_medium": rnd.choice([None, "email"]),
                "utm_campaign": rnd.choice([None, "spring"]),
                "browser": rnd.choice(["Chrome", "Firefox", "Safari"]),
                "os": rnd.choice(["Windows", "macOS", "iOS"]),
                "device": rnd.choice(["desktop", "mobile", "tablet"]),
                "country": rnd.choice(["DE", "US", None]),
                "screen_width": rnd.choice([390, 1280, None]),
            }
            at = START + timedelta(minutes=rnd.randrange(0, days * 24 * 60 - 180))
            if i % 7 == 0:  # start just before local midnight, so the session crosses it
                local = at.astimezone(ZoneInfo(SITES[site]))
                at = (local.replace(hour=23, minute=50) + timedelta(days=0)).astimezone(UTC)
            for _session in range(rnd.choice([1, 1, 2, 3])):
                steps = rnd.randint(1, 6)
                for k in range(steps):
                    path = rnd.choice(PATHS) if k else rnd.choice(["/", "/pricing", "/blog/a"])
                    add(site, visitor, at, "pageview", path, **(context if k == 0 else {}))
                    roll = rnd.random()
                    if roll < 0.4:
                        add(site, visitor, at + timedelta(seconds=rnd.randint(1, 300)),
                            "engagement", path, interactive=False,
                            engaged_ms=rnd.randint(500, 90_000), scroll_pct=rnd.randint(0, 100))
                    elif roll < 0.55:
                        add(site, visitor, at + timedelta(seconds=rnd.randint(0, 60)), "Signup",
                            path, props={"plan": rnd.choice(["pro", "free"]), "seats": 3})
                    elif roll < 0.6:
                        add(site, visitor, at + timedelta(seconds=1), "Video", path,
                            interactive=False, props={"autoplay": True})
                    gap = rnd.choice([
                        timedelta(seconds=rnd.randint(5, 600)),
                        timedelta(minutes=30),  # exactly the timeout: same session
                        timedelta(minutes=29, seconds=59),
                        timedelta(0),  # a tie in time
                    ])
                    at += gap
                at += rnd.choice([timedelta(minutes=30, milliseconds=1),
                                  timedelta(hours=rnd.randint(1, 20))])
    rnd.shuffle(events)
    return events


def timeline_events(visitors: list[list[tuple[str, int]]], base_ms: int, site: str,
                    paths: tuple[str, ...] = ("/",)) -> list[dict[str, Any]]:
    """Events from generated timelines: visitor v's i-th (name, gap in ms) lands gap ms after
    its previous event (the first after base_ms), with id v<v>-<i>, on paths[i % len(paths)]."""
    events = []
    for v, timeline in enumerate(visitors):
        at = base_ms
        for i, (name, gap) in enumerate(timeline):
            at += gap
            when = datetime.fromtimestamp(at // 1000, UTC) + timedelta(milliseconds=at % 1000)
            events.append({"v": 1, "id": f"v{v}-{i:02d}", "ts": ts(when), "site": site,
                           "name": name, "path": paths[i % len(paths)],
                           "visitor": f"{v:016x}",
                           **({"interactive": False, "engaged_ms": 1000}
                              if name == "engagement" else {})})
    return events


def write_lines(path: Path, events: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as f:
        for e in events:
            f.write(msgspec.json.encode(e) + b"\n")


# --- the oracle ------------------------------------------------------------------------------


def _utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _interactive(e: dict[str, Any]) -> bool:
    return e["name"] != "engagement" and e.get("interactive", True) is not False


@dataclass
class Session:
    session_id: str
    site: str
    visitor_id: str
    date: date
    started_at: datetime
    ended_at: datetime
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at) / timedelta(milliseconds=1) / 1000

    @property
    def pageviews(self) -> int:
        return sum(e["name"] == "pageview" for e in self.events)

    @property
    def is_bounce(self) -> bool:
        return sum(_interactive(e) for e in self.events) <= 1


def sessions(events: list[dict[str, Any]], timeout_minutes: int = 30) -> list[Session]:
    by_visitor: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_visitor[e["site"], e["visitor"]].append(e)
    out = []
    for (site, visitor), evs in by_visitor.items():
        evs.sort(key=lambda e: (_utc(e["ts"]), e["id"]))
        current: Session | None = None
        for e in evs:
            at = _utc(e["ts"])
            if current is None or at - current.ended_at > timedelta(minutes=timeout_minutes):
                local = at.astimezone(ZoneInfo(SITES[site]))
                current = Session(e["id"], site, visitor, local.date(), at, at)
                out.append(current)
            current.ended_at = at
            current.events.append(e)
    return out


def local_date(e: dict[str, Any]) -> date:
    return _utc(e["ts"]).astimezone(ZoneInfo(SITES[e["site"]])).date()


def daily_stats(events: list[dict[str, Any]]) -> dict[tuple[str, date], dict[str, Any]]:
    out: dict[tuple[str, date], dict[str, Any]] = {}
    visitors: dict[tuple[str, date], set[str]] = defaultdict(set)
    pageviews: dict[tuple[str, date], int] = defaultdict(int)
    for e in events:
        key = (e["site"], local_date(e))
        visitors[key].add(e["visitor"])
        pageviews[key] += e["name"] == "pageview"
    day_sessions: dict[tuple[str, date], list[Session]] = defaultdict(list)
    for s in sessions(events):
        day_sessions[s.site, s.date].append(s)
    for key in visitors:
        ss = day_sessions.get(key, [])
        visits = len(ss)
        out[key] = {
            "visitors": len(visitors[key]),
            "visits": visits,
            "pageviews": pageviews[key],
            "views_per_visit": sum(s.pageviews for s in ss) / visits if visits else None,
            "bounce_rate": 100 * sum(s.is_bounce for s in ss) / visits if visits else None,
            "visit_duration_s": sum(s.duration_s for s in ss) / visits if visits else None,
        }
    return out


def funnel_steps(
    events: list[dict[str, Any]],
) -> dict[tuple[str, str, date, int], tuple[int, float | None]]:
    """(site, funnel, date, step) → (visits, median seconds from the previous step)."""
    out: dict[tuple[str, str, date, int], tuple[int, float | None]] = {}
    all_sessions = sessions(events)
    for funnel in FUNNELS:
        reached: dict[tuple[date, int], list[float | None]] = defaultdict(list)
        days = set()
        for s in all_sessions:
            if s.site != funnel["site"]:
                continue
            days.add(s.date)
            position, previous_at = -1, None
            for k, step in enumerate(funnel["steps"], start=1):
                for j in range(position + 1, len(s.events)):
                    e = s.events[j]
                    if _matches(step, e):
                        at = _utc(e["ts"])
                        gap = None if previous_at is None else (at - previous_at).total_seconds()
                        reached[s.date, k].append(gap)
                        position, previous_at = j, at
                        break
                else:
                    break
        for day in days:
            for k in range(1, len(funnel["steps"]) + 1):
                gaps = reached.get((day, k), [])
                known = [g for g in gaps if g is not None]
                out[funnel["site"], funnel["name"], day, k] = (
                    len(gaps), statistics.median(known) if known else None)
    return out


def _matches(step: dict[str, Any], e: dict[str, Any]) -> bool:
    if "path" in step:
        return e["name"] == "pageview" and fnmatchcase(e["path"], step["path"])
    if e["name"] != step["event"]:
        return False
    props = e.get("props") or {}
    return all(props.get(k) == v for k, v in (step.get("props") or {}).items())


def daily_pages(events: list[dict[str, Any]]) -> dict[tuple[str, date, str], dict[str, Any]]:
    out: dict[tuple[str, date, str], dict[str, Any]] = defaultdict(
        lambda: {"pageviews": 0, "visitors": set(), "entries": 0, "exits": 0, "times": []})
    for s in sessions(events):
        views = [e for e in s.events if e["name"] == "pageview"]
        if views:
            out[s.site, s.date, views[0]["path"]]["entries"] += 1
            out[s.site, s.date, views[-1]["path"]]["exits"] += 1
        for i, e in enumerate(s.events):
            if e["name"] != "pageview":
                continue
            row = out[s.site, local_date(e), e["path"]]
            row["pageviews"] += 1
            row["visitors"].add(e["visitor"])
            after = []
            next_view = None
            for later in s.events[i + 1:]:
                if later["name"] == "pageview":
                    next_view = later
                    break
                after.append(later)
            engaged = [x["engaged_ms"] for x in after
                       if x["name"] == "engagement" and x.get("engaged_ms") is not None]
            if engaged:
                row["times"].append(sum(engaged) / 1000)
            elif next_view is not None:
                row["times"].append((_utc(next_view["ts"]) - _utc(e["ts"])).total_seconds())
    return {
        k: {"pageviews": v["pageviews"], "visitors": len(v["visitors"]), "entries": v["entries"],
            "exits": v["exits"],
            "avg_time_on_page_s": sum(v["times"]) / len(v["times"]) if v["times"] else None}
        for k, v in out.items()
    }


def page_entrances_exits(events: list[dict[str, Any]]
                         ) -> dict[tuple[str, date, str], dict[str, Any]]:
    """Per site, session date and path: entrances and exits, the distinct visitors behind
    each (unique entrances, unique exits), and the mean scroll depth: each visit's deepest
    reported scroll on the path that day (clamped to 0–100), averaged over those visits."""
    out: dict[tuple[str, date, str], dict[str, Any]] = defaultdict(
        lambda: {"entries": 0, "entry_visitors": set(), "exits": 0, "exit_visitors": set(),
                 "depths": {}})
    for s in sessions(events):
        views = [e for e in s.events if e["name"] == "pageview"]
        if views:
            first, last = out[s.site, s.date, views[0]["path"]], \
                out[s.site, s.date, views[-1]["path"]]
            first["entries"] += 1
            first["entry_visitors"].add(s.visitor_id)
            last["exits"] += 1
            last["exit_visitors"].add(s.visitor_id)
        for e in s.events:
            if e["name"] == "engagement" and e.get("scroll_pct") is not None:
                depths = out[s.site, local_date(e), e["path"]]["depths"]
                depth = min(max(e["scroll_pct"], 0), 100)
                depths[s.session_id] = max(depths.get(s.session_id, 0), depth)
    return {
        k: {"entries": v["entries"], "entry_visitors": len(v["entry_visitors"]),
            "exits": v["exits"], "exit_visitors": len(v["exit_visitors"]),
            "avg_scroll_pct": (sum(v["depths"].values()) / len(v["depths"])
                               if v["depths"] else None),
            "scrolled_visits": len(v["depths"])}
        for k, v in out.items()
    }


def _session_value(s: Session, column: str) -> Any:
    if column == "entry_page":
        views = [e for e in s.events if e["name"] == "pageview"]
        return views[0]["path"] if views else None
    return s.events[0].get(column)


def filtered_daily(events: list[dict[str, Any]], kind: str, column: str, value: Any
                   ) -> dict[tuple[str, date], dict[str, int]]:
    """Visitors, visits and pageviews per site and local date under one filter, as
    docs/metrics.md defines filters. A session filter keeps the sessions whose `column`
    (their first event's, or for entry_page their first pageview's path) equals `value`,
    with all their events. An event filter keeps the events that match (pageviews of the
    path, or custom events of the name) and the sessions that hold one."""
    kept_sessions: list[Session] = []
    kept_events: list[dict[str, Any]] = []
    for s in sessions(events):
        if kind == "session":
            if _session_value(s, column) == value:
                kept_sessions.append(s)
                kept_events += s.events
            continue
        matching = [e for e in s.events if e.get(column) == value and (
            e["name"] == "pageview" if column == "path"
            else e["name"] not in ("pageview", "engagement"))]
        if matching:
            kept_sessions.append(s)
            kept_events += matching
    out: dict[tuple[str, date], dict[str, Any]] = defaultdict(
        lambda: {"visitors": set(), "visits": 0, "pageviews": 0})
    for e in kept_events:
        row = out[e["site"], local_date(e)]
        row["visitors"].add(e["visitor"])
        row["pageviews"] += e["name"] == "pageview"
    for s in kept_sessions:
        out[s.site, s.date]["visits"] += 1
    return {k: {"visitors": len(v["visitors"]), "visits": v["visits"],
                "pageviews": v["pageviews"]} for k, v in out.items()}
