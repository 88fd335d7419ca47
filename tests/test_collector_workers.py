"""`footfall collect --workers N`: N processes on one port, each with its own log files; a
worker that dies is started again; SIGTERM drains them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from footfall.demo import free_port
from tests.helpers import CHROME_UA, read_lines, write_config


def _start(config: Path, port: int, workers: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "footfall", "collect", "--config", str(config),
         "--port", str(port), "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        if len(_children(proc.pid)) == workers and _listeners(port) == workers:
            return proc
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the workers did not start")


def _children(pid: int) -> list[int]:
    """The parent's worker processes (not multiprocessing's resource tracker)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [k for k in kids if b"spawn_main" in _cmdline(k)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _listeners(port: int) -> int:
    """Sockets listening on the port (state 0A in /proc/net/tcp): one per ready worker."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows
               if row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A")


def _send(port: int, n: int, tag: str) -> int:
    accepted = 0
    for i in range(n):  # one connection each, so the kernel spreads them over the workers
        body = json.dumps({"n": "pageview", "u": f"https://example.com/{tag}/{i}",
                           "d": "example.com"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/api/event", data=body,
                                     headers={"User-Agent": CHROME_UA, "Connection": "close"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            accepted += resp.status == 202
    return accepted


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, collector={"rate_limit_per_min": 0,
                                             "fsync_interval_s": 0.05})


def test_workers_share_the_port_restart_and_drain(config: Path, tmp_path: Path) -> None:
    port = free_port()
    proc = _start(config, port, workers=2)
    try:
        assert _send(port, 40, "first") == 40
        files = {p.name for p in (tmp_path / "data" / "logs").rglob("*.jsonl")}
        assert len(files) == 2  # both workers took beacons, each into its own file
        victim = _children(proc.pid)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            kids = _children(proc.pid)
            if len(kids) == 2 and victim not in kids and _listeners(port) == 2:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the dead worker was not started again")
        assert _send(port, 40, "second") == 40
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    paths = [line["path"] for line in read_lines(tmp_path / "data")]
    assert sorted(paths) == sorted([f"/first/{i}" for i in range(40)]
                                   + [f"/second/{i}" for i in range(40)])
    assert b"worker exited" in err and b"Traceback" not in err


def test_workers_stop_when_the_parent_is_killed(config: Path) -> None:
    port = free_port()
    proc = _start(config, port, workers=2)
    kids = _children(proc.pid)
    proc.kill()  # SIGKILL: the parent cannot pass anything on
    proc.wait(timeout=10)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_cmdline(k) for k in kids):
        time.sleep(0.2)
    assert not any(_cmdline(k) for k in kids), "orphaned workers kept running"
    assert _listeners(port) == 0


def test_a_port_in_use_is_one_line(config: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        res = subprocess.run([sys.executable, "-m", "footfall", "collect", "--config",
                              str(config), "--port", str(port), "--workers", "2"],
                             capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("footfall collect: ") and "another process listens" in last
    assert "Traceback" not in res.stderr
