"""`footfall demo`: a workspace, a running collector, and real beacons sent to it over HTTP."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from collector.app import create_app
from footfall import config as config_mod
from footfall.config import Config

DEMO_SITES = [
    {"domain": "example.com", "timezone": "Europe/Berlin", "name": "Example Blog"},
    {"domain": "shop.example.org", "timezone": "America/New_York", "name": "Example Shop"},
]
UAS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
]
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def write_workspace(folder: Path) -> Config:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    raw = {
        "data_dir": "data",
        "site_dir": "site",
        "sites": DEMO_SITES,
        "collector": {"host": "127.0.0.1", "port": 0, "trusted_proxies": ["127.0.0.1/32"]},
        "funnels": [{"name": "Signup", "site": "example.com", "steps": [
            {"name": "Landing", "path": "/"},
            {"name": "Pricing", "path": "/pricing"},
            {"name": "Signed up", "event": "Signup"},
        ]}],
    }
    path.write_text("# Written by `footfall demo`.\n" + yaml.safe_dump(raw, sort_keys=False))
    return config_mod.load(path)


def _beacons() -> list[tuple[dict[str, object], dict[str, str]]]:
    out: list[tuple[dict[str, object], dict[str, str]]] = []
    pages = ["/", "/pricing", "/blog/hello-world", "/docs/"]
    refs = ["https://www.google.com/", "https://news.ycombinator.com/item?id=1", None]
    ips = ["81.2.69.142", "8.8.8.8", "203.0.113.7"]
    for i in range(12):
        ua, ip = UAS[i % len(UAS)], ips[i % len(ips)]
        headers = {"User-Agent": ua, "X-Forwarded-For": ip}
        body: dict[str, object] = {"n": "pageview", "d": "example.com", "w": 1440,
                                   "u": f"https://example.com{pages[i % len(pages)]}",
                                   "r": refs[i % len(refs)], "tz": "Europe/Berlin"}
        out.append((body, headers))
        if i % 4 == 1:
            out.append(({"n": "Signup", "d": "example.com", "u": "https://example.com/pricing",
                         "p": {"plan": "pro"}}, headers))
    out.append(({"n": "pageview", "d": "example.com", "u": "https://example.com/"},
                {"User-Agent": BOT_UA}))
    return out


async def _send_all(url: str) -> list[int]:
    statuses = []
    async with aiohttp.ClientSession() as session:
        for body, headers in _beacons():
            async with session.post(url, data=json.dumps(body), headers=headers) as resp:
                statuses.append(resp.status)
    return statuses


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _demo(cfg: Config, serve: bool) -> int:
    runner = web.AppRunner(create_app(cfg), access_log=None)
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        statuses = await _send_all(f"{base}/api/event")
        accepted = statuses.count(202)
        files = sorted(cfg.logs_dir.rglob("*.jsonl"))
        print(f"Sent {len(statuses)} beacons to {base}/api/event: {accepted} answered 202 "
              "(one was a bot, dropped).")
        print(f"Log lines are in {files[0] if files else cfg.logs_dir}")
        if serve:
            print(f"Collector running at {base} (tracker at {base}/tracker.js). Ctrl-C stops.")
            while True:
                await asyncio.sleep(3600)
    finally:
        await runner.cleanup()
    return 0


def run_demo(workspace: Path, serve: bool = True) -> int:
    cfg = write_workspace(workspace)
    try:
        return asyncio.run(_demo(cfg, serve))
    except KeyboardInterrupt:
        return 0
