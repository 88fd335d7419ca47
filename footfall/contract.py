"""The log line contract (v1): what the collector writes and the pipeline reads.

One JSON object per line. docs/log-format.md is the prose version of `LogLine`.
Readers ignore unknown fields, so other tools may write these files too.
"""

from __future__ import annotations

import functools
import os
import random
import re
import threading
import time
from datetime import UTC, datetime

import msgspec

VERSION = 1
PropValue = str | int | float | bool

#: Hard caps; the collector enforces them and readers may rely on them.
MAX_NAME = 120
MAX_URL = 2000
MAX_REFERRER = 2000
MAX_PROPS = 30
MAX_PROP_KEY = 300
MAX_PROP_VALUE = 2000

#: Revenue: a plain decimal (no exponent) with at most 12 integer and 6 fractional digits, so
#: it fits the events mart's DECIMAL(18, 6), and an ISO 4217 code. Both or neither.
REVENUE_AMOUNT_RE = re.compile(r"-?[0-9]{1,12}(?:\.[0-9]{1,6})?")
CURRENCY_RE = re.compile(r"[A-Z]{3}")

ENGAGEMENT = "engagement"

VISITOR_RE = re.compile(r"^[0-9a-f]{16}$")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


class LogLine(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=False):
    """One event as written to the JSONL logs; field order is the written order."""

    v: int
    id: str
    ts: str
    site: str
    name: str
    path: str
    visitor: str
    hostname: str | None = None
    referrer: str | None = None
    source: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    utm_term: str | None = None
    utm_content: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device: str | None = None
    country: str | None = None
    screen_width: int | None = None
    props: dict[str, PropValue] | None = None
    interactive: bool | None = None
    engaged_ms: int | None = None
    scroll_pct: int | None = None
    revenue_amount: str | None = None
    revenue_currency: str | None = None


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(LogLine)


def encode(line: LogLine) -> bytes:
    """The line's bytes, newline included."""
    return _encoder.encode(line) + b"\n"


def problems(line: LogLine) -> list[str]:
    """What makes a decoded line break the contract beyond its types; empty when valid."""
    out = []
    if line.v != VERSION:
        out.append(f"unsupported version {line.v}")
    if not TS_RE.match(line.ts):
        out.append("ts is not RFC 3339 UTC with milliseconds and Z")
    if not VISITOR_RE.match(line.visitor):
        out.append("visitor is not 16 lowercase hex characters")
    if not line.site or not line.name or not line.path.startswith("/"):
        out.append("site, name and path must be non-empty, path starting with /")
    if line.country is not None and not re.fullmatch(r"[A-Z]{2}", line.country):
        out.append("country is not ISO 3166 alpha-2")
    if (line.revenue_amount is None) != (line.revenue_currency is None):
        out.append("revenue_amount and revenue_currency come together")
    if line.revenue_amount is not None and not REVENUE_AMOUNT_RE.fullmatch(line.revenue_amount):
        out.append("revenue_amount is not a plain decimal (12.6 digits at most)")
    if line.revenue_currency is not None and not CURRENCY_RE.fullmatch(line.revenue_currency):
        out.append("revenue_currency is not an ISO 4217 code")
    return out


def decode(data: bytes) -> LogLine:
    """Parse and check one line; raises ValueError with a reason when it breaks the contract."""
    try:
        line = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ValueError(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ValueError(f"bad JSON: {exc}") from None
    found = problems(line)
    if found:
        raise ValueError("; ".join(found))
    return line


@functools.lru_cache(maxsize=4)
def _second_prefix(epoch_s: int) -> str:
    return datetime.fromtimestamp(epoch_s, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.")


def format_ts(epoch_ms: int) -> str:
    """RFC 3339 UTC with milliseconds and Z, as the contract requires."""
    # strftime once per second: on the collector's hot path most events share one.
    return f"{_second_prefix(epoch_ms // 1000)}{epoch_ms % 1000:03d}Z"


class _UUID7:
    """Time-ordered, unique ids (RFC 9562 UUIDv7), monotonic within the process."""

    def __init__(self) -> None:
        # Ids need uniqueness, not secrecy: a seeded PRNG spares two syscalls per event.
        self._random = random.Random(os.urandom(16))
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = 0

    def __call__(self, epoch_ms: int) -> str:
        with self._lock:
            if epoch_ms <= self._last_ms:
                epoch_ms = self._last_ms
                self._seq += 1
                if self._seq > 0xFFF:  # counter exhausted: borrow the next millisecond
                    epoch_ms += 1
                    self._seq = 0
            else:
                self._seq = self._random.getrandbits(10)
            self._last_ms = epoch_ms
            seq = self._seq
            rand = self._random.getrandbits(62)
        value = (epoch_ms & 0xFFFFFFFFFFFF) << 80 | 0x7 << 76 | seq << 64 | 0b10 << 62 | rand
        h = f"{value:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


new_id = _UUID7()


def now_ms() -> int:
    return time.time_ns() // 1_000_000
