"""Enrichment with the real libraries and data: user agents, countries, referrers, paths."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from urllib.parse import quote, unquote

import crawleruseragents
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.geo import CountryLookup, zone_countries
from collector.paths import UTM_MAX, parse_page_url, redact_path
from collector.referrer import Referrers, source_names, spam_hosts
from collector.useragent import Agent, AgentParser, _bot_patterns, _Matcher

# --- user agents -------------------------------------------------------------------------

UAS = {
    "chrome-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    ),
    "firefox-linux": (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    ),
    "safari-mac": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15"
    ),
    "safari-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
    ),
    "safari-ipad": (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1"
    ),
    "chrome-iphone": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1"
    ),
    "chrome-android-phone": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36"
    ),
    "chrome-android-tablet": (
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    ),
    "samsung-phone": (
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
    ),
    "firefox-android-phone": (
        "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0"
    ),
    "firefox-android-tablet": (
        "Mozilla/5.0 (Android 14; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0"
    ),
    "kindle": (
        "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/119.4.1 like Chrome/119.0.6045.193 Safari/537.36"
    ),
    "fire-tv": (
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233; wv) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Version/4.0 Chrome/70.0.3538.110 Mobile Safari/537.36"
    ),
    "edge-windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
    ),
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot-smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)"
    ),
    "bingbot": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "headless-chrome": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.6099.28 Safari/537.36"
    ),
    "phantomjs": (
        "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
        "PhantomJS/2.1.1 Safari/538.1"
    ),
    "jsdom": "Mozilla/5.0 (linux) AppleWebKit/537.36 (KHTML, like Gecko) jsdom/22.1.0",
    "curl": "curl/8.4.0",
    "python-requests": "python-requests/2.31.0",
}

EXPECTED = {
    "chrome-windows": Agent("Chrome", "120", "Windows", "10", "desktop", None),
    "firefox-linux": Agent("Firefox", "121", "Ubuntu", None, "desktop", None),
    "safari-mac": Agent("Safari", "17", "macOS", "10.15", "desktop", None),
    "safari-iphone": Agent("Safari", "17", "iOS", "17", "mobile", None),
    "safari-ipad": Agent("Safari", "16", "iOS", "16", "tablet", None),
    "chrome-iphone": Agent("Chrome", "120", "iOS", "17", "mobile", None),
    "chrome-android-phone": Agent("Chrome", "120", "Android", "10", "mobile", None),
    "chrome-android-tablet": Agent("Chrome", "120", "Android", "13", "tablet", None),
    "samsung-phone": Agent("Samsung Internet", "23", "Android", "13", "mobile", None),
    "firefox-android-phone": Agent("Firefox", "121", "Android", "14", "mobile", None),
    "firefox-android-tablet": Agent("Firefox", "121", "Android", "14", "tablet", None),
    "kindle": Agent("Amazon Silk", "119", "Android", "9", "tablet", None),
    "fire-tv": Agent("Chrome WebView", "70", "Android", "9", "desktop", None),
    "edge-windows": Agent("Edge", "120", "Windows", "10", "desktop", None),
}

BOTS = {
    "googlebot": "crawler",
    "googlebot-smartphone": "crawler",
    "bingbot": "crawler",
    "headless-chrome": "headless",
    "phantomjs": "headless",
    "jsdom": "headless",
    "curl": "crawler",
    "python-requests": "crawler",
}


@pytest.fixture(scope="module")
def agents() -> AgentParser:
    return AgentParser()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_browsers(agents: AgentParser, name: str) -> None:
    assert agents.parse(UAS[name]) == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(BOTS))
def test_bots(agents: AgentParser, name: str) -> None:
    agent = agents.parse(UAS[name])
    assert agent.bot == BOTS[name]
    assert (agent.browser, agent.os, agent.device) == (None, None, None)


@pytest.mark.parametrize("ua", ["", "   ", "Mozilla/5.0", "x" * 19])
def test_empty_or_tiny_user_agent(agents: AgentParser, ua: str) -> None:
    assert agents.parse(ua).bot == "empty-ua"


def test_spider_device_class_is_a_bot(agents: AgentParser) -> None:
    # Not in crawler-user-agents, but ua-parser's device rules call it a spider.
    ua = "Mozilla/5.0 (compatible; FooSearchBot-Experimental/0.1; +https://example.org/bot)"
    assert not _Matcher(_bot_patterns())(ua)
    assert agents.parse(ua).bot == "spider"


def _crawler_instances() -> list[str]:
    data = crawleruseragents.CRAWLER_USER_AGENTS_DATA
    return [ua for entry in data for ua in entry.get("instances", [])]


def test_listed_crawler_instances_are_bots(agents: AgentParser) -> None:
    instances = _crawler_instances()
    assert len(instances) > 1000
    missed = [ua for ua in instances if agents.parse(ua).bot is None]
    assert len(missed) <= 0.05 * len(instances), missed[:10]


def test_python_fallback_matcher_agrees_with_native() -> None:
    native = _Matcher(_bot_patterns())
    fallback = _Matcher(_bot_patterns(), native=False)
    sample = _crawler_instances()[::7] + list(UAS.values())
    assert [native(ua) for ua in sample] == [fallback(ua) for ua in sample]


def test_parse_is_cached_per_string(agents: AgentParser) -> None:
    ua = UAS["chrome-windows"]
    assert agents.parse(ua) is agents.parse(ua)


def test_oversized_user_agent_still_parses(agents: AgentParser) -> None:
    ua = UAS["chrome-windows"] + " " + "x" * 2000
    assert agents.parse(ua).browser == "Chrome"


# --- countries ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def countries() -> CountryLookup:
    return CountryLookup()


@pytest.mark.parametrize(
    ("ip", "timezone", "expected"),
    [
        ("81.2.69.142", None, "GB"),
        ("8.8.8.8", "Asia/Tokyo", "US"),  # The IP wins over the zone.
        ("2001:4860:4860::8888", None, "US"),
        ("2a00:1450:4001:82a::200e", None, "DE"),
        ("::ffff:8.8.8.8", None, "US"),  # IPv4 seen through a dual-stack socket
        ("10.0.0.1", "Europe/Berlin", "DE"),
        ("192.168.1.20", None, None),
        ("127.0.0.1", "America/New_York", "US"),
        ("::1", "Europe/Paris", "FR"),
        ("100.64.0.1", "Asia/Tokyo", "JP"),  # carrier-grade NAT
        ("garbage", "Europe/Berlin", "DE"),
        ("1.2.3", "Europe/Vaduz", "LI"),  # inet_aton would accept this; we do not
        ("", None, None),
        ("10.0.0.1", "Asia/Calcutta", "IN"),  # old names still reported by some browsers
        ("10.0.0.1", "Europe/Kiev", "UA"),
        ("10.0.0.1", "US/Pacific", "US"),
        ("10.0.0.1", "UTC", None),
        ("10.0.0.1", "Not/AZone", None),
    ],
)
def test_country(
    countries: CountryLookup, ip: str, timezone: str | None, expected: str | None
) -> None:
    assert countries.country(ip, timezone) == expected


def test_zone_tab_covers_every_country_zone() -> None:
    zones = zone_countries()
    assert zones["Europe/Berlin"] == "DE"
    assert zones["America/Sao_Paulo"] == "BR"
    assert all(re.fullmatch(r"[A-Z]{2}", code) for code in zones.values())
    assert len(set(zones.values())) > 240


def _mmdb_v4(networks: dict[str, str]) -> bytes:
    """A minimal IPv4 MaxMind DB (24-bit records) mapping networks to country codes.

    Follows the MaxMind DB format spec; no writer is needed as a dependency.
    """

    def ctrl(kind: int, size: int) -> bytes:
        return bytes([kind << 5 | size]) if kind <= 7 else bytes([size, kind - 7])

    def uint(kind: int, value: int) -> bytes:  # 5 = uint16, 6 = uint32, 9 = uint64
        raw = value.to_bytes(8, "big").lstrip(b"\0")
        return ctrl(kind, len(raw)) + raw

    def text(value: str) -> bytes:
        return ctrl(2, len(value)) + value.encode()

    def mapping(items: dict[str, bytes]) -> bytes:
        return ctrl(7, len(items)) + b"".join(text(k) + v for k, v in items.items())

    # Search tree: each node holds two records (bit 0, bit 1): a node index, a country
    # code (data), or None (no data).
    nodes: list[list[int | str | None]] = [[None, None]]
    for cidr, code in networks.items():
        net = ipaddress.IPv4Network(cidr)
        node = 0
        for depth in range(net.prefixlen):
            bit = int(net.network_address) >> (31 - depth) & 1
            child = nodes[node][bit]
            if depth == net.prefixlen - 1:
                nodes[node][bit] = code
            elif isinstance(child, int):
                node = child
            else:
                nodes.append([None, None])
                nodes[node][bit] = node = len(nodes) - 1
    data = b""
    offsets: dict[str, int] = {}
    for code in sorted(set(networks.values())):
        offsets[code] = len(data)
        data += mapping({"country": mapping({"iso_code": text(code)})})
    count = len(nodes)
    tree = b""
    for pair in nodes:
        for record in pair:
            if isinstance(record, int):
                value = record
            elif record is None:
                value = count
            else:
                value = count + 16 + offsets[record]
            tree += value.to_bytes(3, "big")
    meta = mapping(
        {
            "binary_format_major_version": uint(5, 2),
            "binary_format_minor_version": uint(5, 0),
            "build_epoch": uint(9, 1_700_000_000),
            "database_type": text("Test-Country"),
            "description": mapping({"en": text("test")}),
            "ip_version": uint(5, 4),
            "languages": ctrl(11, 1) + text("en"),
            "node_count": uint(6, count),
            "record_size": uint(5, 24),
        }
    )
    return tree + b"\0" * 16 + data + b"\xab\xcd\xefMaxMind.com" + meta


def test_operator_maxmind_file_is_used_instead(tmp_path: Path) -> None:
    mmdb = tmp_path / "country.mmdb"
    mmdb.write_bytes(_mmdb_v4({"81.0.0.0/8": "FR", "8.8.8.0/24": "CH"}))
    lookup = CountryLookup(mmdb)
    assert lookup.country("81.2.69.142", None) == "FR"  # geoip2fast would say GB
    assert lookup.country("8.8.8.8", None) == "CH"
    assert lookup.country("9.9.9.9", "Europe/Rome") == "IT"  # not in the file
    # An IPv6 address against an IPv4-only file falls back to the zone.
    assert lookup.country("2001:4860:4860::8888", "Europe/Oslo") == "NO"
    assert lookup.country("10.0.0.1", None) is None


# --- referrers ---------------------------------------------------------------------------

SITE = frozenset({"example.com", "www.example.com"})


@pytest.fixture(scope="module")
def referrers() -> Referrers:
    return Referrers()


@pytest.mark.parametrize(
    ("url", "referrer", "source"),
    [
        ("https://www.google.com/", "google.com", "Google"),
        ("https://www.google.co.uk/search?q=secret+terms", "google.co.uk/search", "Google"),
        ("https://www.bing.com/search?q=x", "bing.com/search", "Bing"),
        ("https://duckduckgo.com/", "duckduckgo.com", "DuckDuckGo"),
        ("https://news.ycombinator.com/item?id=1", "news.ycombinator.com/item", "Hacker News"),
        ("https://old.reddit.com/r/python/", "old.reddit.com/r/python/", "Reddit"),
        ("https://t.co/AbC123", "t.co/AbC123", "X"),
        ("https://x.com/someone", "x.com/someone", "X"),
        ("https://twitter.com/someone", "twitter.com/someone", "X"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Fa.b", "l.facebook.com/l.php", "Facebook"),
        ("https://www.linkedin.com/feed/", "linkedin.com/feed/", "LinkedIn"),
        ("https://github.com/org/repo", "github.com/org/repo", "GitHub"),
        ("https://chatgpt.com/", "chatgpt.com", "ChatGPT"),
        ("https://chat.openai.com/", "chat.openai.com", "ChatGPT"),
        ("https://www.perplexity.ai/", "perplexity.ai", "Perplexity"),
        ("https://gemini.google.com/app", "gemini.google.com/app", "Gemini"),
        ("https://mail.google.com/mail/u/0/", "mail.google.com/mail/u/0/", "Gmail"),
        ("https://bsky.app/profile/a", "bsky.app/profile/a", "Bluesky"),
        ("https://www.youtube.com/", "youtube.com", "YouTube"),
        ("android-app://com.google.android.gm/", "com.google.android.gm", "Gmail"),
        (
            "android-app://com.google.android.googlequicksearchbox/",
            "com.google.android.googlequicksearchbox",
            "Google",
        ),
        ("https://www.someblog.net/post?utm=1#top", "someblog.net/post", "someblog.net"),
        ("https://SomeBlog.NET:8443/", "someblog.net", "someblog.net"),
        # Secrets in the referring page's path are masked like our own paths.
        ("https://forum.test/u/jane@doe.com/profile", "forum.test/u/:email/profile", "forum.test"),
        ("https://d.test/d/550e8400-e29b-41d4-a716-446655440000", "d.test/d/:id", "d.test"),
        # Look-alikes of the site are not the site.
        ("https://example.com.evil.test/", "example.com.evil.test", "example.com.evil.test"),
        ("https://notexample.com/", "notexample.com", "notexample.com"),
    ],
)
def test_referrer_sources(referrers: Referrers, url: str, referrer: str, source: str) -> None:
    got = referrers.classify(url, SITE)
    assert (got.referrer, got.source, got.spam) == (referrer, source, False)


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://example.com/pricing",
        "https://www.example.com/",
        "https://blog.example.com/post",  # a subdomain of the site
        "http://EXAMPLE.com./",
        "android-app://com.unknown.thing/",
        "file:///home/me/page.html",
        "about:blank",
        "chrome-extension://abcdef/page.html",
        "not a url",
        "https://[::1/",
    ],
)
def test_no_referrer(referrers: Referrers, url: str | None) -> None:
    got = referrers.classify(url, SITE)
    assert (got.referrer, got.source, got.spam) == (None, None, False)


def test_site_hosts_given_with_www_cover_the_bare_domain(referrers: Referrers) -> None:
    assert referrers.classify("https://shop.test/a", frozenset({"www.shop.test"})).source is None


def test_referrer_spam(referrers: Referrers) -> None:
    assert len(spam_hosts()) > 2000
    assert referrers.classify("https://semalt.com/", SITE).spam
    assert referrers.classify("https://www.semalt.com/x", SITE).spam
    assert referrers.classify("https://crawler.semalt.com/", SITE).spam
    assert not referrers.classify("https://notsemalt.com/", SITE).spam
    assert not referrers.classify("https://www.google.com/", SITE).spam
    assert not Referrers(spam_filter=False).classify("https://semalt.com/", SITE).spam


def test_every_overlay_entry_resolves_to_its_name() -> None:
    overlay_file = Path(__file__).parent.parent / "collector" / "data" / "referrers-overlay.json"
    overlay = json.loads(overlay_file.read_text(encoding="utf-8"))
    names = source_names()
    referrers = Referrers()
    for by_name in overlay.values():
        for name, conf in by_name.items():
            for domain in conf["domains"]:
                assert names[domain] == name
                url = domain if "://" in domain else f"https://{domain}/"
                assert referrers.classify(url, SITE).source == name, domain


# --- paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("", "/"),
        ("/", "/"),
        ("/blog/how-to-build-2024-guide", "/blog/how-to-build-2024-guide"),
        ("/How-To-Build-2024-Guide", "/How-To-Build-2024-Guide"),
        ("/2024/01/15/launch", "/2024/01/15/launch"),
        ("/2024-01-15-launch", "/2024-01-15-launch"),
        ("/season-2023-2024", "/season-2023-2024"),
        ("/page/2", "/page/2"),
        ("/docs/getElementById", "/docs/getElementById"),
        ("/en-US/docs/Web/JavaScript", "/en-US/docs/Web/JavaScript"),
        ("/static/app.3f9a2c1b.js", "/static/app.3f9a2c1b.js"),
        ("/users/jane.doe@example.com/settings", "/users/:email/settings"),
        ("/u/jane%40example.com", "/u/:email"),
        ("/u/jane%2540example.com", "/u/:email"),  # double-encoded
        ("/order/123456", "/order/:id"),
        ("/card/4111 1111 1111 1111", "/card/:id"),
        ("/card/4111-1111-1111-1111", "/card/:id"),
        ("/card/4111%201111%201111%201111", "/card/:id"),
        ("/call/555-123-4567", "/call/:id"),
        ("/d/550e8400-e29b-41d4-a716-446655440000/edit", "/d/:id/edit"),
        ("/obj/507f1f77bcf86cd799439011", "/obj/:id"),
        ("/static/main.3f9a2c1b7d6e5f40.js", "/static/:id"),
        ("/reset/eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "/reset/:id"),
        ("/invite/Xk9fQ2mZ7pL4vB8nR3tY", "/invite/:id"),
        ("/t/k3j4h5g6f7d8s9a0q1w2", "/t/:id"),
        ("/shop;jsessionid=1A2B3C4D5E6F7G8H9I0J", "/:id"),
        ("/caf%C3%A9/men%C3%BC", "/café/menü"),
        ("/café", "/café"),
        ("/a%3Fb/c%23d/e%2Ff", "/a%3Fb/c%23d/e%2Ff"),
        ("/with space", "/with space"),
        ("/Top%201000%20films", "/Top 1000 films"),
        ("/a%0Ab", "/a%0Ab"),
        ("/100%25", "/100%25"),
        ("relative/path", "/relative/path"),
        ("/a?b=1", "/a"),
    ],
)
def test_redact_path(path: str, expected: str) -> None:
    assert redact_path(path) == expected


def test_parse_page_url_fields() -> None:
    page = parse_page_url(
        "https://Example.com/blog/post?utm_source=newsletter&utm_medium=email"
        "&utm_campaign=spring&utm_term=shoes&utm_content=cta&token=SECRET#comments"
    )
    assert page.hostname == "example.com"
    assert page.path == "/blog/post"
    assert (page.utm_source, page.utm_medium) == ("newsletter", "email")
    assert page.utm_campaign == "spring"
    assert (page.utm_term, page.utm_content) == ("shoes", "cta")


@pytest.mark.parametrize(
    ("query", "source"),
    [
        ("ref=producthunt", "producthunt"),
        ("source=hn", "hn"),
        ("utm_source=twitter&ref=producthunt", "twitter"),
        ("UTM_SOURCE=upper", "upper"),
        ("utm_source=&ref=fallback", "fallback"),
        ("utm_source=%00%1fbad%7f%20value%20", "bad value"),
        ("utm_source=jane@doe.com", ":email"),
        ("x=1", None),
    ],
)
def test_campaign_source(query: str, source: str | None) -> None:
    assert parse_page_url(f"https://example.com/?{query}").utm_source == source


def test_campaign_values_are_capped() -> None:
    page = parse_page_url("https://example.com/?utm_campaign=" + "a" * 5000)
    assert page.utm_campaign == "a" * UTM_MAX


@pytest.mark.parametrize(
    ("url", "hash_mode", "path"),
    [
        ("https://example.com/app#/users/123456?tab=1", True, "/app#/users/:id"),
        ("https://example.com/#!/settings", True, "/#/settings"),
        ("https://example.com/page#section-2", True, "/page"),  # an anchor, not a route
        ("https://example.com/app#/users/123456", False, "/app"),
    ],
)
def test_hash_routes(url: str, hash_mode: bool, path: str) -> None:
    assert parse_page_url(url, hash_mode=hash_mode).path == path


@pytest.mark.parametrize(
    ("url", "hostname", "path"),
    [
        # Plausible takes any scheme but data: (apps, extensions), with the host as hostname.
        ("app://com.example.app/home", "com.example.app", "/home"),
        ("ftp://example.com/a", "example.com", "/a"),
        ("chrome-extension://abcdefghijklmnop/popup.html", "abcdefghijklmnop", "/popup.html"),
        ("https://EXAMPLE.com./x", "example.com", "/x"),
        ("https://bücher.example/", "xn--bcher-kva.example", "/"),
        ("http://[2001:db8::1]:8080/a", "2001:db8::1", "/a"),
    ],
)
def test_other_schemes_and_hosts(url: str, hostname: str, path: str) -> None:
    page = parse_page_url(url)
    assert (page.hostname, page.path) == (hostname, path)


@pytest.mark.parametrize(
    ("segment", "stored"),
    [
        ("a\u202eb", "/a%E2%80%AEb"),  # right-to-left override
        ("x\u2066y\u2069", "/x%E2%81%A6y%E2%81%A9"),  # isolates
        ("%E2%80%AEcod.exe", "/%E2%80%AEcod.exe"),  # sent percent-encoded: stays encoded
        ("\u202d", "/%E2%80%AD"),  # short segments too
    ],
)
def test_bidi_controls_in_paths_are_neutralised(segment: str, stored: str) -> None:
    path = parse_page_url(f"https://example.com/{segment}").path
    assert path == stored
    assert not any(ch in path for ch in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.mark.parametrize(
    "url",
    [
        "data://example.com/a",
        "javascript://example.com/%0aalert(1)",
        "javascript:alert(1)",
        "mailto:a@b.c",
        "example.com/a",
        "",
        "http:///x",
        "https://[::1/",
        "https://exa<mple.com/",
        "https://a..b/",
        "https://" + "a" * 64 + ".com/",
    ],
)
def test_rejected_page_urls(url: str) -> None:
    with pytest.raises(ValueError):
        parse_page_url(url)


EMAIL = re.compile(r"[^\s@/]+@[^\s@/]+\.[^\s@/]+")
LONG_DIGITS = re.compile(r"\d{6,}|\d(?:[ \-]?\d){8,}")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)

SECRETS = st.one_of(
    st.emails(),
    st.from_regex(r"\A\d{6,20}\Z"),
    st.from_regex(r"\A\d{4}[ \-]\d{4}[ \-]\d{4}[ \-]\d{4}\Z"),
    st.uuids().map(str),
)
SEGMENT_TEXT = st.text(alphabet=st.sampled_from("abcXYZ019-_.~@% ?#/:;=+é\x00\n"), max_size=24)


def _assert_clean(path: str) -> None:
    assert path.startswith("/")
    assert "?" not in path
    for text in (path, unquote(path)):
        assert not EMAIL.search(text), path
        assert not LONG_DIGITS.search(text), path
        assert not UUID.search(text), path


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(SEGMENT_TEXT, SECRETS), max_size=6), st.booleans())
def test_redacted_paths_leak_nothing(segments: list[str], encode: bool) -> None:
    raw = "/".join(quote(s, safe="") if encode else s for s in segments)
    _assert_clean(redact_path(raw))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.booleans())
def test_any_page_url_gives_a_clean_path(tail: str, hash_mode: bool) -> None:
    try:
        page = parse_page_url("https://example.com/" + tail, hash_mode=hash_mode)
    except ValueError:
        return
    _assert_clean(page.path.replace("#", "/"))


@settings(max_examples=200, deadline=None)
@given(st.lists(SECRETS, min_size=1, max_size=3))
def test_secrets_in_hash_routes_are_masked(values: list[str]) -> None:
    url = "https://example.com/app#/" + "/".join(quote(v, safe="@") for v in values)
    path = parse_page_url(url, hash_mode=True).path
    assert path.startswith("/app#/")
    _assert_clean(path.replace("#", "/"))
