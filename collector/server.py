"""Runs the collector daemon: structured logs, no access log, graceful SIGTERM."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from aiohttp import web

from collector.app import create_app
from footfall.config import Config


class JsonFormatter(logging.Formatter):
    """One JSON object per line. Callers pass only fields that hold no IP or user agent."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiohttp's access log records the client IP and user agent: it stays off.
    logging.getLogger("aiohttp.access").disabled = True


def serve(config: Config, host: str | None = None, port: int | None = None) -> None:
    configure_logging()
    host = host or config.collector.host
    port = config.collector.port if port is None else port
    logging.getLogger("footfall.collector").info(
        "listening", extra={"fields": {"host": host, "port": port}})
    # SIGTERM/SIGINT: stop accepting, let in-flight requests finish, then close the log.
    web.run_app(create_app(config), host=host, port=port, access_log=None,
                print=None, shutdown_timeout=10.0, handle_signals=True,
                loop=new_event_loop())


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed, else asyncio's loop; docs/benchmarks.md compares the two.

    FOOTFALL_EVENT_LOOP=asyncio forces the standard loop.
    """
    if os.environ.get("FOOTFALL_EVENT_LOOP") == "asyncio":
        return asyncio.new_event_loop()
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()
