"""A second render is incremental: a page whose inputs did not change is not rendered at all,
and what is rendered then is byte for byte what a render from scratch gives.

Real renders of the real pipeline's DuckDB file (tests/pipeline_oracle.py's events, with
drill-down pages), counting the pages each render renders (RenderSummary.pages)."""

from __future__ import annotations

import dataclasses
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pipeline_oracle as oracle
import pytest
from test_pipeline import make_cfg

import pipeline
import reports
from footfall import config as config_mod
from footfall import periods
from footfall.config import Config
from reports import data, render_site
from reports.site import STATE, code_version

DRILL = r"[a-z-]+-\d+\.html"


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "exports"}


def _from_scratch(cfg: Config, now: datetime, into: Path) -> dict[str, bytes]:
    """The same render into an empty folder, without the last render's state (which is
    kept for the next render of cfg.site_dir)."""
    shutil.rmtree(into, ignore_errors=True)
    state = cfg.data_dir / STATE
    kept = state.read_bytes()
    summary = render_site(dataclasses.replace(cfg, site_dir=into), now, incremental=False)
    state.write_bytes(kept)
    assert summary.unchanged == 0
    return _files(into)


def _pages(cfg: Config, now: datetime, domain: str) -> list[periods.Period]:
    site = next(s for s in data.load(cfg, now) if s.domain == domain)
    return site.periods


def _drill_pages(cfg: Config, domain: str) -> set[str]:
    return {p.relative_to(cfg.site_dir).as_posix() for p in (cfg.site_dir / domain).glob(
        "*/*.html") if re.fullmatch(DRILL, p.name)}


def _touches(p: periods.Period, day: date) -> bool:
    """Whether a page reads `day`: in its period, or in the range its changes compare."""
    return p.start <= day <= p.end or (p.previous is not None
                                        and p.previous[0] <= day <= p.previous[1])


@pytest.fixture()
def built(tmp_path: Path) -> tuple[Config, list[dict[str, Any]], datetime]:
    cfg = make_cfg(tmp_path / "ws")
    events = oracle.generate(visitors=25, days=40)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", events)
    pipeline.run(cfg, progress=None)
    last = max(oracle.local_date(e) for e in events)
    return cfg, events, datetime.combine(last, datetime.min.time(), UTC).replace(hour=20)


def test_an_unchanged_site_renders_no_page_and_one_changed_day_only_its_pages(
        built: Any, tmp_path: Path) -> None:
    cfg, events, now = built
    first = render_site(cfg, now)
    assert first.pages > 200 and first.unchanged == 0
    again = render_site(cfg, now)
    assert (again.pages, again.written, again.removed) == (0, 0, 0)
    assert again.unchanged >= first.pages

    # ten more visits to one site on one day, a past month's: through the real pipeline
    # (copies of the day's first visit, so no new value becomes a drill-down filter)
    like = min((e for e in events if e["site"] == "shop.test" and "browser" in e),
               key=lambda e: e["ts"])
    day = oracle.local_date(like)
    noon = datetime.combine(day, datetime.min.time(), UTC).replace(hour=12)
    more = [{**like, "id": f"more-{i}", "ts": oracle.ts(noon + timedelta(minutes=i)),
             "visitor": f"{i + 1:016x}"} for i in range(10)]
    oracle.write_lines(cfg.logs_dir / "b.jsonl", more)
    pipeline.run(cfg, progress=None)
    third = render_site(cfg, now)
    touched = [p for p in _pages(cfg, now, "shop.test") if _touches(p, day)]
    assert touched and len(touched) < len(_pages(cfg, now, "shop.test"))
    # the site's pages that read that day, and its filtered pages (their period switcher
    # follows the filter through the rolling periods, which read that day too)
    assert set(third.rendered) == {f"shop.test/{p.filename}" for p in touched} | _drill_pages(
        cfg, "shop.test")
    assert third.written > 0
    assert _files(cfg.site_dir) == _from_scratch(cfg, now, tmp_path / "scratch")


def test_the_date_moving_renders_the_relative_pages_and_a_config_change_all(
        built: Any, tmp_path: Path) -> None:
    cfg, _events, now = built
    render_site(cfg, now)
    later = now + timedelta(days=1)
    moved = render_site(cfg, later)
    for domain in oracle.SITES:
        pages = _pages(cfg, later, domain)
        assert [p.key for p in pages if p.archive and p.end < later.date()], domain
    # every rolling period and the month that ends today; not the months before it
    want = {f"{d}/{p.filename}" for d in oracle.SITES for p in _pages(cfg, later, d)
            if not p.archive or p.end == later.date()}
    assert set(moved.rendered) == want.union(*(_drill_pages(cfg, d) for d in oracle.SITES))
    assert moved.unchanged > 0
    assert _files(cfg.site_dir) == _from_scratch(cfg, later, tmp_path / "scratch")

    assert render_site(cfg, later).pages == 0
    # the config is in every page's digest (as the templates and the code are)
    assert cfg.source is not None
    cfg.source.write_text(cfg.source.read_text() + "\nprivacy: {min_visitors: 2}\n")
    changed = config_mod.load(cfg.source)
    everything = render_site(changed, later)
    assert everything.unchanged == 0 and everything.pages > 200
    assert _files(changed.site_dir) == _from_scratch(changed, later, tmp_path / "scratch2")


def test_the_code_version_covers_every_template(tmp_path: Path) -> None:
    package = Path(reports.__file__).parent
    copy = tmp_path / "reports"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert code_version(copy) == code_version(package)
    for template in sorted((copy / "templates").iterdir()):
        before = code_version(copy)
        template.write_bytes(template.read_bytes() + b"\n")
        assert code_version(copy) != before, template.name


def test_a_deleted_page_is_rendered_again_and_another_folder_in_full(built: Any) -> None:
    cfg, _events, now = built
    render_site(cfg, now)
    page = cfg.site_dir / "example.com" / "7d.html"
    body = page.read_bytes()
    page.unlink()
    again = render_site(cfg, now)
    assert again.pages == 1 and page.read_bytes() == body
    # the state belongs to the folder it was written for: another one renders every page
    elsewhere = render_site(dataclasses.replace(cfg, site_dir=cfg.site_dir.parent / "b"), now)
    assert elsewhere.unchanged == 0 and elsewhere.pages > 200
