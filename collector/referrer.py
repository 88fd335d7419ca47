"""Referrer URL → where the visit came from, and whether it is referrer spam.

Names come from Snowplow's `referers.json` (shipped by referer-parser) with a small
overlay in `collector/data/referrers-overlay.json` for sources newer than 2016; the
overlay wins for any domain both list. Spam hosts come from Matomo's referrer-spam
list (`collector/data/referrer-spam.txt`). Both match a host or any parent domain, so
`l.facebook.com` is Facebook and `x.semalt.com` is spam. See `collector/data/README.md`.
"""

from __future__ import annotations

import importlib.resources
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from collector.paths import redact_path
from footfall.contract import MAX_REFERRER

__all__ = ["Referral", "Referrers"]

_APP_SCHEME = "android-app"  # Android apps send android-app://<package>/ as referrer.


@dataclass(frozen=True, slots=True)
class Referral:
    referrer: str | None  # host without "www." + redacted path; no scheme, query or fragment
    source: str | None  # readable name ("Google", "Hacker News"), else the host
    spam: bool


_NONE = Referral(referrer=None, source=None, spam=False)


class Referrers:
    """Classifies referrer URLs; results are cached per referrer host."""

    def __init__(self, spam_filter: bool = True, cache_size: int = 10_000) -> None:
        self._names = source_names()
        self._spam = spam_hosts() if spam_filter else frozenset()
        self._host: Callable[[str], tuple[str, bool]] = lru_cache(maxsize=cache_size)(
            self._classify_host
        )

    def classify(self, referrer_url: str | None, site_hosts: frozenset[str]) -> Referral:
        """Where a visit came from; the site's own hosts and subdomains give no referrer."""
        if not referrer_url:
            return _NONE
        try:
            parts = urlsplit(referrer_url.strip())
            host = parts.hostname
        except ValueError:
            return _NONE
        if not host:
            return _NONE
        host = host.removesuffix(".").removeprefix("www.")
        scheme = parts.scheme.lower()
        if scheme == _APP_SCHEME:
            name = self._names.get(f"{_APP_SCHEME}://{host}")
            return _NONE if name is None else Referral(referrer=host, source=name, spam=False)
        if scheme not in ("http", "https") or _is_own(host, _own_hosts(site_hosts)):
            return _NONE
        source, spam = self._host(host)
        path = redact_path(parts.path) if parts.path not in ("", "/") else ""
        return Referral(referrer=(host + path)[:MAX_REFERRER], source=source, spam=spam)

    def _classify_host(self, host: str) -> tuple[str, bool]:
        spam = any(suffix in self._spam for suffix in _suffixes(host))
        for suffix in _suffixes(host):
            name = self._names.get(suffix)
            if name is not None:
                return name, spam
        return host, spam


def _suffixes(host: str) -> Iterator[str]:
    """The host, then each parent domain: a.b.c → a.b.c, b.c, c."""
    yield host
    start = host.find(".")
    while start != -1:
        yield host[start + 1 :]
        start = host.find(".", start + 1)


@lru_cache(maxsize=256)
def _own_hosts(site_hosts: frozenset[str]) -> tuple[str, ...]:
    return tuple({h.strip().lower().removesuffix(".").removeprefix("www.") for h in site_hosts})


def _is_own(host: str, own: tuple[str, ...]) -> bool:
    return any(host == o or host.endswith("." + o) for o in own if o)


def _read_sources(text: str, names: dict[str, str]) -> None:
    for conf_by_name in json.loads(text).values():
        for name, conf in conf_by_name.items():
            for domain in conf["domains"]:
                # Path-specific entries (google.com/imgres) are left out: lookups are per host.
                if "/" not in domain.removeprefix(f"{_APP_SCHEME}://"):
                    names[domain.lower().removeprefix("www.")] = name


@lru_cache(maxsize=1)
def source_names() -> dict[str, str]:
    """Referrer host (without "www.") → readable source name."""
    names: dict[str, str] = {}
    base = importlib.resources.files("referer_parser").joinpath("data", "referers.json")
    _read_sources(base.read_text(encoding="utf-8"), names)
    overlay = importlib.resources.files("collector").joinpath("data", "referrers-overlay.json")
    _read_sources(overlay.read_text(encoding="utf-8"), names)
    return names


@lru_cache(maxsize=1)
def spam_hosts() -> frozenset[str]:
    """Referrer-spam domains; each also covers its subdomains."""
    text = importlib.resources.files("collector").joinpath("data", "referrer-spam.txt")
    lines = text.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("#")
    )
