"""Every CSV the published folder holds opens in LibreOffice Calc with the same rows as
Python's csv module reads and as its panel shows: formula-guarded cells stay text, ISO dates
stay the same date, `(direct)` and non-ASCII text survive.

Calc (Debian `libreoffice-calc-nogui`) converts up to 200 files per headless invocation,
with a private profile so parallel runs do not share one, importing as a person opening
the file would at worst: UTF-8, comma, "detect special numbers" and "evaluate formulas" on.
It writes each sheet back as CSV with the cells as Calc shows them. A control file with an
unguarded formula proves the import really evaluates formulas, so the test can fail.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from footfall import config as config_mod
from footfall import demo
from footfall.csvcell import FORMULA_START
from footfall.marts import panels
from pipeline import run
from reports import render_site
from tests.site_helpers import FROZEN_NOW, read_panels

SOFFICE = shutil.which("soffice")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="needs LibreOffice: apt-get install "
                                "libreoffice-calc-nogui")

#: Calc's CSV import: comma, double quote, UTF-8 (76), from row 1, no column types, default
#: language, quoted fields as text off, detect special numbers on, (export only), (export
#: only), trim spaces off, every sheet, evaluate formulas on.
IMPORT = "CSV:44,34,76,1,,0,false,true,true,false,false,-1,true"
#: Calc's CSV export: the same, with each cell written as shown.
EXPORT = "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true,false,false,-1"

#: Files per soffice invocation: Calc 7.4 silently stops after about 245 in one.
BATCH = 200

#: Values a visitor controls that a spreadsheet would read as formulas, and text in several
#: scripts: sent as beacons through the collector's own path (footfall.demo.write_past).
HOSTILE_PATHS = ["/café/東京", "/=1+1"]
HOSTILE_EVENTS = ["=HYPERLINK(\"http://x.test\",\"y\")", "@SUM(1,2)", "Kauf ✓"]
HOSTILE_PROPS = {"city": "Zürich", "formula": "+1+2", "minus": "-3+4"}
HOSTILE_UTM = "%3D1%2B1"  # utm_source "=1+1"


def _hostile(events: list[demo.Event]) -> list[demo.Event]:
    base = [e for e in events if e.name == "pageview"][-40:]
    out = []
    for i, e in enumerate(base):
        path = HOSTILE_PATHS[i % len(HOSTILE_PATHS)]
        url = f"https://{e.site}{path}?utm_source={HOSTILE_UTM}"
        out.append(dataclasses.replace(e, url=url, referrer=None))
        out.append(dataclasses.replace(e, at_ms=e.at_ms + 1000, url=url,
                                       name=HOSTILE_EVENTS[i % len(HOSTILE_EVENTS)],
                                       props=HOSTILE_PROPS))
    return out


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo (the demo's generator, collector path and pipeline) with hostile values,
    raw exports published too, rendered at a frozen clock."""
    cfg = demo.write_workspace(tmp_path_factory.mktemp("libreoffice"))
    assert cfg.source is not None
    cfg.source.write_text(cfg.source.read_text() + "\nexports: {publish_raw: true}\n")
    cfg = config_mod.load(cfg.source)
    events = demo.generate(FROZEN_NOW, days=12, scale=0.05)
    demo.write_past(cfg, events + _hostile(events))
    run(cfg, progress=None)
    render_site(cfg, FROZEN_NOW)
    return cfg.site_dir.resolve()


def _calc(files: list[Path], work: Path) -> dict[Path, list[list[str]]]:
    """Each file as Calc reads and shows it, BATCH files per soffice invocation."""
    inbox, outbox = work / "in", work / "out"
    inbox.mkdir(parents=True)
    outbox.mkdir()
    names = {}
    for i, path in enumerate(files):
        name = f"f{i:05d}"  # one folder for all: file names must not clash
        shutil.copyfile(path, inbox / f"{name}.csv")
        names[name] = path
    assert SOFFICE is not None
    listing = sorted(str(p) for p in inbox.iterdir())
    log = ""
    for at in range(0, len(listing), BATCH):
        done = subprocess.run(
            [SOFFICE, f"-env:UserInstallation={(work / 'profile').as_uri()}", "--headless",
             "--norestore", f"--infilter={IMPORT}", "--convert-to", EXPORT, "--outdir",
             str(outbox), *listing[at:at + BATCH]],
            capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr
        log += done.stdout
    out = {}
    for name, path in names.items():
        # with every sheet exported, Calc names each output <file>-<sheet>.csv
        converted = outbox / f"{name}-{name}.csv"
        assert converted.is_file(), f"Calc wrote nothing for {path}: {log[-2000:]}"
        out[path] = list(csv.reader(io.StringIO(converted.read_text(encoding="utf-8"),
                                                newline="")))
    return out


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _same(ours: str, calc: str) -> bool:
    """Text is equal as text; a number may come back with Calc's 15 significant digits, a
    boolean as Calc's logical value (TRUE)."""
    if ours == calc or (ours in ("true", "false") and calc == ours.upper()):
        return True
    a, b = _number(ours), _number(calc)
    return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-12)


@pytest.fixture(scope="module")
def calc(site: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Path, list[list[str]]]:
    """Every CSV of the site as Calc shows it, by its path; the control file checked."""
    work = tmp_path_factory.mktemp("calc")
    control = work / "control.csv"
    control.write_text("a,b\r\n=1+1,'=1+1\r\n", encoding="utf-8")
    out = _calc([*sorted(site.rglob("*.csv")), control], work)
    assert out.pop(control) == [["a", "b"], ["2", "'=1+1"]], "Calc did not evaluate formulas"
    return out


def _unguarded(cell: str) -> str:
    """A CSV cell as the page shows it: without the guard footfall/csvcell.py adds."""
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_START) else cell


def test_calc_reads_every_published_csv_as_python_does(
        site: Path, calc: dict[Path, list[list[str]]]) -> None:
    kinds = {"panel": 0, "export": 0, "raw": 0}
    seen = {"guarded": 0, "direct": 0, "non-ascii": 0, "date": 0}
    for path, got in calc.items():
        rel = path.relative_to(site).as_posix()
        want = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        assert len(got) == len(want), rel
        for i, (w, g) in enumerate(zip(want, got, strict=True)):
            g = g + [""] * (len(w) - len(g))  # Calc leaves out trailing empty cells
            assert len(g) == len(w) and all(map(_same, w, g)), (rel, i, w, g)
        cells = [c for row in want[1:] for c in row]
        seen["guarded"] += sum(c[:1] == "'" for c in cells)
        seen["direct"] += cells.count("(direct)")
        seen["non-ascii"] += sum(not c.isascii() for c in cells)
        seen["date"] += sum(len(c) == 10 and c[4] == "-" and c[7] == "-" for c in cells)
        kinds["raw" if "/raw/" in rel else "export" if rel.startswith("exports/")
              else "panel"] += 1
    assert min(kinds.values()) > 0 and min(seen.values()) > 0, (kinds, seen)
    assert {'=HYPERLINK("http://x.test","y")', "Kauf ✓", "+1+2", "Zürich", "/café/東京"} <= {
        _unguarded(c) for rows in calc.values() for row in rows for c in row}


def test_calc_reads_each_panel_csv_with_the_rows_the_panel_shows(
        site: Path, calc: dict[Path, list[list[str]]]) -> None:
    pages = sorted(p for p in site.glob("*/*.html") if p.name != "downloads.html")
    shown = {page: read_panels(page) for page in pages}
    registry = {panel.key: (mart, panel) for mart, panel in panels()}
    checked = 0
    for page, found in shown.items():
        for read in found:
            mart, panel = registry[read.key]
            header, *rows = calc[(page.parent / read.csv).resolve()]
            rows = [[_unguarded(c) for c in r] for r in rows]
            table = [dict(zip(header, r + [""] * (len(header) - len(r)), strict=True))
                     for r in rows]
            if panel.null_label is None:  # the CSV keeps the NULL row the page hides
                null = mart.column(str(mart.dimension)).csv_null or ""
                table = [r for r in table if r[str(mart.dimension)] != null]
            groups: dict[str, list[dict[str, str]]] = {}
            for r in table:
                key = " · ".join(r[c] or "(none)" for c in mart.group)
                groups.setdefault(key, []).append(r)
            for caption, rows_shown in zip(read.captions, read.rows, strict=True):
                expected = groups[caption or ""]
                assert len(rows_shown) <= len(expected)
                for (label, values), row in zip(rows_shown, expected, strict=False):
                    assert all(map(_same, values, [row[f.key] for f in panel.figures])), (
                        page.name, read.key, label)
                    checked += 1
    assert checked > 500
