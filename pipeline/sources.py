"""Which log bytes are new: per-file offsets, complete lines only, copies of appended tails.

Every `*.jsonl` and `*.jsonl.gz` under `data_dir/logs/`, recursively, is a source, whoever
wrote it. For each, the database remembers how many bytes were consumed (`pipeline.files`).
A run reads only what is new, and only up to the last newline: a half-written last line
waits for the next run.

DuckDB cannot start reading at an offset, so the new complete bytes of a file that grew are
copied to a private temp file and DuckDB reads that. A whole file that ends in a newline is
read where it lies. A `.gz` file is decompressed whole whenever its size changes; event ids
make re-reading it harmless. A file that shrank, or whose first bytes changed, was replaced
and is read again from the start.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HEAD_BYTES = 4096
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Consumed:
    """What the database remembers of a source file."""

    size: int  # on-disk size when last read
    consumed: int  # bytes read (for .gz: of the decompressed stream)
    head: str  # digest of the first min(consumed, HEAD_BYTES) on-disk bytes


@dataclass(frozen=True)
class Slice:
    """New complete lines of one source, ready for DuckDB."""

    source: str  # path relative to the logs folder, with forward slashes
    path: Path  # the file DuckDB reads: the source itself or a temp copy
    start: int  # offset of path's first byte in the source (decompressed for .gz)
    end: int  # offset just past the last newline read
    size: int  # on-disk size of the source at scan time
    head: str
    in_place: bool  # path is the source itself, which may still grow while it is read

    @property
    def remembered(self) -> Consumed:
        return Consumed(self.size, self.end, self.head)


def discover(logs_dir: Path) -> Iterator[tuple[str, Path]]:
    """Every source under logs_dir, sorted, as (relative name, path)."""
    if not logs_dir.is_dir():
        return
    found = []
    for root, dirs, files in os.walk(logs_dir, followlinks=True):
        dirs.sort()
        for name in files:
            if name.endswith((".jsonl", ".jsonl.gz")) and not name.startswith("."):
                path = Path(root) / name
                found.append((path.relative_to(logs_dir).as_posix(), path))
    yield from sorted(found)


def _head(path: Path, length: int) -> str:
    with open(path, "rb") as f:
        return hashlib.blake2b(f.read(min(length, HEAD_BYTES)), digest_size=16).hexdigest()


def _last_newline(path: Path, start: int, end: int) -> int:
    """Offset just past the last b'\\n' in path[start:end], or start when there is none."""
    with open(path, "rb") as f:
        pos = end
        while pos > start:
            step = min(_CHUNK, pos - start)
            f.seek(pos - step)
            chunk = f.read(step)
            i = chunk.rfind(b"\n")
            if i >= 0:
                return pos - step + i + 1
            pos -= step
    return start


def _copy_range(src: Path, dst: Path, start: int, end: int) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        fin.seek(start)
        remaining = end - start
        while remaining > 0:
            n = os.copy_file_range(fin.fileno(), fout.fileno(), remaining)
            if n == 0:
                raise OSError(f"{src} shrank while being copied")
            remaining -= n


def _gunzip_complete(src: Path, dst: Path) -> int:
    """Decompress src into dst up to its last complete line; tolerates a truncated tail."""
    d = zlib.decompressobj(wbits=31)
    written = 0
    last_newline = 0
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while True:
            chunk = fin.read(_CHUNK)
            if not chunk:
                break
            try:
                out = d.decompress(chunk)
                # concatenated gzip members: continue with a fresh decompressor
                while d.eof and d.unused_data:
                    rest = d.unused_data
                    d = zlib.decompressobj(wbits=31)
                    out += d.decompress(rest)
            except zlib.error:
                break
            i = out.rfind(b"\n")
            if i >= 0:
                last_newline = written + i + 1
            fout.write(out)
            written += len(out)
        fout.truncate(last_newline)
    return last_newline


def plan(
    logs_dir: Path, known: dict[str, Consumed], tmp_dir: Path, full: bool
) -> list[Slice]:
    """The slices to read this run; writes temp copies into tmp_dir as needed."""
    slices: list[Slice] = []
    for n, (source, path) in enumerate(discover(logs_dir)):
        try:
            size = path.stat().st_size
        except FileNotFoundError:  # rotated away between listing and stat
            continue
        if size == 0:
            continue
        before = None if full else known.get(source)
        if source.endswith(".gz"):
            head = _head(path, size)
            if before is not None and before.size == size and before.head == head:
                continue
            copy = tmp_dir / f"{n:06d}.jsonl"
            end = _gunzip_complete(path, copy)
            if end == 0:
                copy.unlink()
                continue
            slices.append(Slice(source, copy, 0, end, size, head, False))
            continue
        start = 0
        if before is not None and before.consumed <= size \
                and _head(path, before.consumed) == before.head:
            start = before.consumed
        end = _last_newline(path, start, size)
        if end <= start:
            continue
        head = _head(path, end)
        if start == 0 and end == size:
            slices.append(Slice(source, path, 0, end, size, head, True))
        else:
            copy = tmp_dir / f"{n:06d}.jsonl"
            _copy_range(path, copy, start, end)
            slices.append(Slice(source, copy, start, end, size, head, False))
    return slices


def copy_out(s: Slice, tmp_dir: Path, n: int) -> Slice:
    """A private copy of an in-place slice, for a source that grew while DuckDB read it."""
    copy = tmp_dir / f"regrown-{n:06d}.jsonl"
    _copy_range(s.path, copy, 0, s.end)
    return Slice(s.source, copy, s.start, s.end, s.size, s.head, False)


def lines(s: Slice) -> Iterator[tuple[int, bytes]]:
    """(offset in the source, line without newline) for every non-blank line of a slice."""
    with open(s.path, "rb") as f:
        data = f.read(s.end - s.start)
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            nl = len(data)
        line = data[pos:nl]
        if line.strip():
            yield s.start + pos, line
        pos = nl + 1
