"""Salts: daily rotation, 0600 files, deletion after the next day ends, midnight continuity."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

from collector.identity import SaltStore, VisitorIds, hash_visitor
from tests.helpers import Clock

HOUR = 3600.0
TIMEOUT_MS = 30 * 60_000


def salt_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_salt_is_random_private_and_survives_a_restart(tmp_path: Path) -> None:
    folder = tmp_path / "salts"
    first = SaltStore(folder).salt(date(2026, 3, 10))
    assert len(first) == 32
    assert stat.S_IMODE(os.stat(folder / "2026-03-10.salt").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert SaltStore(folder).salt(date(2026, 3, 10)) == first  # a restart keeps continuity
    assert SaltStore(folder).salt(date(2026, 3, 11)) != first


def test_ids_rotate_daily_and_salts_are_deleted_after_the_next_day(tmp_path: Path) -> None:
    clock = Clock("2026-03-10T10:00:00")
    folder = tmp_path / "salts"
    ids = VisitorIds(SaltStore(folder), clock, TIMEOUT_MS)
    day1 = ids.visitor("example.com", "203.0.113.9", "UA", clock())
    assert len(day1) == 16 and int(day1, 16) >= 0
    assert ids.visitor("example.com", "203.0.113.9", "UA", clock()) == day1
    assert ids.visitor("shop.test", "203.0.113.9", "UA", clock()) != day1
    assert ids.visitor("example.com", "203.0.113.10", "UA", clock()) != day1

    clock.advance(24 * HOUR)  # 2026-03-11 10:00: a new id, yesterday's salt still kept
    day2 = ids.visitor("example.com", "203.0.113.9", "UA", clock())
    assert day2 != day1
    assert salt_files(folder) == ["2026-03-10.salt", "2026-03-11.salt"]

    clock.advance(14 * HOUR)  # 2026-03-12 00:00: day 1's next day has ended
    ids.prune()
    assert salt_files(folder) == ["2026-03-11.salt"]
    ids.visitor("example.com", "203.0.113.9", "UA", clock())
    assert salt_files(folder) == ["2026-03-11.salt", "2026-03-12.salt"]


def test_a_visit_across_utc_midnight_keeps_its_id(tmp_path: Path) -> None:
    clock = Clock("2026-03-10T23:50:00")
    ids = VisitorIds(SaltStore(tmp_path / "salts"), clock, TIMEOUT_MS)
    before = ids.visitor("example.com", "198.51.100.7", "UA", clock())
    clock.advance(20 * 60)  # 00:10 next day, within the timeout
    assert ids.visitor("example.com", "198.51.100.7", "UA", clock()) == before
    clock.advance(25 * 60)  # 00:35, still active: the visit continues
    assert ids.visitor("example.com", "198.51.100.7", "UA", clock()) == before
    # Someone who was not active before midnight gets today's id.
    other = ids.visitor("example.com", "198.51.100.8", "UA", clock())
    salt_today = SaltStore(tmp_path / "salts").salt(date(2026, 3, 11))
    assert other == hash_visitor(salt_today, "example.com", "198.51.100.8", "UA")
    clock.advance(31 * 60)  # idle past the timeout: the next visit is a new one
    assert ids.visitor("example.com", "198.51.100.7", "UA", clock()) != before


def test_a_torn_salt_file_is_replaced(tmp_path: Path) -> None:
    folder = tmp_path / "salts"
    folder.mkdir()
    (folder / "2026-03-10.salt").write_bytes(b"short")
    salt = SaltStore(folder).salt(date(2026, 3, 10))
    assert len(salt) == 32 and (folder / "2026-03-10.salt").read_bytes() == salt


def test_ids_are_remembered_only_in_the_last_window_before_midnight(tmp_path: Path) -> None:
    clock = Clock("2026-03-10T12:00:00")
    ids = VisitorIds(SaltStore(tmp_path / "salts"), clock, TIMEOUT_MS)
    for i in range(500):
        ids.visitor("example.com", f"203.0.113.{i % 250}", f"UA{i}", clock())
    assert len(ids) == 0  # the midnight rule needs nothing at noon
    clock.ms = Clock("2026-03-10T23:29:59").ms
    ids.visitor("example.com", "198.51.100.1", "UA", clock())
    assert len(ids) == 0  # 30 min 1 s before midnight: too early to continue past it
    clock.advance(1)
    ids.visitor("example.com", "198.51.100.2", "UA", clock())
    assert len(ids) == 1
    clock.advance(30 * 60 - 1)  # 00:00:00: the first visitor's visit cannot reach here
    ids.prune()
    assert len(ids) == 1


def test_the_carry_over_is_capped_and_the_rest_split_at_midnight(tmp_path: Path) -> None:
    clock = Clock("2026-03-10T23:50:00")
    ids = VisitorIds(SaltStore(tmp_path / "salts"), clock, TIMEOUT_MS, max_carried=3)
    before = [ids.visitor("example.com", f"198.51.100.{i}", "UA", clock()) for i in range(5)]
    assert len(ids) == 3
    # A remembered visitor seen again still counts as one entry, with a fresh time.
    assert ids.visitor("example.com", "198.51.100.0", "UA", clock()) == before[0]
    assert len(ids) == 3
    clock.advance(20 * 60)  # 00:10 next day
    after = [ids.visitor("example.com", f"198.51.100.{i}", "UA", clock()) for i in range(5)]
    assert after[:3] == before[:3]  # carried over: their visits stay whole
    assert after[3] != before[3] and after[4] != before[4]  # over the cap: split in two
