"""The collector's aiohttp application: one factory, typed state, routes set in one place."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import ipaddress
import logging
import traceback
from collections.abc import AsyncIterator, Callable
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from collector import live
from collector.beacon import MAX_BODY, Payload, decode_body, decode_query, parse_query
from collector.enrich import Dropped, Enricher
from collector.identity import Clock, SaltStore, VisitorIds
from collector.logwriter import LogWriter
from collector.metrics import Metrics
from collector.ratelimit import RateLimit
from footfall import contract
from footfall.config import Config
from footfall.errors import BeaconError, StorageError

log = logging.getLogger("footfall.collector")

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
METRICS = web.AppKey("metrics", Metrics)
WRITER = web.AppKey("writer", LogWriter)
ENRICHER = web.AppKey("enricher", Enricher)
VISITORS = web.AppKey("visitors", VisitorIds)
TRACKER = web.AppKey("tracker", bytes)
ORIGINS: web.AppKey[Callable[[str], bool]] = web.AppKey("origins")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
PROXIES: web.AppKey[tuple[Network, ...]] = web.AppKey("proxies")
LIMIT = web.AppKey("limit", RateLimit)

GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
MAINTENANCE_S = 60.0


def create_app(config: Config, *, clock: Clock = contract.now_ms) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app[CONFIG] = config
    app[CLOCK] = clock
    app[METRICS] = Metrics()
    app[PROXIES] = tuple(ipaddress.ip_network(c, strict=False)
                         for c in config.collector.trusted_proxies)
    app[ORIGINS] = _origin_check(frozenset(s.domain for s in config.sites))
    app[TRACKER] = resources.files("collector").joinpath("static/tracker.js").read_bytes()
    app[LIMIT] = RateLimit(config.collector.rate_limit_per_min)
    app.cleanup_ctx.append(server_log_ctx)
    app.cleanup_ctx.append(storage_ctx)
    setup_routes(app)
    live.setup(app, config, clock)
    return app


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/event", post_event)
    # No HEAD: a link checker or prefetcher must not count as a pageview.
    app.router.add_get("/api/event", get_event, allow_head=False)
    app.router.add_route("OPTIONS", "/api/event", preflight)
    app.router.add_get("/tracker.js", tracker_js)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the salt store and log writer; fsync and expire salts in the background."""
    config, clock = app[CONFIG], app[CLOCK]
    visitors = VisitorIds(SaltStore(config.salts_dir), clock,
                          config.sessions.timeout_minutes * 60_000)
    writer = LogWriter(config.logs_dir, clock, config.collector.rotate_mb * 1024 * 1024,
                       config.collector.fsync_interval_s)
    app[VISITORS] = visitors
    app[WRITER] = writer
    app[ENRICHER] = Enricher(config, visitors)
    tasks = [asyncio.create_task(_every(MAINTENANCE_S, visitors.prune))]
    if config.collector.fsync_interval_s > 0:
        tasks.append(asyncio.create_task(_sync_every(config.collector.fsync_interval_s, writer)))
    log.info("collector started", extra={"fields": {"logs": str(config.logs_dir)}})
    yield
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    writer.close()
    log.info("collector stopped", extra={"fields": {"accepted": app[METRICS].accepted}})


# aiohttp's own loggers name the client's address and quote up to 100 bytes of a malformed
# request line or header (where a User-Agent or query string can sit), with a traceback
# that repeats them. "asyncio" can print a transport's peer address. docs/privacy.md
# promises logs without request data, so every record from these loggers is rewritten.
SERVER_LOGGERS = ("aiohttp.server", "aiohttp.web", "aiohttp.internal", "aiohttp.access",
                  "aiohttp.websocket", "asyncio")


class ServerLogFilter(logging.Filter):
    """Keeps only the error's class and the code location; counts it in /metrics.

    A client's malformed request (aiohttp's HttpProcessingError family) is counted and not
    printed: a flood of them must not fill the disk with log lines.
    """

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self.metrics = metrics

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        kind = type(exc).__name__ if exc is not None else "none"
        if record.levelno >= logging.ERROR:
            self.metrics.http_errors[kind] += 1
        where = ""
        if exc is not None and exc.__traceback__ is not None:
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            where = f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}"
        what = "error" if record.levelno >= logging.ERROR else "message"
        record.msg = f"HTTP server {what} (request data withheld)"
        record.args = ()
        record.exc_info = record.exc_text = record.stack_info = None
        record.fields = {"error": kind, "where": where}
        return not isinstance(exc, HttpProcessingError) or record.levelno < logging.ERROR


async def server_log_ctx(app: web.Application) -> AsyncIterator[None]:
    guard = ServerLogFilter(app[METRICS])
    for name in SERVER_LOGGERS:
        logging.getLogger(name).addFilter(guard)
    yield
    for name in SERVER_LOGGERS:
        logging.getLogger(name).removeFilter(guard)


async def _sync_every(seconds: float, writer: LogWriter) -> None:
    """fsync in a thread: a slow disk must not stall the event loop and every request."""
    while True:
        await asyncio.sleep(seconds)
        if writer.needs_sync:
            await asyncio.to_thread(writer.sync)


async def _every(seconds: float, fn: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            fn()
        except Exception:  # a maintenance hiccup must not stop future runs
            log.exception("maintenance task failed")


# --- the beacon endpoint -------------------------------------------------------------------


async def post_event(request: web.Request) -> web.Response:
    return _cors(request, _limited(request) or await _post_event(request))


async def get_event(request: web.Request) -> web.Response:
    return _cors(request, _limited(request) or _get_event(request))


def _limited(request: web.Request) -> web.Response | None:
    """A 429 once a client IP is over collector.rate_limit_per_min, else None."""
    wait_s = request.app[LIMIT].take(client_ip(request), request.app[CLOCK]())
    if not wait_s:
        return None
    response = _refuse(request, 429, "too many events from this address; slow down")
    response.headers["Retry-After"] = str(wait_s)
    return response


async def _post_event(request: web.Request) -> web.Response:
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _refuse(request, 413, f"body over {MAX_BODY} bytes")
    try:
        # A body trickled in a byte at a time would hold a socket open for ever.
        async with asyncio.timeout(request.app[CONFIG].collector.body_timeout_s):
            body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _refuse(request, 413, f"body over {MAX_BODY} bytes")
    except TimeoutError:
        response = _refuse(request, 408, "the body took too long to arrive")
        response.force_close()  # the rest of the body is never read
        return response
    try:
        payload = decode_body(body)
    except BeaconError as exc:
        return _refuse(request, exc.status, exc.reason)
    except Exception:  # e.g. RecursionError on JSON nested thousands deep: still bad input
        return _refuse(request, 400, "payload could not be decoded")
    return _record(request, payload, web.Response(status=202, text="ok"))


def _get_event(request: web.Request) -> web.Response:
    try:
        query = parse_query(request.rel_url.raw_query_string)
        if "u" not in query and request.headers.get("Referer"):
            query["u"] = request.headers["Referer"]  # <noscript> images cannot know their URL
        payload = decode_query(query)
    except BeaconError as exc:
        return _refuse(request, exc.status, exc.reason)
    except Exception:  # e.g. RecursionError on a `p` nested thousands deep: still bad input
        return _refuse(request, 400, "query could not be decoded")
    return _record(request, payload, web.Response(status=202, body=GIF, content_type="image/gif",
                                                  headers={"Cache-Control": "no-store"}))


def _record(request: web.Request, payload: Payload, accepted: web.Response) -> web.Response:
    app = request.app
    ip = client_ip(request)
    if "X-Forwarded-For" in request.headers and not _peer_trusted(request):
        # Server-side senders must be trusted proxies, or every event is one visitor: say so.
        app[METRICS].forwarded_for_ignored += 1
        accepted.headers["X-Footfall-Forwarded-For"] = FORWARDED_FOR_IGNORED
    user_agent = request.headers.get("User-Agent", "")
    try:
        result = app[ENRICHER].lines(payload, ip, user_agent, app[CLOCK]())
    except BeaconError as exc:
        return _refuse(request, exc.status, exc.reason)
    except OSError as exc:  # the salt store: disk full, too many open files, permissions
        reason = exc.strerror or type(exc).__name__
        log.error("salt store failed", extra={"fields": {"error": reason}})
        return _refuse(request, 503, "cannot store events right now")
    if isinstance(result, Dropped):
        # Counted, but the answer is the same as for a kept event: a bot learns nothing.
        app[METRICS].dropped[result.reason] += 1
        return accepted
    data = b"".join(contract.encode(line) for line in result.lines)
    try:
        app[WRITER].append(data)  # one write: a comma list of sites lands whole or not at all
    except StorageError as exc:
        log.error("log write failed", extra={"fields": {"error": str(exc)}})
        return _refuse(request, 503, "cannot store events right now")
    app[METRICS].accepted += len(result.lines)
    app[METRICS].adjusted.update(result.adjusted)
    if result.adjusted:
        accepted.headers["X-Footfall-Adjusted"] = ",".join(result.adjusted)
    return accepted


def _refuse(request: web.Request, status: int, reason: str) -> web.Response:
    request.app[METRICS].rejected[status] += 1
    # Reasons can echo client input; keep the header printable ASCII and short.
    header = "".join(ch if " " <= ch <= "~" else "?" for ch in reason)[:200]
    return web.Response(status=status, text=reason + "\n",
                        headers={"X-Footfall-Error": header})


FORWARDED_FOR_IGNORED = "ignored: the sender is not in collector.trusted_proxies"


def _peer_trusted(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer is not None and _in(peer[0], request.app[PROXIES])


def client_ip(request: web.Request) -> str:
    """The socket peer, unless it is a trusted proxy: then the nearest untrusted hop."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    ip = peer[0] if peer else ""
    proxies = request.app[PROXIES]
    if not proxies or not _in(ip, proxies):
        return ip
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage in the chain: trust nothing further left
        if not _in(hop, proxies):
            return hop
        ip = hop
    return ip


def _in(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in networks)


# --- CORS ----------------------------------------------------------------------------------


def _allowed_origin(request: web.Request) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    return origin if request.app[ORIGINS](origin) else None


def _origin_check(sites: frozenset[str]) -> Callable[[str], bool]:
    @functools.lru_cache(maxsize=1024)
    def allowed(origin: str) -> bool:
        host = (urlsplit(origin).hostname or "").removeprefix("www.")
        return any(host == s or host.endswith("." + s) for s in sites)

    return allowed


EXPOSED_HEADERS = "X-Footfall-Error, X-Footfall-Adjusted, X-Footfall-Forwarded-For"


def _cors(request: web.Request, response: web.Response) -> web.Response:
    """CORS for the configured sites' origins (a function call, cheaper than a middleware)."""
    origin = request.headers.get("Origin")
    if origin is None:  # not a CORS request; the answer does not vary
        return response
    response.headers["Vary"] = "Origin"
    if request.app[ORIGINS](origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
    return response


async def preflight(request: web.Request) -> web.Response:
    if _allowed_origin(request) is None:
        return _cors(request, web.Response(status=403, text="origin not allowed\n"))
    return _cors(request, web.Response(status=204, headers={
        "Access-Control-Allow-Methods": "POST, GET",
        "Access-Control-Allow-Headers": "Content-Type",
        "Access-Control-Max-Age": "86400",
    }))


# --- everything else -----------------------------------------------------------------------


async def tracker_js(request: web.Request) -> web.Response:
    body = request.app[TRACKER]
    etag = '"' + hashlib.blake2b(body, digest_size=8).hexdigest() + '"'
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers={"ETag": etag})
    return web.Response(body=body, content_type="application/javascript", charset="utf-8",
                        headers={"Cache-Control": "public, max-age=3600", "ETag": etag,
                                 "Access-Control-Allow-Origin": "*"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "accepted": request.app[METRICS].accepted})


async def metrics(request: web.Request) -> web.Response:
    # Bytes written are the writer's own count, not a second tally kept here.
    text = request.app[METRICS].render(bytes_written=request.app[WRITER].bytes_written)
    return web.Response(text=text,
                        content_type="text/plain", charset="utf-8")
