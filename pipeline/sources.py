"""Which log bytes are new: per-file offsets, complete lines only, copies of appended tails.

Every regular `*.jsonl` and `*.jsonl.gz` file under `data_dir/logs/`, recursively, is a
source, whoever wrote it. For each, the database remembers how many bytes were consumed
(`pipeline.files`). A run reads only what is new, and only up to the last newline: a
half-written last line waits for the next run.

DuckDB cannot start reading at an offset, so the new complete bytes of a file that grew are
copied to a private temp file and DuckDB reads that. A whole file that ends in a newline is
read where it lies. A `.gz` file is decompressed whole whenever its size changes; event ids
make re-reading it harmless. A file that shrank, or whose first bytes changed, was replaced
and is read again from the start. A day's files compacted into one `.jsonl.gz`
(pipeline/lifecycle.py) are remembered as that file, consumed (`remember_gz`), so a run never
reads them twice.

Hostile files cannot stop or swamp a run (docs/guarantees.md, "Pipeline"):

- A line longer than MAX_LINE_BYTES (far above anything the contract allows) never reaches
  DuckDB: it is cut out of the copy and handed to the quarantine as a `Cut`. Finding such
  lines reads one small probe per MAX_LINE_BYTES / 2 bytes, not the whole file.
- A `.gz` file is decompressed in bounded steps, and at most MAX_GZ_EXPANSION bytes per
  compressed byte; a bomb is read up to that bound and reported.
- Symbolic links, and anything that is not a regular file, are never followed or read; a
  directory reached twice (a bind mount loop) is walked once. An unreadable file is skipped.
  Each of these is a `Skipped`, logged as a warning; the rest of the logs is read.
"""

from __future__ import annotations

import bisect
import errno
import hashlib
import itertools
import logging
import os
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

HEAD_BYTES = 4096
_CHUNK = 1 << 20
_PROBE = 4096

#: The longest log line read. The contract's caps keep a line the collector writes far below
#: it (tests/test_hardening_pipeline.py measures the largest); a longer line is quarantined.
MAX_LINE_BYTES = 1 << 20

#: Decompressed bytes read per compressed byte of a `.gz` source. JSONL logs compress about
#: 10:1; a gzip bomb of zeros about 1000:1.
MAX_GZ_EXPANSION = 100

# _Lines relies on it: a line wholly inside one decompressed chunk is never too long
assert _CHUNK <= MAX_LINE_BYTES

log = logging.getLogger(__name__)


_ACCESS_FIX = "give the user footfall runs read access to it (chown or chmod)"


@dataclass(frozen=True)
class Consumed:
    """What the database remembers of a source file."""

    size: int  # on-disk size when last read
    consumed: int  # bytes read (for .gz: of the decompressed stream)
    head: str  # digest of the first min(consumed, HEAD_BYTES) on-disk bytes


@dataclass(frozen=True)
class Cut:
    """A complete line longer than MAX_LINE_BYTES, left out of what DuckDB reads."""

    offset: int  # in the source (decompressed for .gz)
    length: int  # without its newline


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
    cuts: tuple[Cut, ...] = ()  # lines left out of path, in order

    @property
    def remembered(self) -> Consumed:
        return Consumed(self.size, self.end, self.head)


@dataclass(frozen=True)
class Skipped:
    """A source, or the rest of one, that this run does not read; logged as a warning."""

    source: str
    why: str  # completes "data_dir/logs/<source> …"


def _is_utf8(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # bytes that are not UTF-8 come back as lone surrogates
        return False
    return True


def printable(text: str) -> str:
    """text with control characters (and undecodable bytes) escaped, safe on a terminal."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


_A_LINK = "is a symbolic link, which footfall does not follow; move the file itself into logs/"


def discover(logs_dir: Path) -> tuple[list[tuple[str, Path]], list[Skipped]]:
    """Every source under logs_dir, sorted, as (relative name, path); and what was passed over.

    Links are not followed, so discovery never leaves logs_dir and never loops through a link;
    a directory met a second time (a bind mount of a parent) is not walked again.
    """
    found: list[tuple[str, Path]] = []
    skipped: list[Skipped] = []
    if not logs_dir.is_dir():
        return found, skipped

    def name(path: str | Path) -> str:
        return Path(path).relative_to(logs_dir).as_posix()

    def unlistable(exc: OSError) -> None:
        skipped.append(Skipped(name(exc.filename), f"cannot be listed ({exc.strerror}): "
                               f"{_ACCESS_FIX}; its files are read once it can be"))

    walked: set[tuple[int, int]] = set()
    for root, dirs, files in os.walk(logs_dir, onerror=unlistable):
        try:
            here = os.stat(root)
        except OSError as exc:  # removed, or made unreadable, since its parent was listed
            if not isinstance(exc, FileNotFoundError):
                unlistable(exc)
            dirs.clear()
            continue
        if (here.st_dev, here.st_ino) in walked:
            skipped.append(Skipped(name(root), "is a folder already read under another name"))
            dirs.clear()
            continue
        walked.add((here.st_dev, here.st_ino))
        for d in list(dirs):
            if os.path.islink(os.path.join(root, d)):
                skipped.append(Skipped(name(os.path.join(root, d)), _A_LINK))
                dirs.remove(d)
        dirs.sort()
        for file in files:
            if not file.endswith((".jsonl", ".jsonl.gz")) or file.startswith("."):
                continue
            path = Path(root) / file
            if not _is_utf8(name(path)):  # DuckDB could not be given its name
                skipped.append(Skipped(name(path), "has a name that is not UTF-8; rename it"))
                continue
            try:
                mode = path.lstat().st_mode
            except FileNotFoundError:  # rotated away since the listing
                continue
            if stat.S_ISLNK(mode):
                skipped.append(Skipped(name(path), _A_LINK))
            elif not stat.S_ISREG(mode):
                skipped.append(Skipped(name(path), "is not a regular file"))
            else:
                found.append((name(path), path))
    return sorted(found), skipped


def open_source(path: Path) -> BinaryIO:
    """path for reading, refusing a link or a FIFO swapped in since discovery."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _head(f: BinaryIO, length: int) -> str:
    data = os.pread(f.fileno(), min(length, HEAD_BYTES), 0)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _find_newline(f: BinaryIO, start: int, end: int) -> int:
    """Offset of the first b'\\n' in f[start:end], or -1; reads little when lines are short."""
    pos, want = start, _PROBE
    while pos < end:
        chunk = os.pread(f.fileno(), min(want, end - pos), pos)
        if not chunk:
            break
        i = chunk.find(b"\n")
        if i >= 0:
            return pos + i
        pos += len(chunk)
        want = min(want * 4, _CHUNK)
    return -1


def _last_newline(f: BinaryIO, start: int, end: int) -> int:
    """Offset just past the last b'\\n' in f[start:end], or start when there is none."""
    pos = end
    while pos > start:
        step = min(_CHUNK, pos - start)
        chunk = os.pread(f.fileno(), step, pos - step)
        i = chunk.rfind(b"\n")
        if i >= 0:
            return pos - step + i + 1
        pos -= step
    return start


def _long_lines(f: BinaryIO, start: int, end: int) -> list[Cut]:
    """Every line in f[start:end] (which ends in a newline) longer than MAX_LINE_BYTES.

    Any such line covers a whole block of MAX_LINE_BYTES // 2 bytes, so it is enough to look
    for a newline in each block, which the probe finds in its first bytes; only a block
    without one is measured.
    """
    step = MAX_LINE_BYTES // 2
    cuts = []
    pos = start
    while pos < end:
        block_end = min(pos + step, end)
        if _find_newline(f, pos, block_end) >= 0:
            pos = block_end
            continue
        first = _last_newline(f, start, pos)
        newline = _find_newline(f, block_end, end)
        if newline < 0:
            raise OSError(errno.EAGAIN, "the file shrank while it was read")
        if newline - first > MAX_LINE_BYTES:
            cuts.append(Cut(first, newline - first))
        pos = newline + 1
    return cuts


def _kept(start: int, end: int, cuts: tuple[Cut, ...] | list[Cut]) -> list[tuple[int, int]]:
    """The (start, end) ranges of the source left once the cut lines and their newlines go."""
    ranges, pos = [], start
    for cut in cuts:
        if cut.offset > pos:
            ranges.append((pos, cut.offset))
        pos = cut.offset + cut.length + 1
    if end > pos:
        ranges.append((pos, end))
    return ranges


def _copy_ranges(f: BinaryIO, dst: Path, ranges: list[tuple[int, int]]) -> None:
    with open(dst, "wb") as fout:
        for start, end in ranges:
            remaining = end - start
            while remaining > 0:
                n = os.copy_file_range(f.fileno(), fout.fileno(), remaining,
                                       offset_src=end - remaining)
                if n == 0:
                    raise OSError(errno.EAGAIN, "the file shrank while it was copied")
                remaining -= n


class _Lines:
    """Writes the complete lines of a stream fed in chunks of at most _CHUNK bytes, leaving
    out (as cuts) those longer than MAX_LINE_BYTES; holds at most one line in memory."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.fed = 0  # stream offset of the next byte fed
        self.line_start = 0
        self.pending = bytearray()  # the current line so far, unless it is being dropped
        self.dropping = False
        self.cuts: list[Cut] = []

    def feed(self, data: bytes) -> None:
        first = data.find(b"\n")
        if first >= 0:
            length = self.fed + first - self.line_start
            if self.dropping or length > MAX_LINE_BYTES:
                self.cuts.append(Cut(self.line_start, length))
            else:
                self.out.write(self.pending)
                self.out.write(data[: first + 1])
            self.pending.clear()
            self.dropping = False
            last = data.rfind(b"\n")
            # the lines between lie wholly inside one chunk, so none is too long
            self.out.write(data[first + 1 : last + 1])
            self.line_start = self.fed + last + 1
            data = data[last + 1 :]
            self.fed = self.line_start
        if not self.dropping:
            if len(self.pending) + len(data) > MAX_LINE_BYTES:
                self.dropping = True
                self.pending.clear()
            else:
                self.pending += data
        self.fed += len(data)


def _gunzip_complete(f: BinaryIO, dst: Path, limit: int) -> tuple[int, list[Cut], bool]:
    """Decompress f into dst, complete lines only, in steps of at most _CHUNK bytes and no
    further than `limit` decompressed bytes; tolerates a truncated or corrupt tail.

    Returns the offset just past the last complete line, the cut lines, and whether the limit
    stopped it.
    """
    d = zlib.decompressobj(wbits=31)
    total = 0
    with open(dst, "wb") as out:
        lines = _Lines(out)
        data = b""
        while True:
            if not data:
                data = f.read(_CHUNK)
                if not data:
                    break
            try:
                chunk = d.decompress(data, _CHUNK)
            except zlib.error:
                break
            if d.eof:  # concatenated gzip members: go on with a fresh decompressor
                data = d.unused_data
                d = zlib.decompressobj(wbits=31)
            else:
                data = d.unconsumed_tail
            if total + len(chunk) > limit:
                lines.feed(chunk[: limit - total])
                return lines.line_start, lines.cuts, True
            lines.feed(chunk)
            total += len(chunk)
    return lines.line_start, lines.cuts, False


def plan(
    logs_dir: Path, known: dict[str, Consumed], tmp_dir: Path, full: bool
) -> tuple[list[Slice], list[Skipped]]:
    """The slices to read this run, writing temp copies into tmp_dir as needed; and what was
    skipped, each also logged as a warning."""
    found, skipped = discover(logs_dir)
    slices: list[Slice] = []
    for n, (source, path) in enumerate(found):
        before = None if full else known.get(source)
        copy = tmp_dir / f"{n:06d}.jsonl"
        try:
            with open_source(path) as f:
                if source.endswith(".gz"):
                    s = _plan_gz(f, source, before, copy, skipped)
                else:
                    s = _plan_plain(f, source, path, before, copy)
        except FileNotFoundError:  # rotated away since the listing
            continue
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):  # writing the copy: not the file's fault
                raise
            skipped.append(Skipped(source, f"cannot be read ({exc.strerror or exc}): "
                                           f"{_ACCESS_FIX}; it is tried again next run"))
            continue
        if s is not None:
            slices.append(s)
    for s_ in skipped:
        log.warning("data_dir/logs/%s %s", printable(s_.source), s_.why)
    return slices, skipped


def _plan_plain(
    f: BinaryIO, source: str, path: Path, before: Consumed | None, copy: Path
) -> Slice | None:
    size = os.fstat(f.fileno()).st_size
    start = 0
    if before is not None and before.consumed <= size and _head(f, before.consumed) == before.head:
        start = before.consumed
    end = _last_newline(f, start, size)
    if end <= start:
        return None
    head = _head(f, end)
    cuts = _long_lines(f, start, end)
    if start == 0 and end == size and not cuts:
        return Slice(source, path, 0, end, size, head, True)
    _copy_ranges(f, copy, _kept(start, end, cuts))
    return Slice(source, copy, start, end, size, head, False, tuple(cuts))


def _plan_gz(
    f: BinaryIO, source: str, before: Consumed | None, copy: Path, skipped: list[Skipped]
) -> Slice | None:
    size = os.fstat(f.fileno()).st_size
    if size == 0:
        return None
    head = _head(f, size)
    if before is not None and before.size == size and before.head == head:
        return None
    end, cuts, stopped = _gunzip_complete(f, copy, MAX_GZ_EXPANSION * size)
    if stopped:
        read = f"only its first {end:,} bytes were read" if end else "none of it was read"
        skipped.append(Skipped(source, f"decompresses to more than {MAX_GZ_EXPANSION} times its "
                                       f"size; {read}"))
    if end == 0:
        return None
    return Slice(source, copy, 0, end, size, head, False, tuple(cuts))


def read_to_the_end(path: Path, before: Consumed | None) -> bool:
    """Whether a run (`before`) read every line of the source at path: a plain file whose
    first bytes are the ones read and which has no newline past them (an unfinished last line
    is no line yet, docs/log-format.md), a `.gz` file as it was read."""
    if before is None:
        return False
    with open_source(path) as f:
        size = os.fstat(f.fileno()).st_size
        if path.name.endswith(".gz"):
            return before.size == size and _head(f, size) == before.head
        return (before.consumed <= size and _head(f, before.consumed) == before.head
                and _find_newline(f, before.consumed, size) < 0)


def remember_gz(path: Path, decompressed: int) -> Consumed:
    """What a run that read the whole `.gz` file at path would remember of it: `plan` passes
    over it while it stays as it is."""
    with open_source(path) as f:
        size = os.fstat(f.fileno()).st_size
        return Consumed(size, decompressed, _head(f, size))


def copy_out(s: Slice, tmp_dir: Path, n: int) -> Slice:
    """A private copy of an in-place slice, for a source that grew while DuckDB read it."""
    copy = tmp_dir / f"regrown-{n:06d}.jsonl"
    with open_source(s.path) as f:
        _copy_ranges(f, copy, _kept(s.start, s.end, s.cuts))
    return Slice(s.source, copy, s.start, s.end, s.size, s.head, False, s.cuts)


def lines(s: Slice) -> Iterator[tuple[int, bytes]]:
    """(offset in the source, line without newline) for every non-blank line DuckDB read of a
    slice, streamed: memory holds a chunk and a line, never the slice."""
    ranges = _kept(s.start, s.end, s.cuts)
    # where each kept range begins in s.path
    begins = list(itertools.accumulate((end - start for start, end in ranges[:-1]), initial=0))
    remaining = sum(end - start for start, end in ranges)
    read = 0  # bytes of s.path before `buffer`
    buffer = b""
    with open(s.path, "rb") as f:
        while True:
            chunk = f.read(min(_CHUNK, remaining)) if remaining else b""
            remaining -= len(chunk)
            data = buffer + chunk
            pos = 0
            while True:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    if chunk:
                        break
                    nl = len(data)  # the last line of a slice always ends in one
                line = data[pos:nl]
                if line.strip():
                    at = read + pos
                    i = bisect.bisect_right(begins, at) - 1
                    yield ranges[i][0] + at - begins[i], line
                pos = nl + 1
                if pos >= len(data):
                    break
            if not chunk:
                return
            buffer = data[pos:]
            read += pos
