"""The collector as a real daemon: kill -9 under load, SIGTERM, the privacy scan, fuzzing."""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import signal
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from footfall import contract
from tests.helpers import CHROME_UA, hammer, numbered_beacon, read_lines, scaled

DISTINCT_IP = "81.2.69.160"  # a public address with a known country (GB)
DISTINCT_UA = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/17.1 Safari/605.1.15 Zebra7391Quokka")


def get(url: str, query: str) -> int:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("GET", f"/api/event?{query}", headers={"User-Agent": CHROME_UA})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def post(url: str, body: bytes,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", "/api/event", body=body,
                     headers={"User-Agent": CHROME_UA, "Content-Type": "text/plain",
                              **(headers or {})})
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


event = numbered_beacon


def test_kill_9_under_load_loses_no_acknowledged_event(collector_process: Any,
                                                       tmp_path: Path) -> None:
    # One client IP sends thousands of events: the rate limit stays on but out of reach.
    proc = collector_process(collector={"fsync_interval_s": 5.0, "rate_limit_per_min": 10**9})
    # killed mid-load, with requests in flight
    acked = hammer(proc.url, 0, lambda acked: len(acked) >= 1500,
                   lambda: os.kill(proc.proc.pid, signal.SIGKILL))
    proc.proc.wait()
    logged = [line["props"]["seq"] for line in read_lines(tmp_path / "data")]
    assert len(logged) == len(set(logged))
    assert acked <= set(logged), f"{len(acked - set(logged))} acknowledged events lost"
    assert len(acked) >= 1500


def test_sigterm_drains_and_closes_cleanly(collector_process: Any, tmp_path: Path) -> None:
    proc = collector_process()
    for i in range(20):
        assert post(proc.url, event(i))[0] == 202
    code, stderr = proc.stop()
    assert code == 0, stderr
    assert [line["props"]["seq"] for line in read_lines(tmp_path / "data")] == list(range(20))
    logs = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any(entry["msg"] == "collector stopped" for entry in logs)


def test_privacy_scan_finds_no_ip_ua_query_or_salt(collector_process: Any,
                                                   tmp_path: Path) -> None:
    proc = collector_process(collector={"trusted_proxies": ["127.0.0.1/32"]})
    headers = {"User-Agent": DISTINCT_UA, "X-Forwarded-For": DISTINCT_IP}
    for name in ("pageview", "Signup", "engagement"):
        body = json.dumps({
            "n": name, "d": "example.com", "w": 1280, "tz": "Europe/Paris",
            "u": "https://example.com/account/jane.doe@mail.test/4111111111111111"
                 "?token=Wombat55Secret&utm_source=mail",
            "r": "https://search.test/results?q=Wombat55Query&uid=42",
            "p": {"plan": "pro"},
        }).encode()
        assert post(proc.url, body, headers)[0] == 202
    assert post(proc.url, b"garbage " + DISTINCT_IP.encode(), headers)[0] == 400
    code, stderr = proc.stop()
    assert code == 0

    data = tmp_path / "data"
    lines = read_lines(data)
    assert len(lines) == 3
    salts = [p.read_bytes() for p in (data / "salts").iterdir()]
    assert salts and all(len(s) == 32 for s in salts)
    needles: list[bytes] = [
        DISTINCT_IP.encode(),
        ipaddress.ip_address(DISTINCT_IP).packed,
        DISTINCT_UA.encode(),
        b"Zebra7391Quokka",
        b"Wombat55Secret",
        b"Wombat55Query",
        b"jane.doe",
        b"4111111111111111",
    ]
    for salt in salts:
        needles += [salt, salt.hex().encode(), base64.b64encode(salt)]
    written = [p for p in data.rglob("*") if p.is_file() and p.parent.name != "salts"]
    assert written
    for path in written:
        content = path.read_bytes()
        for needle in needles:
            assert needle not in content, f"{needle!r} found in {path}"
    for needle in needles[:6]:
        assert needle.decode("latin-1") not in stderr
    assert lines[0]["path"] == "/account/:email/:id"
    assert lines[0]["country"] == "GB"  # from the forwarded IP, not the time zone (FR)


# Bodies shaped like beacons, with every field allowed to be wrong.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=6,
)
fields = {
    "n": st.one_of(st.sampled_from(["pageview", "engagement", "Signup"]), json_values),
    "u": st.one_of(st.sampled_from(["https://example.com/", "http://shop.test/a?b=c#d",
                                    "https://example.com/" + "x" * 2100]),
                   st.text(max_size=60), json_values),
    "d": st.one_of(st.sampled_from(["example.com", "shop.test", "www.example.com"]),
                   json_values),
    **{key: json_values for key in ("r", "w", "tz", "p", "i", "e", "sd")},
}
valid = {"n": "pageview", "u": "https://example.com/", "d": "example.com"}
# A valid beacon with some fields replaced by anything, or any mix of fields at all.
beacon_like = st.one_of(
    st.fixed_dictionaries({}, optional=fields).map(lambda extra: {**valid, **extra}),
    st.fixed_dictionaries({}, optional=fields),
)


FUZZ_MARK = "Fuzz31Marker"  # rides in every fuzzed request: it must never be printed


def test_arbitrary_bodies_never_5xx_and_never_write_a_bad_line(collector_process: Any,
                                                               tmp_path: Path) -> None:
    proc = collector_process(collector={"rate_limit_per_min": 10**9})
    logs = tmp_path / "data" / "logs"
    # Quick mode in make test; make fuzz (FOOTFALL_LONG=1) sends 20,000 requests.
    posts, gets = scaled(300, 12_000), scaled(200, 8_000)
    answered: list[int] = []

    @settings(max_examples=posts, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(body=st.one_of(st.binary(max_size=300),
                          beacon_like.map(lambda d: json.dumps(d).encode())))
    def check(body: bytes) -> None:
        status, headers = post(proc.url, body, {"User-Agent": f"{CHROME_UA} {FUZZ_MARK}"})
        answered.append(status)
        assert status in (202, 400, 413), (status, body)
        if status == 400:
            assert headers["X-Footfall-Error"]

    # The GET form: any keys and values, percent-encoded from arbitrary bytes.
    query_value = st.one_of(st.binary(max_size=40).map(lambda b: quote_from_bytes(b, safe="")),
                            json_values.map(lambda v: quote(json.dumps(v), safe="")))
    queries = st.dictionaries(st.sampled_from(["n", "u", "d", "r", "w", "tz", "p", "i", "e",
                                               "sd", "x"]), query_value, max_size=8)

    @settings(max_examples=gets, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(query=queries)
    def check_get(query: dict[str, str]) -> None:
        query = {"n": "pageview", "d": "example.com", "u": "https%3A%2F%2Fexample.com%2F",
                 **query, "secret": FUZZ_MARK}
        status = get(proc.url, "&".join(f"{k}={v}" for k, v in query.items()))
        answered.append(status)
        assert status in (202, 400)

    check()
    check_get()
    assert len(answered) >= posts + gets  # hypothesis ran every case it was asked for
    code, stderr = proc.stop()
    assert code == 0
    assert "Traceback" not in stderr and FUZZ_MARK not in stderr
    lines = [raw for path in logs.rglob("*.jsonl") for raw in path.read_bytes().splitlines()]
    assert lines, "the strategy should produce some valid beacons"
    for raw in lines:
        contract.decode(raw)  # raises on any line that breaks the contract
        assert FUZZ_MARK.encode() not in raw
