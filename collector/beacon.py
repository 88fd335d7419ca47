"""Beacon payloads: decoding and validating what tracker.js sends (docs/beacon.md).

Every refusal is a BeaconError with a 4xx status and a short reason the client sees.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec

from footfall import contract as c
from footfall.errors import BeaconError

MAX_BODY = 8 * 1024

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=c.MAX_NAME)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=c.MAX_URL)]
Referrer = Annotated[str, msgspec.Meta(max_length=c.MAX_REFERRER)]
PropKey = Annotated[str, msgspec.Meta(min_length=1, max_length=c.MAX_PROP_KEY)]
PropText = Annotated[str, msgspec.Meta(max_length=c.MAX_PROP_VALUE)]
PropValue = PropText | int | float | bool
Props = Annotated[dict[PropKey, PropValue], msgspec.Meta(max_length=c.MAX_PROPS)]


class Payload(msgspec.Struct, frozen=True):
    """The beacon's short keys; unknown keys are ignored so old collectors accept new trackers."""

    n: Name
    u: Url
    d: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    r: Referrer | None = None
    w: Annotated[int, msgspec.Meta(ge=0, le=100_000)] | None = None
    tz: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    p: Props | None = None
    i: bool | None = None
    e: Annotated[int, msgspec.Meta(ge=0, le=7 * 24 * 3600 * 1000)] | None = None
    sd: Annotated[int, msgspec.Meta(ge=0, le=100)] | None = None


_decoder = msgspec.json.Decoder(Payload)


def _reason(exc: msgspec.MsgspecError) -> str:
    text = str(exc)
    # msgspec reports a lone surrogate escape as truncated input; say what it is.
    if text == "Input data was truncated":
        return "invalid JSON (truncated, or a lone surrogate escape)"
    return text.replace("`", "'")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_text(payload: Payload) -> Payload:
    """Reject control characters in the name: they are never legitimate and garble reports."""
    if _CONTROL.search(payload.n) or not payload.n.strip():
        raise BeaconError(400, "event name must be printable text")
    return payload


def decode_body(body: bytes) -> Payload:
    """Validate a POST body. Raises BeaconError(400) with a reason."""
    try:
        body.decode("utf-8", "strict")
    except UnicodeDecodeError:
        raise BeaconError(400, "body is not valid UTF-8") from None
    stripped = body.lstrip()
    if not stripped.startswith(b"{"):
        raise BeaconError(400, "payload must be a JSON object")
    try:
        return _check_text(_decoder.decode(body))
    except msgspec.ValidationError as exc:
        raise BeaconError(400, _reason(exc)) from None
    except msgspec.DecodeError as exc:
        raise BeaconError(400, _reason(exc)) from None


_QUERY_KEYS = ("n", "u", "d", "r", "w", "tz", "p", "i", "e", "sd")
_INTS = ("w", "e", "sd")


def parse_query(raw_query: str) -> dict[str, str]:
    """Percent-decode strictly: invalid UTF-8 is refused, not replaced with U+FFFD."""
    try:
        return dict(parse_qsl(raw_query, encoding="utf-8", errors="strict"))
    except UnicodeDecodeError:
        raise BeaconError(400, "query is not valid UTF-8") from None


def decode_query(query: Mapping[str, str]) -> Payload:
    """Validate the GET form: the same keys as query parameters, with `p` as JSON."""
    raw: dict[str, Any] = {}
    for key in _QUERY_KEYS:
        value = query.get(key)
        if value is None or value == "":
            continue
        if key == "p":
            try:
                raw[key] = msgspec.json.decode(value)  # refuses lone surrogate escapes
            except msgspec.DecodeError as exc:
                raise BeaconError(400, f"'p' must be a JSON object: {_reason(exc)}") from None
        elif key in _INTS:
            try:
                raw[key] = int(value)
            except ValueError:
                raise BeaconError(400, f"'{key}' must be a whole number") from None
        elif key == "i":
            raw[key] = value.lower() not in ("0", "false", "no")
        else:
            raw[key] = value
    return from_object(raw)


def from_object(raw: Mapping[str, Any]) -> Payload:
    """Validate a beacon already parsed into Python values (the GET form, the demo)."""
    try:
        return _check_text(msgspec.convert(raw, Payload))
    except msgspec.ValidationError as exc:
        raise BeaconError(400, _reason(exc)) from None
