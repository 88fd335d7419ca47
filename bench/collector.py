"""Collector throughput and latency against a bare aiohttp 202 handler, in the same run.

    python -m bench.collector [--duration 10] [--events 1000000]

Needs Debian's `wrk`. Each phase runs the server in its own process and wrk in another,
on loopback, pinned to separate cores where the machine has two.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import yaml

BARE = textwrap.dedent("""
    import sys
    from aiohttp import web
    from collector.server import new_event_loop
    async def handler(request):
        await request.read()
        return web.Response(status=202, text="ok")
    app = web.Application()
    app.router.add_post("/api/event", handler)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None,
                loop=new_event_loop())
""")

LUA = textwrap.dedent("""
    local uas = {
      "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
      "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
      "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    }
    local paths = {"/", "/pricing", "/blog/hello-world", "/docs/install", "/about"}
    local n = 0
    request = function()
      n = n + 1
      local body = '{"n":"pageview","u":"https://example.com' .. paths[(n % #paths) + 1] ..
        '?utm_source=bench","d":"example.com","r":"https://www.google.com/","w":1440,"tz":"Europe/Berlin"}'
      return wrk.format("POST", "/api/event",
        {["Content-Type"] = "text/plain", ["User-Agent"] = uas[(n % #uas) + 1]}, body)
    end
    DELAY
    done = function(summary, latency, requests)
      io.write(string.format("JSON {\\"requests\\": %d, \\"errors\\": %d, \\"p50_ms\\": %.3f, " ..
        "\\"p99_ms\\": %.3f, \\"non2xx\\": %d}\\n", summary.requests,
        summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
        latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
    end
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def pin(cpu: int) -> list[str]:
    return ["taskset", "-c", str(cpu)] if shutil.which("taskset") and os.cpu_count() else []


def wrk(port: int, seconds: float, connections: int, script: Path) -> dict[str, float]:
    cmd = [*pin(1), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}/api/event"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    match = re.search(r"^JSON (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(out)
    result: dict[str, float] = json.loads(match.group(1))
    result["rps"] = result["requests"] / seconds
    return result


def script(folder: Path, delay_ms: float | None) -> Path:
    path = folder / f"load-{delay_ms}.lua"
    delay = f"delay = function() return {delay_ms} end" if delay_ms else ""
    path.write_text(LUA.replace("DELAY", delay))
    return path


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_collector(workdir: Path, loop: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cfg = {"data_dir": str(workdir / "data"), "site_dir": str(workdir / "site"),
           "sites": [{"domain": "example.com", "timezone": "Europe/Berlin"}],
           "collector": {"host": "127.0.0.1", "port": port, "fsync_interval_s": 1.0}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([*pin(0), sys.executable, "-m", "collector", "--config",
                             str(workdir / "config.yaml")], stderr=subprocess.DEVNULL,
                            env={**os.environ, "FOOTFALL_EVENT_LOOP": loop})
    wait_port(port)
    return proc, port


def measure(collector: subprocess.Popen[bytes], port: int, duration: float, events: int,
            full: Path, paced: Path) -> dict[str, Any]:
    wrk(port, 2, 32, full)  # warm-up
    ours = wrk(port, duration, 32, full)
    # 56 connections each pausing 10 ms between requests: about 5,000 events/s.
    paced_result = wrk(port, duration, 56, paced)

    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(rss_kb(collector.pid))

    start_rss = rss_kb(collector.pid)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    soak = wrk(port, max(10.0, 1.2 * events / max(ours["rps"], 1.0)), 32, full)
    stop.set()
    thread.join()
    return {"ours": ours, "paced": paced_result, "soak": soak, "start_rss": start_rss,
            "end_rss": rss_kb(collector.pid), "samples": samples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--events", type=int, default=1_000_000, help="events for the RSS soak")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                    help="event loop for both servers (uvloop falls back when missing)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        full, paced = script(work, None), script(work, 10)

        port = free_port()
        bare = subprocess.Popen([*pin(0), sys.executable, "-c", BARE, str(port)],
                                env={**os.environ, "FOOTFALL_EVENT_LOOP": args.loop})
        try:
            wait_port(port)
            wrk(port, 2, 32, full)  # warm-up
            base = wrk(port, args.duration, 32, full)
        finally:
            bare.terminate()
            bare.wait()

        collector, cport = start_collector(work, args.loop)
        try:
            m = measure(collector, cport, args.duration, args.events, full, paced)
        finally:
            collector.terminate()
            collector.wait()


    ours, paced_result, soak = m["ours"], m["paced"], m["soak"]
    start_rss, end_rss, samples = m["start_rss"], m["end_rss"], m["samples"]
    report = {
        "loop": args.loop,
        "bare_rps": round(base["rps"]),
        "bare_p50_ms": base["p50_ms"], "bare_p99_ms": base["p99_ms"],
        "collector_rps": round(ours["rps"]), "collector_p50_ms": ours["p50_ms"],
        "collector_p99_ms": ours["p99_ms"], "ratio": round(ours["rps"] / base["rps"], 3),
        "paced_rps": round(paced_result["rps"]), "paced_p50_ms": paced_result["p50_ms"],
        "paced_p99_ms": paced_result["p99_ms"],
        "soak_events": soak["requests"], "rss_before_soak_mb": round(start_rss / 1024, 1),
        "rss_after_soak_mb": round(end_rss / 1024, 1),
        "rss_samples_mb": [round(r / 1024, 1) for r in samples[:: max(1, len(samples) // 10)]],
        "errors": base["errors"] + ours["errors"] + paced_result["errors"] + soak["errors"],
        "non2xx": ours["non2xx"] + paced_result["non2xx"] + soak["non2xx"],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
