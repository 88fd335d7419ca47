"""Malformed log lines: the reason each was refused, and the files in data_dir/quarantine/.

DuckDB decides which lines are valid (`models/staging/stg_log_lines.sql`). Only for the few
slices in which it refused a line does this module read the bytes in Python, to find those
lines and name the reason, with the same rules (`reason` mirrors the SQL checks; a property
test holds them together).

Refused lines are kept in `pipeline.quarantine` and mirrored, one file per source, at
`data_dir/quarantine/<source path>` (`.gz` dropped): JSON lines of
`{"source", "offset", "reason", "line"}`. Each file is rewritten whole from the table, so a
rerun after a crash writes the same files again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import duckdb
import msgspec

from footfall import contract
from pipeline.sources import Slice, lines

MAX_LINE_CHARS = 64 * 1024


class Refused(msgspec.Struct):
    source: str
    offset: int
    reason: str
    line: str


def reason(line: bytes, sites: frozenset[str]) -> str | None:
    """Why a log line breaks the contract, or None when it is a valid event for a known site."""
    try:
        event = contract.decode(line)
    except ValueError as exc:
        return str(exc)
    if not event.id:
        return "id is empty"
    try:
        datetime.strptime(event.ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return f"ts '{event.ts}' is not a real date and time"
    if event.site not in sites:
        return f"site '{event.site}' is not one of sites[].domain in the config"
    return None


def find(s: Slice, sites: frozenset[str]) -> list[Refused]:
    """Every refused line of one slice."""
    out = []
    for offset, raw in lines(s):
        why = reason(raw, sites)
        if why is not None:
            text = raw.decode("utf-8", errors="replace")[:MAX_LINE_CHARS]
            out.append(Refused(s.source, offset, why, text))
    return out


def record(con: duckdb.DuckDBPyConnection, s: Slice, refused: list[Refused]) -> None:
    """Replace what the table holds for the re-read part of the source with `refused`."""
    con.execute(
        "delete from pipeline.quarantine where source = ? and \"offset\" >= ?",
        [s.source, s.start],
    )
    if refused:
        con.executemany(
            "insert into pipeline.quarantine values (?, ?, ?, ?)",
            [[r.source, r.offset, r.reason, r.line] for r in refused],
        )


def file_for(quarantine_dir: Path, source: str) -> Path:
    name = source[: -len(".gz")] if source.endswith(".gz") else source
    return quarantine_dir / name


def write_files(
    con: duckdb.DuckDBPyConnection, quarantine_dir: Path, sources: Iterable[str], full: bool
) -> None:
    """Rewrite the quarantine file of each source (and, after --full, drop stale files)."""
    encoder = msgspec.json.Encoder()
    written: set[Path] = set()
    for source in sorted(set(sources)):
        rows = con.execute(
            "select source, \"offset\", reason, line from pipeline.quarantine "
            "where source = ? order by \"offset\"",
            [source],
        ).fetchall()
        target = file_for(quarantine_dir, source)
        if not rows:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as f:
            for row in rows:
                f.write(encoder.encode(Refused(*row)) + b"\n")
        os.replace(tmp, target)
        written.add(target)
    if full and quarantine_dir.is_dir():
        for path in quarantine_dir.rglob("*.jsonl"):
            if path not in written:
                path.unlink()
