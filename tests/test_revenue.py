"""Revenue goals: per event name and currency, never added across currencies, shown next to
the goal on the dashboard."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

import pipeline
from reports import render_site


def _line(i: int, visitor: str, minute: int, name: str, amount: str | None = None,
          currency: str | None = None) -> str:
    event: dict[str, Any] = {"v": 1, "id": f"r{i}", "ts": f"2026-03-09T10:{minute:02d}:00.000Z",
                             "site": "example.com", "name": name, "path": "/checkout",
                             "visitor": visitor}
    if amount is not None:
        event |= {"revenue_amount": amount, "revenue_currency": currency}
    return json.dumps(event)


def test_revenue_per_goal_and_currency(make_config: Any) -> None:
    cfg = make_config()
    a, b, c = "a" * 16, "b" * 16, "c" * 16
    lines = [
        _line(1, a, 0, "pageview"), _line(2, a, 1, "Purchase", "10.50", "EUR"),
        _line(3, a, 2, "Purchase", "4.50", "EUR"),   # a second purchase in the same visit
        _line(4, b, 0, "pageview"), _line(5, b, 1, "Purchase", "20", "EUR"),
        _line(6, c, 0, "pageview"), _line(7, c, 1, "Purchase", "99.99", "USD"),
        _line(8, c, 2, "Signup"),                    # a goal without revenue
    ]
    cfg.logs_dir.mkdir(parents=True)
    (cfg.logs_dir / "a.jsonl").write_text("\n".join(lines) + "\n")
    pipeline.run(cfg, progress=None)
    con = duckdb.connect(str(cfg.database), read_only=True)
    try:
        got = con.execute("select currency, name, revenue, conversions, visitors, "
                          "average_revenue from daily_revenue order by currency").fetchall()
    finally:
        con.close()
    assert got == [("EUR", "Purchase", Decimal("35.000000"), 2, 2, Decimal("17.500000")),
                   ("USD", "Purchase", Decimal("99.990000"), 1, 1, Decimal("99.990000"))]
    render_site(cfg, datetime(2026, 3, 10, 12, tzinfo=UTC))
    folder = cfg.site_dir / "example.com" / "csv" / "yesterday"
    rows = list(csv.DictReader(io.StringIO((folder / "revenue.csv").read_text(), newline="")))
    assert sorted((r["currency"], r["name"], r["revenue"], r["conversions"]) for r in rows) == [
        ("EUR", "Purchase", "35", "2"), ("USD", "Purchase", "99.99", "1")]
    page = (cfg.site_dir / "example.com" / "yesterday.html").read_text(encoding="utf-8")
    panel = page.split('id="revenue"', 1)[1].split("</section>", 1)[0]
    assert "EUR" in panel and "USD" in panel and "17.5" in panel
