"""Plausible's Events API against the real collector on loopback: every case that
docs/migrating-from-plausible.md documents gets 202 and the documented line, or its 4xx."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from collector import beacon, enrich
from collector.app import create_app
from footfall import contract
from footfall.errors import BeaconError
from tests.helpers import CHROME_UA, Clock, read_lines

UA = {"User-Agent": CHROME_UA, "Content-Type": "application/json"}
DAYS_30_MS = 30 * 24 * 3600 * 1000

# The fields every line below shares; `id` and `visitor` are checked for shape only.
COMMON = {"v": 1, "ts": "2026-03-10T12:00:00.000Z", "browser": "Chrome",
          "browser_version": "124", "os": "Windows", "os_version": "10", "device": "desktop"}


@pytest.fixture
async def client(aiohttp_client: Any, config: Any) -> TestClient[Any, Any]:
    app: web.Application = create_app(config, clock=Clock())
    return await aiohttp_client(app)  # type: ignore[no-any-return]


async def send(client: TestClient[Any, Any], body: Any, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/api/event", data=data, headers={**UA, **headers})


def stored(config: Any) -> list[dict[str, Any]]:
    lines = read_lines(config.data_dir)
    for line in lines:
        assert len(line.pop("id")) == 36 and len(line.pop("visitor")) == 16
    return lines


async def test_long_keys_with_props_revenue_and_interactive(client: Any, config: Any) -> None:
    resp = await send(client, {
        "name": "Purchase", "url": "https://example.com/checkout?utm_source=mail",
        "domain": "example.com", "referrer": "https://news.ycombinator.com/item?id=1",
        "props": {"plan": "pro", "seats": 3, "annual": True},
        "revenue": {"amount": "19.99", "currency": "EUR"}, "interactive": False,
    })
    assert resp.status == 202 and "X-Footfall-Adjusted" not in resp.headers
    assert stored(config) == [{
        **COMMON, "site": "example.com", "name": "Purchase", "path": "/checkout",
        "hostname": "example.com", "referrer": "news.ycombinator.com/item",
        "source": "Hacker News", "utm_source": "mail",
        "props": {"plan": "pro", "seats": 3, "annual": True}, "interactive": False,
        "revenue_amount": "19.99", "revenue_currency": "EUR",
    }]


async def test_comma_domains_record_once_per_configured_site(client: Any, config: Any) -> None:
    resp = await send(client, {"n": "pageview", "u": "https://example.com/",
                               "d": "example.com, www.shop.test"})
    assert resp.status == 202 and "X-Footfall-Adjusted" not in resp.headers
    lines = stored(config)
    assert [line["site"] for line in lines] == ["example.com", "shop.test"]
    assert lines[0] | {"site": "shop.test"} == lines[1]
    metrics = await (await client.get("/metrics")).text()
    assert "footfall_events_accepted_total 2" in metrics


async def test_comma_domains_skip_unknown_sites_and_say_so(client: Any, config: Any) -> None:
    resp = await send(client, {"n": "pageview", "u": "https://example.com/",
                               "d": "rollup.example.net,example.com"})
    assert resp.status == 202
    assert resp.headers["X-Footfall-Adjusted"] == "unknown-site-skipped"
    assert [line["site"] for line in stored(config)] == ["example.com"]
    metrics = await (await client.get("/metrics")).text()
    assert 'footfall_events_adjusted_total{reason="unknown-site-skipped"} 1' in metrics


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"n": "pageview", "u": "https://example.com/", "d": "a.test,b.test"}, "unknown site"),
        ({"n": "pageview", "u": "https://elsewhere.test/"}, "unknown site"),  # d from u
        ({"n": "pageview", "u": "https://example.com/", "d": ""}, "'d' can't be blank"),
        ({"u": "https://example.com/", "d": "example.com"}, "missing required field 'n'"),
        ({"n": "pageview", "d": "example.com"}, "missing required field 'u'"),
        ({"n": ["a"], "u": "https://example.com/", "d": "example.com"}, "'n' must be text"),
        ({"n": "x", "u": "data://example.com/x", "d": "example.com"}, "not a page URL"),
        ({"n": "x", "u": "/relative", "d": "example.com"}, "not a page URL"),
        ({"n": "x" * 121, "u": "https://example.com/", "d": "example.com"}, "longer than 120"),
    ],
)
async def test_documented_refusals(client: Any, config: Any, body: dict[str, Any],
                                   reason: str) -> None:
    resp = await send(client, body)
    assert resp.status == 400
    assert reason in resp.headers["X-Footfall-Error"]
    assert read_lines(config.data_dir) == []


async def test_missing_d_takes_the_site_from_the_url(client: Any, config: Any) -> None:
    resp = await send(client, {"name": "pageview", "url": "https://www.example.com/docs"})
    assert resp.status == 202
    assert stored(config) == [{**COMMON, "site": "example.com", "name": "pageview",
                               "path": "/docs", "hostname": "www.example.com"}]


@pytest.mark.parametrize(
    ("p", "props", "adjusted"),
    [
        ('{"plan":"pro","n":3}', {"plan": "pro", "n": 3}, None),  # plausible-tracker 0.3
        ("not json", None, "props-not-object"),
        ("[1,2]", None, "props-not-object"),
        (7, None, "props-not-object"),
        ({"a": None, "b": "", "c": " ", "d": {"x": 1}, "e": [1], "ok": "yes"}, {"ok": "yes"},
         "prop-null,prop-empty,prop-nested"),
        ({"k" * 301: "v", "long": "v" * 2001, "fine": 1.5}, {"fine": 1.5}, "prop-too-long"),
        ({"line\nbreak": "a\x00b", "tab": "x\ty"}, {"linebreak": "ab", "tab": "xy"},
         "prop-control"),
        ({f"k{i:02}": i for i in range(31)}, {f"k{i:02}": i for i in range(30)},
         "props-over-30"),
    ],
)
async def test_props_keep_what_plausible_keeps(client: Any, config: Any, p: Any,
                                               props: dict[str, Any] | None,
                                               adjusted: str | None) -> None:
    resp = await send(client, {"n": "Signup", "u": "https://example.com/", "d": "example.com",
                               "p": p})
    assert resp.status == 202
    assert resp.headers.get("X-Footfall-Adjusted") == adjusted
    (line,) = stored(config)
    assert line.get("props") == props


async def test_meta_is_read_before_props(client: Any, config: Any) -> None:
    resp = await send(client, {"n": "x", "u": "https://example.com/", "d": "example.com",
                               "m": {"from": "m"}, "props": {"from": "props"}})
    assert resp.status == 202
    assert stored(config)[0]["props"] == {"from": "m"}


@pytest.mark.parametrize(
    ("fields", "expect", "adjusted"),
    [
        ({"sd": 150, "e": 1000}, {"scroll_pct": 100, "engaged_ms": 1000}, "sd-clamped"),
        ({"sd": -5}, {"scroll_pct": 0}, "sd-clamped"),
        ({"e": DAYS_30_MS + 1}, {"engaged_ms": DAYS_30_MS}, "e-clamped"),
        ({"e": "1200", "sd": "40"}, {"engaged_ms": 1200, "scroll_pct": 40}, None),
        ({"e": 8 * 24 * 3600 * 1000}, {"engaged_ms": 8 * 24 * 3600 * 1000}, None),
    ],
)
async def test_engagement_values_are_clamped(client: Any, config: Any, fields: dict[str, Any],
                                             expect: dict[str, Any], adjusted: str | None) -> None:
    resp = await send(client, {"n": "engagement", "u": "https://example.com/",
                               "d": "example.com", **fields})
    assert resp.status == 202
    assert resp.headers.get("X-Footfall-Adjusted") == adjusted
    (line,) = stored(config)
    assert {k: line.get(k) for k in expect} == expect


async def test_over_long_referrer_is_truncated(client: Any, config: Any) -> None:
    referrer = "https://ref.test/" + "x" * 2500
    resp = await send(client, {"n": "pageview", "u": "https://example.com/", "d": "example.com",
                               "r": referrer})
    assert resp.status == 202 and resp.headers["X-Footfall-Adjusted"] == "referrer-truncated"
    (line,) = stored(config)
    # The first 2,000 characters, without the scheme: host + path.
    assert line["referrer"] == referrer[len("https://"):2000]
    metrics = await (await client.get("/metrics")).text()
    assert 'footfall_events_adjusted_total{reason="referrer-truncated"} 1' in metrics


@pytest.mark.parametrize(("n", "name"), [(404, "404"), (1.5, "1.5"), (True, "true")])
async def test_any_json_scalar_is_an_event_name(client: Any, config: Any, n: Any,
                                                name: str) -> None:
    resp = await send(client, {"n": n, "u": "https://example.com/", "d": "example.com"})
    assert resp.status == 202
    assert stored(config)[0]["name"] == name


@pytest.mark.parametrize(
    ("h", "path"),
    [(1, "/app#/users/list"), ("1", "/app#/users/list"), (0, "/app"), (None, "/app")],
)
async def test_hash_mode_keeps_the_route_only_when_asked(client: Any, config: Any, h: Any,
                                                         path: str) -> None:
    body = {"n": "pageview", "u": "https://example.com/app#/users/list", "d": "example.com"}
    if h is not None:
        body["h"] = h
    assert (await send(client, body)).status == 202
    assert stored(config)[0]["path"] == path


async def test_hash_mode_long_key(client: Any, config: Any) -> None:
    body = {"n": "pageview", "u": "https://example.com/#/a", "d": "example.com", "hashMode": 1}
    assert (await send(client, body)).status == 202
    assert stored(config)[0]["path"] == "/#/a"


async def test_app_scheme_uses_the_host_as_hostname(client: Any, config: Any) -> None:
    resp = await send(client, {"n": "pageview", "u": "app://com.example.app/settings",
                               "d": "example.com"})
    assert resp.status == 202
    (line,) = stored(config)
    assert (line["hostname"], line["path"]) == ("com.example.app", "/settings")


@pytest.mark.parametrize(
    ("revenue", "amount", "currency"),
    [
        ({"amount": "19.99", "currency": "EUR"}, "19.99", "EUR"),
        ({"amount": 19.99, "currency": "USD"}, "19.99", "USD"),
        ({"amount": 5, "currency": "JPY"}, "5", "JPY"),
        ({"amount": "10.50", "currency": "GBP"}, "10.5", "GBP"),
        ({"amount": "-3.2", "currency": "EUR"}, "-3.2", "EUR"),  # a refund
        ('{"amount":"7","currency":"CHF"}', "7", "CHF"),  # JSON text, as Plausible reads it
    ],
)
async def test_revenue_is_stored_as_two_fields(client: Any, config: Any, revenue: Any,
                                               amount: str, currency: str) -> None:
    resp = await send(client, {"n": "Purchase", "u": "https://example.com/", "d": "example.com",
                               "$": revenue})
    assert resp.status == 202 and "X-Footfall-Adjusted" not in resp.headers
    (line,) = stored(config)
    assert (line["revenue_amount"], line["revenue_currency"]) == (amount, currency)


@pytest.mark.parametrize(
    "revenue",
    [
        {"amount": "19.99", "currency": "eur"},  # Plausible matches codes exactly
        {"amount": "19.99", "currency": "XYZ"},
        {"amount": "1,000", "currency": "EUR"},
        {"amount": "NaN", "currency": "EUR"},
        {"amount": True, "currency": "EUR"},
        {"amount": "1.1234567", "currency": "EUR"},  # beyond DECIMAL(18, 6)
        {"amount": "1e13", "currency": "EUR"},
        {"amount": "5"},
        "five euros",
        [1],
    ],
)
async def test_invalid_revenue_drops_the_revenue_not_the_event(client: Any, config: Any,
                                                               revenue: Any) -> None:
    resp = await send(client, {"n": "Purchase", "u": "https://example.com/", "d": "example.com",
                               "revenue": revenue})
    assert resp.status == 202
    assert resp.headers["X-Footfall-Adjusted"] == "revenue-invalid"
    (line,) = stored(config)
    assert "revenue_amount" not in line and "revenue_currency" not in line


async def test_get_form_takes_long_keys_too(client: Any, config: Any) -> None:
    resp = await client.get("/api/event", params={
        "name": "Signup", "url": "https://example.com/x", "domain": "example.com",
        "props": json.dumps({"plan": "pro"}), "revenue": json.dumps({"amount": "1",
                                                                     "currency": "EUR"})},
        headers={"User-Agent": CHROME_UA})
    assert resp.status == 202
    (line,) = stored(config)
    assert (line["name"], line["props"], line["revenue_amount"]) == ("Signup", {"plan": "pro"},
                                                                    "1")


async def test_forwarded_for_from_an_untrusted_sender_is_named_in_the_answer(
    aiohttp_client: Any, make_config: Any
) -> None:
    body = {"n": "pageview", "u": "https://example.com/", "d": "example.com"}
    untrusted = make_config()
    client = await aiohttp_client(create_app(untrusted, clock=Clock()))
    resp = await send(client, body, **{"X-Forwarded-For": "81.2.69.142"})
    assert resp.status == 202
    assert "trusted_proxies" in resp.headers["X-Footfall-Forwarded-For"]
    assert "X-Footfall-Forwarded-For" not in (await send(client, body)).headers
    metrics = await (await client.get("/metrics")).text()
    assert "footfall_forwarded_for_ignored_total 1" in metrics
    assert "country" not in read_lines(untrusted.data_dir)[0]  # loopback: the XFF was not used

    trusted = make_config(collector={"trusted_proxies": ["127.0.0.1/32"]})
    client = await aiohttp_client(create_app(trusted, clock=Clock()))
    resp = await send(client, body, **{"X-Forwarded-For": "81.2.69.142"})
    assert resp.status == 202 and "X-Footfall-Forwarded-For" not in resp.headers
    assert read_lines(trusted.data_dir)[-1]["country"] == "GB"


DOCS = Path(__file__).parent.parent / "docs"


def _table_keys(text: str, heading: str) -> set[str]:
    """The backticked names in the first column of the table under `heading`."""
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [row for row in section.splitlines() if row.startswith("| ")]
    return {name for row in rows[1:] for name in re.findall(r"`([^`]+)`", row.split("|")[1])}


def test_every_repair_reason_is_documented_and_no_other() -> None:
    documented = _table_keys((DOCS / "beacon.md").read_text(), "### Repairs")
    assert documented == {*beacon.REPAIRS, enrich.UNKNOWN_SITE_SKIPPED}


def test_every_plausible_field_is_in_the_migration_table() -> None:
    documented = _table_keys((DOCS / "migrating-from-plausible.md").read_text(),
                             "## Every Plausible field")
    accepted = {name for names in beacon._ALIASES.values() for name in names}
    assert accepted | {"sd", "e", "w", "v"} <= documented


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(),
                         st.floats(allow_nan=False, allow_infinity=False),  # JSON has neither
                         st.text(max_size=40), st.sampled_from(["", " ", "\x00", "EUR", "1.5",
                                                                "example.com", "a,b"]))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=4)),
    max_leaves=12)
beacon_keys = st.sampled_from(sorted({n for names in beacon._ALIASES.values() for n in names}
                                     | {"w", "tz", "e", "sd", "v"}))


@settings(max_examples=400, deadline=None)
@given(fields=st.dictionaries(beacon_keys, json_values, max_size=8),
       props=st.dictionaries(st.text(max_size=6), json_values, max_size=40))
def test_any_object_is_a_valid_beacon_or_a_400(fields: dict[str, Any],
                                               props: dict[str, Any]) -> None:
    raw = {"n": "x", "u": "https://example.com/", **fields}
    if "p" not in fields:
        raw["p"] = props
    try:
        payload = beacon.from_object(raw)
    except BeaconError as exc:
        assert exc.status == 400 and exc.reason
        return
    # Whatever was kept fits the log contract.
    line = contract.LogLine(
        v=1, id="x", ts="2026-03-10T12:00:00.000Z", site="example.com", name=payload.n,
        path="/", visitor="0123456789abcdef", props=payload.p, engaged_ms=payload.e,
        scroll_pct=payload.sd, screen_width=payload.w,
        revenue_amount=payload.revenue.amount if payload.revenue else None,
        revenue_currency=payload.revenue.currency if payload.revenue else None)
    assert contract.decode(contract.encode(line)) == line
    assert len(payload.p or {}) <= contract.MAX_PROPS
    assert all(k.strip() and not any(ch < " " or ch == "\x7f" for ch in k + str(v))
               for k, v in (payload.p or {}).items())
    assert payload.sd is None or 0 <= payload.sd <= 100
