"""The review's web server: a WSGI app (the page, a JSON API, the tiles) on waitress.

Routes (every one behind the token when one is set):

    GET  /                       the page (`/?token=T` sets the token cookie, then redirects)
    GET  /static/<name>          the page's own script and style (a fixed list)
    GET  /api/config             classes, threshold, order, the default reviewer
    POST /api/next               {"reviewer"}: their leased tile, or lease them the next; 204
    POST /api/decision           {"id", "decision": positive|negative|skip, "reviewer"}
    POST /api/undo               {"reviewer"}: take back their last decision
    GET  /api/stats              reviewed, remaining, rate, ETA, precision of reviewed hits
    GET  /overview.svg?current=I where the queue's tiles are, by state
    GET  /tiles/<id>/<dx>/<dy>   the image of a predicted tile (dx = dy = 0) or a neighbour

HTTP is waitress's (a WSGI server that is maintained and made for production, unlike
`http.server`): it reads every request whole, with its body, before the app sees it, so no
body byte is ever parsed as a request; its header grammar is strict (whitespace before a colon,
conflicting Content-Lengths and bad chunk sizes are 400s); headers and bodies have size
limits (`protocol.MAX_BODY`: 413). On top of it `_Server` adds what waitress leaves out
against slow clients (slowloris): a whole-request deadline (`request_seconds` from a
request's first byte to its last, however steadily it trickles) and a cap on one client
address's connections (`max_per_client`, refused with a 503), beside waitress's idle timeout
and total connection limit. Slow clients cost a socket each, never a thread.

The app's own rules: only tiles of the review are served (a tile id from the database and an
offset in -1..1, read through a source confined to its folder); whatever changes the
database is a POST of same-origin JSON; a server bound to a loopback address answers only
requests addressed to a loopback name (DNS rebinding); every answer >= 400 closes the
connection.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from importlib import resources
from typing import Any

import mercantile
from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import WSGITask

from satx.errors import InputError
from satx.review import protocol
from satx.review.app import ReviewApp
from satx.review.protocol import LOOPBACK_NAMES, BadRequest, Request, is_loopback
from satx.review.store import Conflict, NotFound
from satx.review.summary import overview_svg, stats
from satx.tiles.formats import mime_type

__all__ = ["ReviewApp", "ReviewServer", "is_loopback"]

log = logging.getLogger(__name__)

STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
POST_ROUTES = ("/api/next", "/api/decision", "/api/undo")
Answer = tuple[int, bytes, dict[str, str]]


def _answer(status: int, body: bytes = b"", mime: str = "text/plain; charset=utf-8", **extra: str):
    headers = {"Content-Type": mime, "Cache-Control": "no-store", **extra}
    if mime.startswith("text/html"):
        headers.update(PAGE_HEADERS)
    return status, body, headers


def _json(status: int, obj: Any) -> Answer:
    return _answer(status, json.dumps(obj).encode(), "application/json")


def _error(status: int, message: str, **extra: str) -> Answer:
    return _answer(status, json.dumps({"error": message}).encode(), "application/json", **extra)


class ReviewWsgi:
    """The review as a WSGI application; `port` is set once the server is bound."""

    def __init__(self, app: ReviewApp, loopback: bool):
        self.app, self.loopback, self.port = app, loopback, 0

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        """Answer one request (waitress has read it whole, body included)."""
        request = Request.from_environ(environ)
        try:
            status, body, headers = self._answer(request)
        except BadRequest as err:
            status, body, headers = _error(err.status, err.message)
        except Exception:
            log.exception("review server: %s %s failed", request.method, request.path)
            status, body, headers = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")
        headers["Content-Length"] = str(len(body))
        phrase = HTTPStatus(status).phrase
        start_response(f"{int(status)} {phrase}", list(headers.items()))
        return [] if request.method == "HEAD" else [body]

    def _answer(self, request: Request) -> Answer:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        if request.method in ("GET", "HEAD"):
            return self._get(request)
        if request.method == "POST":
            return self._post(request)
        return _error(HTTPStatus.METHOD_NOT_ALLOWED, "GET, HEAD or POST", Allow="GET, HEAD, POST")

    # -- checks every request passes ---------------------------------------------------------

    def _refusal(self, request: Request) -> Answer | None:
        """The answer to a request that fails a check every route makes; None: it passes."""
        if request.method in ("GET", "HEAD") and request.body:
            return _error(HTTPStatus.BAD_REQUEST, f"a {request.method} has no body")
        host = request.header("host").rsplit(":", 1)[0]
        if self.loopback and host not in LOOPBACK_NAMES:
            return _error(HTTPStatus.MISDIRECTED_REQUEST, "use http://127.0.0.1:PORT/")
        token = self.app.token
        if not token:
            return None
        auth = request.header("authorization")
        offered = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else ""
        if offered and hmac.compare_digest(offered.encode(), token.encode()):
            return None
        cookie = protocol.cookie_value(request.header("cookie"), protocol.cookie_name(self.port))
        key = protocol.cookie_key(token, self.port)
        if cookie and hmac.compare_digest(cookie.encode(), key.encode()):
            return None
        given = (request.query.get("token") or [""])[0]
        if request.path == "/" and given and hmac.compare_digest(given.encode(), token.encode()):
            name = protocol.cookie_name(self.port)
            cookie = f"{name}={key}; HttpOnly; SameSite=Strict; Path=/"
            return _answer(HTTPStatus.SEE_OTHER, Location="/", **{"Set-Cookie": cookie})
        return _error(HTTPStatus.UNAUTHORIZED, "token required: open the URL satx.review printed")

    @staticmethod
    def _cross_site(request: Request) -> Answer | None:
        """The refusal of a POST that may come from another site; None: it does not."""
        if not request.header("content-type").startswith("application/json"):
            why = "decisions are JSON (Content-Type: application/json)"
            return _error(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, why)
        origin = request.header("origin", None)
        if origin is not None and origin != f"http://{request.header('host')}":
            return _error(HTTPStatus.FORBIDDEN, "cross-origin request refused")
        if request.header("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
            return _error(HTTPStatus.FORBIDDEN, "cross-site request refused")
        return None

    # -- routes -------------------------------------------------------------------------------

    def _get(self, request: Request) -> Answer:
        app, path = self.app, request.path
        if path == "/":
            page = resources.files("satx.review").joinpath("static/index.html").read_bytes()
            return _answer(HTTPStatus.OK, page, "text/html; charset=utf-8")
        if path.startswith("/static/") and path[len("/static/") :] in STATIC:
            name = path[len("/static/") :]
            body = resources.files("satx.review").joinpath(f"static/{name}").read_bytes()
            return _answer(HTTPStatus.OK, body, f"{STATIC[name]}; charset=utf-8")
        if path == "/api/config":
            return _json(HTTPStatus.OK, app.settings(app.config.reviewer))
        if path in POST_ROUTES:
            return _error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} is a POST", Allow="POST")
        if path == "/api/stats":
            return _json(HTTPStatus.OK, stats(app.store, app.config.min_score, time.time()))
        if path == "/overview.svg":
            return self._overview(request.query)
        if (match := protocol.TILE_PATH.fullmatch(path)) is not None:
            return self._tile(*(int(g) for g in match.groups()))
        return _error(HTTPStatus.NOT_FOUND, "not found")

    def _post(self, request: Request) -> Answer:
        refused = self._cross_site(request)
        if refused is not None:
            return refused
        body = protocol.json_object(request.body)
        routes = {"/api/next": self._next, "/api/decision": self._decision, "/api/undo": self._undo}
        if request.path not in routes:
            return _error(HTTPStatus.NOT_FOUND, "not found")
        reviewer = protocol.text_field(body, "reviewer", self.app.config.reviewer)
        return routes[request.path](body, protocol.reviewer_name(reviewer))

    def _next(self, body: dict[str, Any], reviewer: str) -> Answer:
        c = self.app.config
        tile = self.app.store.next_tile(
            reviewer, c.order, c.min_score, c.lease_seconds, time.time()
        )
        if tile is None:
            return _answer(HTTPStatus.NO_CONTENT)
        return _json(HTTPStatus.OK, {**tile, "reviewer": reviewer})

    def _decision(self, body: dict[str, Any], reviewer: str) -> Answer:
        tile_id = protocol.tile_id(body.get("id"))
        decision = protocol.text_field(body, "decision")
        try:
            if decision != "skip" and not self._has_image(tile_id):
                raise Conflict(
                    f"tile {tile_id} has no image in the tile source: nobody saw it, skip it"
                )
            recorded, made = self.app.store.decide(tile_id, decision, reviewer, time.time())
        except InputError as err:
            return _error(HTTPStatus.BAD_REQUEST, str(err))
        except NotFound as err:
            return _error(HTTPStatus.NOT_FOUND, str(err))
        except Conflict as err:
            return _error(HTTPStatus.CONFLICT, str(err))
        return _json(HTTPStatus.OK, {"id": tile_id, "recorded": recorded, **made})

    def _has_image(self, tile_id: int) -> bool:
        t = self.app.store.tile(tile_id)
        return bool(self.app.image(mercantile.Tile(t["x"], t["y"], t["z"])))

    def _undo(self, body: dict[str, Any], reviewer: str) -> Answer:
        undone = self.app.store.undo(reviewer, self.app.config.lease_seconds, time.time())
        return _answer(HTTPStatus.NO_CONTENT) if undone is None else _json(HTTPStatus.OK, undone)

    def _overview(self, query: dict[str, list[str]]) -> Answer:
        current = None
        value = (query.get("current") or [""])[0]
        tile_id = protocol.query_id(value)
        if value and tile_id is None:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "current: a tile id")
        if tile_id is not None:
            try:
                current = self.app.store.tile(tile_id)
            except NotFound:
                current = None
        svg = overview_svg(self.app.store, self.app.config.min_score, current)
        return _answer(HTTPStatus.OK, svg.encode(), "image/svg+xml")

    def _tile(self, tile_id: int, dx: int, dy: int) -> Answer:
        try:
            t = self.app.store.tile(tile_id)
        except NotFound as err:
            return _error(HTTPStatus.NOT_FOUND, str(err))
        n = 1 << t["z"]
        x, y = (t["x"] + dx) % n, t["y"] + dy
        data = self.app.image(mercantile.Tile(x, y, t["z"])) if 0 <= y < n else None
        if not data:
            return _error(HTTPStatus.NOT_FOUND, f"no imagery for {t['z']}/{x}/{y}")
        return _answer(
            HTTPStatus.OK, data, mime_type(data), **{"Cache-Control": "private, max-age=3600"}
        )


class _Task(WSGITask):
    """waitress's request task: an answer >= 400 closes the connection.

    Nothing more is read from a refused client; a WSGI app may not set `Connection` itself.
    """

    def build_response_header(self) -> bytes:
        """The response head, with `Connection: close` on a refusal."""
        if int(self.status.split(" ", 1)[0]) >= 400:
            self.set_close_on_finish()
        return super().build_response_header()


class _Channel(HTTPChannel):
    """waitress's connection, remembering when the request it is reading began."""

    task_class = _Task
    request_began = 0.0

    def received(self, data: bytes) -> bool:
        """Note the first byte of each request, then parse as waitress does."""
        if self.request is None and data:
            self.request_began = time.monotonic()
        return super().received(data)


_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n"
    b"Connection: close\r\n\r\ntoo many connections\n"
)


class _Server(TcpWSGIServer):
    """waitress's server plus a whole-request deadline and a per-client connection cap."""

    channel_class = _Channel

    def __init__(self, wsgi: ReviewWsgi, adj: Adjustments, request_seconds: float, per_client: int):
        self.request_seconds, self.per_client = request_seconds, per_client
        super().__init__(wsgi, map={}, adj=adj, sockinfo=adj.listen[0])

    def maintenance(self, now: float) -> None:
        """Close idle channels (waitress) and those whose request has taken too long."""
        super().maintenance(now)
        cutoff = time.monotonic() - self.request_seconds
        for channel in list(self.active_channels.values()):
            reading = channel.request is not None and not channel.request.completed
            if reading and channel.request_began < cutoff:
                channel.will_close = True

    def handle_accept(self) -> None:
        """Accept as waitress does, but answer a client past its share of connections 503."""
        try:
            pair = self.accept()
        except OSError:
            return
        if pair is None:
            return
        conn, addr = pair
        peer = addr[0]
        held = sum(1 for c in self.active_channels.values() if c.addr and c.addr[0] == peer)
        channel = self.channel_class(self, conn, addr, self.adj, map=self._map)
        if held >= self.per_client:
            with channel.outbuf_lock:
                channel.outbufs[-1].append(_REFUSED)
                channel.current_outbuf_count += len(_REFUSED)
                channel.total_outbufs_len += len(_REFUSED)
            channel.close_when_flushed = True


class ReviewServer:
    """The review on waitress, IPv4 or IPv6 by its host; `serve_forever` until `shutdown`.

    Slow and idle clients are bounded: a connection idle for `idle_seconds` is closed, a
    request not received whole within `request_seconds` of its first byte is dropped, one client
    address holds at most `max_per_client` connections (more are answered 503), and past
    `max_connections` in all new ones wait in the listen backlog.
    """

    def __init__(
        self,
        app: ReviewApp,
        idle_seconds: float = 30.0,
        max_connections: int = 256,
        max_per_client: int = 32,
        request_seconds: float = 10.0,
        threads: int = 4,
    ):
        self.app = app
        self.wsgi = ReviewWsgi(app, is_loopback(app.config.host))
        adj = Adjustments(
            host=app.config.host.strip("[]") or "0.0.0.0",
            port=app.config.port,
            threads=threads,
            channel_timeout=idle_seconds,
            connection_limit=max_connections,
            cleanup_interval=min(1.0, idle_seconds),
            asyncore_loop_timeout=0.2,
            max_request_header_size=16384,
            max_request_body_size=protocol.MAX_BODY + 1,  # waitress refuses at >=
            expose_tracebacks=False,
            ident="satx-review",
            log_socket_errors=False,
        )
        self._server = _Server(self.wsgi, adj, request_seconds, max_per_client)
        self.server_address = self._server.socket.getsockname()
        self.wsgi.port = self.server_address[1]
        self._serving, self._stopped = threading.Event(), threading.Event()

    def serve_forever(self) -> None:
        """Serve until `shutdown` (from another thread or a signal handler's thread)."""
        self._serving.set()
        try:
            self._server.run()
        finally:
            self._stopped.set()

    def _close_all(self) -> None:
        for channel in list(self._server._map.values()):
            with contextlib.suppress(OSError):
                channel.close()

    def shutdown(self) -> None:
        """Stop serving: every connection is closed inside the loop, which then ends."""
        if self._serving.is_set() and not self._stopped.is_set():
            self._server.trigger.pull_trigger(self._close_all)
            self._stopped.wait(30)
        self._server.task_dispatcher.shutdown()

    def server_close(self) -> None:
        """Release the listening socket and the loop's wake-up pipe (idempotent)."""
        if not self._serving.is_set() or self._stopped.is_set():
            self._close_all()

    @property
    def urls(self) -> list[str]:
        """The page's addresses (without the token)."""
        host, port = self.server_address[:2]
        return protocol.page_urls(self.app.config.host.strip("[]") or str(host), port)

    @property
    def url(self) -> str:
        """The page's first address (without the token)."""
        return self.urls[0]
