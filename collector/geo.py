"""Client IP (or, failing that, the browser's time zone) → ISO 3166 country code.

IP data: geoip2fast's bundled GeoLite2-derived file with IPv4 and IPv6, or an
operator-provided MaxMind Country database instead. When the IP gives nothing
(private, reserved, unknown, garbage), the browser's IANA time zone is mapped to its
country through tzdata's `zone.tab`. IPs are only held in an in-memory LRU cache.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import io
import ipaddress
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import geoip2fast
import maxminddb
from geoip2fast import GeoIP2Fast

__all__ = ["CountryLookup", "zone_countries"]

# The IPv6 file holds the IPv4 networks too; the default geoip2fast.dat.gz is IPv4 only.
_BUNDLED_FILE = "geoip2fast-ipv6.dat.gz"
_MAX_IP_LENGTH = 64  # Longest IPv6 text with a scope id stays far below this.


class CountryLookup:
    """Country of a visitor, from the IP first and the time zone second."""

    def __init__(self, mmdb: Path | None = None, cache_size: int = 65_536) -> None:
        self._zones = zone_countries()
        self._by_ip: Callable[[str], str | None] = (
            _bundled_lookup() if mmdb is None else _MaxMindLookup(mmdb)
        )
        self._cached: Callable[[str], str | None] = lru_cache(maxsize=cache_size)(self._ip_country)

    def country(self, ip: str, timezone: str | None) -> str | None:
        """ISO alpha-2 (uppercase), or None when neither the IP nor the zone tells."""
        code = self._cached(ip) if len(ip) <= _MAX_IP_LENGTH else None
        if code is None and timezone:
            code = self._zones.get(timezone)
        return code

    def _ip_country(self, ip: str) -> str | None:
        address = _public_address(ip)
        if address is None:
            return None
        code = self._by_ip(address)
        if code is None or len(code) != 2 or not code.isascii() or not code.isalpha():
            return None
        return code.upper()


def _public_address(ip: str) -> str | None:
    """The canonical text of a globally routable address, else None."""
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # Dual-stack sockets report IPv4 clients as ::ffff:a.b.c.d.
        address = address.ipv4_mapped
    if not address.is_global:
        return None
    return str(address)


@lru_cache(maxsize=1)
def _bundled_lookup() -> Callable[[str], str | None]:
    # geoip2fast keeps its tables in module globals, so one instance per process is shared;
    # loading another data file elsewhere in the process would replace ours.
    data_file = Path(geoip2fast.__file__).parent / _BUNDLED_FILE
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        geoip = GeoIP2Fast(verbose=False, geoip2fast_data_file=str(data_file))
    if not geoip.ipv6:
        raise RuntimeError(f"{_BUNDLED_FILE} has no IPv6 networks")

    def lookup(address: str) -> str | None:
        result = geoip.lookup(address)
        if result.is_private:
            return None
        code: str = result.country_code
        return code or None

    return lookup


class _MaxMindLookup:
    """Reads GeoIP2/GeoLite2 Country (and look-alike) .mmdb files."""

    def __init__(self, path: Path) -> None:
        self._reader = maxminddb.open_database(str(path))

    def __call__(self, address: str) -> str | None:
        try:
            record = self._reader.get(address)
        except ValueError:  # e.g. an IPv6 address against an IPv4-only database
            return None
        if not isinstance(record, dict):
            return None
        for key in ("country", "registered_country"):
            value = record.get(key)
            if isinstance(value, dict):
                value = value.get("iso_code")
            if isinstance(value, str) and value:
                return value  # Some vendors store the code directly under "country".
        return None


@lru_cache(maxsize=1)
def zone_countries() -> dict[str, str]:
    """IANA time zone → country code, from tzdata's zone.tab plus its link names."""
    root = importlib.resources.files("tzdata").joinpath("zoneinfo")
    zones: dict[str, str] = {}
    for line in root.joinpath("zone.tab").read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or not line.strip():
            continue
        code, _coordinates, zone = line.split("\t")[:3]
        zones[zone] = code
    # Browsers may still report old names (Asia/Calcutta, Europe/Kiev, US/Eastern).
    for line in root.joinpath("tzdata.zi").read_text(encoding="utf-8").splitlines():
        if line.startswith("L "):
            _, target, link = line.split()
            if link not in zones and target in zones:
                zones[link] = zones[target]
    return zones
