"""Live visitors: the last 30 minutes of every current log file, read incrementally.

The source of truth is the log tree, not this process's memory: with several collectors (or
hosts syncing into one tree) each process sees only part of the traffic, so the reader tails
every `*.jsonl` in the UTC day folders the window touches, whoever wrote it.

    routes         GET /live/                 the page, static/live.html (the only page
                                              with JavaScript)
                   GET /api/live?site=D       JSON (`LiveReader.summary`)
                   GET /api/live/stream?site=D   the same as Server-Sent Events
    access         only with `live.token` set (otherwise the routes do not exist); every
                   route wants `Authorization: Bearer TOKEN`, compared in constant time; 401
                   otherwise. /live/ answers its page with the 401, so a browser shows the
                   token form; the page keeps the token in memory and sends it with fetch.
    bounds         files: only the window's day folders; a file first seen is entered at
                   the window's start by bisection on its time stamps, never read whole;
                   after that only the bytes appended since, at most MAX_READ per file and
                   refresh. Events: kept per minute for WINDOW_MINUTES and at most
                   MAX_EVENTS (the oldest minutes go first), so memory follows the last 30
                   minutes of traffic and has a ceiling. Streams: `live.max_streams`, 429
                   beyond.

docs/live.md describes the answers; nothing here writes to disk or logs request data.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import re
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from aiohttp import web

from collector.identity import Clock, utc_day
from footfall.config import Config

WINDOW_MINUTES = 30
NOW_MINUTES = 5  # "visitors right now"
TOP = 10
MAX_READ = 16 * 1024 * 1024  # bytes per file and refresh; the rest waits for the next one
MAX_EVENTS = 250_000
REFRESH_MS = 1_000  # answers within a second share one read of the logs
_BISECT_UNTIL = 64 * 1024
_MINUTE = 60_000


class _Line(msgspec.Struct):
    """The fields of a log line (footfall/contract.py) the live view needs."""

    ts: str
    site: str
    name: str
    path: str
    visitor: str
    source: str | None = None
    country: str | None = None


_decode = msgspec.json.Decoder(_Line).decode
_decode_ts = msgspec.json.Decoder(dict[str, Any]).decode


class Seen(NamedTuple):  # a tuple: the cheapest record to build and to hold
    at_ms: int
    site: str
    name: str
    path: str
    visitor: str
    source: str | None
    country: str | None


@functools.lru_cache(maxsize=4096)
def _second_ms(second: str) -> int:
    return int(datetime.fromisoformat(second).replace(tzinfo=UTC).timestamp()) * 1000


def _ms(ts: str) -> int:
    """`2026-03-10T12:00:00.123Z` (the contract's form) in epoch ms; lines arrive a few per
    second, so the date part is parsed once per second."""
    if len(ts) != 24 or ts[19] != "." or ts[23] != "Z":
        raise ValueError(ts)
    return _second_ms(ts[:19]) + int(ts[20:23])


def _intern(value: str | None) -> str | None:
    # few distinct values, repeated on every event: one copy each
    return sys.intern(value) if value is not None else None


@dataclass
class LiveReader:
    logs_dir: Path
    offsets: dict[Path, int] = field(default_factory=dict)
    minutes: dict[int, list[Seen]] = field(default_factory=dict)
    bytes_read: int = 0
    malformed: int = 0
    dropped_minutes: int = 0

    @property
    def events(self) -> int:
        return sum(len(m) for m in self.minutes.values())

    def refresh(self, now_ms: int) -> None:
        """Read what was appended to the window's files since the last call."""
        since = now_ms - WINDOW_MINUTES * _MINUTE
        days = sorted({utc_day(since), utc_day(now_ms)})
        offsets: dict[Path, int] = {}
        for day in days:
            folder = self.logs_dir / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
            try:
                paths = sorted(folder.glob("*.jsonl"))
            except OSError:
                continue
            for path in paths:
                try:
                    offsets[path] = self._read(path, self.offsets.get(path), since)
                except OSError:
                    continue  # gone or unreadable: tried again next time
        self.offsets = offsets  # files of days outside the window are forgotten
        first = since // _MINUTE
        for minute in [m for m in self.minutes if m < first]:
            del self.minutes[minute]
        while self.events > MAX_EVENTS and len(self.minutes) > 1:
            del self.minutes[min(self.minutes)]
            self.dropped_minutes += 1

    def _read(self, path: Path, offset: int | None, since: int) -> int:
        with open(path, "rb") as f:
            size = f.seek(0, 2)
            if offset is None or offset > size:
                if path.stat().st_mtime * 1000 < since:
                    return size  # written to last before the window: nothing in it
                offset = _window_start(f, size, since)
            if offset >= size:
                return offset
            f.seek(offset)
            chunk = f.read(min(size - offset, MAX_READ))
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.bytes_read += end
        for raw in chunk[:end].splitlines():
            self._add(raw, since)
        return offset + end

    def _add(self, raw: bytes, since: int) -> None:
        try:
            line = _decode(raw)
            at = _ms(line.ts)
        except (msgspec.DecodeError, ValueError):
            self.malformed += 1
            return
        if at < since:
            return
        self.minutes.setdefault(at // _MINUTE, []).append(Seen(
            at, sys.intern(line.site), sys.intern(line.name), line.path, line.visitor,
            _intern(line.source), _intern(line.country)))

    def summary(self, site: str, now_ms: int) -> dict[str, Any]:
        """What /api/live answers for one site (docs/live.md)."""
        last = now_ms // _MINUTE
        first = last - WINDOW_MINUTES + 1
        recent = now_ms - NOW_MINUTES * _MINUTE
        per_minute = [0] * WINDOW_MINUTES
        now_visitors: set[str] = set()
        visitors: set[str] = set()
        pages: Counter[str] = Counter()
        page_visitors: dict[str, set[str]] = {}
        entry: dict[str, Seen] = {}  # each visitor's first pageview: its source and country
        for minute in range(first, last + 1):
            for e in self.minutes.get(minute, ()):
                if e.site != site or e.at_ms > now_ms:
                    continue
                visitors.add(e.visitor)
                if e.at_ms >= recent:
                    now_visitors.add(e.visitor)
                if e.name != "pageview":
                    continue
                per_minute[minute - first] += 1
                pages[e.path] += 1
                page_visitors.setdefault(e.path, set()).add(e.visitor)
                seen = entry.get(e.visitor)
                if seen is None or e.at_ms < seen.at_ms:
                    entry[e.visitor] = e
        sources = Counter(e.source for e in entry.values())
        countries = Counter(e.country for e in entry.values())
        return {
            "site": site,
            "at": datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="seconds"),
            "visitors_now": len(now_visitors),
            "visitors_30m": len(visitors),
            "pageviews_30m": sum(per_minute),
            "pageviews_per_minute": [
                {"minute": datetime.fromtimestamp((first + i) * 60, UTC).strftime("%H:%M"),
                 "pageviews": n} for i, n in enumerate(per_minute)],
            "pages": [{"path": p, "pageviews": n, "visitors": len(page_visitors[p])}
                      for p, n in sorted(pages.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]],
            "sources": _top(sources, "source"),
            "countries": _top(countries, "country"),
            "complete": self.dropped_minutes == 0,
        }


def _top(counts: Counter[str | None], key: str) -> list[dict[str, Any]]:
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] or ""))
    return [{key: value, "visitors": n} for value, n in ordered[:TOP]]


def _window_start(f: Any, size: int, since: int) -> int:
    """The start of a line at or a little before the first one stamped `since` or later.

    The writer appends in clock order, so the lines are sorted by time (up to the odd
    millisecond between threads): a bisection on byte offsets finds the window in a few
    reads, and the older lines in the last block are filtered out as they are read.
    """
    lo, hi = 0, size
    while hi - lo > _BISECT_UNTIL:
        mid = (lo + hi) // 2
        f.seek(mid)
        f.readline()  # the rest of the line mid fell into
        line = f.readline()
        try:
            older = bool(line) and _ms(_decode_ts(line)["ts"]) < since
        except (msgspec.DecodeError, ValueError, KeyError, TypeError):
            older = False  # unreadable: search left, which only reads more
        if older:
            lo = mid
        else:
            hi = mid
    if lo == 0:
        return 0
    f.seek(lo)
    f.readline()
    return int(f.tell())


# --- HTTP ----------------------------------------------------------------------------------


class LiveState:
    """The reader, shared by every live request of one collector process."""

    def __init__(self, config: Config, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.reader = LiveReader(config.logs_dir)
        self.sites = frozenset(s.domain for s in config.sites)
        self.streams = 0
        self.closing = asyncio.Event()
        self._lock = asyncio.Lock()
        self._read_at: int | None = None
        self._cache: dict[str, dict[str, Any]] = {}
        token = config.live.token or ""
        self._token_digest = hashlib.sha256(token.encode()).digest()

    def authorized(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # digests of equal length, compared in constant time: neither the token nor its
        # length can be timed out of the answer
        digest = hashlib.sha256(given.strip().encode()).digest()
        return scheme.lower() == "bearer" and hmac.compare_digest(digest, self._token_digest)

    async def summary(self, site: str) -> dict[str, Any]:
        async with self._lock:
            now = self.clock()
            if self._read_at is None or now - self._read_at >= REFRESH_MS or now < self._read_at:
                # file reads and the sums over the window stay off the event loop
                await asyncio.to_thread(self.reader.refresh, now)
                self._read_at, self._cache = now, {}
            if site not in self._cache:
                self._cache[site] = await asyncio.to_thread(self.reader.summary, site, now)
            return self._cache[site]


LIVE = web.AppKey("live", LiveState)


def setup(app: web.Application, config: Config, clock: Clock) -> None:
    """The live routes, only when `live.token` is set: otherwise they do not exist (404)."""
    if not config.live.token:
        return
    app[LIVE] = LiveState(config, clock)
    app.on_shutdown.append(_end_streams)
    app.router.add_get("/live/", live_page, allow_head=False)
    app.router.add_get("/api/live", live_json, allow_head=False)
    app.router.add_get("/api/live/stream", live_stream, allow_head=False)


async def _end_streams(app: web.Application) -> None:
    app[LIVE].closing.set()


def _unauthorized(text: str = "send Authorization: Bearer TOKEN with the live.token\n",
                  **extra: Any) -> web.Response:
    return web.Response(status=401, text=text, headers={
        "WWW-Authenticate": 'Bearer realm="footfall live"', "Cache-Control": "no-store",
        **extra})


def _site(request: web.Request) -> str | web.Response:
    state = request.app[LIVE]
    if not state.authorized(request):
        return _unauthorized()
    site = request.query.get("site", "")
    if site not in state.sites:
        # the value is not echoed: it is whatever the client sent
        return web.Response(status=400, text="site must be one of the configured domains\n",
                            headers={"Cache-Control": "no-store"})
    return site


async def live_json(request: web.Request) -> web.Response:
    site = _site(request)
    if isinstance(site, web.Response):
        return site
    return web.json_response(await request.app[LIVE].summary(site),
                             headers={"Cache-Control": "no-store"})


async def live_stream(request: web.Request) -> web.StreamResponse:
    site = _site(request)
    if isinstance(site, web.Response):
        return site
    state = request.app[LIVE]
    if state.streams >= state.config.live.max_streams:
        return web.Response(status=429, text="too many live streams open; close one\n",
                            headers={"Retry-After": "30", "Cache-Control": "no-store"})
    state.streams += 1
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no"})  # nginx would otherwise hold the events back
    try:
        await response.prepare(request)
        async for body in _events(state, site):
            await response.write(body)
    except ConnectionError:
        pass  # the client went away
    finally:
        state.streams -= 1
    return response


async def _events(state: LiveState, site: str) -> AsyncIterator[bytes]:
    while not state.closing.is_set():
        data = msgspec.json.encode(await state.summary(site))
        yield b"event: live\ndata: " + data + b"\n\n"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.closing.wait(), state.config.live.interval_s)


# --- the page ------------------------------------------------------------------------------


def _hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _page() -> tuple[str, str]:
    """collector/static/live.html, and a policy that lets only its own style and script run
    and lets it talk to its own origin and nothing else."""
    page = resources.files("collector").joinpath("static/live.html").read_text(encoding="utf-8")
    styles = re.findall(r"<style>(.*?)</style>", page, flags=re.S)
    scripts = re.findall(r"<script>(.*?)</script>", page, flags=re.S)
    csp = (f"default-src 'none'; script-src {' '.join(map(_hash, scripts))}; "
           f"style-src {' '.join(map(_hash, styles))}; connect-src 'self'; img-src 'none'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return page, csp


PAGE, CSP = _page()
_PAGE_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                 "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                 "Content-Type": "text/html; charset=utf-8"}


async def live_page(request: web.Request) -> web.Response:
    """The page holds no data; without the token it comes with the 401, as the login form."""
    if not request.app[LIVE].authorized(request):
        return _unauthorized(PAGE, **_PAGE_HEADERS)
    return web.Response(text=PAGE, headers=_PAGE_HEADERS)
