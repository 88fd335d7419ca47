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

from footfall.demo import free_port

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
           "collector": {"host": "127.0.0.1", "port": port, "fsync_interval_s": 1.0,
                         # wrk is one client IP: keep the limiter's work, not its 429s
                         "rate_limit_per_min": 10**9}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.Popen([*pin(0), sys.executable, "-m", "footfall", "collect", "--config",
                             str(workdir / "config.yaml")], stderr=subprocess.DEVNULL,
                            env={**os.environ, "FOOTFALL_EVENT_LOOP": loop})
    wait_port(port)
    return proc, port


def soak(collector: subprocess.Popen[bytes], port: int, seconds: float,
         script_path: Path) -> dict[str, Any]:
    """Sustained load while sampling the collector's RSS once a second."""
    samples: list[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(1.0):
            samples.append(rss_kb(collector.pid))

    start = rss_kb(collector.pid)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    result = wrk(port, seconds, 32, script_path)
    stop.set()
    thread.join()
    return {**result, "start_rss": start, "end_rss": rss_kb(collector.pid), "samples": samples}


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--duration", type=float, default=5.0, help="seconds per measured round")
    ap.add_argument("--rounds", type=int, default=5, help="alternating bare/collector rounds")
    ap.add_argument("--events", type=int, default=1_000_000, help="events for the RSS soak")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                    help="event loop for both servers (uvloop falls back when missing)")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    env = {**os.environ, "FOOTFALL_EVENT_LOOP": args.loop}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        full, paced = script(work, None), script(work, 10)
        bare_port = free_port()
        bare = subprocess.Popen([*pin(0), sys.executable, "-c", BARE, str(bare_port)], env=env)
        collector, port = start_collector(work, args.loop)
        try:
            wait_port(bare_port)
            wrk(bare_port, 2, 32, full)  # warm-up
            wrk(port, 2, 32, full)
            # Alternate, so a noisy neighbour slows both sides alike; report medians.
            bases, ours = [], []
            for _ in range(args.rounds):
                bases.append(wrk(bare_port, args.duration, 32, full))
                ours.append(wrk(port, args.duration, 32, full))
            # 56 connections each pausing 10 ms between requests: about 5,000 events/s.
            paced_result = wrk(port, args.duration * 2, 56, paced)
            rps = median([r["rps"] for r in ours])
            soaked = soak(collector, port, max(10.0, 1.2 * args.events / max(rps, 1.0)), full)
        finally:
            for proc in (bare, collector):
                proc.terminate()
                proc.wait()

    ratios = [o["rps"] / b["rps"] for o, b in zip(ours, bases, strict=True)]
    samples = soaked["samples"]
    report = {
        "loop": args.loop,
        "bare_rps": round(median([r["rps"] for r in bases])),
        "bare_p99_ms": median([r["p99_ms"] for r in bases]),
        "collector_rps": round(rps),
        "collector_p50_ms": median([r["p50_ms"] for r in ours]),
        "collector_p99_ms": median([r["p99_ms"] for r in ours]),
        "ratio_median": round(median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "paced_rps": round(paced_result["rps"]), "paced_p50_ms": paced_result["p50_ms"],
        "paced_p99_ms": paced_result["p99_ms"],
        "soak_events": soaked["requests"],
        "rss_before_soak_mb": round(soaked["start_rss"] / 1024, 1),
        "rss_after_soak_mb": round(soaked["end_rss"] / 1024, 1),
        "rss_samples_mb": [round(r / 1024, 1) for r in samples[:: max(1, len(samples) // 10)]],
        "errors": sum(r["errors"] for r in [*bases, *ours, paced_result, soaked]),
        "non2xx": sum(r["non2xx"] for r in [*ours, paced_result, soaked]),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
