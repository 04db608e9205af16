"""A real tile server on loopback, for `satx.bench fetch` and the tests.

It serves a folder laid out `{z}/{x}/{y}.jpg` three ways: XYZ `/{z}/{x}/{y}.jpg`, TMS
`/tms/{z}/{x}/{y}.jpg` (rows counted from the south) and WMS `/wms?...&BBOX=minx,miny,maxx,maxy`
(EPSG:3857 bounds of one tile, as a `{bbox}` template sends), 404 for tiles it lacks,
with optional latency, a required token (`?access_token=` or a header), and scripted faults per
tile: each request for a tile takes the next fault in its list, then tiles are served normally.

Faults: `500`; `429` (with `Retry-After: 1`); `302` (back to the same URL); `slow` (answers
after `slow_s`, past a client's timeout); `404`; `html` (status 200 with an HTML quota page).
A fault list ending in `*` repeats its last fault forever.
"""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import mercantile

HTML_PAGE = b"<html><body><h1>Quota exceeded</h1><p>Upgrade your plan.</p></body></html>"


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # 32 fetch threads connect at once
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hung up (a timeout, a killed process) is not the server's error."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


Answer = Callable[[str, Mapping[str, str]], tuple[int, Mapping[str, str], bytes]]


def serve(answer: Answer) -> _Server:
    """A loopback HTTP/1.1 server in a daemon thread; stop it with `shutdown()`.

    GET and HEAD are answered by `answer(path, headers) -> (status, headers, body)`. An answer
    that sets a `Content-Length` longer than its body is a response cut mid-body: the body is
    sent and the connection closed, as a server or proxy that drops connections does.
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: clients pool their connections
        # Headers and body go out in two writes: with Nagle's algorithm the body waits for the
        # client's delayed ACK, tens of ms per request.
        disable_nagle_algorithm = True

        def _send(self, body: bool) -> None:
            status, headers, data = answer(self.path, self.headers)
            length = int(headers.get("Content-Length", len(data)))
            try:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                if body:
                    self.wfile.write(data)
                if len(data) < length:
                    self.close_connection = True  # cut: the client sees a short body
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                pass

        def do_GET(self) -> None:
            self._send(body=True)

        def do_HEAD(self) -> None:
            self._send(body=False)

        def log_message(self, *args: object) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _tile_key(path: str, query: dict[str, list[str]]) -> str:
    """`z/x/y` (XYZ rows) of a request, whichever way it names the tile."""
    path = path.strip("/").removesuffix(".jpg")
    if path.startswith("tms/"):
        z, x, row = (int(v) for v in path[4:].split("/"))
        return f"{z}/{x}/{2**z - 1 - row}"
    if path == "wms":
        bounds = {k.lower(): v for k, v in query.items()}.get("bbox", [""])[0]
        minx, miny, maxx, maxy = (float(v) for v in bounds.split(","))
        z = round(math.log2(2 * 20037508.342789244 / (maxx - minx)))
        lon, lat = mercantile.lnglat((minx + maxx) / 2, (miny + maxy) / 2)
        t = mercantile.tile(lon, lat, z)
        return f"{t.z}/{t.x}/{t.y}"
    return path


class TileServer:
    """Start with `with TileServer(folder) as server:`; `server.template` is the URL template.

    Args:
        folder: tiles as `{z}/{x}/{y}.jpg`.
        latency_s: added before every answer.
        faults: `"z/x/y"` -> faults, in the order requests meet them.
        token: when set, requests need `?access_token=TOKEN`.
        header: when set, `(name, value)` requests must carry.
        slow_s: how long a `slow` fault waits.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        latency_s: float = 0.0,
        faults: Mapping[str, Iterable[str]] | None = None,
        token: str = "",
        header: tuple[str, str] | None = None,
        slow_s: float = 2.0,
    ):
        self.folder = Path(folder)
        self.latency_s, self.slow_s = latency_s, slow_s
        self.faults = {key: list(plan) for key, plan in (faults or {}).items()}
        self.token, self.header = token, header
        self.requests: Counter[str] = Counter()  # "z/x/y" -> requests
        self.statuses: Counter[int] = Counter()
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        """The ephemeral port the server listens on."""
        assert self._server is not None, "start the server first"
        return self._server.server_address[1]

    @property
    def template(self) -> str:
        """`http://127.0.0.1:PORT/{z}/{x}/{y}.jpg`."""
        return f"http://127.0.0.1:{self.port}/{{z}}/{{x}}/{{y}}.jpg"

    @property
    def tms_template(self) -> str:
        """The same tiles with TMS rows: `.../tms/{z}/{x}/{-y}.jpg`."""
        return f"http://127.0.0.1:{self.port}/tms/{{z}}/{{x}}/{{-y}}.jpg"

    @property
    def wms_template(self) -> str:
        """The same tiles as WMS GetMap requests in EPSG:3857."""
        return (
            f"http://127.0.0.1:{self.port}/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=t&"
            "CRS=EPSG:3857&WIDTH=256&HEIGHT=256&FORMAT=image/jpeg&BBOX={bbox}"
        )

    def _next_fault(self, key: str) -> str:
        with self._lock:
            self.requests[key] += 1
            plan = self.faults.get(key)
            if not plan:
                return ""
            if plan[-1] == "*":
                return plan[0] if len(plan) == 2 else plan.pop(0)
            return plan.pop(0)

    def _authorised(self, query: dict[str, list[str]], headers: Mapping[str, str]) -> bool:
        token_ok = not self.token or query.get("access_token") == [self.token]
        return token_ok and (not self.header or headers.get(self.header[0]) == self.header[1])

    def _answer(self, path: str, headers: Mapping[str, str]) -> tuple[int, dict, bytes]:
        parts = urllib.parse.urlsplit(path)
        if not self._authorised(urllib.parse.parse_qs(parts.query), headers):
            return 401, {}, b"unauthorised"
        key = _tile_key(parts.path, urllib.parse.parse_qs(parts.query))
        fault = self._next_fault(key)
        if self.latency_s:
            time.sleep(self.latency_s)
        if fault == "500":
            return 500, {}, b"server error"
        if fault == "429":
            return 429, {"Retry-After": "1"}, b"slow down"
        if fault == "302":  # to the same place: the next request meets the next fault
            return 302, {"Location": path}, b""
        if fault == "slow":
            time.sleep(self.slow_s)
        if fault == "404":
            return 404, {}, b""
        if fault == "html":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, HTML_PAGE
        file = self.folder / f"{key}.jpg"
        if ".." in key or not file.is_file():
            return 404, {}, b""
        return 200, {"Content-Type": "image/jpeg"}, file.read_bytes()

    def _respond(self, path: str, headers: Mapping[str, str]) -> tuple[int, dict, bytes]:
        status, answer_headers, body = self._answer(path, headers)
        with self._lock:
            self.statuses[status] += 1
        return status, answer_headers, body

    def __enter__(self) -> TileServer:
        self._server = serve(self._respond)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class ServerProcess:
    """A loopback server in its own process (its own interpreter lock), as a real service is.

    `code` runs with `sys.argv[1:]` = `args`: it starts the server, prints the one line the
    parent needs (its URL or template) and serves until stdin closes. `with` gives that line
    as `self.address`.
    """

    def __init__(self, code: str, *args: str):
        self.code, self.args = code, args
        self._proc: subprocess.Popen | None = None
        self.address = ""

    def __enter__(self) -> ServerProcess:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", self.code, *self.args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.address = self._proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("the server process did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


class TileServerProcess(ServerProcess):
    """A `TileServer` in its own process: `with TileServerProcess(folder, 0.05) as s:`.

    `s.template` is its URL template.
    """

    CODE = (
        "import sys\n"
        "from satx.bench.tileserver import TileServer\n"
        "with TileServer(sys.argv[1], latency_s=float(sys.argv[2])) as s:\n"
        "    print(s.template, flush=True)\n"
        "    sys.stdin.read()\n"  # until the parent closes stdin (or dies)
    )

    def __init__(self, folder: str | Path, latency_s: float = 0.0):
        super().__init__(self.CODE, str(folder), str(latency_s))

    @property
    def template(self) -> str:
        """`http://127.0.0.1:PORT/{z}/{x}/{y}.jpg`."""
        return self.address
