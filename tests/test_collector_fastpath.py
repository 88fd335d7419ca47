"""The collector's fast paths answer exactly as the general ones.

Two shortcuts exist for speed only (docs/benchmarks.md, "Collector"): a POST body in the
tracker's usual shape is decoded straight into a typed Struct, and the server sends
`POST /api/event` to the endpoint before the router. Each is checked here against the path
it short-cuts, on the same inputs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector import beacon
from collector.app import beacon_first, create_app
from footfall import config as config_mod
from footfall.errors import BeaconError
from tests.helpers import CHROME_UA, GOOGLEBOT_UA, Clock, read_lines, write_config

# --- the body: typed decoding against decoding into a dict ----------------------------------

_TEXT = st.one_of(st.text(max_size=12), st.sampled_from(["pageview", "", " ", "\x00x", "é"]),
                  st.text(min_size=2001, max_size=2002))
_NUMBER = st.one_of(st.integers(-5, 200), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.booleans())
_SCALAR = st.one_of(st.none(), _TEXT, _NUMBER)
_PROPS = st.one_of(st.none(), _TEXT,
                   st.dictionaries(_TEXT, st.one_of(_SCALAR, st.lists(_SCALAR, max_size=2)),
                                   max_size=4))
_FIELDS = {
    "n": st.one_of(st.just("pageview"), _SCALAR),
    "u": st.one_of(st.just("https://example.com/a?utm_source=x"), _SCALAR),
    "d": st.one_of(st.just("example.com"), st.just("www.Example.com, shop.test"), _SCALAR),
    "r": st.one_of(st.just("https://www.google.com/"), _SCALAR),
    "w": st.one_of(st.integers(-1, 100_001), _SCALAR),
    "tz": st.one_of(st.just("Europe/Berlin"), _SCALAR),
    "p": _PROPS,
    "i": _SCALAR,
    "e": st.one_of(st.integers(-1, 2**42), _SCALAR),
    "sd": st.one_of(st.integers(-1, 101), _SCALAR),
    "h": _SCALAR,
    # keys the typed shape leaves to the general path
    "name": _SCALAR, "props": _PROPS, "$": st.one_of(st.none(), _TEXT),
}
_BODIES = st.fixed_dictionaries(
    {"n": _FIELDS["n"], "u": _FIELDS["u"]},
    optional={k: v for k, v in _FIELDS.items() if k not in ("n", "u")})


def _outcome(decode: Any, data: Any) -> Any:
    try:
        return decode(data)
    except BeaconError as exc:
        return (exc.status, exc.reason)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_BODIES)
def test_typed_decoding_gives_the_general_paths_payload_or_reason(body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    general = _outcome(lambda d: beacon.from_object(msgspec.json.decode(d)), data)
    assert _outcome(beacon.decode_body, data) == general


def test_the_trackers_usual_beacon_takes_the_typed_path() -> None:
    """Otherwise the test above compares the general path with itself."""
    body = (b'{"n":"pageview","u":"https://example.com/a","d":"example.com","r":null,'
            b'"w":1440,"tz":"Europe/Berlin","p":{"plan":"pro","n":3,"ok":true},'
            b'"e":1200,"sd":40,"i":false,"h":1}')
    typed = beacon._decode_common(body)
    assert typed.w == 1440 and typed.p == {"plan": "pro", "n": 3, "ok": True}
    assert beacon.decode_body(body) == beacon.from_object(msgspec.json.decode(body))


@pytest.mark.parametrize("body", [
    b'{"n":"a","n":"pageview","u":"https://example.com/"}',  # a repeated key: the last wins
    b'{"n":"pageview","u":"https://example.com/","w":1.0}',  # a float where a count goes
    b'{"n":"pageview","u":"https://example.com/","e":"80"}',  # a number as text
    b'{"n":"pageview","u":"https://example.com/","p":"{\\"a\\":1}"}',  # props as JSON text
    b'{"n":"pageview","u":"https://example.com/","p":{"a":{"b":1}}}',  # nested props
    b'{"n":"pageview","u":"https://example.com/","w":99999999999999999999999}',
    b'{"n":"pageview","u":"https://example.com/","r":"\\ud800"}',  # a lone surrogate
    b'{"n":"pageview","u":"https://example.com/"',  # cut short
    b'{"n":"pageview","u":"https://example.com/"} x',  # trailing garbage
    b'\xef\xbb\xbf{"n":"pageview","u":"https://example.com/"}',  # a byte order mark
])
def test_edge_bodies_get_the_general_paths_answer(body: bytes) -> None:
    def general(data: bytes) -> Any:
        try:
            data.decode("utf-8", "strict")
        except UnicodeDecodeError:
            raise BeaconError(400, "body is not valid UTF-8") from None
        if not data.lstrip().startswith(b"{"):
            raise BeaconError(400, "payload must be a JSON object")
        return beacon.from_object(beacon._json(data, "invalid JSON"))

    assert _outcome(beacon.decode_body, body) == _outcome(general, body)


# --- the route: the server's fast path against the router -----------------------------------

ORIGIN = "https://example.com"
_POST = {"Content-Type": "text/plain", "User-Agent": CHROME_UA}
_GOOD = json.dumps({"n": "pageview", "u": "https://example.com/pricing?utm_source=news",
                    "d": "example.com", "r": "https://news.ycombinator.com/item?id=1",
                    "w": 1440, "tz": "Europe/Berlin", "sd": 120}).encode()

#: (method, target, headers, body): every kind of answer the beacon route gives, and
#: targets near it that the router must keep answering.
REQUESTS: list[tuple[str, str, dict[str, str], bytes]] = [
    ("POST", "/api/event", _POST, _GOOD),
    ("POST", "/api/event?x=1", _POST, _GOOD),
    ("POST", "/api/%65vent", _POST, _GOOD),
    ("POST", "/api%2Fevent", _POST, _GOOD),
    ("POST", "/api/event/", _POST, _GOOD),
    ("POST", "/API/event", _POST, _GOOD),
    ("PUT", "/api/event", _POST, _GOOD),
    ("POST", "/api/event", {**_POST, "Origin": ORIGIN}, _GOOD),
    ("POST", "/api/event", {**_POST, "Origin": "https://evil.test"}, _GOOD),
    ("POST", "/api/event", {**_POST, "User-Agent": GOOGLEBOT_UA}, _GOOD),
    ("POST", "/api/event", {**_POST, "X-Forwarded-For": "203.0.113.9"}, _GOOD),
    ("POST", "/api/event", {**_POST, "Expect": "100-continue"}, _GOOD),
    ("POST", "/api/event", _POST, b'{"n":"pageview"}'),
    ("POST", "/api/event", _POST, b"\xff\xfe"),
    ("POST", "/api/event", _POST, b"[1]"),
    ("POST", "/api/event", _POST, b'{"n":"pageview","u":"https://nope.test/"}'),
    ("POST", "/api/event", _POST, b"x" * (beacon.MAX_BODY + 1)),
    ("GET", "/api/event?n=pageview&u=https%3A%2F%2Fexample.com%2F&d=example.com", _POST, b""),
    ("OPTIONS", "/api/event", {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}, b""),
    # the rate limit of 16 a minute runs out on the last two: the 429 and its Retry-After
    *[("POST", "/api/event", _POST, _GOOD)] * 4,
]
_VARYING = {"date", "server"}  # the clock, and the process's own Server name


async def _exchange(port: int, method: str, target: str, headers: dict[str, str],
                    body: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = [f"{method} {target} HTTP/1.1", "Host: stats.example.com", "Connection: close",
            *(f"{k}: {v}" for k, v in headers.items())]
    if body or method in ("POST", "PUT"):
        head.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    if raw.startswith(b"HTTP/1.1 100"):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    top, _, payload = raw.partition(b"\r\n\r\n")
    status, *lines = top.decode("latin-1").split("\r\n")
    fields = [(k.lower(), v.strip()) for k, v in (line.split(":", 1) for line in lines)]
    return status, [f for f in fields if f[0] not in _VARYING], payload


async def _answers(app: web.Application, fast: bool) -> list[Any]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    assert runner.server is not None
    if fast:
        runner.server.request_handler = beacon_first(app, runner.server.request_handler)
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        return [await _exchange(port, *request) for request in REQUESTS]
    finally:
        await runner.cleanup()


async def test_the_fast_route_answers_and_records_as_the_router_does(tmp_path: Path) -> None:
    answers, written = [], []
    for fast in (False, True):
        folder = tmp_path / ("fast" if fast else "router")
        folder.mkdir()
        config = config_mod.load(write_config(folder, collector={"rate_limit_per_min": 16}))
        answers.append(await _answers(create_app(config, clock=Clock()), fast))
        lines = read_lines(config.data_dir)
        written.append([{k: v for k, v in line.items() if k not in ("id", "visitor")}
                        for line in lines])
    router, fast_answers = answers
    assert fast_answers == router
    assert written[1] == written[0]
    statuses = [status.split()[1] for status, _, _ in router]
    # The table covers what it claims to: accepted, refused, unrouted and limited answers.
    assert {"202", "400", "404", "405", "413", "204", "429"} <= set(statuses), statuses
    assert any(name == "x-footfall-adjusted" for _, fields, _ in router for name, _ in fields)
    assert any(name == "access-control-allow-origin" for _, fields, _ in router
               for name, _ in fields)
    assert len(written[0]) >= 5


def test_the_collector_process_answers_as_the_router_does(tmp_path: Path,
                                                         collector_process: Any) -> None:
    """`footfall collect` itself, with the fast route installed by the server. Both run on
    the real clock here, so the rate limit stays out of reach (a Retry-After would depend on
    the time between requests)."""
    proc = collector_process()
    config = config_mod.load(tmp_path / "config.yaml")

    async def both() -> tuple[list[Any], list[Any]]:
        real = [await _exchange(proc.port, *request) for request in REQUESTS]
        routed_config = config_mod.load(write_config(tmp_path / "routed"))
        # The frozen clock keeps this process's event ids off the real time, which the
        # contract tests' id ordering later in the run must not see.
        return real, await _answers(create_app(routed_config, clock=Clock()), fast=False)

    (tmp_path / "routed").mkdir()
    real, routed = asyncio.run(both())
    assert real == routed
    assert len(read_lines(config.data_dir)) >= 5
