"""Visitor ids: a keyed hash of site + IP + user agent under a salt that rotates daily.

Salt lifecycle (docs/privacy.md): one 32-byte random salt per UTC day, stored in
data_dir/salts/ with mode 0600 so a restart keeps continuity. Day D's salt stays through
day D+1 so a visit that spans UTC midnight keeps its id, and is deleted once D+1 ends.
Nothing else derived from the IP or user agent is kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

Clock = Callable[[], int]  # epoch milliseconds
SALT_BYTES = 32
_SALT_FILE = re.compile(r"^(\d{4}-\d{2}-\d{2})\.salt$")


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
DAY_MS = 86_400_000


def utc_day(epoch_ms: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + epoch_ms // DAY_MS)  # integer maths: hot path


class SaltStore:
    """Creates, loads and deletes the daily salts. Salts never leave this object."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._salts: dict[date, bytes] = {}

    def _path(self, day: date) -> Path:
        return self.folder / f"{day.isoformat()}.salt"

    def salt(self, day: date) -> bytes:
        cached = self._salts.get(day)
        if cached is not None:
            return cached
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o700)
        path = self._path(day)
        try:
            value = path.read_bytes()
        except FileNotFoundError:
            value = self._create(path)
        if len(value) != SALT_BYTES:  # a torn or foreign file: never hash with a short key
            path.unlink(missing_ok=True)
            value = self._create(path)
        self._salts[day] = value
        return value

    def _create(self, path: Path) -> bytes:
        value = secrets.token_bytes(SALT_BYTES)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, value)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() fails if another process won the race; then use its salt.
            os.link(tmp, path)
        except FileExistsError:
            value = path.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
        return value

    def existing(self, day: date) -> bytes | None:
        """The salt of `day` if it was ever made and is still kept; never creates one."""
        if day in self._salts:
            return self._salts[day]
        try:
            value = self._path(day).read_bytes()
        except FileNotFoundError:
            return None
        if len(value) != SALT_BYTES:
            return None
        self._salts[day] = value
        return value

    def expire(self, today: date) -> list[date]:
        """Delete every salt older than yesterday; returns the days deleted."""
        keep_from = today - timedelta(days=1)
        gone: list[date] = []
        for day in list(self._salts):
            if day < keep_from:
                del self._salts[day]
        if not self.folder.is_dir():
            return gone
        for entry in os.scandir(self.folder):
            match = _SALT_FILE.match(entry.name)
            if match:
                day = date.fromisoformat(match.group(1))
                if day < keep_from:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                    gone.append(day)
            elif ".tmp" in entry.name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
        return sorted(gone)


def hash_visitor(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    h = hashlib.blake2b(key=salt, digest_size=8)
    h.update(site.encode())
    h.update(b"\0")
    h.update(ip.encode())
    h.update(b"\0")
    h.update(user_agent.encode("utf-8", "replace"))
    return h.hexdigest()


# Ids remembered for midnight continuity at most (about 130 bytes each, so ~33 MB). Past
# it, a visitor first seen in the last window before midnight is not carried over: their
# visit splits in two at midnight, and nothing else changes.
MAX_CARRIED = 250_000


class VisitorIds:
    """Daily visitor ids, with visits that cross UTC midnight kept whole.

    Just after midnight, a visitor whose yesterday-id was active within the session
    timeout keeps that id, so the pipeline does not split their visit in two. Only that
    needs memory: hashed ids and times seen in the last timeout window before midnight
    (at most MAX_CARRIED), kept until one timeout after their last carried visit. During
    the rest of the day nothing is remembered.
    """

    def __init__(self, salts: SaltStore, clock: Clock, timeout_ms: int,
                 max_carried: int = MAX_CARRIED) -> None:
        self.salts = salts
        self.clock = clock
        self.timeout_ms = timeout_ms
        self.max_carried = max_carried
        self._day: date | None = None
        self._day_number = -1
        self._window_from = 0  # epoch ms where today's last timeout window starts
        self._recent: dict[str, int] = {}
        self._yesterday: dict[str, int] = {}

    def __len__(self) -> int:
        """Ids held in memory right now."""
        return len(self._recent) + len(self._yesterday)

    def _roll(self, now_ms: int) -> date:
        if self._day is not None and self._day_number == now_ms // DAY_MS:
            return self._day
        self._day_number = now_ms // DAY_MS
        self._window_from = (self._day_number + 1) * DAY_MS - self.timeout_ms
        today = utc_day(now_ms)
        if today != self._day:
            if self._day is not None and today - self._day == timedelta(days=1):
                self._yesterday = self._recent
            else:
                self._yesterday = {}
            self._recent = {}
            self._day = today
            self.salts.expire(today)
        return today

    def visitor(self, site: str, ip: str, user_agent: str, now_ms: int) -> str:
        today = self._roll(now_ms)
        if self._yesterday:  # empties itself one timeout after the last carried visit
            old_salt = self.salts.existing(today - timedelta(days=1))
            if old_salt is not None:
                old = hash_visitor(old_salt, site, ip, user_agent)
                last = self._yesterday.get(old)
                if last is not None and now_ms - last <= self.timeout_ms:
                    self._yesterday[old] = now_ms
                    return old
        vid = hash_visitor(self.salts.salt(today), site, ip, user_agent)
        # Only a visit active within the timeout before midnight can continue past it.
        if now_ms >= self._window_from and (vid in self._recent
                                            or len(self._recent) < self.max_carried):
            self._recent[vid] = now_ms
        return vid

    def prune(self) -> None:
        """Forget ids idle for longer than the timeout; called periodically."""
        now = self.clock()
        self._roll(now)
        cutoff = now - self.timeout_ms
        # Keep the last window before midnight: it carries visits into tomorrow.
        self._recent = {k: t for k, t in self._recent.items() if t >= cutoff}
        self._yesterday = {k: t for k, t in self._yesterday.items() if t >= cutoff}
