"""The log line contract: timestamps, time-ordered ids, and what decode refuses."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest

from footfall import contract


def test_timestamps_are_rfc3339_utc_with_milliseconds() -> None:
    assert contract.format_ts(0) == "1970-01-01T00:00:00.000Z"
    assert contract.format_ts(1773144000123) == "2026-03-10T12:00:00.123Z"
    assert contract.format_ts(1773144000999) == "2026-03-10T12:00:00.999Z"
    assert contract.format_ts(1773144001000) == "2026-03-10T12:00:01.000Z"


def test_ids_are_uuid7_unique_and_time_ordered() -> None:
    # a generator of its own: the process-wide one remembers the clocks earlier tests used
    new_id = type(contract.new_id)()
    ids = [new_id(1773144000000 + i // 100) for i in range(5000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(ids[0].replace("-", "")[:12], 16) == 1773144000000
    # A clock that steps back never produces an id that sorts earlier.
    later = new_id(1773144000000 - 5000)
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


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"revenue_amount": "19.99"}, "come together"),
        ({"revenue_currency": "EUR"}, "come together"),
        ({"revenue_amount": "1e3", "revenue_currency": "EUR"}, "plain decimal"),
        ({"revenue_amount": "1.1234567", "revenue_currency": "EUR"}, "plain decimal"),
        ({"revenue_amount": "1234567890123", "revenue_currency": "EUR"}, "plain decimal"),
        ({"revenue_amount": "\u0661", "revenue_currency": "EUR"}, "plain decimal"),
        ({"revenue_amount": "5", "revenue_currency": "eur"}, "ISO 4217"),
        ({"revenue_amount": 5, "revenue_currency": "EUR"}, "revenue_amount"),
    ],
)
def test_revenue_fields_come_together_and_keep_their_format(change: dict[str, object],
                                                            reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        contract.decode(json.dumps({**VALID, **change}).encode())


@pytest.mark.parametrize("amount", ["19.99", "-3.2", "0", "123456789012.123456"])
def test_valid_revenue_round_trips(amount: str) -> None:
    line = contract.decode(json.dumps({**VALID, "revenue_amount": amount,
                                       "revenue_currency": "JPY"}).encode())
    assert (line.revenue_amount, line.revenue_currency) == (amount, "JPY")
    assert contract.decode(contract.encode(line).rstrip(b"\n")) == line


def test_log_format_doc_names_every_field_and_no_other() -> None:
    doc = (Path(__file__).parent.parent / "docs" / "log-format.md").read_text()
    rows = [row.split("|")[1] for row in doc.splitlines() if row.startswith("| `")]
    documented = {name for cell in rows for name in re.findall(r"`([a-z_]+)`", cell)}
    assert documented == set(contract.LogLine.__struct_fields__)
