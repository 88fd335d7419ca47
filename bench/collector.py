"""Collector throughput and latency against a bare aiohttp 202 handler, in the same run.

    python -m bench.collector [--duration 5] [--rounds 5] [--events 1000000] [--quick]
    python -m bench.collector --quick --compare /tmp/old-tree   # another source tree too

Needs Debian's `wrk`. Each server runs in its own process and wrk in another, on loopback.
Three servers are measured in alternating rounds: the bare handler and the collector with
one worker, each pinned to core 0, and the collector with two workers (`--workers 2`) on
cores 0 and 1. wrk stays on core 1 throughout, so on a two-core machine the second worker
shares its core with the load generator: that is the case the 1.4x target is set for.

Beside each server's requests per second, the report gives the CPU microseconds it spent
per request (user + system, its workers included) and wrk's own. On a busy shared machine
throughput measures the share of a core a server was given as much as its cost; CPU per
request is its cost alone, and `cpu_ratios` turns it into the throughput ratios each server
would reach on cores of its own (two workers: two cores shared with wrk).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
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


PINNING = {"on": True}  # --no-pin turns it off


def pin(cpus: str) -> list[str]:
    """taskset for a core list ("0", "0,1"), when taskset is there and the cores exist."""
    wanted = {int(c) for c in cpus.split(",")}
    usable = os.sched_getaffinity(0)
    if not PINNING["on"] or not shutil.which("taskset") or not wanted <= usable:
        return []
    return ["taskset", "-c", cpus]


SERVER_CORE, LOAD_CORE, TWO_WORKER_CORES = "0", "1", "0,1"


def wrk(port: int, seconds: float, connections: int, script: Path) -> dict[str, float]:
    cmd = [*pin(LOAD_CORE), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
           "-s", str(script), f"http://127.0.0.1:{port}/api/event"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child waited for
    wrk_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = re.search(r"^JSON (\{.*\})$", out, re.M)
    if not match:
        raise RuntimeError(out)
    result: dict[str, float] = json.loads(match.group(1))
    result["rps"] = result["requests"] / seconds
    result["wrk_cpu_us"] = wrk_cpu * 1e6 / max(1.0, result["requests"])
    return result


def script(folder: Path, delay_ms: float | None) -> Path:
    path = folder / f"load-{delay_ms}.lua"
    delay = f"delay = function() return {delay_ms} end" if delay_ms else ""
    path.write_text(LUA.replace("DELAY", delay))
    return path


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by a server and its worker processes.

    On a shared machine throughput measures the share of a core a server got as much as its
    own cost; CPU time per request is its cost alone, so the report gives both."""
    total = 0.0
    children = Path(f"/proc/{pid}/task/{pid}/children")
    kids = [int(k) for k in children.read_text().split()] if children.exists() else []
    for each in (pid, *kids):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def measured(pid: int, port: int, seconds: float, script_path: Path) -> dict[str, float]:
    """One wrk round, with the server's CPU microseconds per request."""
    before = cpu_s(pid)
    result = wrk(port, seconds, 32, script_path)
    result["cpu_us"] = (cpu_s(pid) - before) * 1e6 / max(1.0, result["requests"])
    return result


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start_collector(workdir: Path, loop: str, workers: int = 1,
                    tree: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """`footfall collect` on a free port; from another source tree when `tree` is given."""
    port = free_port()
    folder = workdir / f"collector-{port}"
    folder.mkdir()
    cfg = {"data_dir": str(folder / "data"), "site_dir": str(folder / "site"),
           "sites": [{"domain": "example.com", "timezone": "Europe/Berlin"}],
           "collector": {"host": "127.0.0.1", "port": port, "fsync_interval_s": 1.0,
                         # wrk is one client IP: keep the limiter's work, not its 429s
                         "rate_limit_per_min": 10**9}}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    cores = SERVER_CORE if workers == 1 else TWO_WORKER_CORES
    env = {**os.environ, "FOOTFALL_EVENT_LOOP": loop}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    proc = subprocess.Popen([*pin(cores), sys.executable, "-m", "footfall", "collect",
                             "--config", str(folder / "config.yaml"), "--workers", str(workers)],
                            stderr=subprocess.DEVNULL, env=env, cwd=tree)
    wait_port(port)
    if workers > 1:
        time.sleep(3)  # the port answers once the parent holds it; let every worker start
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
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, help="seconds per measured round (5; --quick 3)")
    ap.add_argument("--rounds", type=int, help="alternating rounds (5; --quick 3)")
    ap.add_argument("--events", type=int, default=1_000_000, help="events for the RSS soak")
    ap.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop",
                    help="event loop for every server (uvloop falls back when missing)")
    ap.add_argument("--quick", action="store_true",
                    help="no paced run and no soak, 3 rounds of 3 s unless given")
    ap.add_argument("--compare", type=Path, action="append", default=[],
                    help="also measure a collector (one worker) from this source tree, e.g. "
                         "`git archive main | tar -x -C /tmp/main`; repeatable")
    ap.add_argument("--no-pin", action="store_true",
                    help="let the kernel place every process: on a machine other people load, "
                         "a pinned core may be the busy one")
    args = ap.parse_args()
    PINNING["on"] = not args.no_pin
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    args.rounds = args.rounds or (3 if args.quick else 5)
    if not shutil.which("wrk"):
        sys.exit("wrk not found: apt-get install wrk")
    env = {**os.environ, "FOOTFALL_EVENT_LOOP": args.loop}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        full, paced = script(work, None), script(work, 10)
        bare_port = free_port()
        bare = subprocess.Popen([*pin(SERVER_CORE), sys.executable, "-c", BARE, str(bare_port)],
                                env=env)
        servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        try:
            wait_port(bare_port)
            servers["workers_1"] = start_collector(work, args.loop)
            servers["workers_2"] = start_collector(work, args.loop, workers=2)
            for tree in args.compare:
                servers[f"compare:{tree}"] = start_collector(work, args.loop, tree=tree.resolve())
            ports = {"bare": bare_port, **{name: port for name, (_, port) in servers.items()}}
            pids = {"bare": bare.pid, **{name: proc.pid for name, (proc, _) in servers.items()}}
            for port in ports.values():
                wrk(port, 2, 32, full)  # warm-up
            # Alternate, so a noisy neighbour slows every server alike; report medians.
            rounds: dict[str, list[dict[str, float]]] = {name: [] for name in ports}
            for _ in range(args.rounds):
                for name, port in ports.items():
                    rounds[name].append(measured(pids[name], port, args.duration, full))
            extra: dict[str, Any] = {}
            if not args.quick:
                collector, port = servers["workers_1"]
                # 56 connections each pausing 10 ms between requests: about 5,000 events/s.
                paced_result = wrk(port, args.duration * 2, 56, paced)
                rps = median([r["rps"] for r in rounds["workers_1"]])
                soaked = soak(collector, port, max(10.0, 1.2 * args.events / max(rps, 1.0)), full)
                samples = soaked["samples"]
                extra = {
                    "paced_rps": round(paced_result["rps"]),
                    "paced_p50_ms": paced_result["p50_ms"],
                    "paced_p99_ms": paced_result["p99_ms"],
                    "soak_events": soaked["requests"],
                    "rss_before_soak_mb": round(soaked["start_rss"] / 1024, 1),
                    "rss_after_soak_mb": round(soaked["end_rss"] / 1024, 1),
                    "rss_samples_mb": [round(r / 1024, 1)
                                       for r in samples[:: max(1, len(samples) // 10)]],
                    "paced_soak_errors": paced_result["errors"] + soaked["errors"],
                    "paced_soak_non2xx": paced_result["non2xx"] + soaked["non2xx"],
                }
        finally:
            for proc in [bare, *(p for p, _ in servers.values())]:
                proc.terminate()
                proc.wait()

    def per_round(top: str, bottom: str) -> list[float]:
        return [round(t["rps"] / b["rps"], 3)
                for t, b in zip(rounds[top], rounds[bottom], strict=True)]

    def cpu_ratio(top: str, bottom: str) -> float:
        """Throughput ratio on a core of its own: the inverse ratio of CPU per request."""
        return round(median([r["cpu_us"] for r in rounds[bottom]])
                     / median([r["cpu_us"] for r in rounds[top]]), 3)

    ratios = {"workers_1 / bare": per_round("workers_1", "bare"),
              "workers_2 / workers_1": per_round("workers_2", "workers_1"),
              **{f"{name} / bare": per_round(name, "bare") for name in ports
                 if name.startswith("compare:")},
              **{f"workers_1 / {name}": per_round("workers_1", name) for name in ports
                 if name.startswith("compare:")}}
    report = {
        "loop": args.loop,
        "cores": sorted(os.sched_getaffinity(0)),
        "pinned": PINNING["on"],
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **{f"{name}_rps": round(median([r["rps"] for r in results]))
           for name, results in rounds.items()},
        **{f"{name}_p50_ms": median([r["p50_ms"] for r in results])
           for name, results in rounds.items()},
        **{f"{name}_p99_ms": median([r["p99_ms"] for r in results])
           for name, results in rounds.items()},
        **{f"{name}_cpu_us_per_request": round(median([r["cpu_us"] for r in results]), 1)
           for name, results in rounds.items()},
        "ratio_medians": {name: median(values) for name, values in ratios.items()},
        "wrk_cpu_us_per_request": round(median([r["wrk_cpu_us"] for r in rounds["workers_2"]]),
                                        1),
        "cpu_ratios": {"workers_1 / bare": cpu_ratio("workers_1", "bare"),
                       # Two cores for two workers and wrk, against one core for one worker.
                       "workers_2 / workers_1": round(
                           2 * median([r["cpu_us"] for r in rounds["workers_1"]])
                           / (median([r["cpu_us"] for r in rounds["workers_2"]])
                              + median([r["wrk_cpu_us"] for r in rounds["workers_2"]])), 3),
                       **{f"workers_1 / {name}": cpu_ratio("workers_1", name)
                          for name in ports if name.startswith("compare:")}},
        "ratios": ratios,
        "targets": {"workers_1 / bare": 0.7, "workers_2 / workers_1": 1.4},
        **extra,
        "errors": sum(r["errors"] for results in rounds.values() for r in results),
        "non2xx": sum(r["non2xx"] for results in rounds.values() for r in results),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
