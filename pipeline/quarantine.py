"""Malformed log lines: the reason each was refused, and the files in data_dir/quarantine/.

DuckDB decides which lines are valid (`models/staging/stg_log_lines.sql`). Only for the few
slices in which it refused a line does this module read the bytes in Python, streaming, to
find those lines and name the reason, with the same rules (`reason` mirrors the SQL checks; a
property test holds them together). Lines too long for DuckDB never reached it: sources.py
cut them out and hands them over as `Cut`s.

What is kept is bounded whatever the logs hold: per source file, the first KEEP_LINES refused
lines, each cut to its first KEEP_BYTES bytes, and a count of all of them. The lines are in
`pipeline.quarantine`, the counts in `pipeline.quarantine_counts` (one row per part of a
source read), and both are mirrored, one file per source, at `data_dir/quarantine/<source
path>` (`.gz` dropped): JSON lines of `{"source", "offset", "reason", "line"}`, and when lines
were left out, a last one with `"offset": null` whose reason says how many. Each file is
rewritten whole from the tables, so a rerun after a crash writes the same files again.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import msgspec

from footfall import contract
from pipeline.sources import MAX_LINE_BYTES, Slice, lines

#: Refused lines kept per source file; the rest are counted.
KEEP_LINES = 1000
#: Bytes kept of each refused line.
KEEP_BYTES = 8192
#: Characters of a logged value quoted in a reason.
QUOTE_CHARS = 100


class Refused(msgspec.Struct):
    source: str
    offset: int | None
    reason: str
    line: str


@dataclass(frozen=True)
class Found:
    """What the quarantine made of one slice."""

    lines: int  # refused lines, kept or only counted
    unexplained: int  # refused by DuckDB, but not by `reason` (should stay 0)


def _quote(text: str) -> str:
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"


def reason(line: bytes, sites: frozenset[str]) -> str | None:
    """Why a log line breaks the contract, or None when it is a valid event for a known site."""
    try:
        event = contract.decode(line)
    except ValueError as exc:
        return str(exc)
    except RecursionError:
        return "bad JSON: nested too deeply"
    if not event.id:
        return "id is empty"
    try:
        datetime.strptime(event.ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        return f"ts '{event.ts}' is not a real date and time"
    if event.site not in sites:
        return f"site '{_quote(event.site)}' is not one of sites[].domain in the config"
    return None


def _refused(s: Slice, sites: frozenset[str], expected: int) -> Iterator[tuple[int, str, bytes]]:
    """(offset, reason, line) of the refused lines of a slice, in order: the cut ones, and
    among those DuckDB read, the first `expected` that `reason` refuses."""
    too_long = (
        (cut.offset, f"the line is {cut.length:,} bytes, longer than the {MAX_LINE_BYTES:,} "
                     "a log line may have; none of it was read", b"")
        for cut in s.cuts
    )

    def read() -> Iterator[tuple[int, str, bytes]]:
        left = expected
        if not left:
            return
        for offset, raw in lines(s):
            why = reason(raw, sites)
            if why is not None:
                yield offset, why, raw
                left -= 1
                if not left:  # all explained: the rest of the slice is valid
                    return

    return heapq.merge(too_long, read())


def store(
    con: duckdb.DuckDBPyConnection, s: Slice, sites: frozenset[str], refused_by_duckdb: int
) -> Found:
    """Find, count and keep the refused lines of one slice, replacing what the tables held
    for the re-read part of its source."""
    con.execute("delete from pipeline.quarantine where source = ? and \"offset\" >= ?",
                [s.source, s.start])
    con.execute("delete from pipeline.quarantine_counts where source = ? and start >= ?",
                [s.source, s.start])
    row = con.execute("select count(*) from pipeline.quarantine where source = ?",
                      [s.source]).fetchone()
    room = KEEP_LINES - (row[0] if row else 0)
    offsets: list[int] = []
    reasons: list[str] = []
    texts: list[str] = []
    found = from_duckdb = 0
    for offset, why, raw in _refused(s, sites, refused_by_duckdb):
        found += 1
        if raw:  # a cut line comes without its bytes; DuckDB never saw it
            from_duckdb += 1
        if len(offsets) < room:
            offsets.append(offset)
            reasons.append(why)
            texts.append(raw[:KEEP_BYTES].decode("utf-8", errors="replace"))
    if offsets:  # one statement for them all: a row at a time took minutes for 100,000
        con.execute(
            "insert into pipeline.quarantine "
            "select $source, unnest($offsets), unnest($reasons), unnest($texts)",
            {"source": s.source, "offsets": offsets, "reasons": reasons, "texts": texts},
        )
    if found:
        con.execute("insert into pipeline.quarantine_counts values (?, ?, ?)",
                    [s.source, s.start, found])
    return Found(found, max(0, refused_by_duckdb - from_duckdb))


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
        total = con.execute(
            "select coalesce(sum(lines), 0) from pipeline.quarantine_counts where source = ?",
            [source],
        ).fetchone()
        target = file_for(quarantine_dir, source)
        if not rows:
            target.unlink(missing_ok=True)
            continue
        records = [Refused(*row) for row in rows]
        omitted = (int(total[0]) if total else 0) - len(rows)
        if omitted > 0:
            records.append(Refused(source, None, f"{omitted:,} more refused lines were counted "
                                                 f"but not kept: only the first {KEEP_LINES:,} "
                                                 "of a file are", ""))
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        with open(tmp, "wb") as f:
            f.write(b"".join(encoder.encode(r) + b"\n" for r in records))
        os.replace(tmp, target)
        written.add(target)
    if full and quarantine_dir.is_dir():
        for path in quarantine_dir.rglob("*.jsonl"):
            if path not in written:
                path.unlink()
