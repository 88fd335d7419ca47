"""Beacon payloads: decoding and validating what trackers send (docs/beacon.md).

Accepts footfall's tracker and, with Plausible's meaning, what Plausible's ingestion accepts
(docs/migrating-from-plausible.md): short and long keys, `p` as an object or as JSON text,
`d` optional or a comma list, `n` as any JSON scalar, a revenue object. What cannot be kept
as sent is repaired where Plausible repairs it (a bad prop is dropped, `sd` and `e` are
clamped, a long referrer is cut) and each repair is named in `Payload.adjusted`, so the
collector can count it and say so in `X-Footfall-Adjusted`. What cannot be repaired is a
BeaconError with a 4xx status and a short reason the client sees.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from footfall import contract as c
from footfall.errors import BeaconError

MAX_BODY = 8 * 1024
MAX_DOMAIN = 253
MAX_TZ = 64
MAX_WIDTH = 100_000
MAX_ENGAGED_MS = 30 * 24 * 3600 * 1000  # Plausible ignores more; we keep the cap instead.

# Each Plausible field under its short and long names; the first present one counts.
_ALIASES: dict[str, tuple[str, ...]] = {
    "n": ("n", "name"),
    "u": ("u", "url"),
    "d": ("d", "domain"),
    "r": ("r", "referrer"),
    # Plausible reads m, meta, p, props in this order.
    "p": ("m", "meta", "p", "props"),
    "i": ("i", "interactive"),
    "h": ("h", "hashMode"),
    "$": ("$", "revenue"),
}

# Reasons a beacon was changed rather than refused; counted in /metrics, sent in the header.
PROP_NULL = "prop-null"
PROP_EMPTY = "prop-empty"
PROP_NESTED = "prop-nested"
PROP_TOO_LONG = "prop-too-long"
PROP_CONTROL = "prop-control"
PROPS_OVER_CAP = "props-over-30"
PROPS_NOT_OBJECT = "props-not-object"
REFERRER_TRUNCATED = "referrer-truncated"
SD_CLAMPED = "sd-clamped"
E_CLAMPED = "e-clamped"
REVENUE_INVALID = "revenue-invalid"
INTERACTIVE_INVALID = "interactive-invalid"
REPAIRS = (PROP_NULL, PROP_EMPTY, PROP_NESTED, PROP_TOO_LONG, PROP_CONTROL, PROPS_OVER_CAP,
           PROPS_NOT_OBJECT, REFERRER_TRUNCATED, SD_CLAMPED, E_CLAMPED, REVENUE_INVALID,
           INTERACTIVE_INVALID)


class Revenue(msgspec.Struct, frozen=True):
    amount: str  # plain decimal text, as contract.REVENUE_AMOUNT_RE allows
    currency: str  # ISO 4217 alphabetic code


class Payload(msgspec.Struct, frozen=True):
    """One validated beacon, whatever key names it came with.

    A msgspec Struct rather than a frozen dataclass: it is built once per event, and a
    frozen dataclass's __init__ alone cost more than the rest of the validation."""

    n: str
    u: str
    d: tuple[str, ...] | None  # lower case, without "www."; None: take the site from `u`
    r: str | None = None
    w: int | None = None
    tz: str | None = None
    p: dict[str, c.PropValue] | None = None
    i: bool | None = None
    e: int | None = None
    sd: int | None = None
    h: bool = False
    revenue: Revenue | None = None
    adjusted: tuple[str, ...] = ()


def _reason(exc: msgspec.MsgspecError) -> str:
    text = str(exc)
    # msgspec reports a lone surrogate escape as truncated input; say what it is.
    if text == "Input data was truncated":
        return "invalid JSON (truncated, or a lone surrogate escape)"
    return text.replace("`", "'")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _json(data: bytes | str, what: str) -> Any:
    try:
        return msgspec.json.decode(data)  # refuses lone surrogate escapes
    except msgspec.DecodeError as exc:
        raise BeaconError(400, f"{what}: {_reason(exc)}") from None
    except RecursionError:  # nesting deeper than the decoder's stack
        raise BeaconError(400, f"{what}: nested too deeply") from None


def decode_body(body: bytes) -> Payload:
    """Validate a POST body. Raises BeaconError(400) with a reason."""
    try:
        body.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise BeaconError(400, "body is not valid UTF-8") from None
    if body[:1] == b"{":
        try:
            typed = _decode_common(body)
        except (msgspec.DecodeError, RecursionError):
            pass  # anything unusual takes the general path below, with its exact reason
        else:
            return _validate(typed.n, typed.u, typed.d, typed.r, typed.w, typed.tz, typed.p,
                             typed.i, typed.e, typed.sd, typed.h, None)
    if not body.lstrip().startswith(b"{"):
        raise BeaconError(400, "payload must be a JSON object")
    raw = _json(body, "invalid JSON")
    if not isinstance(raw, dict):
        raise BeaconError(400, "payload must be a JSON object")
    return from_object(raw)


_QUERY_KEYS = frozenset({"w", "tz", "e", "sd"} | {k for ks in _ALIASES.values() for k in ks})
_JSON_QUERY_KEYS = frozenset(_ALIASES["p"] + _ALIASES["$"])
_INTS = ("w", "e", "sd")


def parse_query(raw_query: str) -> dict[str, str]:
    """Percent-decode strictly: invalid UTF-8 is refused, not replaced with U+FFFD."""
    try:
        return dict(parse_qsl(raw_query, encoding="utf-8", errors="strict"))
    except UnicodeDecodeError:
        raise BeaconError(400, "query is not valid UTF-8") from None


def decode_query(query: Mapping[str, str]) -> Payload:
    """Validate the GET form: the same keys as query parameters, with `p` and `$` as JSON."""
    raw: dict[str, Any] = {}
    for key, value in query.items():
        if key not in _QUERY_KEYS or value == "":
            continue
        if key in _INTS:
            try:
                raw[key] = int(value)
            except ValueError:
                raise BeaconError(400, f"'{key}' must be a whole number") from None
        elif key in _ALIASES["i"]:
            raw[key] = value.lower() not in ("0", "false", "no")
        elif key in _ALIASES["h"]:
            raw[key] = 1 if value.lower() in ("1", "true") else 0
        else:
            # p/$ stay text here: from_object reads a JSON string the way Plausible does.
            raw[key] = value
    return from_object(raw)


def _field(raw: Mapping[str, Any], key: str) -> Any:
    for name in _ALIASES[key]:
        value = raw.get(name)
        if value is not None:
            return value
    return None


# Every accepted key but the short ones footfall's tracker sends; when a beacon has none of
# them (most do not) each field is one dict lookup.
_OTHER_NAMES = frozenset(n for key, names in _ALIASES.items() for n in names if n != key)


def from_object(raw: Mapping[str, Any]) -> Payload:
    """Validate a beacon already parsed into Python values (POST, GET, the demo)."""
    get: Callable[[str], Any] = raw.get if _OTHER_NAMES.isdisjoint(raw) \
        else functools.partial(_field, raw)
    return _validate(get("n"), get("u"), get("d"), get("r"), raw.get("w"), raw.get("tz"),
                     get("p"), get("i"), raw.get("e"), raw.get("sd"), get("h"), get("$"))


class _Common(msgspec.Struct, forbid_unknown_fields=True):
    """The shape footfall's tracker sends: short keys, each of its usual type.

    Decoded straight from the body's bytes with no dict in between; a body of any other
    shape (long Plausible keys, `$`, `p` as JSON text, numbers as strings, nested props)
    fails here and goes through `from_object`. Both end in `_validate`, so the shape only
    decides the speed, never the answer."""

    n: str
    u: str
    d: str | None = None
    r: str | None = None
    w: int | None = None
    tz: str | None = None
    p: dict[str, str | int | float | bool | None] | None = None
    i: bool | None = None
    e: int | None = None
    sd: int | None = None
    h: bool | int | None = None


_decode_common = msgspec.json.Decoder(_Common).decode


def _validate(name_value: Any, url: Any, domains: Any, referrer: Any, width: Any, tz: Any,
              props: Any, interactive: Any, engaged: Any, scroll: Any, hash_mode: Any,
              revenue: Any) -> Payload:
    """The one set of rules for every field, whichever way the fields were read."""
    adjusted: list[str] = []
    name = _name(name_value)
    if not isinstance(url, str) or not url:
        raise BeaconError(400, "missing required field 'u'" if url is None
                          else "'u' must be a non-empty string")
    if len(url) > c.MAX_URL:
        raise BeaconError(400, f"'u' is longer than {c.MAX_URL} characters")
    if referrer is not None and not isinstance(referrer, str):
        raise BeaconError(400, "'r' must be a string or null")
    if referrer is not None and len(referrer) > c.MAX_REFERRER:
        referrer = referrer[: c.MAX_REFERRER]
        adjusted.append(REFERRER_TRUNCATED)
    if interactive is not None and not isinstance(interactive, bool):
        interactive = None  # Plausible ignores a non-boolean
        adjusted.append(INTERACTIVE_INVALID)
    return Payload(
        n=name,
        u=url,
        d=None if domains is None else _domains(domains),
        r=referrer or None,
        w=_int(width, "w", 0, MAX_WIDTH, None, adjusted),
        tz=_tz(tz),
        p=None if props is None else _props(props, adjusted),
        i=interactive,
        e=_int(engaged, "e", 0, MAX_ENGAGED_MS, E_CLAMPED, adjusted),
        sd=_int(scroll, "sd", 0, 100, SD_CLAMPED, adjusted),
        h=hash_mode in (1, "1"),  # Plausible casts h to an integer; True == 1
        revenue=None if revenue is None else _revenue(revenue, adjusted),
        adjusted=tuple(dict.fromkeys(adjusted)) if adjusted else (),
    )


def _name(value: Any) -> str:
    if value is None:
        raise BeaconError(400, "missing required field 'n'")
    if isinstance(value, (dict, list)):
        raise BeaconError(400, "'n' must be text or a number")
    # Plausible takes a number as the event name (404 tracking); any JSON scalar becomes text.
    text = value if isinstance(value, str) else msgspec.json.encode(value).decode()
    if len(text) > c.MAX_NAME:
        raise BeaconError(400, f"'n' is longer than {c.MAX_NAME} characters")
    if not _printable(text):
        raise BeaconError(400, "event name must be printable text")
    return text


@functools.lru_cache(maxsize=4096)  # names repeat: pageview, engagement, a site's few goals
def _printable(text: str) -> bool:
    return bool(text.strip()) and not _CONTROL.search(text)


def _domains(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise BeaconError(400, "'d' must be a string")
    if len(value) > MAX_DOMAIN * 10:
        raise BeaconError(400, "'d' is too long")
    return _split_domains(value)


@functools.lru_cache(maxsize=1024)  # a site's trackers all send the same `d`
def _split_domains(value: str) -> tuple[str, ...]:
    out = [d.strip().lower().removeprefix("www.") for d in value.split(",")]
    out = [d for d in out if d]
    if not out:
        raise BeaconError(400, "'d' can't be blank")
    return tuple(dict.fromkeys(out))


def _tz(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_TZ:
        raise BeaconError(400, f"'tz' must be a time zone name of at most {MAX_TZ} characters")
    return value


def _int(value: Any, key: str, low: int, high: int, clamped: str | None,
         adjusted: list[str]) -> int | None:
    if value is None or (type(value) is int and low <= value <= high):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,18}", value):
        value = int(value)  # Plausible reads "80" as 80
    if isinstance(value, bool) or not isinstance(value, int):
        raise BeaconError(400, f"'{key}' must be a whole number")
    if low <= value <= high:
        return value
    if clamped is None:
        raise BeaconError(400, f"'{key}' must be between {low} and {high}")
    adjusted.append(clamped)
    return min(high, max(low, value))


def _clean(text: str, adjusted: list[str]) -> str:
    if _CONTROL.search(text):
        adjusted.append(PROP_CONTROL)
        return _CONTROL.sub("", text)
    return text


def _props(value: Any, adjusted: list[str]) -> dict[str, c.PropValue] | None:
    if value is None:
        return None
    if isinstance(value, str):  # plausible-tracker 0.3 sends props as JSON text
        try:
            value = msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError):
            value = None
    if not isinstance(value, dict):
        adjusted.append(PROPS_NOT_OBJECT)
        return None
    out: dict[str, c.PropValue] = {}
    for raw_key, raw_value in value.items():
        key = _clean(raw_key, adjusted).strip()
        if raw_value is None:
            adjusted.append(PROP_NULL)
            continue
        if isinstance(raw_value, (dict, list)):
            adjusted.append(PROP_NESTED)
            continue
        prop: c.PropValue = raw_value
        if isinstance(raw_value, str):
            prop = _clean(raw_value, adjusted)
        if not key or (isinstance(prop, str) and not prop.strip()):
            adjusted.append(PROP_EMPTY)
            continue
        if len(key) > c.MAX_PROP_KEY or (isinstance(prop, str) and len(prop) > c.MAX_PROP_VALUE):
            adjusted.append(PROP_TOO_LONG)
            continue
        if len(out) == c.MAX_PROPS:
            adjusted.append(PROPS_OVER_CAP)
            break
        out[key] = prop
    return out or None


def _revenue(value: Any, adjusted: list[str]) -> Revenue | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = msgspec.json.decode(value)
        except (msgspec.DecodeError, RecursionError):
            value = None
    amount = value.get("amount") if isinstance(value, dict) else None
    currency = value.get("currency") if isinstance(value, dict) else None
    text = _amount_text(amount)
    if text is None or not isinstance(currency, str) or currency not in currencies():
        adjusted.append(REVENUE_INVALID)
        return None
    return Revenue(text, currency)


def _amount_text(amount: Any) -> str | None:
    """A plain decimal within the log contract's precision, or None."""
    if isinstance(amount, bool):
        return None
    if isinstance(amount, (int, float)):
        amount = repr(amount) if isinstance(amount, float) else str(amount)
    if not isinstance(amount, str):
        return None
    amount = amount.strip()
    try:
        number = Decimal(amount)
    except InvalidOperation:
        return None
    if not number.is_finite():
        return None
    text = format(number.normalize(), "f") if number != 0 else "0"
    return text if c.REVENUE_AMOUNT_RE.fullmatch(text) else None


@functools.lru_cache(maxsize=1)
def currencies() -> frozenset[str]:
    """ISO 4217 alphabetic codes (collector/data/iso4217.txt)."""
    text = importlib.resources.files("collector").joinpath("data", "iso4217.txt")
    return frozenset(line.split()[0] for line in text.read_text(encoding="utf-8").splitlines()
                     if line.strip() and not line.startswith("#"))
