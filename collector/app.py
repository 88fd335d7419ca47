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
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

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
ENDPOINT: web.AppKey[Endpoint] = web.AppKey("endpoint")

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
    app[ENDPOINT] = Endpoint(app)
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


class Endpoint:
    """The beacon route's state, gathered once at start-up: a request reads attributes here
    instead of a dozen `app[...]` look-ups. The router's handlers and the server's fast path
    (`beacon_first`) both call `post` and `get`, so there is one beacon endpoint."""

    __slots__ = ("body_timeout_s", "clock", "enricher", "limit", "metrics", "origins",
                 "proxies", "writer")

    def __init__(self, app: web.Application) -> None:
        self.metrics = app[METRICS]
        self.clock = app[CLOCK]
        self.limit = app[LIMIT]
        self.proxies = app[PROXIES]
        self.origins = app[ORIGINS]
        self.enricher = app[ENRICHER]
        self.writer = app[WRITER]
        self.body_timeout_s = app[CONFIG].collector.body_timeout_s

    async def post(self, request: web.BaseRequest) -> web.Response:
        ip = client_ip(request, self.proxies)
        return self.cors(request, self.limited(request, ip) or await self._post(request, ip))

    async def get(self, request: web.BaseRequest) -> web.Response:
        ip = client_ip(request, self.proxies)
        return self.cors(request, self.limited(request, ip) or self._get(request, ip))

    def limited(self, request: web.BaseRequest, ip: str) -> web.Response | None:
        """A 429 once a client IP is over collector.rate_limit_per_min, else None."""
        wait_s = self.limit.take(ip, self.clock())
        if not wait_s:
            return None
        response = self.refuse(429, "too many events from this address; slow down")
        response.headers["Retry-After"] = str(wait_s)
        return response

    async def _post(self, request: web.BaseRequest, ip: str) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return self.refuse(413, f"body over {MAX_BODY} bytes")
        content = request.content
        try:
            if content.is_eof():
                # The whole body is here already (decompressed, when it came compressed):
                # take it at once, with no timeout to arm and no read loop to run.
                body = content.read_nowait()
                if len(body) > MAX_BODY:
                    return self.refuse(413, f"body over {MAX_BODY} bytes")
            else:
                # A body trickled in a byte at a time would hold a socket open for ever.
                async with asyncio.timeout(self.body_timeout_s):
                    body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self.refuse(413, f"body over {MAX_BODY} bytes")
        except TimeoutError:
            response = self.refuse(408, "the body took too long to arrive")
            response.force_close()  # the rest of the body is never read
            return response
        try:
            payload = decode_body(body)
        except BeaconError as exc:
            return self.refuse(exc.status, exc.reason)
        except Exception:  # e.g. RecursionError on JSON nested thousands deep: still bad input
            return self.refuse(400, "payload could not be decoded")
        return self._record(request, ip, payload,
                            web.Response(status=202, body=b"ok", headers=_OK_HEADERS))

    def _get(self, request: web.BaseRequest, ip: str) -> web.Response:
        try:
            query = parse_query(request.rel_url.raw_query_string)
            if "u" not in query and request.headers.get("Referer"):
                query["u"] = request.headers["Referer"]  # <noscript> images cannot know their URL
            payload = decode_query(query)
        except BeaconError as exc:
            return self.refuse(exc.status, exc.reason)
        except Exception:  # e.g. RecursionError on a `p` nested thousands deep: still bad input
            return self.refuse(400, "query could not be decoded")
        return self._record(request, ip, payload,
                            web.Response(status=202, body=GIF, headers=_GIF_HEADERS))

    def _record(self, request: web.BaseRequest, ip: str, payload: Payload,
                accepted: web.Response) -> web.Response:
        headers = request.headers
        if "X-Forwarded-For" in headers and not _peer_trusted(request, self.proxies):
            # Server-side senders must be trusted proxies, or every event is one visitor: say so.
            self.metrics.forwarded_for_ignored += 1
            accepted.headers["X-Footfall-Forwarded-For"] = FORWARDED_FOR_IGNORED
        user_agent = headers.get("User-Agent", "")
        try:
            result = self.enricher.lines(payload, ip, user_agent, self.clock())
        except BeaconError as exc:
            return self.refuse(exc.status, exc.reason)
        except OSError as exc:  # the salt store: disk full, too many open files, permissions
            reason = exc.strerror or type(exc).__name__
            log.error("salt store failed", extra={"fields": {"error": reason}})
            return self.refuse(503, "cannot store events right now")
        if isinstance(result, Dropped):
            # Counted, but the answer is the same as for a kept event: a bot learns nothing.
            self.metrics.dropped[result.reason] += 1
            return accepted
        lines = result.lines
        data = contract.encode(lines[0]) if len(lines) == 1 else \
            b"".join(contract.encode(line) for line in lines)
        try:
            self.writer.append(data)  # one write: a comma list of sites lands whole or not at all
        except StorageError as exc:
            log.error("log write failed", extra={"fields": {"error": str(exc)}})
            return self.refuse(503, "cannot store events right now")
        self.metrics.accepted += len(lines)
        if result.adjusted:
            self.metrics.adjusted.update(result.adjusted)
            accepted.headers["X-Footfall-Adjusted"] = ",".join(result.adjusted)
        return accepted

    def refuse(self, status: int, reason: str) -> web.Response:
        self.metrics.rejected[status] += 1
        # Reasons can echo client input; keep the header printable ASCII and short.
        header = "".join(ch if " " <= ch <= "~" else "?" for ch in reason)[:200]
        return web.Response(status=status, text=reason + "\n",
                            headers={"X-Footfall-Error": header})

    def cors(self, request: web.BaseRequest, response: web.Response) -> web.Response:
        """CORS for the configured sites' origins (a call, cheaper than a middleware)."""
        origin = request.headers.get("Origin")
        if origin is None:  # not a CORS request; the answer does not vary
            return response
        response.headers["Vary"] = "Origin"
        if self.origins(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response


# The accepted answers' headers, built once; web.Response copies them into its own.
_OK_HEADERS = CIMultiDict({"Content-Type": "text/plain; charset=utf-8"})
_GIF_HEADERS = CIMultiDict({"Cache-Control": "no-store", "Content-Type": "image/gif"})


async def post_event(request: web.Request) -> web.Response:
    return await request.app[ENDPOINT].post(request)


async def get_event(request: web.Request) -> web.Response:
    return await request.app[ENDPOINT].get(request)


Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def beacon_first(app: web.Application, router: Handler) -> Handler:
    """The server's request handler: `POST /api/event` goes straight to the endpoint, before
    the router and its match-info bookkeeping; everything else goes through `router`.

    Only the plain case is taken: a request with `Expect: 100-continue` goes the router's
    way, which answers the expectation first. The path compared is the one the router
    matches (`path_safe`: decoded, but an encoded "/" stays encoded), so both agree on
    which requests are the beacon."""
    endpoint = app[ENDPOINT]

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.method == "POST" and request.rel_url.path_safe == "/api/event" \
                and "Expect" not in request.headers:
            return await endpoint.post(request)
        return await router(request)

    return handle


FORWARDED_FOR_IGNORED = "ignored: the sender is not in collector.trusted_proxies"


def _peer_trusted(request: web.BaseRequest, proxies: tuple[Network, ...]) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return peer is not None and _in(peer[0], proxies)


def client_ip(request: web.BaseRequest, proxies: tuple[Network, ...]) -> str:
    """The socket peer, unless it is a trusted proxy: then the nearest untrusted hop."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    ip = peer[0] if peer else ""
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


def _origin_check(sites: frozenset[str]) -> Callable[[str], bool]:
    @functools.lru_cache(maxsize=1024)
    def allowed(origin: str) -> bool:
        host = (urlsplit(origin).hostname or "").removeprefix("www.")
        return any(host == s or host.endswith("." + s) for s in sites)

    return allowed


EXPOSED_HEADERS = "X-Footfall-Error, X-Footfall-Adjusted, X-Footfall-Forwarded-For"


async def preflight(request: web.Request) -> web.Response:
    endpoint = request.app[ENDPOINT]
    origin = request.headers.get("Origin")
    if not origin or not endpoint.origins(origin):
        return endpoint.cors(request, web.Response(status=403, text="origin not allowed\n"))
    return endpoint.cors(request, web.Response(status=204, headers={
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
