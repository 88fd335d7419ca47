"""`footfall demo`: a workspace with two months of realistic traffic, and the dashboard.

    workspace      demo/config.yaml (two sites, two funnels, two A/B experiments),
                   demo/data, demo/site
    past days      generated visits validated and enriched by the collector's own beacon
                   decoder and Enricher, and appended by its LogWriter (no HTTP, for speed)
    today          sent as real HTTP beacons to an in-process collector, with its clock set
                   to each event's time and X-Forwarded-For varying the address; bots too
    then           `footfall run` (pipeline.run), the site render, and a local web server

The traffic has weekday and hour-of-day seasonality, a growth trend and a launch spike,
power-law page popularity, search, social, referral and direct sources, UTM campaigns,
desktop, mobile and tablet, many countries, custom events with props, funnels with
realistic drop-off, and two running experiments, one with a real effect and one without.
It is seeded, so two runs on the same day look alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import http.server
import json
import math
import random
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
import yaml
from aiohttp import web

from footfall import batch, contract
from footfall import config as config_mod
from footfall.config import Config

T = TypeVar("T")
MARKER = "# Written by `footfall demo`."
DAYS = 60

DEMO_SITES = [
    {"domain": "example.com", "timezone": "Europe/Berlin", "name": "Example Cloud"},
    {"domain": "shop.example.org", "timezone": "America/New_York", "name": "Example Shop"},
]
DEMO_FUNNELS: list[dict[str, Any]] = [
    {"name": "Signup", "site": "example.com", "steps": [
        {"name": "Visited the home page", "path": "/"},
        {"name": "Viewed pricing", "path": "/pricing"},
        {"name": "Signed up", "event": "Signup"},
    ]},
    {"name": "Checkout", "site": "shop.example.org", "steps": [
        {"name": "Viewed a product", "path": "/products/*"},
        {"name": "Added to cart", "event": "Add to cart"},
        {"name": "Started checkout", "path": "/checkout"},
        {"name": "Purchased", "event": "Purchase"},
    ]},
]
#: Both run for the last EXPERIMENT_DAYS days: the pricing page's headline B really lifts
#: signups (from 17% to 25% of the visits that see it); the checkout button's colour changes
#: nothing. Variants go by the visitor id, so a visitor keeps its variant for the day.
EXPERIMENT_DAYS = 21
DEMO_EXPERIMENTS: list[dict[str, Any]] = [
    {"name": "Pricing headline", "site": "example.com", "prop": "headline", "control": "A",
     "goal": {"event": "Signup"}},
    {"name": "Checkout button", "site": "shop.example.org", "prop": "button", "control": "blue",
     "goal": {"event": "Purchase"}},
]
_SIGNUP_ON_PRICING = {"A": 0.17, "B": 0.25}

# (user agent, screen width, weight). Real strings, parsed by the collector's own parser.
AGENTS: list[tuple[str, int, float]] = [
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", 1920, 22),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Safari/605.1.15", 1440, 10),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", 1512, 9),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0",
     1920, 6),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", 1536, 6),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Safari/537.36", 2560, 3),
    ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0", 1920, 2),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
     "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", 393, 19),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/130.0.0.0 Mobile Safari/537.36", 412, 10),
    ("Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S921B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36", 384, 5),
    ("Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.6 Mobile/15E148 Safari/604.1", 820, 4),
]
BOTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/130.0.0.0 Safari/537.36",
]
# Public addresses that the bundled geo data places in these countries (weight per site).
COUNTRIES: list[tuple[str, str, float, float]] = [
    # (ip, country, weight on example.com, weight on the shop)
    ("8.8.8.8", "US", 26, 48), ("81.2.69.142", "GB", 9, 7), ("5.9.0.1", "DE", 16, 3),
    ("37.64.10.1", "FR", 6, 2), ("20.200.10.1", "CA", 4, 12), ("5.200.10.1", "NL", 5, 1),
    ("31.13.64.1", "IN", 7, 2), ("2.16.0.1", "BR", 3, 3), ("1.0.0.1", "AU", 3, 5),
    ("110.0.0.1", "JP", 2, 1), ("2.0.10.1", "SE", 3, 1), ("31.0.10.1", "PL", 3, 0.5),
    ("88.0.0.1", "ES", 3, 1), ("79.0.10.1", "IT", 2, 1), ("57.0.10.1", "CH", 2, 0.5),
    ("159.16.10.1", "MX", 1, 3), ("1.16.10.1", "KR", 1, 0.5), ("3.0.10.1", "SG", 1, 0.5),
    ("41.0.0.1", "ZA", 1, 0.5), ("138.0.10.1", "AR", 0.5, 1), ("17.64.10.1", "IE", 1, 1),
    ("2.128.10.1", "DK", 1, 0.3), ("46.200.10.1", "UA", 1, 0.2), ("83.64.10.1", "AT", 1.5, 0.3),
]


@dataclass(frozen=True)
class Source:
    referrer: str | None
    utm: dict[str, str] | None
    weight: float
    landing: tuple[str, ...] | None = None  # preferred entry pages
    mobile_bias: float = 1.0


@dataclass
class Profile:
    pages: list[str]
    sources: list[Source]
    visitors_per_day: int
    bounce: float  # chance a visit stops after its first page
    growth: float  # daily visitors grow by this fraction over the window
    spike_day: int  # days ago of a launch spike
    events: dict[str, Any] = field(default_factory=dict)


def _blog(n: int) -> list[str]:
    words = ["self-hosted-analytics", "why-we-dropped-cookies", "duckdb-in-production",
             "gdpr-without-banners", "postgres-vs-duckdb", "static-dashboards",
             "release-notes-2-0", "privacy-by-design", "counting-visitors-honestly",
             "tracking-without-js", "the-1kb-tracker", "funnels-that-matter",
             "utm-done-right", "bot-filtering", "timezones-are-hard", "csv-is-an-api"]
    return [f"/blog/{w}" for w in words[:n]]


PROFILES: dict[str, Profile] = {
    "example.com": Profile(
        pages=["/", "/pricing", "/features", *_blog(16), "/docs/", "/docs/install",
               "/docs/tracker", "/docs/config", "/about", "/changelog", "/signup",
               "/contact", "/docs/api", "/legal/privacy"],
        sources=[
            Source(None, None, 30),
            Source("https://www.google.com/", None, 26, ("/blog/",)),
            Source("https://duckduckgo.com/", None, 5, ("/blog/",)),
            Source("https://www.bing.com/search?q=analytics", None, 3, ("/blog/",)),
            Source("https://news.ycombinator.com/item?id=41234567", None, 5, ("/blog/",)),
            Source("https://www.reddit.com/r/selfhosted/comments/abc/", None, 4, ("/",)),
            Source("https://github.com/footfall/footfall", None, 4, ("/docs/",)),
            Source("https://t.co/x1y2z3", None, 3, ("/blog/",), 1.6),
            Source("https://www.linkedin.com/", None, 2, ("/",), 1.4),
            Source("https://mastodon.social/@footfall", None, 2, ("/blog/",), 1.3),
            Source(None, {"utm_source": "newsletter", "utm_medium": "email",
                          "utm_campaign": "november-digest"}, 4, ("/blog/",), 1.3),
            Source("https://www.producthunt.com/posts/example-cloud",
                   {"utm_source": "producthunt", "utm_medium": "referral",
                    "utm_campaign": "launch-week"}, 3, ("/",)),
            Source("https://www.google.com/", {"utm_source": "google", "utm_medium": "cpc",
                                               "utm_campaign": "brand-search"}, 3, ("/pricing",)),
        ],
        visitors_per_day=420, bounce=0.42, growth=0.35, spike_day=19,
        events={"Signup": {"plan": [("free", 6), ("pro", 3), ("team", 1)]},
                "Newsletter": {"position": [("footer", 3), ("inline", 2)]},
                "File Download": {"url": [("https://example.com/footfall-guide.pdf", 3),
                                          ("https://example.com/brand-kit.zip", 1)]},
                "Outbound Link: Click": {"url": [("https://github.com/footfall/footfall", 5),
                                                 ("https://duckdb.org/docs", 2),
                                                 ("https://plausible.io/", 1)]}},
    ),
    "shop.example.org": Profile(
        pages=["/", "/products/trail-runner", "/products/city-sneaker", "/products/wool-socks",
               "/products/rain-jacket", "/products/canvas-tote", "/products/beanie",
               "/collections/new", "/collections/sale", "/cart", "/checkout", "/about",
               "/shipping", "/returns", "/faq"],
        sources=[
            Source(None, None, 28),
            Source("https://www.google.com/", None, 30, ("/products/", "/collections/")),
            Source("https://www.bing.com/search?q=sneakers", None, 4, ("/products/",)),
            Source("https://l.instagram.com/", None, 9, ("/products/",), 2.2),
            Source("https://www.pinterest.com/", None, 5, ("/products/",), 1.8),
            Source("https://l.facebook.com/", None, 5, ("/collections/",), 1.8),
            Source(None, {"utm_source": "newsletter", "utm_medium": "email",
                          "utm_campaign": "black-friday"}, 6, ("/collections/sale",), 1.4),
            Source("https://l.instagram.com/", {"utm_source": "instagram",
                                                "utm_medium": "paid-social",
                                                "utm_campaign": "winter-drop"},
                   5, ("/products/",), 2.5),
            Source("https://www.google.com/", {"utm_source": "google", "utm_medium": "cpc",
                                               "utm_campaign": "shopping"}, 4, ("/products/",)),
        ],
        visitors_per_day=260, bounce=0.38, growth=0.2, spike_day=3,
        events={"Add to cart": {"product": []},
                "Purchase": {"payment": [("card", 6), ("paypal", 3), ("apple-pay", 2)]},
                "Newsletter": {"position": [("popup", 3), ("footer", 1)]}},
    ),
}


@dataclass
class Event:
    at_ms: int
    site: str
    visitor: str  # 16 hex, stable for the day
    agent: int  # index into AGENTS, or -1 - index into BOTS
    ip: str
    name: str
    url: str
    referrer: str | None = None
    props: dict[str, contract.PropValue] | None = None
    engaged_ms: int | None = None
    scroll_pct: int | None = None


def _pick(rng: random.Random, items: list[tuple[Any, float]]) -> Any:
    return rng.choices([i for i, _ in items], weights=[w for _, w in items])[0]


def _zipf(n: int, s: float = 1.1) -> list[float]:
    return [1 / (k + 1) ** s for k in range(n)]


_WEEKDAY = [1.0, 1.05, 1.04, 1.0, 0.92, 0.62, 0.68]
# Local hour-of-day shape: quiet nights, a working-day hump, an evening bump on phones.
_HOURS = [0.12, 0.07, 0.05, 0.04, 0.05, 0.1, 0.25, 0.5, 0.8, 1.0, 1.05, 1.05, 0.95, 1.0,
          1.05, 1.0, 0.95, 0.85, 0.75, 0.8, 0.85, 0.7, 0.45, 0.25]


def _visitor_id(site: str, n: int, day: date) -> str:
    return hashlib.blake2b(f"{site}:{n}:{day}".encode(), digest_size=8).hexdigest()


def generate(now: datetime, days: int = DAYS, scale: float = 1.0, seed: int = 7) -> list[Event]:
    """Every event of the last `days` local days up to `now`, for both demo sites."""
    rng = random.Random(seed)
    out: list[Event] = []
    now_ms = int(now.timestamp() * 1000)
    for site in DEMO_SITES:
        domain = site["domain"]
        prof = PROFILES[domain]
        tz = ZoneInfo(site["timezone"])
        today = now.astimezone(tz).date()
        page_weights = list(zip(prof.pages, _zipf(len(prof.pages)), strict=True))
        country_weights = [(ip, w if domain == "example.com" else w2)
                           for ip, _cc, w, w2 in COUNTRIES]
        for back in range(days, -1, -1):
            day = today - timedelta(days=back)
            factor = _WEEKDAY[day.weekday()] * (1 + prof.growth * (days - back) / days)
            factor *= rng.uniform(0.88, 1.12)
            if back in (prof.spike_day, prof.spike_day - 1):
                factor *= 2.4 if back == prof.spike_day else 1.5
            count = max(3, int(prof.visitors_per_day * factor * scale))
            for n in range(count):
                visitor = _visitor_id(domain, n, day)
                ip = _pick(rng, country_weights)
                for _ in range(2 if rng.random() < 0.1 else 1):
                    out += _visit(rng, prof, domain, tz, day, visitor, ip, page_weights,
                                  spike=back in (prof.spike_day, prof.spike_day - 1),
                                  experiments=back < EXPERIMENT_DAYS)
    return [e for e in out if e.at_ms <= now_ms]


def _visit(rng: random.Random, prof: Profile, domain: str, tz: ZoneInfo, day: date,
           visitor: str, ip: str, page_weights: list[tuple[str, float]], spike: bool,
           experiments: bool = False) -> list[Event]:
    weights = [(s, s.weight * (4 if spike and s.utm and "launch" in str(s.utm) else 1))
               for s in prof.sources]
    source: Source = _pick(rng, weights)
    mobile_boost = source.mobile_bias
    agent = _pick(rng, [(i, weight * (mobile_boost if width < 900 else 1.0))
                        for i, (_ua, width, weight) in enumerate(AGENTS)])
    hour_shape = list(_HOURS)
    if AGENTS[agent][1] < 900:  # phones peak in the evening
        hour_shape = [w * (1.5 if 18 <= h <= 22 else 0.85) for h, w in enumerate(hour_shape)]
    hour = _pick(rng, list(enumerate(hour_shape)))
    local = datetime(day.year, day.month, day.day, hour, tzinfo=tz) + timedelta(
        seconds=rng.randrange(3600))
    t = int(local.astimezone(UTC).timestamp() * 1000)
    base = f"https://{domain}"

    if source.landing:
        candidates = [(p, w) for p, w in page_weights
                      if any(p.startswith(prefix) for prefix in source.landing)]
        entry = _pick(rng, candidates or page_weights)
    else:
        entry = _pick(rng, [(p, w * (6 if p == "/" else 1)) for p, w in page_weights])
    query = ("?" + urlencode(source.utm)) if source.utm else ""
    events: list[Event] = []
    path = entry
    views = 0
    max_views = 1 if rng.random() < prof.bounce else min(12, 2 + int(rng.expovariate(0.45)))

    def emit(name: str, url: str, **kw: Any) -> None:
        events.append(Event(t, domain, visitor, agent, ip, name, url, **kw))

    # from the id, not the generator: the traffic around the experiments stays as it was
    half = int(visitor[:8], 16) % 2
    variants = {"example.com": ("/pricing", "headline", "AB"[half]),
                "shop.example.org": ("/checkout", "button", ("blue", "green")[half])}
    page, prop, variant = variants[domain]
    while True:
        url = base + path + (query if views == 0 else "")
        shown = experiments and path == page
        emit("pageview", url, referrer=source.referrer if views == 0 else None,
             props={prop: variant} if shown else None)
        views += 1
        dwell = int(min(900_000, rng.lognormvariate(math.log(35_000), 0.9)))
        nxt, extra = _next(rng, prof, domain, path, page_weights,
                           variant if shown else None)
        for name, props in extra:
            t += rng.randrange(3_000, max(3_001, dwell // 2))
            emit(name, base + path, props=props)
        t += dwell
        emit("engagement", base + path, engaged_ms=int(dwell * rng.uniform(0.5, 0.95)),
             scroll_pct=rng.choice([25, 40, 60, 75, 90, 100]))
        if views >= max_views or nxt is None:
            break
        t += rng.randrange(500, 4_000)
        path = nxt
    return events


def _next(rng: random.Random, prof: Profile, domain: str, path: str,
          page_weights: list[tuple[str, float]], variant: str | None = None
          ) -> tuple[str | None, list[tuple[str, dict[str, contract.PropValue]]]]:
    """The next page of a visit and the custom events on this one (funnel logic lives here)."""
    extra: list[tuple[str, dict[str, contract.PropValue]]] = []
    ev = prof.events
    if rng.random() < 0.025 and "Newsletter" in ev:
        extra.append(("Newsletter", {"position": _pick(rng, ev["Newsletter"]["position"])}))
    if domain == "example.com":
        if path.startswith("/docs") and rng.random() < 0.12:
            extra.append(("File Download", {"url": _pick(rng, ev["File Download"]["url"])}))
        if rng.random() < 0.05:
            extra.append(("Outbound Link: Click",
                          {"url": _pick(rng, ev["Outbound Link: Click"]["url"])}))
        if path == "/pricing" and rng.random() < _SIGNUP_ON_PRICING.get(variant or "A", 0.17):
            extra.append(("Signup", {"plan": _pick(rng, ev["Signup"]["plan"])}))
            return "/signup", extra
        if path == "/" and rng.random() < 0.42:
            return "/pricing", extra
        if path.startswith("/blog/") and rng.random() < 0.25:
            return "/", extra
    else:
        if path.startswith("/products/") and rng.random() < 0.24:
            extra.append(("Add to cart", {"product": path.rsplit("/", 1)[1],
                                          "size": rng.choice(["S", "M", "L", "XL"])}))
            return ("/checkout" if rng.random() < 0.55 else "/cart"), extra
        if path == "/cart" and rng.random() < 0.5:
            return "/checkout", extra
        if path == "/checkout":
            if rng.random() < 0.48:
                extra.append(("Purchase", {"payment": _pick(rng, ev["Purchase"]["payment"]),
                                           "items": rng.choice([1, 1, 1, 2, 2, 3])}))
            return None, extra
        if path in ("/", "/collections/new", "/collections/sale") and rng.random() < 0.6:
            products = [(p, w) for p, w in page_weights if p.startswith("/products/")]
            return _pick(rng, products), extra
    return _pick(rng, page_weights), extra


# --- the past: the collector's own validation, Enricher and writer, without HTTP -------


class _PremadeVisitors:
    """Hands the collector's Enricher the id each generated event already carries."""

    def __init__(self) -> None:
        self.current = ""

    def visitor(self, site: str, ip: str, user_agent: str, now_ms: int) -> str:
        return self.current


def write_past(cfg: Config, events: list[Event]) -> int:
    """Append the events, oldest first, through the collector's own beacon validation,
    Enricher and LogWriter: the path a live beacon takes, minus HTTP. Returns lines written."""
    from collector.beacon import from_object
    from collector.enrich import Dropped, Enricher
    from collector.logwriter import LogWriter

    clock = [0]
    writer = LogWriter(cfg.logs_dir, lambda: clock[0], 64 * 1024 * 1024, 5.0)
    visitors = _PremadeVisitors()
    enricher = Enricher(cfg, visitors)
    written = 0
    try:
        for e in sorted(events, key=lambda e: e.at_ms):
            clock[0] = e.at_ms
            visitors.current = e.visitor
            body, headers = _beacon(e)
            result = enricher.lines(from_object(body), e.ip, headers["User-Agent"], e.at_ms)
            if not isinstance(result, Dropped):
                for line in result.lines:
                    writer.append(contract.encode(line))
                written += len(result.lines)
    finally:
        writer.close()
    return written


# --- today: real beacons over HTTP ---------------------------------------------------------


def _beacon(e: Event) -> tuple[dict[str, Any], dict[str, str]]:
    body: dict[str, Any] = {"n": e.name, "d": e.site, "u": e.url, "w": AGENTS[e.agent][1]}
    if e.referrer:
        body["r"] = e.referrer
    if e.props:
        body["p"] = e.props
    if e.engaged_ms is not None:
        body["e"] = e.engaged_ms
    if e.scroll_pct is not None:
        body["sd"] = e.scroll_pct
    return body, {"User-Agent": AGENTS[e.agent][0], "X-Forwarded-For": e.ip,
                  "Content-Type": "text/plain"}


async def send_live(cfg: Config, events: list[Event], rng: random.Random) -> dict[str, int]:
    """Start the collector in-process and post each event at its own time (its clock is ours)."""
    from collector.app import create_app

    clock = [int(time.time() * 1000)]
    runner = web.AppRunner(create_app(cfg, clock=lambda: clock[0]), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/api/event"
    counts = {"sent": 0, "accepted": 0, "bots": 0}
    try:
        async with aiohttp.ClientSession() as session:
            for e in sorted(events, key=lambda e: e.at_ms):
                clock[0] = e.at_ms
                body, headers = _beacon(e)
                if e.name == "pageview" and rng.random() < 0.06:  # a crawler passes by
                    bot = {**headers, "User-Agent": rng.choice(BOTS)}
                    async with session.post(url, data=json.dumps(body), headers=bot) as resp:
                        counts["bots"] += resp.status == 202
                async with session.post(url, data=json.dumps(body), headers=headers) as resp:
                    counts["sent"] += 1
                    counts["accepted"] += resp.status == 202
    finally:
        await runner.cleanup()
    return counts


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (tests and benchmarks use it too)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the workspace and the whole run -------------------------------------------------------


def write_workspace(folder: Path) -> Config:
    """A fresh demo workspace; data and site of an earlier demo there are replaced."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    if path.exists() and not path.read_text(encoding="utf-8").startswith(MARKER):
        from footfall.errors import ConfigError

        raise ConfigError(str(path), ["exists and was not written by `footfall demo`; "
                                      "pass --workspace with an empty folder"])
    for old in ("data", "site"):
        shutil.rmtree(folder / old, ignore_errors=True)
    raw = {
        "data_dir": "data",
        "site_dir": "site",
        "sites": DEMO_SITES,
        "collector": {"host": "127.0.0.1", "port": 0, "trusted_proxies": ["127.0.0.1/32"]},
        "funnels": DEMO_FUNNELS,
        "experiments": DEMO_EXPERIMENTS,
    }
    path.write_text(MARKER + "\n" + yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return config_mod.load(path)


@dataclass
class DemoResult:
    cfg: Config
    past_events: int
    live: dict[str, int]
    seconds: float


def build(workspace: Path, now: datetime | None = None, days: int = DAYS, scale: float = 1.0,
          say: Any = print) -> DemoResult:
    """Everything but serving: workspace, traffic, pipeline, site."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    cfg = write_workspace(workspace)
    events = generate(now, days=days, scale=scale)
    today = datetime(now.year, now.month, now.day, tzinfo=UTC)
    cut = int(today.timestamp() * 1000)
    past = [e for e in events if e.at_ms < cut]
    live = [e for e in events if e.at_ms >= cut]
    say(f"Writing {len(past):,} events of the last {days} days through the log writer…")
    write_past(cfg, past)
    say(f"Sending today's {len(live):,} events as HTTP beacons to a collector…")
    counts = _in_thread(lambda: asyncio.run(send_live(cfg, live, random.Random(11))))
    say(f"  {counts['accepted']:,} accepted; {counts['bots']} beacons from bots were dropped.")
    say("Running the pipeline, then rendering the site…")
    result = batch.run(cfg, now=now, progress=None)
    say(f"  {result.pipeline.describe()}")
    if result.site:
        say(f"Rendered the site: {result.site.describe()}")
    return DemoResult(cfg, len(past), counts, round(time.perf_counter() - started, 1))


def _in_thread(fn: Callable[[], T]) -> T:
    """Run `fn` in its own thread, so its event loop never meets a caller's running one."""
    out: list[T] = []
    errors: list[BaseException] = []

    def target() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # handed back to the caller below
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return out[0]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_dir(site_dir: Path, port: int = 8000) -> Iterator[str]:
    """Serve site_dir on 127.0.0.1 (the given port, else a free one); yields the URL."""
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def run_demo(workspace: Path, serve: bool = True, **kwargs: Any) -> int:
    result = build(workspace, **kwargs)
    site = result.cfg.site_dir
    print(f"Demo ready in {result.seconds}s. Config: {result.cfg.source}")
    if not serve:
        print(f"Open {site / 'index.html'} (or serve {site} with any static web server).")
        return 0
    with serve_dir(site) as url:
        print(f"Dashboard: {url}  (Ctrl-C stops)", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo"), serve=False))
