"""docs/architecture.md names files and functions; every one it names exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


def test_every_file_the_page_names_exists() -> None:
    named = set(re.findall(r"`((?:collector|pipeline|reports|footfall|docs|tests|bench)"
                           r"(?:/[\w.*-]+)+)`", DOC))
    assert len(named) > 15
    for path in sorted(named):
        matches = list(ROOT.glob(path)) if "*" in path else [ROOT / path]
        assert any(p.exists() for p in matches), f"docs/architecture.md names {path}"


def test_every_function_the_page_names_exists() -> None:
    found = re.findall(r"`([a-z_]+/[a-z_/]+\.py)`,? \(`([A-Za-z_.]+)`", DOC)
    assert len(found) >= 2
    for module, name in found:
        text = (ROOT / module).read_text(encoding="utf-8")
        last = name.split(".")[-1]
        assert re.search(rf"^\s*(?:async )?(?:def|class) {last}\b|^{last}\b", text, re.M), (
            module, name)
