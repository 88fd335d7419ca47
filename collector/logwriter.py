"""Appends log lines to rotating JSONL files under data_dir/logs/YYYY/MM/DD/.

Durability: `append` hands the bytes to the OS with one write(2) before it returns, so an
event acknowledged with 202 survives a kill -9; fsync runs on an interval for power loss.
File names carry host, pid, start time and a sequence, so any number of collectors on any
number of hosts never write to the same file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from datetime import date
from pathlib import Path

from collector.identity import Clock, utc_day
from footfall.errors import StorageError


def _safe_host() -> str:
    host = socket.gethostname().split(".")[0] or "host"
    return "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in host)[:40]


class LogWriter:
    def __init__(self, folder: Path, clock: Clock, rotate_bytes: int, fsync_interval_s: float):
        self.folder = folder
        self.clock = clock
        self.rotate_bytes = rotate_bytes
        self.fsync_every_write = fsync_interval_s <= 0
        self._prefix = f"{_safe_host()}-{os.getpid()}-{time.strftime('%H%M%S', time.gmtime())}"
        self._seq = 0
        self._fd: int | None = None
        self._day: date | None = None
        self._size = 0
        self._unsynced = False
        self.path: Path | None = None
        self.bytes_written = 0

    def _open(self, day: date) -> None:
        self.close()
        folder = self.folder / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}"
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            self._seq += 1
            path = folder / f"{self._prefix}-{self._seq:04d}.jsonl"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o640)
                break
            except FileExistsError:
                continue
        self._fd, self._day, self._size, self.path = fd, day, 0, path

    def append(self, line: bytes) -> None:
        """Write one complete line or nothing: a failed write is cut back off the file."""
        try:
            day = utc_day(self.clock())
            if self._fd is None or day != self._day or self._size >= self.rotate_bytes:
                self._open(day)
            assert self._fd is not None
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, "short write")
        except OSError as exc:
            self._undo()
            raise StorageError(f"cannot write the event log: {exc.strerror or exc}") from None
        self._size += written
        self.bytes_written += written
        if self.fsync_every_write:
            self.sync()
        else:
            self._unsynced = True

    def _undo(self) -> None:
        """Cut a torn line off, so the next line starts clean; else start a new file."""
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, self._size)
        except OSError:
            self.close()

    def sync(self) -> None:
        """fsync the current file; safe from a thread (a rotated-away fd is fsynced on close)."""
        self._unsynced = False  # before the fsync: writes during it stay marked
        fd = self._fd
        if fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(fd)

    @property
    def needs_sync(self) -> bool:
        return self._unsynced

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.fsync(fd)
            os.close(fd)
