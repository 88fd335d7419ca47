"""The log line contract: timestamps, time-ordered ids, and what decode refuses."""

from __future__ import annotations

import json
import uuid

import pytest

from footfall import contract


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert contract.format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert contract.format_ts(1773144000123) == "2026-03-10T12:00:00.123Z"
    assert contract.format_ts(1773144000999) == "2026-03-10T12:00:00.999Z"
    assert contract.format_ts(1773144001000) == "2026-03-10T12:00:01.000Z"


def test_ids_are_uuid7_unique_and_time_ordered() -> None:
    ids = [contract.new_id(1773144000000 + i // 100) for i in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(ids[0].replace("-", "")[:12], 16) == 1773144000000
    # A clock that steps back never produces an id that sorts earlier.
    later = contract.new_id(1773144000000 - 5000)
    assert later > ids[-1]


VALID = {"v": 1, "id": "019ccf5e-7a80-7a3c-8e51-3f0c2b7d9e11", "ts": "2026-03-10T12:00:00.000Z",
         "site": "example.com", "name": "pageview", "path": "/", "visitor": "0123456789abcdef"}


def test_round_trip_and_unknown_fields_are_ignored() -> None:
    line = contract.decode(json.dumps({**VALID, "from_another_tool": [1, 2]}).encode())
    assert contract.decode(contract.encode(line).rstrip(b"\n")) == line
    assert b"from_another_tool" not in contract.encode(line)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"v": 2}, "unsupported version"),
        ({"ts": "2026-03-10 12:00:00"}, "RFC 3339"),
        ({"visitor": "ABCDEF0123456789"}, "16 lowercase hex"),
        ({"path": "no-slash"}, "path starting with /"),
        ({"country": "Germany"}, "alpha-2"),
        ({"props": {"a": {"nested": 1}}}, "props"),
        ({"screen_width": "wide"}, "screen_width"),
        ({"id": None}, "id"),
    ],
)
def test_decode_refuses_lines_that_break_the_contract(change: dict[str, object],
                                                      reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        contract.decode(json.dumps({**VALID, **change}).encode())
    with pytest.raises(ValueError, match="bad JSON"):
        contract.decode(b'{"v":1,')
