"""Helpers shared by the tests: configs on disk, user agents, a clock, log lines, and the
collector as a real process. Fixtures that hand these out live in conftest.py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/124.0.0.0 Safari/537.36")
IPHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")
GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def base_config(tmp: Path, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "data_dir": str(tmp / "data"),
        "site_dir": str(tmp / "site"),
        "sites": [
            {"domain": "example.com", "timezone": "Europe/Berlin", "name": "Example"},
            {"domain": "shop.test", "timezone": "UTC"},
        ],
        "collector": {"host": "127.0.0.1", "port": 0, "fsync_interval_s": 0.2},
        "sessions": {"timeout_minutes": 30},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return raw


def write_config(tmp: Path, **overrides: Any) -> Path:
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp, **overrides)))
    return path


class Clock:
    """An injectable clock in epoch ms; tests move it forward by hand."""

    def __init__(self, iso: str = "2026-03-10T12:00:00") -> None:
        self.ms = int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)

    def __call__(self) -> int:
        return self.ms

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


def read_lines(data_dir: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    for path in sorted((data_dir / "logs").rglob("*.jsonl")):
        for raw in path.read_bytes().splitlines():
            lines.append(json.loads(raw))
    return lines


class CollectorProcess:
    """`footfall collect` as a real subprocess, for kill -9 and browser tests."""

    def __init__(self, config_path: Path, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "footfall", "collect", "--config", str(config_path),
             "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stderr.read().decode() if self.proc.stderr else "")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        raise RuntimeError("collector did not start")

    def stop(self) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err.decode(errors="replace")


#: FOOTFALL_LONG=1 (`make fuzz`, `make soak`) switches the adversarial tests to their long
#: modes: more cases, every variant. Quick mode runs a sample of the same tests, never a skip.
LONG = os.environ.get("FOOTFALL_LONG", "") == "1"


def scaled(quick: int, long: int) -> int:
    """A count for the current mode."""
    return long if LONG else quick


def numbered_beacon(i: int, **extra: Any) -> bytes:
    """A pageview whose props carry `seq` = i, to find each acknowledged event again."""
    return json.dumps({"n": "pageview", "u": f"https://example.com/p/{i}", "d": "example.com",
                       "p": {"seq": i}, **extra}).encode()


def hammer(url: str, first: int, enough: Callable[[set[int]], bool],
           then: Callable[[], None], workers: int = 16) -> set[int]:
    """Numbered beacons (seq from `first` up) from `workers` clients at once; once `enough`
    of them are acknowledged, `then()` (a signal to the collector) runs with requests in
    flight, and the clients go on until the collector stops answering. Returns the seqs
    answered 202."""
    import aiohttp

    acked: set[int] = set()

    async def load() -> None:
        async with aiohttp.ClientSession() as session:
            counter = iter(range(first, first + 10_000_000))

            async def worker() -> None:
                for i in counter:
                    try:
                        async with session.post(f"{url}/api/event", data=numbered_beacon(i),
                                                headers={"User-Agent": CHROME_UA}) as resp:
                            if resp.status == 202:
                                acked.add(i)
                    except (aiohttp.ClientError, OSError):
                        return

            tasks = [asyncio.create_task(worker()) for _ in range(workers)]
            while not enough(acked):
                await asyncio.sleep(0.01)
            then()
            await asyncio.gather(*tasks)

    asyncio.run(asyncio.wait_for(load(), timeout=180))
    return acked


@contextmanager
def tmpfs(mnt: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` at `mnt`: a real full disk, not a simulated one. Needs root, which CI
    has: there a failure to mount fails the test instead of skipping it."""
    import pytest

    mnt.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        if IN_CI:
            pytest.fail(f"cannot mount a tmpfs to fill: {res.stderr}")
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(folder: Path, leave: int = 0) -> Path:
    """Fill the file system under `folder` until at most `leave` bytes are free."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
            if free <= leave:
                break
            os.write(fd, b"\0" * min(1 << 20, max(512, free - leave)))
    except OSError:
        pass  # full
    finally:
        os.close(fd)
    return filler
