"""Web server access logs → log-contract lines, for sites that run no tracker.

`footfall import logs FILE... --site DOMAIN` reads nginx/Apache (`combined`, `common`,
`vcombined`) or Caddy (`caddy-json`) access logs, plain, gzipped or on stdin. A request is a
pageview when it is a GET (HEAD too with `head=True`) answered 2xx or 304 for a page (not a
static asset by extension, or by content type where the format logs it). Everything else a
pageview needs (bot rules, excluded paths, path redaction, UTM, referrer, browser, OS, device,
country) is the collector's own `Enricher`, so an imported day reads like a tracked one.
docs/access-logs.md has the rules and how the figures compare with GoAccess.

Files, per site and source (a source is named by a keyed digest of its first line, so a
rotated, renamed or gzipped copy of the same log is the same source):

    logs/import/<site>/<source>.jsonl          the events; the pipeline reads them as any log
    logs/import/<site>/<source>.state          how far the source was read (atomic replace)
    quarantine/import/<site>/<source>.ndjson   malformed lines: line number, offset, reason

Idempotent and resumable: an event id is derived from site, source and the line's byte offset,
and the state file records the offset read and the sizes written. Output is appended in whole
lines, then the state is replaced; a resumed import cuts both files back to the state and
goes on from its offset, so a kill -9 anywhere loses and duplicates nothing.

`follow=True` reads the files again every second until SIGINT or SIGTERM (a live log).

Privacy: the IP and user agent are only hashed into a visitor id under a salt per local day
kept in salts/import/ while the import runs and deleted when it ends (a kill -9 leaves them
for the resume, which deletes them). Quarantine entries carry no line content.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, TextIO
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import duckdb
import msgspec

from collector.beacon import from_object
from collector.enrich import Dropped, Enricher
from collector.identity import DAY_MS, SaltStore, hash_visitor
from collector.useragent import Agent, AgentParser
from footfall import contract as c
from footfall.config import Config
from footfall.errors import BeaconError, FootfallError

__all__ = [
    "ASSET_EXTENSIONS",
    "FORMATS",
    "ImportSummary",
    "import_logs",
    "imported_id",
    "is_imported_id",
]

FORMATS = ("combined", "common", "vcombined", "caddy-json")

#: Paths with these extensions are assets, never pages (matched case-insensitively). GoAccess's
#: default static-file list plus the modern formats it lacks.
ASSET_EXTENSIONS = frozenset({
    ".css", ".js", ".mjs", ".map", ".json", ".xml", ".rss", ".atom", ".txt", ".csv",
    ".webmanifest", ".wasm", ".jpg", ".jpeg", ".png", ".gif", ".ico", ".svg", ".webp", ".avif",
    ".bmp", ".tif", ".tiff", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".pdf", ".doc", ".docx",
    ".xls", ".xlsx", ".ppt", ".pptx", ".zip", ".gz", ".tgz", ".tar", ".rar", ".7z", ".exe",
    ".dmg", ".iso", ".mp3", ".mp4", ".m4a", ".ogg", ".oga", ".ogv", ".webm", ".wav", ".flac",
    ".mpeg", ".mpg", ".flv", ".avi", ".mov", ".swf",
})
_PAGE_TYPES = ("text/html", "application/xhtml+xml")

MAX_LINE = 64 * 1024  # Longer lines are quarantined unread: no real request line is this long.
_FLUSH_LINES = 5_000  # Lines between writes of the output and the state file.
_IMPORTED_VERSION = "8"  # UUID version nibble of imported ids; the tracker's are version 7.


class _Malformed(Exception):
    """A line that does not match the format; the reason never quotes the line."""


@dataclass(frozen=True, slots=True)
class Request:
    """The parts of one access-log line an import uses."""

    ip: str
    ts_ms: int
    method: str | None  # None when the request line is not "METHOD TARGET [PROTOCOL]"
    target: str
    status: int
    referrer: str | None
    user_agent: str
    host: str | None = None  # vcombined and caddy-json log the virtual host
    content_type: str | None = None  # caddy-json logs the response's Content-Type


# --- parsing ---------------------------------------------------------------------------------

_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'  # unrolled: no alternation per character
_CLF = (
    r"(\S+) \S+ \S+ \[([^\]]+)\] " + _QUOTED + r" (\d{3}) \S+"  # ip ident user [time] "req" st size
)
_PATTERNS = {
    "common": re.compile(_CLF),
    "combined": re.compile(_CLF + " " + _QUOTED + " " + _QUOTED),
    "vcombined": re.compile(r"(\S+) " + _CLF + " " + _QUOTED + " " + _QUOTED),
}
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_BAD_TIME = "time is not like 10/Oct/2000:13:55:36 +0000"
# Times outside these years are typos or forgeries; each distinct day would cost a salt.
_EARLIEST_MS = (date(1990, 1, 1).toordinal() - _EPOCH_ORDINAL) * DAY_MS
_LATEST_MS = (date(2100, 1, 1).toordinal() - _EPOCH_ORDINAL) * DAY_MS


@lru_cache(maxsize=1024)
def _day_start_ms(day_month_year: str, offset: str) -> int:
    """Epoch ms of local midnight for "10/Oct/2000" at "+0200"; cached: logs repeat days."""
    try:
        day = date(int(day_month_year[7:11]), _MONTHS[day_month_year[3:6]],
                   int(day_month_year[0:2]))
        sign = {"+": 1, "-": -1}[offset[0]]
        shift = sign * (int(offset[1:3]) * 3600 + int(offset[3:5]) * 60)
    except (KeyError, ValueError, IndexError):
        raise _Malformed(_BAD_TIME) from None
    if len(day_month_year) != 11 or len(offset) != 5:
        raise _Malformed(_BAD_TIME)
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_MS - shift * 1000


def _clf_ms(text: str) -> int:
    if len(text) != 26 or text[11] != ":" or text[20] != " ":
        raise _Malformed(_BAD_TIME)
    try:
        h, m, s = int(text[12:14]), int(text[15:17]), int(text[18:20])
    except ValueError:
        raise _Malformed(_BAD_TIME) from None
    if h > 23 or m > 59 or s > 60:
        raise _Malformed(_BAD_TIME)
    return _day_start_ms(text[:11], text[21:]) + (h * 3600 + m * 60 + s) * 1000


def _request_line(text: str) -> tuple[str | None, str]:
    parts = text.split(" ")
    if len(parts) in (2, 3) and parts[0].isalpha() and parts[0].isupper():
        return parts[0], parts[1]
    return None, ""


def _dash(text: str) -> str | None:
    return None if text in ("", "-") else text


def parse_clf(fmt: str, line: str) -> Request:
    """One nginx/Apache line in `combined`, `common` or `vcombined`."""
    match = _PATTERNS[fmt].fullmatch(line)
    if match is None:
        raise _Malformed(f"does not match the {fmt} format")
    groups = match.groups()
    host = None
    if fmt == "vcombined":
        host, groups = groups[0], groups[1:]
    ip, ts, request, status = groups[0], groups[1], groups[2], groups[3]
    referrer, agent = (groups[4], groups[5]) if fmt != "common" else ("-", "")
    method, target = _request_line(request)
    return Request(ip=ip, ts_ms=_clf_ms(ts), method=method, target=target, status=int(status),
                   referrer=_dash(referrer), user_agent=agent, host=host)


class _CaddyRequest(msgspec.Struct):
    remote_ip: str = ""
    client_ip: str = ""  # Caddy 2.7+: the client behind trusted proxies
    method: str = ""
    host: str = ""
    uri: str = ""
    headers: dict[str, list[str]] = {}


class _CaddyLine(msgspec.Struct):
    ts: float | str
    request: _CaddyRequest
    status: int
    resp_headers: dict[str, list[str]] = {}


_caddy = msgspec.json.Decoder(_CaddyLine)


def _header(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def parse_caddy(line: str) -> Request:
    """One line of Caddy's JSON access log (`log { format json }`)."""
    try:
        raw = _caddy.decode(line)
    except msgspec.ValidationError:
        raise _Malformed("a Caddy access-log field is missing or of the wrong type") from None
    except msgspec.DecodeError:
        raise _Malformed("not a JSON object") from None
    if isinstance(raw.ts, str):
        try:
            moment = datetime.fromisoformat(raw.ts)
        except ValueError:
            raise _Malformed("ts is neither epoch seconds nor ISO 8601") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        seconds = moment.timestamp()
    else:
        seconds = raw.ts
    if not _EARLIEST_MS <= seconds * 1000 < _LATEST_MS:  # also false for NaN and infinity
        raise _Malformed("ts is not a time between 1990 and 2100")
    ts_ms = round(seconds * 1000)
    req = raw.request
    ip = req.client_ip or req.remote_ip
    if not ip or not req.method or not 100 <= raw.status <= 999:
        raise _Malformed("a Caddy access line needs request.remote_ip, method and status")
    return Request(
        ip=ip, ts_ms=ts_ms, method=req.method.upper(), target=req.uri or "/", status=raw.status,
        referrer=_header(req.headers, "Referer"),
        user_agent=_header(req.headers, "User-Agent") or "",
        host=req.host or None,
        content_type=_header(raw.resp_headers, "Content-Type"),
    )


def parse(fmt: str, line: str) -> Request:
    request = parse_caddy(line) if fmt == "caddy-json" else parse_clf(fmt, line)
    if not _EARLIEST_MS <= request.ts_ms < _LATEST_MS:
        raise _Malformed("time is not between 1990 and 2100")
    return request


def is_asset(target: str, content_type: str | None) -> bool:
    """A static file rather than a page: by content type when logged, else by extension."""
    if content_type:
        return not content_type.lower().lstrip().startswith(_PAGE_TYPES)
    path = target.split("?", 1)[0].split("#", 1)[0]
    name = path.rsplit("/", 1)[-1]
    dot = name.rfind(".")
    return dot > 0 and name[dot:].lower() in ASSET_EXTENSIONS


def _is_absolute(target: str) -> bool:
    return target[:8].lower().startswith(("http://", "https://"))


def page_url(request: Request, site: str) -> str:
    """The URL that was asked for: an absolute-form target as it is, else the path on the
    logged virtual host, or on the site."""
    if _is_absolute(request.target):
        return request.target
    path = request.target if request.target.startswith("/") else "/" + request.target
    return f"https://{request.host or site}{path}"


# --- ids and visitors ------------------------------------------------------------------------


def imported_id(site: str, source: str, offset: int, ts_ms: int) -> str:
    """A UUID-shaped event id, time-ordered like the tracker's UUIDv7 but version 8, and
    derived from where the line is: the same line imported again gets the same id."""
    digest = hashlib.blake2b(f"{site}\0{source}\0{offset}".encode(), digest_size=10).digest()
    bits = int.from_bytes(digest, "big")  # 80 bits, of which 74 are used
    value = ((ts_ms & 0xFFFFFFFFFFFF) << 80 | 0x8 << 76 | (bits >> 62 & 0xFFF) << 64
             | 0b10 << 62 | (bits & ((1 << 62) - 1)))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def is_imported_id(event_id: str) -> bool:
    return len(event_id) == 36 and event_id[14] == _IMPORTED_VERSION


class _LocalDays:
    """Epoch ms → the site's local date, cached per minute (offsets change on minutes)."""

    def __init__(self, timezone: str) -> None:
        self.zone = ZoneInfo(timezone)
        self._minute = lru_cache(maxsize=4096)(self._of_minute)

    def _of_minute(self, minute: int) -> date:
        return datetime.fromtimestamp(minute * 60, self.zone).date()

    def __call__(self, ts_ms: int) -> date:
        return self._minute(ts_ms // 60_000)


class ImportVisitors:
    """The collector's keyed visitor hash under one salt per local day, made for this import.

    Keyed by the site's local day rather than the UTC day, so a day's visitors are the distinct
    (IP, user agent) pairs of that day, as GoAccess counts them; no visit is carried over
    midnight.
    """

    def __init__(self, salts: SaltStore, local_day: _LocalDays) -> None:
        self.salts = salts
        self.local_day = local_day

    def visitor(self, site: str, ip: str, user_agent: str, now_ms: int) -> str:
        return hash_visitor(self.salts.salt(self.local_day(now_ms)), site, ip, user_agent)


class _UnknownAgents(AgentParser):
    """For logs without user agents (`common`): nothing to parse, nobody recognisable as a
    bot. The parent's constructor is skipped: its parsers would never be used."""

    def __init__(self) -> None:
        self._unknown = Agent(None, None, None, None, None, bot=None)

    def parse(self, ua: str) -> Agent:
        return self._unknown


# --- reading sources -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    offset: int = 0  # bytes of the (decompressed) source read
    line: int = 0  # lines read
    written: int = 0  # bytes of the output file that hold those lines' events
    quarantined: int = 0  # bytes of the quarantine file

    @staticmethod
    def load(path: Path) -> _State:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return _State(int(raw["offset"]), int(raw["line"]), int(raw["written"]),
                          int(raw["quarantined"]))
        except FileNotFoundError:
            return _State()
        except (ValueError, KeyError, TypeError):
            # A damaged state starts over: ids make the re-read lines harmless.
            return _State()

    def save(self, path: Path) -> None:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps({"offset": self.offset, "line": self.line,
                                   "written": self.written, "quarantined": self.quarantined}))
        os.replace(tmp, path)


_GZIP_MAGIC = b"\x1f\x8b"


def _open(name: str, stdin: IO[bytes]) -> IO[bytes]:
    """The decompressed bytes of a file or of stdin; gzip is told by its first bytes."""
    if name == "-":
        peek = getattr(stdin, "peek", None)
        if peek is not None and peek(2)[:2] == _GZIP_MAGIC:
            return gzip.GzipFile(fileobj=stdin, mode="rb")  # type: ignore[return-value]
        return stdin
    with open(name, "rb") as probe:
        magic = probe.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(name, "rb")  # type: ignore[return-value]
    return open(name, "rb")


Line = tuple[int, int, bytes | None]  # start offset, end offset, text without the newline


def _lines(f: IO[bytes], complete_only: bool, offset: int = 0) -> Iterator[Line]:
    """One Line per line; the text is None for a line longer than MAX_LINE, whose bytes are
    skipped unread. With complete_only, a last line without newline is left for the
    next import: the web server may still be writing it."""
    while True:
        raw = f.readline(MAX_LINE + 1)
        if not raw:
            return
        if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
            length = len(raw)
            while not raw.endswith(b"\n"):
                raw = f.readline(1 << 20)
                if not raw:
                    return
                length += len(raw)
            yield offset, offset + length, None
            offset += length
            continue
        if not raw.endswith(b"\n") and complete_only:
            return
        yield offset, offset + len(raw), raw.rstrip(b"\r\n")
        offset += len(raw)


# --- the import ------------------------------------------------------------------------------


@dataclass
class ImportSummary:
    source_ids: set[str] = field(default_factory=set)
    lines: int = 0  # lines read this time (resumed parts not counted again)
    bytes: int = 0
    pageviews: int = 0
    malformed: int = 0
    not_pageviews: Counter[str] = field(default_factory=Counter)
    tracked_days: set[date] = field(default_factory=set)  # refused: they have tracker events
    tracked_lines: int = 0
    quarantine: list[Path] = field(default_factory=list)
    damaged: list[str] = field(default_factory=list)  # gzip files cut short: read up to there

    @property
    def sources(self) -> int:
        return len(self.source_ids)

    def describe(self) -> str:
        others = ", ".join(f"{n:,} {why}" for why, n in sorted(self.not_pageviews.items()))
        text = (f"{self.lines:,} lines ({self.bytes / 1e6:,.1f} MB) from {self.sources} "
                f"source(s): {self.pageviews:,} pageviews")
        if others:
            text += f"; not pageviews: {others}"
        if self.malformed:
            text += f"; {self.malformed:,} malformed lines quarantined"
        return text

    def warnings(self) -> list[str]:
        """What needs attention even under cron, one line each."""
        out = []
        if self.tracked_days:
            days = ", ".join(d.isoformat() for d in sorted(self.tracked_days))
            out.append(f"{self.tracked_lines:,} lines skipped: {days} already "
                       f"{'has' if len(self.tracked_days) == 1 else 'have'} tracker events, "
                       f"and imported days cannot be joined with tracked ones "
                       f"(docs/access-logs.md)")
        if self.malformed:
            where = ", ".join(str(p) for p in self.quarantine)
            out.append(f"{self.malformed:,} malformed lines quarantined in {where}")
        for name in self.damaged:
            out.append(f"{name} ends in a damaged gzip stream; the lines before the damage "
                       f"were imported")
        return out


class _Progress:
    """Lines, bytes and lines/s on a terminal, at most once a second and once at the end;
    silent otherwise (cron)."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream if stream is not None and stream.isatty() else None
        self.started = time.monotonic()
        self.shown = self.started

    def tick(self, summary: ImportSummary, final: bool = False) -> None:
        if self.stream is None:
            return
        now = time.monotonic()
        if now - self.shown < 1 and not final:
            return
        self.shown = now
        rate = summary.lines / max(now - self.started, 1e-3)
        self.stream.write(f"\rfootfall import: {summary.lines:,} lines, "
                          f"{summary.bytes / 1e6:,.1f} MB, {rate:,.0f} lines/s"
                          + ("\n" if final else " "))
        self.stream.flush()


class _Importer:
    def __init__(self, cfg: Config, site: str, fmt: str, head: bool,
                 summary: ImportSummary, progress: _Progress) -> None:
        configured = cfg.site(site)
        if configured is None:
            known = ", ".join(s.domain for s in cfg.sites)
            raise FootfallError(f"'{site}' is not one of sites[].domain in the config ({known}); "
                                f"add it there or pass --site with one of those")
        if fmt not in FORMATS:
            raise FootfallError(f"unknown log format '{fmt}'; use one of {', '.join(FORMATS)}")
        self.cfg, self.site, self.fmt, self.summary, self.progress = (
            cfg, site, fmt, summary, progress)
        self.methods = ("GET", "HEAD") if head else ("GET",)
        self.local_day = _LocalDays(configured.timezone)
        self.salts = SaltStore(_salts_dir(cfg))
        self.latest_day: date | None = None
        self.enricher = Enricher(cfg, ImportVisitors(self.salts, self.local_day))
        if fmt == "common":
            self.enricher.agents = _UnknownAgents()
        self.tracked = tracker_days(cfg, site, configured.timezone)
        self.out_dir = cfg.logs_dir / "import" / site
        self.quarantine_dir = cfg.quarantine_dir / "import" / site
        # One lasting key, kept by the salt store's careful create (0600, no torn files) under
        # a fixed day in a folder that nothing expires: it must outlive every import.
        self.source_key = SaltStore(cfg.salts_dir / "import-sources").salt(date(1970, 1, 1))
        self.hosts = frozenset({site, f"www.{site}"})

    def source_id(self, first_line: bytes) -> str:
        """A keyed digest of the first line: unguessable, so the names leak no IP."""
        return hashlib.blake2b(first_line, key=self.source_key, digest_size=8).hexdigest()

    def run(self, name: str, stdin: IO[bytes]) -> None:
        label = "stdin" if name == "-" else name
        with contextlib.closing(_open(name, stdin)) as f:
            lines = _lines(f, complete_only=name != "-")
            try:
                first = next(lines, None)
            except (EOFError, zlib.error):
                first = None
                self._damaged(label)
            if first is None:
                return
            # A first line too long to read is named by its length: it is quarantined anyway.
            source = self.source_id(first[2] if first[2] is not None else b"%d" % first[1])
            self.summary.source_ids.add(source)
            self.out_dir.mkdir(parents=True, exist_ok=True)
            state_path = self.out_dir / f"{source}.state"
            state = _State.load(state_path)
            out_path = self.out_dir / f"{source}.jsonl"
            if _size(out_path) < state.written:
                state = _State()  # the events were removed: import the source again
            out = _Appender(out_path, state.written)
            quarantine = _Appender(self.quarantine_dir / f"{source}.ndjson", state.quarantined,
                                   create=False)
            if state.offset > 0 and f.seekable():
                f.seek(state.offset)  # a gzip stream decompresses up to it, without parsing
                lines = _lines(f, complete_only=name != "-", offset=state.offset)
            else:
                lines = _chain(first, lines)
            try:
                self._read(source, label, lines, state, state_path, out, quarantine)
            except (EOFError, zlib.error):
                self._damaged(label)  # the lines before the damage are in
            finally:
                out.close()
                quarantine.close()
            if quarantine.size and quarantine.path not in self.summary.quarantine:
                self.summary.quarantine.append(quarantine.path)

    def _read(self, source: str, label: str, lines: Iterator[Line],
              state: _State, state_path: Path, out: _Appender, quarantine: _Appender) -> None:
        summary = self.summary
        line_no, offset, pending = state.line, state.offset, 0
        try:
            for at, end, raw in lines:
                if at < state.offset:
                    continue  # read by an earlier import of this source
                line_no += 1
                if raw is None:
                    self._refuse(quarantine, label, line_no, at,
                                 f"longer than {MAX_LINE} bytes")
                elif raw.strip():
                    self._one(source, label, line_no, at, raw, out, quarantine)
                offset = end  # only now: an interrupted line is read again
                summary.lines += 1
                summary.bytes += end - at
                pending += 1
                if pending >= _FLUSH_LINES:
                    _flush(state_path, out, quarantine, offset, line_no)
                    pending = 0
                    self.progress.tick(summary)
        finally:
            # Everything up to `offset` was handled, also when reading stopped early.
            _flush(state_path, out, quarantine, offset, line_no, sync=True)

    def _one(self, source: str, label: str, line_no: int, at: int, raw: bytes,
             out: _Appender, quarantine: _Appender) -> None:
        summary = self.summary
        try:
            request = parse(self.fmt, raw.decode("utf-8", "replace"))
        except _Malformed as exc:
            self._refuse(quarantine, label, line_no, at, str(exc))
            return
        reason = self._not_a_page(request)
        if reason is not None:
            summary.not_pageviews[reason] += 1
            return
        day = self.local_day(request.ts_ms)
        if self.latest_day is None or day > self.latest_day:
            self.latest_day = day
        if day in self.tracked:
            summary.tracked_days.add(day)
            summary.tracked_lines += 1
            return
        try:
            payload = from_object({
                "n": "pageview", "u": page_url(request, self.site)[:c.MAX_URL],
                "d": self.site, "r": request.referrer,  # from_object cuts a long one
            })
            enriched = self.enricher.lines(payload, request.ip, request.user_agent,
                                           request.ts_ms)
        except BeaconError:
            summary.not_pageviews["unreadable URL"] += 1
            return
        if isinstance(enriched, Dropped):
            summary.not_pageviews[enriched.reason] += 1
            return
        for line in enriched.lines:  # one: `d` names only the site
            out.add(c.encode(msgspec.structs.replace(
                line, id=imported_id(self.site, source, at, request.ts_ms))))
            summary.pageviews += 1

    def _damaged(self, label: str) -> None:
        if label not in self.summary.damaged:  # once, also when followed
            self.summary.damaged.append(label)

    def expire(self) -> None:
        """While following: drop the salts of days before yesterday, as the collector does."""
        if self.latest_day is not None:
            self.salts.expire(self.latest_day)

    def _not_a_page(self, request: Request) -> str | None:
        if request.method not in self.methods:
            return "other method"
        if not (200 <= request.status < 300 or request.status == 304):
            return "other status"
        host = request.host
        if _is_absolute(request.target):
            host = urlsplit(request.target).netloc  # "GET http://host/path": a proxy request
        if host is not None:
            host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
            if host.lower().removesuffix(".") not in self.hosts:
                return "other host"
        if is_asset(request.target, request.content_type):
            return "asset"
        return None

    def _refuse(self, quarantine: _Appender, label: str, line_no: int, at: int,
                reason: str) -> None:
        self.summary.malformed += 1
        quarantine.add(json.dumps({"source": label, "line": line_no, "offset": at,
                                   "reason": reason}).encode() + b"\n")


def _chain(first: Line, rest: Iterator[Line]) -> Iterator[Line]:
    yield first
    yield from rest


class _Appender:
    """Whole lines appended with one write(2) per batch; cut back to `size` on open, so a
    resumed import starts where its state says, whatever a crash left after that."""

    def __init__(self, path: Path, size: int, create: bool = True) -> None:
        self.path = path
        self.size = size
        self._buffer: list[bytes] = []
        self._fd: int | None = None
        if create or path.exists():
            self._open()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o640)
        try:
            current = os.fstat(fd).st_size
            if current < self.size:  # the state is ahead of the file: trust the file
                self.size = current
            os.ftruncate(fd, self.size)
            os.lseek(fd, self.size, os.SEEK_SET)
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def add(self, data: bytes) -> None:
        self._buffer.append(data)

    def flush(self, sync: bool = False) -> None:
        if self._buffer:
            if self._fd is None:
                self._open()
            assert self._fd is not None
            data = b"".join(self._buffer)
            self._buffer.clear()
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            self.size += len(data)
        if sync and self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _flush(state_path: Path, out: _Appender, quarantine: _Appender, offset: int, line: int,
           sync: bool = False) -> None:
    out.flush(sync)
    quarantine.flush(sync)
    _State(offset, line, out.size, quarantine.size).save(state_path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _salts_dir(cfg: Config) -> Path:
    return cfg.salts_dir / "import"


# --- tracker days ----------------------------------------------------------------------------


def tracker_days(cfg: Config, site: str, timezone: str) -> set[date]:
    """Local dates of `site` that hold tracker events: in the published database, and in log
    lines written since it was published (outside logs/import/)."""
    days: set[date] = set()
    published = cfg.database.stat().st_mtime if cfg.database.is_file() else None
    if published is not None:
        try:
            with duckdb.connect(str(cfg.database), read_only=True) as con:
                rows = con.execute(
                    "select distinct date from events where site = ? "
                    "and substr(event_id, 15, 1) <> ?", [site, _IMPORTED_VERSION]).fetchall()
            days.update(row[0] for row in rows)
        except duckdb.CatalogException:
            pass  # a database without the events table holds no events
    local = _LocalDays(timezone)
    needle = f'"site":"{site}"'.encode()
    imports = cfg.logs_dir / "import"
    for path in sorted(cfg.logs_dir.rglob("*.jsonl*")) if cfg.logs_dir.is_dir() else []:
        if imports in path.parents or not path.name.endswith((".jsonl", ".jsonl.gz")):
            continue
        if published is not None and path.stat().st_mtime < published:
            continue
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as f:
            for raw in f:
                if needle not in raw:
                    continue
                try:
                    event = c.decode(raw)
                    moment = datetime.strptime(event.ts, "%Y-%m-%dT%H:%M:%S.%fZ")
                except ValueError:
                    continue  # the pipeline quarantines it
                if not is_imported_id(event.id):
                    days.add(local(int(moment.replace(tzinfo=UTC).timestamp() * 1000)))
    return days


# --- entry point -----------------------------------------------------------------------------


def import_logs(cfg: Config, site: str, files: Sequence[str], fmt: str = "combined", *,
                head: bool = False, stdin: IO[bytes] | None = None,
                progress: TextIO | None = sys.stderr, follow: bool = False,
                poll_s: float = 1.0) -> ImportSummary:
    """Import access logs into data_dir/logs/import/<site>/; see the module docstring.

    With `follow`, read the files again every `poll_s` seconds for their new lines until
    SIGINT or SIGTERM, which end it normally (a rotated file is followed by its new name)."""
    summary = ImportSummary()
    if list(files).count("-") > 1:
        raise FootfallError("'-' (stdin) can be given once")
    if follow and "-" in files:
        raise FootfallError("--follow reads files again as they grow; for a pipe leave "
                            "--follow out (the import reads stdin to its end)")
    for name in files:
        if name != "-" and not os.path.isfile(name):
            raise FootfallError(f"no log file at {name}; pass existing files, or - for stdin")
    lock_dir = cfg.logs_dir / "import"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with open(lock_dir / ".lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FootfallError(f"another footfall import is writing to {lock_dir}; "
                                f"wait for it to finish") from None
        shown = _Progress(progress)
        stop_on_term = follow and threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if stop_on_term else None
        try:
            importer = _Importer(cfg, site, fmt, head, summary, shown)
            while True:
                for name in files:
                    importer.run(name, stdin if stdin is not None else sys.stdin.buffer)
                if not follow:
                    break
                importer.expire()
                time.sleep(poll_s)
        except KeyboardInterrupt:
            if not follow:
                raise  # every line read so far is in, and its state saved
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            shown.tick(summary, final=True)
            # Deleted however the import ends; only a kill -9 leaves them, for the resume.
            shutil.rmtree(_salts_dir(cfg), ignore_errors=True)
    return summary


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
