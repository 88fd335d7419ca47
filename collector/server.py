"""Runs the collector daemon: structured logs, no access log, graceful SIGTERM, bounded sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

from aiohttp import web, web_response

from collector.app import METRICS, create_app
from collector.metrics import Metrics
from footfall.config import Collector, Config

SHUTDOWN_S = 10.0
# Written straight to a connection over collector.max_connections, before aiohttp sees it.
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


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
    # Log files and folders: the collector's group may read them, other users may not.
    os.umask(0o027)
    # aiohttp names itself and its version in every answer, even its own 400s; say less.
    setattr(web_response, "SERVER_SOFTWARE", "footfall")  # noqa: B010 (not exported)
    host = host or config.collector.host
    port = config.collector.port if port is None else port
    logging.getLogger("footfall.collector").info(
        "listening", extra={"fields": {"host": host, "port": port}})
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(config, host, port))
    try:
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):  # SIGTERM/SIGINT, raised by the runner
        pass
    finally:
        # Cancelling runs _serve's cleanup: stop accepting, let in-flight requests finish
        # (up to SHUTDOWN_S), then close the log.
        main.cancel()
        loop.run_until_complete(asyncio.gather(main, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _serve(config: Config, host: str, port: int) -> None:
    app = create_app(config)
    settings = config.collector
    runner = web.AppRunner(app, handle_signals=True, access_log=None,
                           shutdown_timeout=SHUTDOWN_S, keepalive_timeout=settings.keepalive_s)
    await runner.setup()
    try:
        assert runner.server is not None
        _cap_connections(runner.server, settings, app[METRICS])
        await web.TCPSite(runner, host, port).start()
        await asyncio.Event().wait()  # until a signal ends the loop
    finally:
        await runner.cleanup()


def _cap_connections(server: web.Server, settings: Collector, metrics: Metrics) -> None:
    """Answer 503 and close any connection over collector.max_connections.

    Without a cap, idle or slow sockets use up the process's file descriptors and real
    beacons fail with accept() errors; with it, the extra connections are refused cheaply.
    aiohttp has no such setting, so its connection hook is wrapped.
    """
    admit = server.connection_made
    cap = settings.max_connections

    def connection_made(handler: Any, transport: asyncio.Transport) -> None:
        if len(server.connections) >= cap:
            metrics.connections_refused += 1
            transport.write(_BUSY)
            transport.close()
            return
        admit(handler, transport)

    setattr(server, "connection_made", connection_made)  # noqa: B010 (mypy: method-assign)


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
