"""A static file server on loopback with HTTP range requests, as object stores and CDNs serve COGs.

`with FileServer(folder) as server:` serves `server.url(name)`; GET and HEAD, one byte range a
request (`Range: bytes=a-b`, `a-`, `-n`: 206, reading only that range), an ETag (size and
modification time, as nginx makes it), and an optional `?access_token=` it requires.
`header=(name, value)` is a header it requires. `ranges` counts the range requests served.
Faults, as a flaky server or proxy makes them: `drops=N` cuts the first N range responses
mid-body (half the bytes, then the connection closes); `fails=N` answers the first N requests
503.
`FileServerProcess` runs one in its own process, for benchmarks.
"""

from __future__ import annotations

import re
import threading
import urllib.parse
from collections.abc import Mapping
from pathlib import Path

from satx.bench.tileserver import ServerProcess, _Server, serve

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class FileServer:
    """Files of `folder` over HTTP on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        token: str = "",
        header: tuple[str, str] | None = None,
        drops: int = 0,
        fails: int = 0,
    ):
        self.folder, self.token, self.header = Path(folder), token, header
        self.drops, self.fails = drops, fails
        self.ranges = self.dropped = self.failed = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    def url(self, name: str) -> str:
        """The URL of a file of the folder (with the token when one is required)."""
        assert self._server is not None, "start the server first"
        query = f"?access_token={self.token}" if self.token else ""
        return f"http://127.0.0.1:{self._server.server_address[1]}/{name}{query}"

    def _answer(self, path: str, given: Mapping[str, str]) -> tuple[int, dict[str, str], bytes]:
        parts = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(parts.query)
        if self.token and query.get("access_token") != [self.token]:
            return 401, {}, b"unauthorised"
        if self.header and given.get(self.header[0]) != self.header[1]:
            return 401, {}, b"unauthorised"
        with self._lock:
            fail = self.failed < self.fails
            self.failed += fail
        if fail:
            return 503, {}, b"busy"
        name = urllib.parse.unquote(parts.path).lstrip("/")
        file = (self.folder / name).resolve()
        if self.folder.resolve() not in file.parents or not file.is_file():
            return 404, {}, b""
        stat = file.stat()
        size = stat.st_size
        headers = {"Accept-Ranges": "bytes", "ETag": f'"{stat.st_mtime_ns:x}-{size:x}"'}
        match = _RANGE.match(given.get("Range") or "")
        if not match:
            return 200, headers, file.read_bytes()
        first, last = match.groups()
        start = size - int(last) if not first else int(first)
        stop = size if not last or not first else min(size, int(last) + 1)
        if start >= size:
            return 416, {"Content-Range": f"bytes */{size}"}, b""
        with open(file, "rb") as f:
            f.seek(start)
            data = f.read(stop - start)
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
        with self._lock:
            self.ranges += 1
            drop = self.dropped < self.drops
            self.dropped += drop
        if drop:  # the full length promised, half of it sent
            return 206, {**headers, "Content-Length": str(len(data))}, data[: len(data) // 2]
        return 206, headers, data

    def __enter__(self) -> FileServer:
        self._server = serve(self._answer)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()


class FileServerProcess(ServerProcess):
    """A `FileServer` in its own process: `with FileServerProcess(folder) as s: s.url(name)`."""

    CODE = (
        "import sys\n"
        "from satx.bench.fileserver import FileServer\n"
        "with FileServer(sys.argv[1]) as s:\n"
        "    print(s.url(''), flush=True)\n"
        "    sys.stdin.read()\n"  # until the parent closes stdin (or dies)
    )

    def __init__(self, folder: str | Path):
        super().__init__(self.CODE, str(folder))

    def url(self, name: str) -> str:
        """The URL of a file of the folder."""
        return self.address + urllib.parse.quote(name)
