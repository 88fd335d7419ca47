"""The collector's holes from issue 11, each attacked again on a real server on loopback.

Malformed HTTP is sent over raw sockets from a distinctive loopback source address
(127.45.67.89: Linux routes all of 127/8 to lo) with distinctive markers in the user agent,
URL and headers; everything the collector process writes is then searched for them.
"""

from __future__ import annotations

import gzip
import inspect
import json
import logging
import os
import re
import socket
import stat
import time
import tomllib
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from collector.app import create_app
from collector.ratelimit import RateLimit
from tests.helpers import CHROME_UA, Clock, read_lines

SOURCE_IP = "127.45.67.89"
OTHER_IP = "127.45.67.90"
FORWARDED_IP = "81.2.69.160"
MARK = "Okapi4242Marker"
MARKERS = [SOURCE_IP, FORWARDED_IP, MARK, "Secret9Token"]
PAGE = "n=pageview&d=example.com&u=https%3A%2F%2Fexample.com%2F"

# One request per way aiohttp's parser refuses input; each carries the markers.
MALFORMED = {
    "oversized header": f"GET /api/event?{PAGE} HTTP/1.1\r\nHost: x\r\n"
                        f"User-Agent: {MARK * 700}\r\n\r\n",
    "200 headers": "GET /api/event HTTP/1.1\r\nHost: x\r\n"
                   + "".join(f"X-H{i}: {MARK}\r\n" for i in range(200)) + "\r\n",
    "NUL in a header": f"GET /api/event HTTP/1.1\r\nHost: x\r\nUser-Agent: {MARK}\x00\r\n\r\n",
    "bare LF": f"GET /api/event?u={MARK} HTTP/1.1\nHost: x\nUser-Agent: {MARK}\n\n",
    "Content-Length and Transfer-Encoding":
        f"POST /api/event HTTP/1.1\r\nHost: x\r\nUser-Agent: {MARK}\r\n"
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "bad chunk size": f"POST /api/event HTTP/1.1\r\nHost: x\r\nUser-Agent: {MARK}\r\n"
                      f"Transfer-Encoding: chunked\r\n\r\nZZ{MARK}\r\n{MARK}\r\n0\r\n\r\n",
    "oversized URL": f"GET /api/event?token=Secret9Token&x={MARK * 1000} HTTP/1.1\r\n"
                     "Host: x\r\n\r\n",
    "bad request line": f"GET /api/event?{MARK} HTTP/1.1 junk\r\nHost: x\r\n\r\n",
}


def connect(port: int, source: str = SOURCE_IP, timeout: float = 30) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", port))
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes the connection."""
    out = b""
    while chunk := sock.recv(65536):
        out += chunk
    return out


def exchange(port: int, data: bytes, source: str = SOURCE_IP) -> bytes:
    with connect(port, source) as sock:
        sock.sendall(data)
        return read_all(sock)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def headers_of(response: bytes) -> dict[str, str]:
    head = response.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")[1:]
    return {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in head)}


def request(port: int, method: str, target: str, body: bytes = b"",
            source: str = SOURCE_IP, headers: dict[str, str] | None = None) -> bytes:
    head = {"Host": "stats.test", "User-Agent": CHROME_UA, "Connection": "close",
            "Content-Length": str(len(body)), **(headers or {})}
    text = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items())
    return exchange(port, text.encode() + b"\r\n" + body, source)


def beacon(i: int = 0) -> bytes:
    return json.dumps({"n": "pageview", "u": f"https://example.com/p/{i}",
                       "d": "example.com"}).encode()


def stop(proc: Any) -> bytes:
    """SIGTERM, then everything the process printed on stdout and stderr."""
    proc.proc.terminate()
    out, err = proc.proc.communicate(timeout=30)
    assert proc.proc.returncode == 0, err.decode(errors="replace")
    return bytes(out) + bytes(err)


def written(data_dir: Path) -> list[Path]:
    return [p for p in data_dir.rglob("*") if p.is_file() and p.parent.name != "salts"]


def metric(port: int, name: str) -> str:
    text = request(port, "GET", "/metrics").split(b"\r\n\r\n", 1)[1].decode()
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


def test_malformed_requests_are_4xx_and_leave_no_request_data_anywhere(
        collector_process: Any, tmp_path: Path) -> None:
    proc = collector_process(collector={"trusted_proxies": ["127.0.0.0/8"]})
    for name, raw in MALFORMED.items():
        data = raw.replace("Host: x", f"Host: x\r\nX-Forwarded-For: {FORWARDED_IP}", 1)
        response = exchange(proc.port, data.encode("latin-1"))
        assert 400 <= status_of(response) < 500, (name, response[:200])
        assert headers_of(response).get("server") == "footfall", name  # no versions
    # Deep nesting once raised RecursionError past the decoder: a 500 and a traceback.
    deep = "[" * 3000 + "]" * 3000
    body = b'{"n":"pageview","u":"https://example.com/","d":"example.com","x":' + \
        deep.encode() + b"}"
    assert status_of(request(proc.port, "POST", "/api/event", body)) == 400
    # In the GET form a `p` that cannot be decoded is a repair: the event is kept, props not.
    deep_get = status_of(request(proc.port, "GET", f"/api/event?{PAGE}&p={deep}"))
    assert deep_get in (202, 400)
    # A gzip bomb: 1 MB of zeros in 1 KB is refused at the 8 KiB body cap, not inflated.
    bomb = gzip.compress(b"0" * 1_000_000)
    assert status_of(request(proc.port, "POST", "/api/event", bomb,
                             headers={"Content-Encoding": "gzip"})) == 413
    errors = metric(proc.port, "footfall_http_errors_total")
    assert sum(int(line.rsplit(" ", 1)[1]) for line in errors.splitlines()) >= len(MALFORMED)
    # A real event from the same address, so the scan below covers a written log line too.
    ok = request(proc.port, "POST", "/api/event", beacon(),
                 headers={"User-Agent": f"{CHROME_UA} {MARK}", "X-Forwarded-For": FORWARDED_IP})
    assert status_of(ok) == 202

    printed = stop(proc)
    data = tmp_path / "data"
    assert len(read_lines(data)) == 1 + (deep_get == 202)
    assert all("props" not in line for line in read_lines(data))
    assert b"Traceback" not in printed
    for needle in MARKERS:
        assert needle.encode() not in printed, f"{needle} in the collector's own output"
        for path in written(data):
            assert needle.encode() not in path.read_bytes(), f"{needle} in {path}"


async def test_an_unexpected_500_is_logged_without_request_data(
        aiohttp_client: Any, config: Any, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(config, clock=Clock())

    async def broken(request: web.Request) -> web.Response:
        raise ValueError(f"bug while handling {request.headers['User-Agent']}")

    app.router.add_get("/broken", broken)  # stands for any bug that raises in a handler
    client = await aiohttp_client(app)
    with caplog.at_level(logging.DEBUG):
        resp = await client.get("/broken", headers={"User-Agent": MARK})
    assert resp.status == 500
    records = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert records and all(r.exc_info is None for r in records)
    assert MARK not in caplog.text and "127.0.0.1" not in caplog.text
    errors = [r for r in records if r.levelno >= logging.ERROR]
    where = f"test_hardening_collector.py:{broken.__code__.co_firstlineno + 1}"
    assert len(errors) == 1 and errors[0].fields == {"error": "ValueError", "where": where}
    metrics = await (await client.get("/metrics")).text()
    assert 'footfall_http_errors_total{error="ValueError"} 1' in metrics


async def test_a_failing_salt_store_is_503_then_recovers(aiohttp_client: Any,
                                                        config: Any) -> None:
    config.salts_dir.parent.mkdir(parents=True)
    config.salts_dir.write_text("not a folder")  # every salt read or write fails (ENOTDIR)
    client = await aiohttp_client(create_app(config, clock=Clock()))
    headers = {"User-Agent": CHROME_UA}
    resp = await client.post("/api/event", data=beacon(), headers=headers)
    assert resp.status == 503 and resp.headers["X-Footfall-Error"]
    config.salts_dir.unlink()
    assert (await client.post("/api/event", data=beacon(), headers=headers)).status == 202
    assert len(read_lines(config.data_dir)) == 1


def test_a_trickled_body_gets_408_and_the_socket_is_closed(collector_process: Any) -> None:
    proc = collector_process(collector={"body_timeout_s": 1.0})
    with connect(proc.port) as sock:
        sock.sendall(b"POST /api/event HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                     b"User-Agent: " + CHROME_UA.encode() + b"\r\n\r\n{")
        response = b""
        for _ in range(60):  # one byte a second, far slower than any real beacon
            try:
                sock.sendall(b" ")
            except OSError:
                break
            sock.settimeout(1.0)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            response += chunk
            if not chunk or b"\r\n\r\n" in response:
                break
        assert status_of(response) == 408
        sock.settimeout(30)
        try:
            rest = read_all(sock)
        except ConnectionResetError:
            rest = b""
        assert b"HTTP/1." not in rest  # closed, not kept alive for another request


def test_idle_and_slow_header_sockets_are_closed_by_the_keepalive(
        collector_process: Any) -> None:
    proc = collector_process(collector={"keepalive_s": 1.0})
    idle = [connect(proc.port) for _ in range(20)]
    slow = connect(proc.port)
    slow.sendall(b"GET /api/event HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    for sock in [*idle, slow]:
        assert read_all(sock) == b""  # the server closed it; recv() timing out would fail
        sock.close()


def refused(port: int) -> bool:
    """A 503, or a reset when the request was still unread as the server closed the socket."""
    try:
        return status_of(request(port, "POST", "/api/event", beacon())) == 503
    except ConnectionResetError:
        return True


def test_connections_over_the_cap_get_503_and_the_collector_keeps_serving(
        collector_process: Any) -> None:
    proc = collector_process(collector={"max_connections": 8, "keepalive_s": 60.0})
    idle = [connect(proc.port) for _ in range(8)]
    # The idle ones register as they are accepted: wait until the cap is reached.
    deadline = time.monotonic() + 30
    while not refused(proc.port) and time.monotonic() < deadline:
        idle.append(connect(proc.port))
    assert refused(proc.port)
    for sock in idle:
        sock.close()
    deadline = time.monotonic() + 30
    while refused(proc.port):  # the closed sockets are released as the server sees them go
        assert time.monotonic() < deadline, "the collector did not recover"
    assert status_of(request(proc.port, "POST", "/api/event", beacon())) == 202
    assert int(metric(proc.port, "footfall_connections_refused_total").split()[-1]) >= 1


def test_rate_limit_is_per_client_ip_with_429(collector_process: Any, tmp_path: Path) -> None:
    proc = collector_process(collector={"rate_limit_per_min": 5})
    statuses = [status_of(request(proc.port, "POST", "/api/event", beacon(i)))
                for i in range(6)]
    assert statuses == [202] * 5 + [429]
    refused = request(proc.port, "GET", f"/api/event?{PAGE}")
    assert status_of(refused) == 429
    assert int(headers_of(refused)["retry-after"]) >= 1
    # Another client is not affected.
    assert status_of(request(proc.port, "POST", "/api/event", beacon(9), source=OTHER_IP)) == 202
    printed = stop(proc)
    assert len(read_lines(tmp_path / "data")) == 6
    assert SOURCE_IP.encode() not in printed and OTHER_IP.encode() not in printed


def test_rate_limit_memory_is_bounded_and_forgets_the_least_recent() -> None:
    limit = RateLimit(per_minute=2, max_clients=3)
    clock = Clock()
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        assert limit.take(ip, clock()) == 0
    assert limit.take("192.0.2.1", clock()) == 0
    assert limit.take("192.0.2.1", clock()) == 30  # one token per 30 s
    for i in range(1000):
        limit.take(f"198.51.100.{i % 250}.{i}", clock())
    assert len(limit) == 3
    clock.advance(30)
    assert limit.take("192.0.2.1", clock()) == 0  # forgotten or refilled: allowed again


def test_head_records_nothing_and_files_are_not_world_readable(collector_process: Any,
                                                              tmp_path: Path) -> None:
    proc = collector_process()
    assert status_of(request(proc.port, "HEAD", f"/api/event?{PAGE}")) == 405
    assert status_of(request(proc.port, "GET", f"/api/event?{PAGE}")) == 202
    stop(proc)
    data = tmp_path / "data"
    assert len(read_lines(data)) == 1
    made = [p for p in data.rglob("*")]
    assert any(p.suffix == ".jsonl" for p in made)
    for path in made:
        assert stat.S_IMODE(os.stat(path).st_mode) & 0o007 == 0, path


ROOT = Path(__file__).resolve().parent.parent


def locked(path: Path) -> dict[str, str]:
    """name → pinned version, from a pip-compile lock."""
    pins: dict[str, str] = {}
    lines = path.read_text().splitlines()
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        if line and not line[0].isspace() and not line.startswith("#") and "==" in line:
            name, version = line.split(";")[0].rstrip(" \\").split("==")
            # make installs with --require-hashes, which refuses a pin without one
            assert after.strip().startswith("--hash=sha256:"), f"{name} has no hash in {path}"
            pins[canonicalize_name(name)] = version
    return pins


@pytest.mark.parametrize(("lock", "extras"), [("requirements.lock", []),
                                               ("requirements-dev.lock", ["dev"])])
def test_locks_pin_every_declared_dependency_within_its_floor(lock: str,
                                                              extras: list[str]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"],
                *(r for extra in extras for r in project["optional-dependencies"][extra])]
    pins = locked(ROOT / lock)
    for raw in declared:
        req = Requirement(raw)
        if req.marker is not None and not req.marker.evaluate():
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{lock} lacks {name}: regenerate it (docs/deploy.md)"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{lock} pins {name}=={pins[name]}, outside {req.specifier}: regenerate it"


def default(fn: Any, name: str) -> Any:
    return inspect.signature(fn).parameters[name].default


def test_guarantees_name_real_tests_and_the_limits_in_the_code() -> None:
    from aiohttp.web_protocol import RequestHandler

    from collector import beacon, identity, ratelimit, server
    from collector.geo import CountryLookup
    from collector.useragent import AgentParser
    from footfall.config import Collector

    text = (ROOT / "docs" / "guarantees.md").read_text()
    named = re.findall(r"`tests/(test_\w+\.py)::(\w+)`", text)
    assert len(named) >= 15
    for file, test in named:
        source = (ROOT / "tests" / file).read_text()
        assert re.search(rf"^(async )?def {test}\(", source, re.M), f"no {file}::{test}"

    assert default(RequestHandler.__init__, "max_field_size") == \
        default(RequestHandler.__init__, "max_line_size")
    collector = Collector()
    expected = {
        "beacon body": f"{beacon.MAX_BODY} bytes",
        **{f"`collector.{key}`": str(getattr(collector, key))
           for key in ("body_timeout_s", "keepalive_s", "max_connections", "rate_limit_per_min")},
        "rate-limit clients": str(ratelimit.MAX_CLIENTS),
        "ids carried over midnight": str(identity.MAX_CARRIED),
        "drain on SIGTERM": f"{server.SHUTDOWN_S} s",
        "request line or header line": f"{default(RequestHandler.__init__, 'max_line_size')} bytes",
        "headers per request": str(default(RequestHandler.__init__, "max_headers")),
        "user-agent cache": str(default(AgentParser.__init__, "cache_size")),
        "IP → country cache": str(default(CountryLookup.__init__, "cache_size")),
    }
    section = text.split("### Limits", 1)[1].split("\n\n", 2)[1]
    rows = {cells[0]: cells[1] for cells in
            ([c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()[2:])}
    assert rows == expected


def test_the_nginx_examples_publish_only_the_beacon_and_the_tracker(config: Any) -> None:
    app = create_app(config)
    routes = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    for doc in (ROOT / "README.md", ROOT / "docs" / "deploy.md"):
        blocks = re.findall(r"```nginx\n(.*?)```", doc.read_text(), re.S)
        published = {loc for block in blocks for loc in re.findall(r"location\s+(.+?)\s*\{", block)}
        assert published == {"= /api/event", "= /tracker.js"}, doc  # not /metrics, /healthz
        assert {loc.removeprefix("= ") for loc in published} <= routes, doc
