"""The review's web server: the page, a JSON API, and the predicted tiles' images.

Routes (every one behind the token when one is set):

    GET  /                       the page (`/?token=T` sets the token cookie, then redirects)
    GET  /static/<name>          the page's own script and style (a fixed list)
    GET  /api/config             classes, threshold, order, the default reviewer
    GET  /api/next?reviewer=R    the reviewer's leased tile, or the next one leased to them; 204
    POST /api/decision           {"id", "decision": positive|negative|skip, "reviewer"}
    POST /api/undo               {"reviewer"}: take back their last decision
    GET  /api/stats              reviewed, remaining, rate, ETA, precision of reviewed hits
    GET  /overview.svg?current=I where the queue's tiles are, by state
    GET  /tiles/<id>/<dx>/<dy>   the image of a predicted tile (dx = dy = 0) or a neighbour

Only tiles of the review are served: the path names a tile id from the database and an offset
in -1..1, never a file or a URL, so there is nothing to traverse. POSTs must be JSON from the
page's own origin (a cross-site form cannot send JSON; a cross-site fetch carries an Origin),
and a server bound to a loopback address only answers requests addressed to a loopback name
(DNS rebinding).
"""

from __future__ import annotations

import contextlib
import hmac
import http.cookies
import ipaddress
import json
import logging
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import mercantile

from satx.config import ReviewConfig
from satx.errors import InputError
from satx.review.store import Conflict, NotFound, ReviewStore
from satx.review.summary import overview_svg, stats
from satx.tiles.base import TileSource
from satx.tiles.formats import mime_type

log = logging.getLogger(__name__)

COOKIE = "satx_review_token"
STATIC = {"review.js": "text/javascript", "review.css": "text/css"}
TILE_PATH = re.compile(r"/tiles/(\d{1,12})/(-1|0|1)/(-1|0|1)")
REVIEWER = re.compile(r"[\w .@+-]{1,64}")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def is_loopback(host: str) -> bool:
    """Whether binding to `host` keeps the server on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ReviewApp:
    """What the request handlers share: the config, the database, the tile source."""

    def __init__(
        self, config: ReviewConfig, store: ReviewStore, source: TileSource, token: str
    ) -> None:
        self.config, self.store, self.source, self.token = config, store, source, token
        self.meta = store.meta()
        self._images: OrderedDict[tuple[int, int, int], bytes | None] = OrderedDict()
        self._lock = threading.Lock()

    def image(self, tile: mercantile.Tile) -> bytes | None:
        """The tile's bytes from the source (None: no imagery), kept in a small LRU."""
        key = (tile.z, tile.x, tile.y)
        with self._lock:
            if key in self._images:
                self._images.move_to_end(key)
                return self._images[key]
        found, errors = self.source.read([tile])
        data = found[0]
        if errors and errors[0][0] != "missing":
            log.warning("tile %d/%d/%d: %s", *key, errors[0][1])
            return None  # not cached: a later request tries again
        with self._lock:
            self._images[key] = data
            while len(self._images) > 2048:
                self._images.popitem(last=False)
        return data

    def settings(self, reviewer: str) -> dict[str, Any]:
        """What the page needs to know once."""
        m = self.meta
        return {
            "reviewer": reviewer,
            "positive_class": m["positive_class"],
            "negative_class": m["negative_class"],
            "threshold": float(m["threshold"]),
            "order": self.config.order,
            "min_score": self.config.min_score,
            "model_version": m["model_version"],
            "lease_seconds": self.config.lease_seconds,
        }


class Handler(BaseHTTPRequestHandler):
    """One request; `server.app` is the ReviewApp."""

    server_version = "satx-review"
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> ReviewApp:
        """The server's shared state."""
        return self.server.app  # type: ignore[attr-defined]

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
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

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
        offered = ""
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered = auth[len("Bearer ") :].strip()
        elif self.headers.get("Cookie"):
            jar = http.cookies.SimpleCookie(self.headers["Cookie"])
            offered = jar[COOKIE].value if COOKIE in jar else ""
        if offered and hmac.compare_digest(offered.encode(), token.encode()):
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

    def _guard(self) -> tuple[str, dict[str, list[str]]] | None:
        parsed = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(parsed.query)
        if not self._host_ok():
            self._error(HTTPStatus.MISDIRECTED_REQUEST, "use http://127.0.0.1:PORT/")
            return None
        ok = self._token_ok(query)
        if ok == "set-cookie":
            cookie = f"{COOKIE}={self.app.token}; HttpOnly; SameSite=Strict; Path=/"
            self._send(HTTPStatus.SEE_OTHER, b"", Location="/", **{"Set-Cookie": cookie})
            return None
        if not ok:
            self._error(HTTPStatus.UNAUTHORIZED, "token required: open the URL satx.review printed")
            return None
        return parsed.path, query

    def _reviewer(self, value: str | None) -> str | None:
        name = (value or "").strip()
        if not REVIEWER.fullmatch(name):
            self._error(HTTPStatus.BAD_REQUEST, "reviewer: 1-64 letters, digits, spaces or .@+-_")
            return None
        return name

    # -- routes -------------------------------------------------------------------------------

    def _safely(self, route: Callable[[], None]) -> None:
        try:
            route()
        except (ConnectionError, TimeoutError):
            pass  # the client went away
        except Exception:
            log.exception("review server: %s %s failed", self.command, self.path.split("?")[0])
            with contextlib.suppress(OSError):
                self._error(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the log)")

    def do_GET(self) -> None:
        """Pages, API reads, the overview and tile images."""
        self._safely(self._get)

    def do_POST(self) -> None:
        """Decisions and undo: JSON from the page's own origin only."""
        self._safely(self._post)

    def do_HEAD(self) -> None:
        """As GET, without the body."""
        self._safely(self._get)

    def _get(self) -> None:
        guarded = self._guard()
        if guarded is None:
            return
        path, query = guarded
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
        elif path == "/api/next":
            self._next(query)
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
        path, _ = guarded
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 65536)) if length else b""
        why = self._same_origin_json()
        if why is not None:
            status = HTTPStatus.UNSUPPORTED_MEDIA_TYPE if "JSON" in why else HTTPStatus.FORBIDDEN
            self._error(status, why)
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "the body is not JSON")
            return
        if path == "/api/decision":
            self._decision(body)
        elif path == "/api/undo":
            self._undo(body)
        else:
            self._error(HTTPStatus.NOT_FOUND, "not found")

    def _next(self, query: dict[str, list[str]]) -> None:
        reviewer = self._reviewer((query.get("reviewer") or [self.app.config.reviewer])[0])
        if reviewer is None:
            return
        c = self.app.config
        tile = self.app.store.next_tile(
            reviewer, c.order, c.min_score, c.lease_seconds, time.time()
        )
        if tile is None:
            self._send(HTTPStatus.NO_CONTENT)
        else:
            self._json(HTTPStatus.OK, {**tile, "reviewer": reviewer})

    def _decision(self, body: dict[str, Any]) -> None:
        reviewer = self._reviewer(body.get("reviewer"))
        if reviewer is None:
            return
        try:
            tile_id = int(body["id"])
            recorded, decision = self.app.store.decide(
                tile_id, str(body.get("decision")), reviewer, time.time()
            )
        except (KeyError, TypeError, ValueError):
            self._error(HTTPStatus.BAD_REQUEST, 'send {"id", "decision", "reviewer"}')
        except InputError as err:
            self._error(HTTPStatus.BAD_REQUEST, str(err))
        except NotFound as err:
            self._error(HTTPStatus.NOT_FOUND, str(err))
        except Conflict as err:
            self._error(HTTPStatus.CONFLICT, str(err))
        else:
            self._json(HTTPStatus.OK, {"id": tile_id, "recorded": recorded, **decision})

    def _undo(self, body: dict[str, Any]) -> None:
        reviewer = self._reviewer(body.get("reviewer"))
        if reviewer is None:
            return
        undone = self.app.store.undo(reviewer, self.app.config.lease_seconds, time.time())
        if undone is None:
            self._send(HTTPStatus.NO_CONTENT)
        else:
            self._json(HTTPStatus.OK, undone)

    def _overview(self, query: dict[str, list[str]]) -> None:
        current = None
        value = (query.get("current") or [""])[0]
        if value.isdigit():
            try:
                current = self.app.store.tile(int(value))
            except NotFound:
                current = None
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


class ReviewServer(ThreadingHTTPServer):
    """A threading HTTP server carrying the ReviewApp."""

    daemon_threads = True

    def __init__(self, app: ReviewApp):
        self.app = app
        super().__init__((app.config.host, app.config.port), Handler)

    @property
    def url(self) -> str:
        """The page's address (without the token)."""
        host, port = self.server_address[:2]
        shown = f"[{host}]" if ":" in str(host) else host
        return f"http://{shown}:{port}/"
