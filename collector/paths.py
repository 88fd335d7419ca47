"""Page URLs → a path that is safe to keep, plus the campaign fields worth keeping.

Tracked URLs must not leak secrets: the query string goes (apart from the UTM/ref
fields), and any path segment that looks like an email, an id, a card or account
number or a token is replaced by `:email` or `:id`. The replacement covers the whole
segment, so a secret never survives half-masked.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlsplit

__all__ = ["UTM_MAX", "PageUrl", "parse_page_url", "redact_path", "valid_hostname"]

UTM_MAX = 200  # Characters kept of each campaign value.


@dataclass(frozen=True, slots=True)
class PageUrl:
    hostname: str | None
    path: str
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None
    utm_term: str | None
    utm_content: str | None


_EMAIL = re.compile(r"[^\s@/]+@[^\s@/]+\.[^\s@/]+")
_ID = re.compile(
    r"\d{6,}"  # long digit runs: account, order, card numbers
    # Spaced or dashed groups need more digits so "2023-2024" or "top-10-2024" survive,
    # while phone, social-security and card numbers (9+ digits) do not.
    r"|\d(?:[ \-]?\d){8,}"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # UUID
    r"|[0-9a-f]{16,}"  # long hex: hashes, object ids, session keys
    r"|eyJ[\w-]{4,}\.[\w-]{4,}",  # JWT
    re.I,
)
_SHORT = 5  # Nothing above fits in fewer characters; the shortest email is "a@b.c".
# Candidate tokens: runs of the base64/base64url alphabet.
_TOKENISH = re.compile(r"[A-Za-z0-9_+=/\-]{16,}")
_ALNUM_RUN = re.compile(r"[A-Za-z0-9]{16,}")
_DIGIT_GROUP = re.compile(r"\d+")
# Decoded characters escaped again to keep the path unambiguous. Spaces stay readable.
# Bidi embeddings, overrides and isolates are escaped too: shown raw, they reorder the text
# around them in reports and CSV viewers ("Trojan Source").
_BIDI = "\u202a-\u202e\u2066-\u2069"
_REQUOTE = re.compile(f"[%?#/\\x00-\\x1f\\x7f-\\x9f{_BIDI}]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _class_changes(run: str) -> tuple[int, int]:
    """Class changes (lower, upper, digit) between adjacent alphanumerics, and pairs seen.

    Random tokens change class on about half their pairs, slugs and words on few.
    Upper→lower is not counted: that is just a capitalised word ("CamelCase").
    """
    changes = pairs = 0
    prev = 0
    for ch in run:
        if ch.isdigit():
            cur = 1
        elif ch.isupper():
            cur = 2
        elif ch.isalpha():
            cur = 3
        else:
            prev = 0
            continue
        if prev:
            pairs += 1
            changes += prev != cur and not (prev == 2 and cur == 3)
        prev = cur
    return changes, pairs


def _tokenish(text: str) -> bool:
    for match in _TOKENISH.finditer(text):
        changes, pairs = _class_changes(match.group())
        if pairs >= 12 and changes * 4 >= pairs:
            return True
    # Lowercase base36 ids change class less often, but scatter their digits.
    return any(len(_DIGIT_GROUP.findall(m.group())) >= 3 for m in _ALNUM_RUN.finditer(text))


def _mask(text: str) -> str | None:
    if "@" in text and _EMAIL.search(text):
        return ":email"
    if _ID.search(text) or (len(text) >= 16 and _tokenish(text)):
        return ":id"
    return None


def _escape(match: re.Match[str]) -> str:
    return quote(match.group(), safe="")


def _redact_segment(segment: str) -> str:
    if len(segment) < _SHORT and "%" not in segment:
        return segment if segment.isalnum() or not segment else _REQUOTE.sub(_escape, segment)
    decoded = unquote(segment, errors="replace")
    # Keep the readable decoded form, escaping only what would change the path's shape.
    out = _REQUOTE.sub(_escape, decoded)
    # Check every form a reader might see: the output, and each level of decoding, so
    # a double-encoded secret ("%2540") or one formed by our own escapes still goes.
    forms = [out, decoded] if out != decoded else [out]
    for _ in range(8):
        deeper = unquote(forms[-1], errors="replace")
        if deeper == forms[-1]:
            break
        forms.append(deeper)
    masks = {_mask(form) for form in forms if len(form) >= _SHORT}
    if ":email" in masks:
        return ":email"
    return ":id" if ":id" in masks else out


@lru_cache(maxsize=20_000)
def redact_path(path: str) -> str:
    """A normalized path with secret-looking segments masked; always starts with "/"."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    segments = path.split("/")
    if segments[0]:
        segments.insert(0, "")
    out = "/".join(_redact_segment(s) for s in segments)
    return out if out.startswith("/") else "/" + out


def _clean_value(value: str) -> str | None:
    value = _CONTROL.sub("", value).strip()[:UTM_MAX].strip()
    if not value:
        return None
    if "@" in value and _EMAIL.search(value):
        return ":email"
    return value


def _fragment_route(fragment: str) -> str | None:
    # Only "#/route" and "#!/route" are routes; "#section" is an in-page anchor.
    route = fragment.removeprefix("!")
    if not route.startswith("/"):
        return None
    return route.split("?", 1)[0]


_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# Plausible refuses only data: URLs; javascript: and blob: ones never have a host anyway.
_REFUSED_SCHEMES = frozenset({"data", "javascript"})


def valid_hostname(host: str) -> str | None:
    """The host in ASCII (IDNA for Unicode names), or None when it is not a host name."""
    host = host.removesuffix(".")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    return host if len(host) <= 253 and _HOSTNAME.fullmatch(host) else None


@lru_cache(maxsize=20_000)
def parse_page_url(url: str, hash_mode: bool = False) -> PageUrl:
    """Split a page URL into hostname, redacted path and campaign fields.

    Any scheme with a host is a page (apps send `app://`, extensions their own); the fragment
    is kept only in hash mode. Raises ValueError with a short reason otherwise.
    """
    try:
        parts = urlsplit(url.strip())
        hostname = parts.hostname
    except ValueError:
        raise ValueError("unparsable URL") from None
    if not parts.scheme or parts.scheme.lower() in _REFUSED_SCHEMES:
        raise ValueError("not a page URL scheme")
    if not hostname:
        raise ValueError("URL has no host")
    hostname = valid_hostname(hostname)
    if hostname is None:
        raise ValueError("the host is not a valid host name")
    path = redact_path(parts.path or "/")
    if hash_mode and parts.fragment:
        route = _fragment_route(parts.fragment)
        if route is not None:
            path = path + "#" + redact_path(route)

    fields: dict[str, str] = {}
    if parts.query:
        for key, value in parse_qsl(parts.query, errors="replace"):
            key = key.lower()
            if key in _QUERY_KEYS and key not in fields:
                cleaned = _clean_value(value)
                if cleaned is not None:
                    fields[key] = cleaned
    return PageUrl(
        hostname=hostname,
        path=path,
        utm_source=fields.get("utm_source") or fields.get("ref") or fields.get("source"),
        utm_medium=fields.get("utm_medium"),
        utm_campaign=fields.get("utm_campaign"),
        utm_term=fields.get("utm_term"),
        utm_content=fields.get("utm_content"),
    )


_QUERY_KEYS = frozenset(
    {"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref", "source"}
)
