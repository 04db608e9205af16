"""The review's web server: the page, a JSON API, and the predicted tiles' images.

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

Only tiles of the review are served: the path names a tile id from the database and an offset
in -1..1, never a file or a URL, so there is nothing to traverse. Whatever changes the database
is a POST, and POSTs must be JSON from the page's own origin (a cross-site form cannot send
JSON; a cross-site fetch carries an Origin). A server bound to a loopback address only answers
requests addressed to a loopback name (DNS rebinding). Bodies are read whole or the connection
is closed, and every refusal closes it (`satx.review.protocol`). Connections time out when idle
and there are at most `max_connections` at once, so idle clients cannot hold every thread.
"""

from __future__ import annotations

import contextlib
import hmac
import http.cookies
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import mercantile

from satx.errors import InputError
from satx.review import protocol
from satx.review.app import ReviewApp
from satx.review.protocol import LOOPBACK_NAMES, BadRequest, is_loopback
from satx.review.store import Conflict, NotFound
from satx.review.summary import overview_svg, stats
from satx.tiles.formats import mime_type

__all__ = ["ReviewApp", "ReviewServer", "is_loopback"]

log = logging.getLogger(__name__)

STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
TILE_PATH = re.compile(r"/tiles/(\d{1,12})/(-1|0|1)/(-1|0|1)")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
POST_ROUTES = ("/api/next", "/api/decision", "/api/undo")
LINGER_SECONDS, LINGER_BYTES = 2.0, 1 << 20
REFUSED_LINGER_SECONDS = 0.2  # a refused connection, answered by the accepting thread


class Handler(BaseHTTPRequestHandler):
    """One request; `server.app` is the ReviewApp."""

    server_version = "satx-review"
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> ReviewApp:
        """The server's shared state."""
        return self.server.app  # type: ignore[attr-defined]

    def setup(self) -> None:
        """Bound every read of the socket: an idle or trickling client is dropped."""
        self.timeout = self.server.idle_seconds  # type: ignore[attr-defined]
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Log nothing: http.server's line holds the query string, which may hold the token."""

    # -- answering ----------------------------------------------------------------------------

    def _send(
        self, status: int, body: bytes = b"", mime: str = "text/plain; charset=utf-8", **extra: str
    ) -> None:
        self.send_response(status)
        headers = {"Content-Type": mime, "Content-Length": str(len(body)), **extra}
        headers.setdefault("Cache-Control", "no-store")
        if mime.startswith("text/html"):
            headers.update(PAGE_HEADERS)
        if status >= 400:
            # Whatever of the request is unread must never be parsed as another request.
            self.close_connection = True
            headers["Connection"] = "close"
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str, **extra: str) -> None:
        self._send(status, json.dumps({"error": message}).encode(), "application/json", **extra)

    # -- checks every request passes ---------------------------------------------------------

    def _host_ok(self) -> bool:
        if not is_loopback(self.server.server_address[0]):  # type: ignore[index]
            return True
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        return host in LOOPBACK_NAMES

    def _token_ok(self, query: dict[str, list[str]]) -> bool | str:
        token = self.app.token
        if not token:
            return True
        port = self.server.server_address[1]  # type: ignore[index]
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered = auth[len("Bearer ") :].strip()
            if hmac.compare_digest(offered.encode(), token.encode()):
                return True
        elif self.headers.get("Cookie"):
            with contextlib.suppress(http.cookies.CookieError):
                jar = http.cookies.SimpleCookie(self.headers["Cookie"])
                name = protocol.cookie_name(port)
                offered = jar[name].value if name in jar else ""
                key = protocol.cookie_key(token, port)
                if offered and hmac.compare_digest(offered.encode(), key.encode()):
                    return True
        given = (query.get("token") or [""])[0]
        if (
            self.path.startswith("/?")
            and given
            and hmac.compare_digest(given.encode(), token.encode())
        ):
            return "set-cookie"
        return False

    def _same_origin_json(self) -> str | None:
        """Why this POST may be a cross-site request (None: it is not)."""
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            return "decisions are JSON (Content-Type: application/json)"
        origin = self.headers.get("Origin")
        if origin is not None and origin != f"http://{self.headers.get('Host')}":
            return "cross-origin request refused"
        if self.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return "cross-site request refused"
        return None

    def _guard(self) -> tuple[str, dict[str, list[str]], bytes] | None:
        """The path, query and body of a request that passed every check; None: answered."""
        length = protocol.body_length(self.command, self.headers)
        raw = self.rfile.read(length) if length else b""
        if len(raw) < length:
            raise ConnectionError("the client closed before sending its body")
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        if not self._host_ok():
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "use http://127.0.0.1:PORT/")
            return None
        ok = self._token_ok(query)
        if ok == "set-cookie":
            port = self.server.server_address[1]  # type: ignore[index]
            key = protocol.cookie_key(self.app.token, port)
            cookie = f"{protocol.cookie_name(port)}={key}; HttpOnly; SameSite=Strict; Path=/"
            self._send(HTTPStatus.SEE_OTHER, b"", Location="/", **{"Set-Cookie": cookie})
            return None
        if not ok:
            self._error(HTTPStatus.UNAUTHORIZED, "token required: open the URL satx.review printed")
            return None
        return parsed.path, query, raw

    # -- routes -------------------------------------------------------------------------------

    def _safely(self, route: Callable[[], None]) -> None:
        try:
            route()
        except BadRequest as err:
            self._error(err.status, err.message)
        except (ConnectionError, TimeoutError):
            self.close_connection = True  # the client went away, or stalled mid-body
        except Exception:
            log.exception("review server: %s %s failed", self.command, self.path.split("?")[0])
            with contextlib.suppress(OSError):
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the log)")

    def do_GET(self) -> None:
        """Pages, API reads, the overview and tile images."""
        self._safely(self._get)

    def do_POST(self) -> None:
        """Leases, decisions and undo: JSON from the page's own origin only."""
        self._safely(self._post)

    def do_HEAD(self) -> None:
        """As GET, without the body."""
        self._safely(self._get)

    def _get(self) -> None:
        guarded = self._guard()
        if guarded is None:
            return
        path, query, _ = guarded
        app = self.app
        if path == "/":
            page = resources.files("satx.review").joinpath("static/index.html").read_bytes()
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8")
        elif path.startswith("/static/") and path[len("/static/") :] in STATIC:
            name = path[len("/static/") :]
            body = resources.files("satx.review").joinpath(f"static/{name}").read_bytes()
            self._send(HTTPStatus.OK, body, f"{STATIC[name]}; charset=utf-8")
        elif path == "/api/config":
            self._json(HTTPStatus.OK, app.settings(app.config.reviewer))
        elif path in POST_ROUTES:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"{path} is a POST", Allow="POST")
        elif path == "/api/stats":
            self._json(HTTPStatus.OK, stats(app.store, app.config.min_score, time.time()))
        elif path == "/overview.svg":
            self._overview(query)
        elif (match := TILE_PATH.fullmatch(path)) is not None:
            self._tile(*(int(g) for g in match.groups()))
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def _post(self) -> None:
        guarded = self._guard()
        if guarded is None:
            return
        path, _, raw = guarded
        why = self._same_origin_json()
        if why is not None:
            status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE if "JSON" in why else HTTPStatus.FORBIDDEN
            self._error(status, why)
            return
        body = protocol.json_object(raw)
        routes = {"/api/next": self._next, "/api/decision": self._decision, "/api/undo": self._undo}
        if path not in routes:
            self._error(HTTPStatus.NOT_FOUND, "not found")
            return
        reviewer = protocol.reviewer_name(
            protocol.text_field(body, "reviewer", self.app.config.reviewer)
        )
        routes[path](body, reviewer)

    def _next(self, body: dict[str, Any], reviewer: str) -> None:
        c = self.app.config
        tile = self.app.store.next_tile(
            reviewer, c.order, c.min_score, c.lease_seconds, time.time()
        )
        if tile is None:
            self._send(HTTPStatus.NO_CONTENT)
        else:
            self._json(HTTPStatus.OK, {**tile, "reviewer": reviewer})

    def _decision(self, body: dict[str, Any], reviewer: str) -> None:
        tile_id = protocol.tile_id(body.get("id"))
        decision = protocol.text_field(body, "decision")
        try:
            if decision != "skip" and not self._has_image(tile_id):
                raise Conflict(
                    f"tile {tile_id} has no image in the tile source: nobody saw it, skip it"
                )
            recorded, made = self.app.store.decide(tile_id, decision, reviewer, time.time())
        except InputError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))
        except NotFound as err:
            self._error(HTTPStatus.NOT_FOUND, str(err))
        except Conflict as err:
            self._error(HTTPStatus.CONFLICT, str(err))
        else:
            self._json(HTTPStatus.OK, {"id": tile_id, "recorded": recorded, **made})

    def _has_image(self, tile_id: int) -> bool:
        t = self.app.store.tile(tile_id)
        return bool(self.app.image(mercantile.Tile(t["x"], t["y"], t["z"])))

    def _undo(self, body: dict[str, Any], reviewer: str) -> None:
        undone = self.app.store.undo(reviewer, self.app.config.lease_seconds, time.time())
        if undone is None:
            self._send(HTTPStatus.NO_CONTENT)
        else:
            self._json(HTTPStatus.OK, undone)

    def _overview(self, query: dict[str, list[str]]) -> None:
        current = None
        value = (query.get("current") or [""])[0]
        tile_id = protocol.query_id(value)
        if value and tile_id is None:
            raise BadRequest(HTTPStatus.BAD_REQUEST, "current: a tile id")
        if tile_id is not None:
            with contextlib.suppress(NotFound):
                current = self.app.store.tile(tile_id)
        svg = overview_svg(self.app.store, self.app.config.min_score, current)
        self._send(HTTPStatus.OK, svg.encode(), "image/svg+xml")

    def _tile(self, tile_id: int, dx: int, dy: int) -> None:
        try:
            t = self.app.store.tile(tile_id)
        except NotFound as err:
            self._error(HTTPStatus.NOT_FOUND, str(err))
            return
        n = 1 << t["z"]
        x, y = (t["x"] + dx) % n, t["y"] + dy
        data = self.app.image(mercantile.Tile(x, y, t["z"])) if 0 <= y < n else None
        if not data:
            self._error(HTTPStatus.NOT_FOUND, f"no imagery for {t['z']}/{x}/{y}")
            return
        self._send(
            HTTPStatus.OK, data, mime_type(data), **{"Cache-Control": "private, max-age=3600"}
        )


def _linger(request: socket.socket, seconds: float, max_bytes: int) -> None:
    """End our side, then read what the client still sends for a bounded time and size."""
    with contextlib.suppress(OSError):
        request.shutdown(socket.SHUT_WR)
        request.settimeout(seconds)
        deadline, drained = time.monotonic() + seconds, 0
        while drained < max_bytes and time.monotonic() < deadline:
            chunk = request.recv(65536)
            if not chunk:
                break
            drained += len(chunk)


class ReviewServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the ReviewApp, IPv4 or IPv6 by its host.

    At most `max_connections` are served at once (one thread each); more are answered 503 and
    closed. A connection idle for `idle_seconds` is closed.
    """

    daemon_threads = True

    def __init__(self, app: ReviewApp, idle_seconds: float = 30.0, max_connections: int = 64):
        self.app, self.idle_seconds = app, idle_seconds
        self._slots = threading.BoundedSemaphore(max_connections)
        if ":" in app.config.host:
            self.address_family = socket.AF_INET6
        super().__init__((app.config.host.strip("[]"), app.config.port), Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection in a thread of its own, if one is free."""
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 21\r\nConnection: close\r\n\r\ntoo many connections\n"
                )
            # The accepting thread lingers only briefly: long enough for a client that sent its
            # request at once to read the answer instead of a reset.
            _linger(request, REFUSED_LINGER_SECONDS, LINGER_BYTES)
            self.close_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        """Serve, then give the slot back."""
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown_request(self, request: Any) -> None:
        """Close after reading what the client still sends, for a bounded time (lingering close).

        Closing a socket with unread bytes resets it, and the client may lose the answer (a
        413 or 401) before reading it.
        """
        _linger(request, LINGER_SECONDS, LINGER_BYTES)
        self.close_request(request)

    @property
    def urls(self) -> list[str]:
        """The page's addresses (without the token)."""
        host, port = self.server_address[:2]
        return protocol.page_urls(self.app.config.host.strip("[]") or str(host), port)

    @property
    def url(self) -> str:
        """The page's first address (without the token)."""
        return self.urls[0]
