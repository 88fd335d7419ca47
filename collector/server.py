"""Runs the collector daemon: structured logs, no access log, graceful SIGTERM, bounded sockets."""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import socket
import sys
import threading
import time
from typing import Any

from aiohttp import web, web_response

from collector.app import METRICS, beacon_first, create_app
from collector.metrics import Metrics
from footfall.config import Collector, Config
from footfall.errors import CollectorError

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


def serve(config: Config, host: str | None = None, port: int | None = None,
          workers: int | None = None) -> None:
    """Run the collector until SIGTERM: in this process, or as `workers` processes sharing
    the port (collector.workers; 0 = one per core) under a parent that restarts them."""
    _prepare_process()
    host = host or config.collector.host
    port = config.collector.port if port is None else port
    count = config.collector.workers if workers is None else workers
    count = count or os.cpu_count() or 1
    if count == 1:
        _log.info("listening", extra={"fields": {"host": host, "port": port}})
        _run(config, host, port, reuse_port=False)
    else:
        _supervise(config, host, port, count)


_log = logging.getLogger("footfall.collector")


def _prepare_process() -> None:
    configure_logging()
    # Log files and folders: the collector's group may read them, other users may not.
    os.umask(0o027)
    # aiohttp names itself and its version in every answer, even its own 400s; say less.
    setattr(web_response, "SERVER_SOFTWARE", "footfall")  # noqa: B010 (not exported)


def _run(config: Config, host: str, port: int, reuse_port: bool) -> None:
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    main = loop.create_task(_serve(config, host, port, reuse_port))
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


#: A worker that exits within this many seconds of its start, this many times in a row, is
#: not started again: something (a port in use, a config the OS refuses) stops every start.
_EARLY_EXIT_S, _EARLY_EXITS = 5.0, 5


def _supervise(config: Config, host: str, port: int, count: int) -> None:
    """Start `count` workers on one port (SO_REUSEPORT: the kernel spreads connections), start
    one again when it dies, and on SIGTERM or SIGINT pass SIGTERM on and wait for each to
    drain. Each worker has its own log files (their names carry its pid)."""
    # Hold the port here first: a port another program uses fails now, as one clear error,
    # and port 0 is chosen once for every worker.
    holder = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        holder.bind((host, port))
    except OSError:
        holder.close()
        raise
    port = int(holder.getsockname()[1])
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    context = multiprocessing.get_context("spawn")

    def start() -> tuple[multiprocessing.process.BaseProcess, float]:
        proc = context.Process(target=_worker, args=(config, host, port), daemon=False)
        proc.start()
        return proc, time.monotonic()

    _log.info("listening", extra={"fields": {"host": host, "port": port, "workers": count}})
    workers = [start() for _ in range(count)]
    early = 0
    try:
        while not stopping.wait(0.2):
            for i, (proc, started) in enumerate(workers):
                if proc.is_alive():
                    continue
                quick = time.monotonic() - started < _EARLY_EXIT_S
                early = early + 1 if quick else 0
                _log.warning("worker exited; starting another", extra={"fields": {
                    "pid": proc.pid, "exitcode": proc.exitcode}})
                if early >= _EARLY_EXITS:
                    raise CollectorError(
                        f"collector workers keep exiting as they start (exit code "
                        f"{proc.exitcode}); run `footfall collect --workers 1` to see why")
                workers[i] = start()
    finally:
        for proc, _ in workers:
            if proc.is_alive() and proc.pid is not None:
                os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_S + 5
        for proc, _ in workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        holder.close()


def _worker(config: Config, host: str, port: int) -> None:
    """One worker process: the same server, bound with SO_REUSEPORT."""
    _prepare_process()
    _follow_parent()
    _run(config, host, port, reuse_port=True)


def _follow_parent() -> None:
    """Drain and stop once the parent is gone (killed with SIGKILL, it cannot pass SIGTERM
    on): an orphaned worker would hold the port and serve on with nobody to stop it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="follow-parent", daemon=True).start()


async def _serve(config: Config, host: str, port: int, reuse_port: bool) -> None:
    app = create_app(config)
    settings = config.collector
    runner = web.AppRunner(app, handle_signals=True, access_log=None,
                           shutdown_timeout=SHUTDOWN_S, keepalive_timeout=settings.keepalive_s)
    await runner.setup()
    try:
        assert runner.server is not None
        runner.server.request_handler = beacon_first(app, runner.server.request_handler)
        _cap_connections(runner.server, settings, app[METRICS])
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
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
