"""Snapshot of the rendered site, as Pelican does: a fixed dataset and a frozen clock, compared
file by file with the committed tree in tests/snapshots/site/.

Refresh it on purpose after a deliberate change to the templates, panels or pipeline:

    FOOTFALL_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_site_snapshot.py

then review `git diff tests/snapshots/` like any other change.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path

import pytest

from footfall.marts import panels
from reports import render_site
from tests.site_helpers import FROZEN_NOW, build_dataset, read_csv, read_panels

SNAPSHOT = Path(__file__).parent / "snapshots" / "site"
UPDATE = os.environ.get("FOOTFALL_UPDATE_SNAPSHOTS") == "1"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = build_dataset(tmp_path_factory.mktemp("snapshot"))
    render_site(cfg, FROZEN_NOW)
    return cfg.site_dir


#: Of the filtered dashboards (hundreds, checked against the oracle in
#: test_reports_filters.py), the snapshot keeps the first row's of each panel over 7 days.
SAMPLED = re.compile(r"[^/]+/(?!7d/)[^/]+/[a-z-]+-\d+\.html|[^/]+/7d/[a-z-]+-(?!1\.)\d+\.html")


def _rendered(root: Path) -> dict[str, bytes]:
    """The renderer's files: everything but the pipeline's exports/, and a sample of the
    filtered dashboards."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] != "exports"
            and not SAMPLED.fullmatch(p.relative_to(root).as_posix())}


def test_site_matches_snapshot(site: Path) -> None:
    got = _rendered(site)
    if UPDATE:
        shutil.rmtree(SNAPSHOT, ignore_errors=True)
        for rel, body in got.items():
            (SNAPSHOT / rel).parent.mkdir(parents=True, exist_ok=True)
            (SNAPSHOT / rel).write_bytes(body)
    want = _rendered(SNAPSHOT) if SNAPSHOT.exists() else {}
    assert sorted(got) == sorted(want), "files differ; see the module docstring to refresh"
    for rel in sorted(got):
        if got[rel] != want[rel]:
            diff = "\n".join(difflib.unified_diff(
                want[rel].decode().splitlines(), got[rel].decode().splitlines(),
                f"snapshot/{rel}", f"rendered/{rel}", lineterm="", n=2))
            pytest.fail(f"{rel} differs from the snapshot (refresh: see docstring)\n"
                        f"{diff[:4000]}")


def test_every_panel_links_a_csv_whose_rows_match(site: Path) -> None:
    pages = sorted(p for p in site.glob("*/*.html") if p.name != "downloads.html")
    assert len(pages) >= 2 * 7
    registry = {panel.key: (mart, panel) for mart, panel in panels()}
    checked = 0
    for page in pages:
        shown_panels = read_panels(page)
        assert len(shown_panels) == len(registry), page
        for panel in shown_panels:
            csv_path = page.parent / panel.csv
            assert csv_path.is_file(), f"{page.name}: {panel.key} links {panel.csv}"
            mart, declared = registry[panel.key]
            rows = read_csv(csv_path)
            if declared.null_label is None:  # the CSV keeps the NULL row the page hides
                null = mart.column(str(mart.dimension)).csv_null or ""
                rows = [r for r in rows if r[str(mart.dimension)] != null]
            metrics = [f.key for f in declared.figures]
            groups: dict[str, list[dict[str, str]]] = {}
            for r in rows:
                key = " · ".join(r[c] or "(none)" for c in ("name", "prop")
                                 if c in r and panel.key == "event-props")
                groups.setdefault(key, []).append(r)
            for caption, shown in zip(panel.captions, panel.rows, strict=True):
                expected = groups[caption or ""]
                assert len(shown) <= len(expected)
                for (label, values), row in zip(shown, expected, strict=False):
                    assert values == [row[m] for m in metrics], (page, panel.key, label)
                    checked += 1
    assert checked > 500
