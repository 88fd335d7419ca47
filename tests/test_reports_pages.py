"""Entry and exit pages as Plausible shows them, time on page and scroll depth on Top pages:
the pipeline against the independent oracle, and the bound every rendered table keeps (no
unique count above the entrances or exits it describes, no exit rate above 100%), and each
custom event's conversion rate."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pipeline_oracle as oracle
import pytest
from test_pipeline import make_cfg

import pipeline
from footfall.config import Config
from reports import render_site
from tests.site_helpers import read_panels


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, list[dict[str, Any]]]:
    cfg = make_cfg(tmp_path_factory.mktemp("pages"))
    events = oracle.generate()
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    return cfg, events


def test_entrances_exits_and_scroll_depth_match_the_oracle(built: Any) -> None:
    cfg, events = built
    want = oracle.page_entrances_exits(events)
    con = duckdb.connect(str(cfg.database), read_only=True)
    rows = con.execute("select site, date, path, entries, entry_visitors, exits, "
                       "exit_visitors, avg_scroll_pct, scrolled_visits from daily_pages"
                       ).fetchall()
    con.close()
    got = {(r[0], r[1], r[2]): r[3:] for r in rows}
    checked = 0
    for key, w in want.items():
        entries, entry_visitors, exits, exit_visitors, scroll, scrolled = got[key]
        assert (entries, entry_visitors, exits, exit_visitors, scrolled) == (
            w["entries"], w["entry_visitors"], w["exits"], w["exit_visitors"],
            w["scrolled_visits"]), key
        assert (scroll is None) == (w["avg_scroll_pct"] is None), key
        if scroll is not None:
            assert abs(scroll - w["avg_scroll_pct"]) < 1e-9, key
            checked += 1
    assert checked > 20
    # some visitor entered twice on one page and day, so unique entrances really differ
    assert any(w["entry_visitors"] < w["entries"] for w in want.values())


def _number(text: str) -> float:
    return float(text) if text else 0.0


def test_no_rendered_count_exceeds_the_entrances_or_exits_it_describes(built: Any) -> None:
    cfg, events = built
    last = max(oracle.local_date(e) for e in events)
    render_site(cfg, datetime.combine(last, datetime.min.time(), UTC).replace(hour=20))
    pages = sorted(p for p in Path(cfg.site_dir).glob("*/**/*.html")
                   if p.name != "downloads.html")
    rows = rates = 0
    for page in pages:
        panels = {p.key: p for p in read_panels(page)}
        for label, (unique, entrances) in itertools.chain(*panels["entry-pages"].rows):
            assert _number(unique) <= _number(entrances), (page.name, label)
            rows += 1
        for label, (unique, exits, rate) in itertools.chain(*panels["exit-pages"].rows):
            assert _number(unique) <= _number(exits), (page.name, label)
            assert 0 <= _number(rate) <= 100, (page.name, label, rate)
            rows += 1
        # a goal's conversion rate: its visitors among all the period's visitors
        everyone = re.search(r'data-metric="visitors" data-value="(\d+)"', page.read_text())
        assert everyone is not None
        for label, (visitors, _events, rate) in itertools.chain(*panels["events"].rows):
            assert float(rate) == round(100 * int(visitors) / int(everyone.group(1)), 1), label
            rates += 1
    assert rows > 50 and rates > 20
