"""A static file server on loopback with HTTP range requests, as object stores and CDNs serve COGs.

`with FileServer(folder) as server:` serves `server.url(name)`; GET and HEAD, one byte range a
request (`Range: bytes=a-b`, `a-`, `-n`: 206), an ETag, and an optional `?access_token=` it
requires. `ranges` counts the range requests served.
"""

from __future__ import annotations

import hashlib
import re
import threading
import urllib.parse
from pathlib import Path

from satx.bench.tileserver import _Server, serve

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class FileServer:
    """Files of `folder` over HTTP on 127.0.0.1 (see the module docstring)."""

    def __init__(self, folder: str | Path, *, token: str = ""):
        self.folder, self.token = Path(folder), token
        self.ranges = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def url(self, name: str) -> str:
        """The URL of a file of the folder (with the token when one is required)."""
        assert self._server is not None, "start the server first"
        query = f"?access_token={self.token}" if self.token else ""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}{query}"

    def _answer(self, path: str, range_header: str | None) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        if self.token and query.get("access_token") != [self.token]:
            return 401, {}, b"unauthorised"
        name = urllib.parse.unquote(parts.path).lstrip("/")
        file = (self.folder / name).resolve()
        if self.folder.resolve() not in file.parents or not file.is_file():
            return 404, {}, b""
        data = file.read_bytes()
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{hashlib.md5(data).hexdigest()}"'}
        match = _RANGE.match(range_header or "")
        if not match:
            return 200, headers, data
        first, last = match.groups()
        start = len(data) - int(last) if not first else int(first)
        stop = len(data) if not last or not first else min(len(data), int(last) + 1)
        if start >= len(data):
            return 416, {"Content-Range": f"bytes */{len(data)}"}, b""
        with self._lock:
            self.ranges += 1
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(data)}"
        return 206, headers, data[start:stop]

    def __enter__(self) -> FileServer:
        self._server = serve(lambda path, headers: self._answer(path, headers.get("Range")))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
