"""The review server's HTTP against a real `satx.review` process: issue 35's findings 6 and 9.

Raw sockets on loopback, as the findings were made. The slow clients connect from 127.0.0.2
(any 127.x address is this machine's loopback), the reviewers from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import sqlite3
import time
import urllib.parse

import pytest

from satx.review.protocol import cookie_key, cookie_name
from tests.review.test_hostile import decision_request, exchange, raw, request
from tests.support.review import start_review_process

pytestmark = pytest.mark.slow

TOKEN = "hostile-http-token-0123456789"


@contextlib.contextmanager
def review_process(prediction_set, tmp_path, *extra):
    proc, url = start_review_process(prediction_set, tmp_path / "r.sqlite", *extra)
    try:
        yield urllib.parse.urlsplit(url).port, tmp_path / "r.sqlite"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def decisions(db) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT count(*) FROM decisions").fetchone()[0]


def slow_client(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.2", 0))
    s.settimeout(30)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /api/stats HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
    return s


def closed(s: socket.socket) -> bool:
    """Whether the server has closed `s` (FIN or reset), without waiting."""
    if not select.select([s], [], [], 0)[0]:
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True


def test_6_slow_clients_cannot_hold_the_server(prediction_set, tmp_path):
    with review_process(prediction_set, tmp_path) as (port, _):
        slow = [slow_client(port) for _ in range(64)]
        started = time.monotonic()
        statuses = [raw(port, request(port, "GET", "/api/stats"))[0] for _ in range(20)]
        assert statuses == [200] * 20
        assert time.monotonic() - started < 5  # served at once, not after the slow ones
        # one client address holds at most 32 connections: the rest were answered 503
        answered = select.select(slow, [], [], 1.0)[0]
        refused = [s for s in answered if s.recv(64).startswith(b"HTTP/1.1 503")]
        held = [s for s in slow if s not in refused]
        assert len(refused) == 32 and len(held) == 32
        # a header line every 2 s keeps no request alive past the deadline (10 s)
        alive = set(held)
        while alive and time.monotonic() - started < 30:
            for s in list(alive):
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    alive.discard(s)
                    continue
                if closed(s):
                    alive.discard(s)
            time.sleep(2)
        assert not alive and time.monotonic() - started < 20
        for s in slow:
            s.close()


def test_9_header_grammar_lengths_cookies_and_links(prediction_set, tmp_path):
    passwd = "/etc/passwd"
    inner = prediction_set["inner"][0]
    neighbour = prediction_set["tiles_dir"] / str(inner.z) / str(inner.x - 1) / f"{inner.y}.jpg"
    neighbour.unlink()
    os.symlink(passwd, neighbour)
    with review_process(prediction_set, tmp_path, f"--token={TOKEN}") as (port, db):
        auth = {"Authorization": f"Bearer {TOKEN}"}
        hidden = decision_request(port)
        body = json.dumps({"reviewer": "ana"}).encode()
        lines = [
            b"POST /api/undo HTTP/1.1",
            f"Host: 127.0.0.1:{port}".encode(),
            f"Authorization: Bearer {TOKEN}".encode(),
            b"Content-Type: application/json",
            b"X-Padding : 1",  # whitespace before the colon
            f"Content-Length: {len(hidden)}".encode(),
        ]
        spaced = b"\r\n".join(lines) + b"\r\n\r\n" + hidden
        assert raw(port, spaced) == [400]
        conflicting = request(
            port, "POST", "/api/undo", body, Content_Type="application/json", **auth
        ).replace(b"\r\n\r\n", f"\r\nContent-Length: {len(body) + 5}\r\n\r\n".encode(), 1)
        assert raw(port, conflicting) == [400]
        assert decisions(db) == 0
        # a valid cookie beside other sites' cookies that http.cookies cannot parse
        ours = f"{cookie_name(port)}={cookie_key(TOKEN, port)}"
        for jar in (f'prefs={{"lang":"en"}}; {ours}', f"name=José; {ours}; x=1"):
            sent = request(port, "GET", "/api/stats", Cookie=jar)
            assert raw(port, sent) == [200], jar
        # the tile route does not follow a link out of the tile folder
        with contextlib.closing(sqlite3.connect(db)) as conn:
            where = "SELECT id FROM tiles WHERE z = ? AND x = ? AND y = ?"
            tile_id = conn.execute(where, (inner.z, inner.x, inner.y)).fetchone()[0]
        answer = exchange(port, request(port, "GET", f"/tiles/{tile_id}/-1/0", **auth))
        assert answer.startswith(b"HTTP/1.1 404 ") and b"root:" not in answer
        assert raw(port, request(port, "GET", f"/tiles/{tile_id}/0/0", **auth)) == [200]
