"""User agent → browser, OS and device class, or the reason it is a bot.

Bots are recognised from maintained data: the crawler-user-agents patterns, ua-parser's
"Spider" device class, plus a tiny list of headless and automation browsers that the
crawler list leaves out. Results are cached per user-agent string; nothing here logs or
keeps the string itself.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import crawleruseragents
from ua_parser import BestAvailableResolver, Domain, load_lazy_builtins

__all__ = ["Agent", "AgentParser"]


@dataclass(frozen=True, slots=True)
class Agent:
    browser: str | None
    browser_version: str | None  # major version only, e.g. "120"
    os: str | None
    os_version: str | None  # major, or major.minor for macOS 10.x, e.g. "14" or "10.15"
    device: str | None  # "desktop" | "mobile" | "tablet"
    bot: str | None  # None for humans, else a short drop reason


# Headless and automation browsers missing from crawler-user-agents. Checked first, so a
# match reports "headless" even where the crawler list also knows it.
HEADLESS_PATTERNS = (
    "Headless",  # HeadlessChrome, and Firefox/WebKit builds that say so
    "PhantomJS",
    "SlimerJS",
    "HtmlUnit",
    "jsdom/",
    "Cypress/",
    "Electron/",  # Nightmare and other Electron-driven automation
    "Nightmare",
    r"Zombie\.js",
)

_MIN_UA_LENGTH = 20  # Real browsers send 60+ characters.
_MAX_CACHED_UA = 512  # Longer strings skip the cache so junk cannot bloat it.

_BROWSER_NAMES = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari (in-app)",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
_OS_NAMES = {"Mac OS X": "macOS"}

# Big screens ua-parser files under Android tablets; counted as desktop.
_TV = re.compile(r"Android TV|GoogleTV|SmartTV|SMART-TV|BRAVIA|AFT[A-Z]|CrKey|HbbTV|Web0S")
_MOBILE = re.compile(r"Mobi|iPhone|iPod|Windows Phone|Opera Mini|BlackBerry|Symbian|IEMobile")
_TABLET = re.compile(r"Tablet|iPad|Silk/|Kindle|PlayBook")


class _Matcher:
    """Many regexes compiled once into one matcher; returns the label of the first hit.

    ua-parser's native extractor (the Rust regex crate, prefiltered) checks the ~1,500
    crawler patterns at several hundred thousand UAs/s. Python's re on one giant
    alternation manages about 500/s, so it is only a fallback, in chunks.
    """

    def __init__(self, patterns: Iterable[tuple[str, str]], native: bool = True) -> None:
        pairs = list(patterns)
        self._labels = [label for _, label in pairs]
        self._native: Callable[[str], object] | None = None
        self._chunks: list[tuple[re.Pattern[str], list[tuple[str, str]]]] = []
        rs = None
        if native:
            with contextlib.suppress(ImportError):
                rs = importlib.import_module("ua_parser_rs")
        if rs is not None:
            extractor = rs.UserAgentExtractor(
                (pattern, str(i), None, None, None, None) for i, (pattern, _) in enumerate(pairs)
            )
            self._native = extractor.extract
        else:
            for start in range(0, len(pairs), 25):
                chunk = pairs[start : start + 25]
                self._chunks.append((re.compile("|".join(f"(?:{p})" for p, _ in chunk)), chunk))

    def __call__(self, ua: str) -> str | None:
        if self._native is not None:
            hit = self._native(ua)
            return None if hit is None else self._labels[int(getattr(hit, "family", 0))]
        for regex, chunk in self._chunks:
            if regex.search(ua):
                # Rare path: find which pattern matched, for its label.
                return next(label for pattern, label in chunk if re.search(pattern, ua))
        return None


def _bot_patterns() -> list[tuple[str, str]]:
    patterns = [(p, "headless") for p in HEADLESS_PATTERNS]
    crawlers = crawleruseragents.CRAWLER_USER_AGENTS_DATA
    patterns += [(entry["pattern"], "crawler") for entry in crawlers]
    return patterns


def _device(ua: str, family: str | None, brand: str | None, os_family: str | None) -> str:
    if _TV.search(ua):
        return "desktop"
    if family in ("iPad", "Kindle", "Generic Tablet") or brand == "Generic_Android_Tablet":
        return "tablet"
    if _TABLET.search(ua):
        return "tablet"
    if family in ("iPhone", "iPod", "Generic Smartphone", "Generic Feature Phone"):
        return "mobile"
    if _MOBILE.search(ua):
        return "mobile"
    if os_family == "Android":
        # Android browsers on tablets leave "Mobile" out of the UA.
        return "tablet"
    return "desktop"


def _os_version(family: str, major: str | None, minor: str | None) -> str | None:
    if major is None:
        return None
    if family == "Mac OS X" and major == "10" and minor is not None:
        return f"{major}.{minor}"
    return major


class AgentParser:
    """Parses user agents into `Agent`s, LRU-cached per UA string."""

    def __init__(self, cache_size: int = 10_000) -> None:
        self._resolver = BestAvailableResolver(load_lazy_builtins())
        self._bots = _Matcher(_bot_patterns())
        self._cached: Callable[[str], Agent] = lru_cache(maxsize=cache_size)(self._parse)

    def parse(self, ua: str) -> Agent:
        if len(ua) > _MAX_CACHED_UA:
            return self._parse(ua)
        return self._cached(ua)

    def _parse(self, ua: str) -> Agent:
        reason = self._bots(ua)
        if reason is not None:
            return _BOTS[reason]
        if len(ua.strip()) < _MIN_UA_LENGTH:
            return _BOTS["empty-ua"]
        result = self._resolver(ua, Domain.ALL)
        device = result.device
        if device is not None and device.family == "Spider":
            return _BOTS["spider"]
        browser = result.user_agent
        if browser is not None and browser.family == "Other":
            browser = None
        os = result.os
        if os is not None and os.family == "Other":
            os = None
        return Agent(
            browser=None if browser is None else _BROWSER_NAMES.get(browser.family, browser.family),
            browser_version=None if browser is None else browser.major,
            os=None if os is None else _OS_NAMES.get(os.family, os.family),
            os_version=None if os is None else _os_version(os.family, os.major, os.minor),
            device=_device(
                ua,
                None if device is None else device.family,
                None if device is None else device.brand,
                None if os is None else os.family,
            ),
            bot=None,
        )


_BOTS = {
    reason: Agent(None, None, None, None, None, bot=reason)
    for reason in ("empty-ua", "headless", "crawler", "spider")
}
