"""The beacon endpoint's outcome table, row by row, against the real app on loopback."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from collector.app import create_app
from footfall import contract
from tests.helpers import CHROME_UA, GOOGLEBOT_UA, IPHONE_UA, Clock, fill, read_lines, tmpfs

UA = {"User-Agent": CHROME_UA}
PAGE = "https://example.com/pricing?utm_source=newsletter&utm_campaign=spring&secret=hunter2"


def beacon(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"n": "pageview", "u": PAGE, "d": "example.com",
                            "r": "https://news.ycombinator.com/item?id=1", "w": 1440,
                            "tz": "Europe/Berlin"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not ...}


@pytest.fixture
async def client(aiohttp_client: Any, config: Any) -> TestClient[Any, Any]:
    app: web.Application = create_app(config, clock=Clock())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def post(client: TestClient[Any, Any], body: Any, headers: dict[str, str] | None = None,
               raw: bytes | None = None) -> Any:
    data = raw if raw is not None else json.dumps(body).encode()
    return await client.post("/api/event", data=data,
                             headers={**UA, "Content-Type": "text/plain", **(headers or {})})


async def test_accepts_a_pageview_and_writes_one_contract_line(client: Any, config: Any) -> None:
    resp = await post(client, beacon(p={"plan": "pro", "n": 3, "ok": True}))
    assert resp.status == 202
    assert await resp.text() == "ok"
    (line,) = read_lines(config.data_dir)
    decoded = contract.decode(json.dumps(line).encode())
    assert decoded.site == "example.com"
    assert line["name"] == "pageview"
    assert line["path"] == "/pricing"
    assert line["hostname"] == "example.com"
    assert line["utm_source"] == "newsletter" and line["utm_campaign"] == "spring"
    assert line["referrer"] == "news.ycombinator.com/item"
    assert line["source"] == "Hacker News"
    assert line["browser"] == "Chrome" and line["browser_version"] == "124"
    assert line["os"] == "Windows" and line["device"] == "desktop"
    assert line["country"] == "DE"  # loopback has no IP country: the time zone decides
    assert line["screen_width"] == 1440
    assert line["props"] == {"plan": "pro", "n": 3, "ok": True}
    assert line["ts"] == "2026-03-10T12:00:00.000Z"
    assert "hunter2" not in json.dumps(line)


async def test_engagement_is_non_interactive_and_keeps_its_measures(client: Any,
                                                                    config: Any) -> None:
    resp = await post(client, beacon(n="engagement", i=False, e=5230, sd=80))
    assert resp.status == 202
    (line,) = read_lines(config.data_dir)
    assert line["interactive"] is False
    assert (line["engaged_ms"], line["scroll_pct"]) == (5230, 80)


async def test_get_form_answers_a_gif(client: Any, config: Any) -> None:
    resp = await client.get("/api/event", params={"n": "pageview", "d": "example.com",
                                                 "p": json.dumps({"via": "noscript"})},
                            headers={**UA, "Referer": "https://example.com/docs/"})
    assert resp.status == 202
    assert resp.content_type == "image/gif"
    assert (await resp.read()).startswith(b"GIF89a")
    (line,) = read_lines(config.data_dir)
    assert line["path"] == "/docs/" and line["props"] == {"via": "noscript"}


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "payload must be a JSON object"),
        (b"[1, 2]", "payload must be a JSON object"),
        (b'"text"', "payload must be a JSON object"),
        (b"", "payload must be a JSON object"),
        (b'{"n": "pageview", "u": "https://example.com/", "d": "example.com"', "truncated"),
        (b'{"n":"\xff\xfe","u":"https://example.com/","d":"example.com"}', "not valid UTF-8"),
        (b'{"n":"\\ud800","u":"https://example.com/","d":"example.com"}', "surrogate"),
        (b'{"u":"https://example.com/","d":"example.com"}', "missing required field"),
        (b'{"n":{"a":1},"u":"https://example.com/","d":"example.com"}', "'n' must be text"),
        (b'{"n":"x","u":"https://example.com/","d":"example.com","w":"wide"}', "'w' must be"),
        (b'{"n":"x","u":"https://example.com/","d":"example.com","sd":"deep"}', "'sd' must be"),
        (b'{"n":"x\\n","u":"https://example.com/","d":"example.com"}', "printable"),
        (b'{"n":"x","u":"javascript:alert(1)","d":"example.com"}', "not a page URL"),
        (b'{"n":"x","u":"https://exa<mple.com/","d":"example.com"}', "not a valid host"),
        (b'{"n":"x","u":"https://example.com/","d":" , "}', "'d' can't be blank"),
        (b'{"n":"x","u":"https://example.com/","d":"example.com","tz":7}', "'tz' must be"),
    ],
)
async def test_bad_payloads_get_400_with_a_reason(client: Any, config: Any, raw: bytes,
                                                  reason: str) -> None:
    resp = await post(client, None, raw=raw)
    assert resp.status == 400
    assert reason in await resp.text()
    assert reason.split()[0] in resp.headers["X-Footfall-Error"]
    assert read_lines(config.data_dir) == []


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"n": "x" * 121}, "'n' is longer than 120"),
        ({"u": "https://example.com/" + "a" * 2000}, "'u' is longer than 2000"),
        ({"w": 100_001}, "'w' must be between 0 and 100000"),
        ({"w": -1}, "'w' must be between 0 and 100000"),
    ],
)
async def test_field_caps(client: Any, config: Any, fields: dict[str, Any], where: str) -> None:
    body = beacon(**fields)
    if len(json.dumps(body)) > 8192:
        pytest.fail("case must fit the body limit to test the field cap")
    resp = await post(client, body)
    assert resp.status == 400
    assert where in await resp.text()
    assert read_lines(config.data_dir) == []


async def test_caps_admit_their_maximum(client: Any, config: Any) -> None:
    body = beacon(n="n" * 120, p={f"k{i}": "v" * 100 for i in range(30)})
    assert (await post(client, body)).status == 202
    assert len(read_lines(config.data_dir)) == 1


async def test_body_over_8k_is_413_before_reading(client: Any, config: Any) -> None:
    big = json.dumps(beacon(p={"x": "y" * 1900, "z": "w" * 1900, "a": "b" * 1900,
                               "c": "d" * 1900, "e": "f" * 1900})).encode()
    assert len(big) > 8192
    resp = await post(client, None, raw=big)
    assert resp.status == 413
    assert "8192" in resp.headers["X-Footfall-Error"]

    async def chunks() -> Any:  # no Content-Length: the limit applies while reading
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    resp = await client.post("/api/event", data=chunks(), headers=UA)
    assert resp.status == 413
    assert read_lines(config.data_dir) == []


async def test_unknown_site_is_400(client: Any, config: Any) -> None:
    resp = await post(client, beacon(d="evil.test"))
    assert resp.status == 400
    assert resp.headers["X-Footfall-Error"] == "unknown site"
    assert read_lines(config.data_dir) == []


async def test_www_prefix_names_the_same_site(client: Any, config: Any) -> None:
    assert (await post(client, beacon(d="www.example.com"))).status == 202
    assert read_lines(config.data_dir)[0]["site"] == "example.com"


@pytest.mark.parametrize(
    ("ua", "reason"),
    [
        (GOOGLEBOT_UA, None),
        ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "HeadlessChrome/124.0.0.0 Safari/537.36", "headless"),
        ("curl/8.5.0", None),
        ("", "empty-ua"),
    ],
)
async def test_bots_get_202_and_a_drop_reason(client: Any, config: Any, ua: str,
                                             reason: str | None) -> None:
    resp = await post(client, beacon(), headers={"User-Agent": ua})
    assert resp.status == 202 and await resp.text() == "ok"
    assert not [h for h in resp.headers if h.lower().startswith("x-footfall")]  # learns nothing
    assert read_lines(config.data_dir) == []
    metrics = await (await client.get("/metrics")).text()
    dropped = [line for line in metrics.splitlines()
               if line.startswith("footfall_events_dropped_total{")]
    assert len(dropped) == 1 and dropped[0].endswith(" 1"), "a bot must be dropped"
    if reason:
        assert f'reason="{reason}"' in dropped[0]


async def test_excluded_paths_are_dropped(aiohttp_client: Any, make_config: Any) -> None:
    cfg = make_config(collector={"exclude_paths": ["/admin/*"]})
    client = await aiohttp_client(create_app(cfg, clock=Clock()))
    resp = await post(client, beacon(u="https://example.com/admin/users"))
    assert resp.status == 202 and "X-Footfall-Dropped" not in resp.headers
    metrics = await (await client.get("/metrics")).text()
    assert 'footfall_events_dropped_total{reason="excluded-path"} 1' in metrics
    assert (await post(client, beacon(u="https://example.com/administer"))).status == 202
    assert [line["path"] for line in read_lines(cfg.data_dir)] == ["/administer"]


async def test_cors_answers_configured_origins_only(client: Any) -> None:
    ok = await post(client, beacon(), headers={"Origin": "https://www.example.com"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://www.example.com"
    other = await post(client, beacon(), headers={"Origin": "https://evil.test"})
    assert "Access-Control-Allow-Origin" not in other.headers
    pre = await client.options("/api/event", headers={
        "Origin": "https://example.com", "Access-Control-Request-Method": "POST"})
    assert pre.status == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    denied = await client.options("/api/event", headers={"Origin": "https://evil.test"})
    assert denied.status == 403


async def test_tracker_is_served_with_caching(client: Any) -> None:
    resp = await client.get("/tracker.js")
    assert resp.status == 200
    assert resp.content_type == "application/javascript"
    body = await resp.read()
    assert body == (Path(__file__).parent.parent / "collector/static/tracker.js").read_bytes()
    again = await client.get("/tracker.js", headers={"If-None-Match": resp.headers["ETag"]})
    assert again.status == 304


async def test_health_and_metrics(client: Any) -> None:
    await post(client, beacon())
    await post(client, None, raw=b"nope")
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"
    text = await (await client.get("/metrics")).text()
    assert "footfall_events_accepted_total 1" in text
    assert 'footfall_events_rejected_total{status="400"} 1' in text
    assert "footfall_log_bytes_written_total " in text
    assert "footfall_log_bytes_written_total 0\n" not in text


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Any:
    """A 256 KiB tmpfs as data_dir."""
    with tmpfs(tmp_path / "tiny", "256k") as mnt:
        yield mnt


async def test_full_disk_gives_503_and_recovers(aiohttp_client: Any, make_config: Any,
                                                tiny_disk: Path) -> None:
    cfg = make_config(data_dir=str(tiny_disk))
    client = await aiohttp_client(create_app(cfg, clock=Clock()))
    assert (await post(client, beacon())).status == 202  # creates the salt and log file
    filler = fill(tiny_disk)
    statuses = [(await post(client, beacon(p={"k": "v" * 1500}))).status for _ in range(5)]
    assert 503 in statuses
    assert (await client.get("/healthz")).status == 200  # the process stays up
    filler.unlink()
    assert (await post(client, beacon(n="after"))).status == 202
    lines = read_lines(cfg.data_dir)  # every line parses: no torn line was left behind
    assert lines[-1]["name"] == "after"
    accepted = 2 + statuses.count(202)
    assert len(lines) == accepted
    metrics = await (await client.get("/metrics")).text()
    assert f'footfall_events_rejected_total{{status="503"}} {statuses.count(503)}' in metrics


async def test_unwritable_log_folder_gives_503(aiohttp_client: Any, config: Any) -> None:
    client = await aiohttp_client(create_app(config, clock=Clock()))
    day = config.logs_dir / "2026" / "03" / "10"
    day.parent.mkdir(parents=True)
    day.write_text("a file where the day's folder should be")
    resp = await post(client, beacon())
    assert resp.status == 503 and resp.headers["X-Footfall-Error"]
    day.unlink()
    assert (await post(client, beacon())).status == 202


async def test_iphone_is_mobile(client: Any, config: Any) -> None:
    await post(client, beacon(), headers={"User-Agent": IPHONE_UA})
    (line,) = read_lines(config.data_dir)
    assert line["device"] == "mobile" and line["os"] == "iOS"


def test_log_files_are_named_per_host_and_process(config: Any) -> None:
    from collector.logwriter import LogWriter

    clock = Clock()
    a = LogWriter(config.logs_dir, clock, 200, 1.0)
    b = LogWriter(config.logs_dir, clock, 200, 1.0)
    for i in range(10):
        a.append(b'{"n":%d}\n' % i + b"x" * 50 + b"\n")
        b.append(b'{"n":%d}\n' % i)
    clock.advance(24 * 3600)
    a.append(b"{}\n")
    a.close()
    b.close()
    files = sorted(config.logs_dir.rglob("*.jsonl"))
    assert len({f.name for f in files}) == len(files)
    assert any("/2026/03/11/" in str(f) for f in files)
    assert all(os.path.getsize(f) <= 200 + 100 for f in files)
    assert len([f for f in files if "/2026/03/10/" in str(f)]) > 2  # rotated on size


@pytest.mark.parametrize(
    ("trusted", "xff", "country"),
    [
        ([], "81.2.69.142", "US"),  # untrusted peer: the header is ignored, the tz decides
        (["127.0.0.1/32"], "81.2.69.142", "GB"),
        (["127.0.0.1/32"], "8.8.8.8, 81.2.69.142", "GB"),  # a client-forged hop stays left
        (["127.0.0.1/32"], "81.2.69.142, 10.1.2.3", "US"),  # 10.x is not trusted: it is the client
        (["127.0.0.1/32", "10.0.0.0/8"], "81.2.69.142, 10.1.2.3", "GB"),
        (["127.0.0.1/32"], "not-an-ip", "US"),
    ],
)
async def test_trusted_proxy_rule(aiohttp_client: Any, make_config: Any, trusted: list[str],
                                  xff: str, country: str) -> None:
    cfg = make_config(collector={"trusted_proxies": trusted})
    client = await aiohttp_client(create_app(cfg, clock=Clock()))
    resp = await post(client, beacon(tz="America/New_York"), headers={"X-Forwarded-For": xff})
    assert resp.status == 202
    (line,) = read_lines(cfg.data_dir)
    assert line["country"] == country


@pytest.mark.parametrize(
    ("query", "status", "reason"),
    [
        ("n=pageview&d=example.com&u=https%3A%2F%2Fexample.com%2Fa", 202, None),
        ("n=%ED%A0%80&d=example.com&u=https://example.com/", 400, "not valid UTF-8"),
        ("n=%FF&d=example.com&u=https://example.com/", 400, "not valid UTF-8"),
        ("n=x&d=example.com&u=https://example.com/&p=nope", 202, None),
        ("n=x&d=example.com&u=https://example.com/&p=%5B1%5D", 202, None),
        ("n=x&d=example.com&u=https://example.com/&w=wide", 400, "whole number"),
        ("n=x&d=evil.test&u=https://example.com/", 400, "unknown site"),
        ("n=x&d=example.com", 400, "missing required field 'u'"),
    ],
)
async def test_get_form_outcomes(client: Any, config: Any, query: str, status: int,
                                 reason: str | None) -> None:
    resp = await client.get(f"/api/event?{query}", headers=UA)
    assert resp.status == status
    if reason:
        assert reason in resp.headers["X-Footfall-Error"]
    assert len(read_lines(config.data_dir)) == (1 if status == 202 else 0)
