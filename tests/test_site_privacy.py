"""Nothing private in the published folder: the raw event files stay in data_dir unless the
config opts in, and docs/privacy.md lists every file site_dir holds (both directions)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pipeline_oracle as oracle
from test_pipeline import make_cfg

import pipeline
from footfall import config as config_mod
from footfall.config import Config
from reports import render_site
from tests.site_helpers import FROZEN_NOW, build_dataset

PRIVACY = Path(__file__).resolve().parent.parent / "docs" / "privacy.md"


def _event(i: int) -> dict[str, Any]:
    return {"v": 1, "id": f"x{i}", "ts": f"2024-04-01T10:{i:02d}:00.000Z", "site": "shop.test",
            "name": "pageview", "path": "/a", "visitor": f"{i:016x}"}


def test_raw_events_stay_out_of_the_published_folder_unless_asked(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    oracle.write_lines(cfg.logs_dir / "a.jsonl", [_event(i) for i in range(3)])
    pipeline.run(cfg, progress=None)
    private = cfg.data_dir / "exports" / "shop.test" / "raw"
    published = cfg.site_dir / "exports" / "shop.test" / "raw"
    assert [p.name for p in private.iterdir()] == ["2024-04-01.csv"]
    assert not published.exists()
    assert not any("visitor_id" in p.read_text() for p in cfg.site_dir.rglob("*.csv"))
    opted_in = make_cfg(tmp_path, exports={"publish_raw": True})
    pipeline.run(opted_in, progress=None)
    assert [p.name for p in published.iterdir()] == ["2024-04-01.csv"]
    assert not private.exists()  # one copy, where the config says
    pipeline.run(cfg, progress=None)  # and back: the published copy is removed
    assert not published.exists() and [p.name for p in private.iterdir()] == ["2024-04-01.csv"]


def _documented() -> dict[str, re.Pattern[str]]:
    """The file patterns in docs/privacy.md's table of the published folder."""
    section = PRIVACY.read_text(encoding="utf-8").split("## What the published folder")[1]
    out = {}
    for line in section.splitlines():
        found = re.match(r"\| `([^`]+)` \|", line)
        if found:
            pattern = re.escape(found.group(1))
            pattern = re.sub(r"<[a-z]+>", "[^/]+", pattern.replace(r"\<", "<").replace(
                r"\>", ">"))
            out[found.group(1)] = re.compile(pattern)
    return out


def test_docs_privacy_lists_every_published_file(tmp_path: Path) -> None:
    cfg = build_dataset(tmp_path / "plain")
    render_site(cfg, FROZEN_NOW)
    opted = _publish_raw(build_dataset(tmp_path / "raw"))
    pipeline.run(opted, progress=None)
    render_site(opted, FROZEN_NOW)
    patterns = _documented()
    assert len(patterns) > 10
    used: set[str] = set()
    for root in (cfg.site_dir, opted.site_dir):
        for path in root.rglob("*"):
            if path.is_file():
                rel = path.relative_to(root).as_posix()
                matched = [k for k, rx in patterns.items() if rx.fullmatch(rel)]
                assert matched, f"{rel} is published but not listed in docs/privacy.md"
                used.update(matched)
    assert set(patterns) - used == set(), "listed in docs/privacy.md but never written"
    assert not any(cfg.site_dir.rglob("raw"))



def _publish_raw(cfg: Config) -> Config:
    """The same workspace with `exports.publish_raw: true` added to its config file."""
    assert cfg.source is not None
    cfg.source.write_text(cfg.source.read_text() + "\nexports: {publish_raw: true}\n")
    return config_mod.load(cfg.source)
