"""The standing attack on the collector's guarantees (docs/guarantees.md), beyond the single
cases of test_collector_process.py and test_hardening_collector.py: kill -9 at random moments
with the pipeline counting afterwards, SIGTERM under load, lying and compressed bodies, header
floods, and a salt store that goes missing, rots, loses its permissions or sees the clock go
back.

Quick mode runs inside `make test`; FOOTFALL_LONG=1 (`make fuzz`) runs more of each.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import stat
import zlib
from pathlib import Path
from typing import Any

from collector.app import create_app
from footfall import config as config_mod
from pipeline import run
from tests.helpers import CHROME_UA, Clock, hammer, read_lines, scaled
from tests.test_hardening_collector import (
    MARK,
    connect,
    exchange,
    request,
    status_of,
    stop,
    written,
)

SEED = int(os.environ.get("FOOTFALL_SEED", random.randrange(1 << 30)))


def test_kill_9_at_random_moments_then_the_pipeline_counts_every_acknowledged_event(
        collector_process: Any, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    acked: set[int] = set()
    for cycle in range(scaled(2, 8)):
        proc = collector_process(collector={"rate_limit_per_min": 10**9})
        threshold = rng.randrange(20, 1200)  # the moment: after this many acknowledgements
        acked |= hammer(proc.url, cycle * 1_000_000, lambda a, t=threshold: len(a) >= t,
                        lambda p=proc: os.kill(p.proc.pid, signal.SIGKILL))
        proc.proc.wait()
    data = tmp_path / "data"
    logged = [line["props"]["seq"] for line in read_lines(data)]
    assert len(logged) == len(set(logged)), f"seed {SEED}: a line written twice"
    assert acked <= set(logged), f"seed {SEED}: {len(acked - set(logged))} acknowledged lost"
    # A log shipped twice (a retried rsync, a restored backup) repeats event ids: the pipeline
    # counts the repeats and stores each event once.
    logs = sorted((data / "logs").rglob("*.jsonl"))
    copied = logs[0].with_name("copy-" + logs[0].name)
    shutil.copyfile(logs[0], copied)
    repeats = len(copied.read_bytes().splitlines())
    cfg = config_mod.load(tmp_path / "config.yaml")
    summary = run(cfg, progress=None)
    assert summary.quarantined == 0 and summary.duplicate_events == repeats
    assert summary.new_events == len(logged)


def test_sigterm_under_load_answers_or_refuses_each_request_and_logs_every_202(
        collector_process: Any, tmp_path: Path) -> None:
    proc = collector_process(collector={"rate_limit_per_min": 10**9})
    acked = hammer(proc.url, 0, lambda a: len(a) >= 300, proc.proc.terminate)
    # wait for the one SIGTERM to finish its work: proc.stop() would send a second
    _, err = proc.proc.communicate(timeout=60)
    stderr = err.decode()
    assert proc.proc.returncode == 0, stderr
    logged = {line["props"]["seq"] for line in read_lines(tmp_path / "data")}
    assert acked <= logged
    assert any(json.loads(line)["msg"] == "collector stopped"
               for line in stderr.splitlines() if line.startswith("{"))


def chunked(*chunks: bytes, end: bool = True) -> bytes:
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks)
    return body + (b"0\r\n\r\n" if end else b"")


def raw_post(headers: str, body: bytes) -> bytes:
    return (f"POST /api/event HTTP/1.1\r\nHost: x\r\nUser-Agent: {CHROME_UA} {MARK}\r\n"
            f"Connection: close\r\n{headers}\r\n").encode() + body


def answer(port: int, data: bytes) -> bytes:
    """The response's head: aiohttp lingers up to 10 s over an unread body before closing
    (bounded by the connection cap), so waiting for the close would only slow the test."""
    with connect(port) as sock:
        sock.sendall(data)
        return head(sock)


def head(sock: socket.socket) -> bytes:
    out = b""
    while b"\r\n\r\n" not in out and (chunk := sock.recv(65536)):
        out += chunk
    return out


def test_lying_oversize_and_compressed_bodies_are_4xx_and_leave_nothing(
        collector_process: Any, tmp_path: Path) -> None:
    proc = collector_process(collector={"body_timeout_s": 1.0, "rate_limit_per_min": 10**9})
    page = json.dumps({"n": "pageview", "u": f"https://example.com/{MARK}",
                       "d": "example.com", "p": {"pad": "x" * 1000}}).encode()
    zeros = b"0" * 2_000_000
    deflate = zlib.compressobj(9, zlib.DEFLATED, 15)
    raw_deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    bombs = {
        "deflate": deflate.compress(zeros) + deflate.flush(),
        "raw deflate": raw_deflate.compress(zeros) + raw_deflate.flush(),
        "gzip of a beacon padded past the cap": zlib.compress(page * 10),
        "br (not offered)": b"\x1b" + os.urandom(300),
        "gzip twice": zlib.compress(zlib.compress(zeros)),
    }
    for name, body in bombs.items():
        encoding = {"br (not offered)": "br", "gzip twice": "deflate, deflate"}.get(
            name, "deflate")
        got = status_of(exchange(proc.port, raw_post(
            f"Content-Encoding: {encoding}\r\nContent-Length: {len(body)}\r\n", body)))
        assert 400 <= got < 500, (name, got)
    cases = {
        # more than the body cap, in chunks small enough to pass any per-chunk check
        "oversize chunked": (raw_post("Transfer-Encoding: chunked\r\n",
                                      chunked(*[page] * 10)), {413}),
        # a chunk that promises more than it sends, then silence
        "lying chunk": (raw_post("Transfer-Encoding: chunked\r\n",
                                 b"2000\r\n" + page[:100]), {400, 408}),
        # a Content-Length longer than the body sent, then silence
        "lying length": (raw_post("Content-Length: 4000\r\n", page[:100]), {400, 408}),
        # a Content-Length over the cap: refused before reading
        "announced oversize": (raw_post("Content-Length: 100000000\r\n", b""), {413}),
        "negative length": (raw_post("Content-Length: -5\r\n", page), {400}),
        "chunk extension flood": (raw_post("Transfer-Encoding: chunked\r\n",
                                           b"1;" + b"a=b;" * 3000 + b"\r\nx\r\n0\r\n\r\n"),
                                  {400, 413}),
        "trailer flood": (raw_post("Transfer-Encoding: chunked\r\n", chunked(page, end=False)
                                   + b"0\r\n" + b"".join(b"X-T%d: %s\r\n" % (i, MARK.encode())
                                                         for i in range(300)) + b"\r\n"),
                          {400, 413}),
    }
    for name, (raw, allowed) in cases.items():
        try:
            got = status_of(answer(proc.port, raw))
        except ConnectionResetError:
            got = 400  # closed unread: refused without an answer, which is fine too
        assert got in allowed, (name, got)
    printed = stop(proc)
    assert read_lines(tmp_path / "data") == []
    assert b"Traceback" not in printed and MARK.encode() not in printed
    for path in written(tmp_path / "data"):
        assert MARK.encode() not in path.read_bytes(), path


def test_a_header_flood_is_refused_and_real_beacons_still_get_through(
        collector_process: Any) -> None:
    proc = collector_process(collector={"rate_limit_per_min": 10**9, "max_connections": 64})
    # just under every per-header limit: the whole request is what must be refused
    flood = "".join(f"X-F{n}: {MARK}{'x' * 8000}\r\n" for n in range(120)).encode()
    beacon = json.dumps({"n": "pageview", "d": "example.com",
                         "u": "https://example.com/"}).encode()
    for _ in range(scaled(1, 20)):
        # 20 flooding connections at once, half the cap: the connection cap's own test shows
        # what happens past it
        socks = []
        for _ in range(20):
            sock = connect(proc.port)
            with contextlib.suppress(OSError):  # refused mid-send: what a flood should get
                sock.sendall(b"POST /api/event HTTP/1.1\r\nHost: x\r\n" + flood)
            socks.append(sock)
        assert status_of(request(proc.port, "POST", "/api/event", beacon)) == 202
        for sock in socks:
            try:
                sock.sendall(b"\r\n")
                response = head(sock)
            except OSError:
                response = b""
            assert not response or 200 <= status_of(response) < 500
            sock.close()
    assert b"Traceback" not in stop(proc)


# --- the salt store -------------------------------------------------------------------------

def salt_files(config: Any) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(config.salts_dir.glob("*.salt"))}


async def post(client: Any, ip: str = "203.0.113.9") -> Any:
    body = json.dumps({"n": "pageview", "u": "https://example.com/", "d": "example.com"})
    return await client.post("/api/event", data=body,
                             headers={"User-Agent": CHROME_UA, "X-Forwarded-For": ip})


async def test_a_missing_or_corrupt_salt_is_replaced_never_used_short(
        aiohttp_client: Any, make_config: Any) -> None:
    config = make_config(collector={"trusted_proxies": ["127.0.0.1/32"]})
    clock = Clock()
    client = await aiohttp_client(create_app(config, clock=clock))
    assert (await post(client)).status == 202
    shutil.rmtree(config.salts_dir)  # deleted under a running collector: today's is held
    assert (await post(client)).status == 202
    first = read_lines(config.data_dir)
    assert first[0]["visitor"] == first[1]["visitor"]
    # a restart finds a torn salt (a crash mid-write on another tool): it makes a new one
    await client.close()
    config.salts_dir.mkdir(mode=0o755)
    (config.salts_dir / "2026-03-10.salt").write_bytes(b"short")
    client = await aiohttp_client(create_app(config, clock=clock))
    assert (await post(client)).status == 202
    salts = salt_files(config)
    assert [len(v) for v in salts.values()] == [32]
    assert stat.S_IMODE(os.stat(config.salts_dir).st_mode) == 0o700  # a loose folder is closed


async def test_an_unreadable_salt_is_503_and_recovers(aiohttp_client: Any, config: Any) -> None:
    clock = Clock()
    config.salts_dir.mkdir(parents=True)
    salt = config.salts_dir / "2026-03-10.salt"
    salt.mkdir()  # a salt that cannot be read as a file, whoever runs the collector (even root)
    client = await aiohttp_client(create_app(config, clock=clock))
    resp = await post(client)
    assert resp.status == 503 and resp.headers["X-Footfall-Error"]
    salt.rmdir()
    assert (await post(client)).status == 202


async def test_a_clock_jumping_back_keeps_the_salts_and_their_expiry(
        aiohttp_client: Any, make_config: Any) -> None:
    config = make_config(collector={"trusted_proxies": ["127.0.0.1/32"]})
    # before the tests' usual day: ids stay time-ordered across a process (contract.new_id),
    # so a later day here would push every id made after this test into the future
    clock = Clock("2026-03-04T10:00:00")
    client = await aiohttp_client(create_app(config, clock=clock))
    assert (await post(client)).status == 202
    clock.advance(-2 * 86400)  # NTP steps the clock back two days
    assert (await post(client)).status == 202
    clock.advance(2 * 86400 + 60)  # and forward again
    assert (await post(client)).status == 202
    lines = sorted(read_lines(config.data_dir), key=lambda line: line["ts"])
    assert [line["ts"][:10] for line in lines] == ["2026-03-02", "2026-03-04", "2026-03-04"]
    assert lines[1]["visitor"] == lines[2]["visitor"]  # the day's salt survived
    assert lines[0]["visitor"] != lines[1]["visitor"]  # another day, another salt
    clock.advance(86400)  # a day on: only today's and yesterday's salts may remain
    assert (await post(client)).status == 202
    assert sorted(salt_files(config)) == ["2026-03-04.salt", "2026-03-05.salt"]

