"""The review server against hostile clients: raw HTTP over real sockets, one test per attack.

Each test is one finding of the review of issue 26 (BUILD_NOTES, "Review server"); the browser's
version of the first is in test_browser.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import time

import pytest

from satx.review.protocol import MAX_BODY, page_urls
from tests.support.helpers import cli
from tests.support.review import review_config

TOKEN = "hostile-test-token-0123456789"


def exchange(port: int, data: bytes, host: str = "127.0.0.1", timeout: float = 20) -> bytes:
    """Send bytes as they are, then end the stream; every byte the server answers.

    The server sees everything sent before the end, so a request hidden in the bytes is
    answered unless the server refused to parse it.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    received = b""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        try:
            s.sendall(data)
            with contextlib.suppress(OSError):  # the server may have closed its side already
                s.shutdown(socket.SHUT_WR)
            while chunk := s.recv(65536):
                received += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
    return received


def raw(port: int, data: bytes, host: str = "127.0.0.1") -> list[int]:
    """The statuses of every answer to `data`."""
    return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", exchange(port, data, host))]


def request(
    port: int, method: str, path: str, body: bytes = b"", host: str | None = None, **headers: str
) -> bytes:
    """One HTTP/1.1 request's bytes (keep-alive), with exactly the headers given."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host or f'127.0.0.1:{port}'}"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    if body and "Content-Length" not in {k.replace("_", "-") for k in headers}:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def decision_request(port: int, tile_id: int = 1) -> bytes:
    """A well-formed same-origin decision: what an attacker hides inside another request."""
    body = json.dumps({"id": tile_id, "decision": "positive", "reviewer": "ana"}).encode()
    return request(port, "POST", "/api/decision", body, Content_Type="application/json")


def test_1_nothing_is_smuggled_inside_a_refused_body(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    port, hidden = review.port, decision_request(review.port)
    # A cross-site text/plain form over 64 KiB with a decision after the first 64 KiB.
    body = b"a" * MAX_BODY + hidden + b"b" * 100
    form = request(port, "POST", "/api/decision", body, Content_Type="text/plain")
    assert raw(port, form) == [413]
    # Under the limit the body is read whole: 415, and the connection is closed all the same.
    small = request(port, "POST", "/api/decision", hidden, Content_Type="text/plain")
    assert raw(port, small) == [415]
    # DNS rebinding: Host evil is refused, and the request inside its body is never parsed.
    rebound = request(
        port, "POST", "/api/decision", hidden, host="evil.example", Content_Type="application/json"
    )
    assert raw(port, rebound) == [421]
    # A GET carries no body; a chunked body is read by its chunk sizes, and the hidden request
    # is not one (waitress: 400).
    assert raw(port, request(port, "GET", "/api/stats", hidden)) == [400]
    chunked = request(port, "POST", "/api/decision", Transfer_Encoding="chunked") + hidden
    assert raw(port, chunked) == [400]
    assert review.app.store.live_decisions() == []
    # The hidden request alone is a valid decision: the refusals above are what stopped it.
    assert raw(port, hidden + request(port, "GET", "/api/stats")) == [200, 200]
    assert len(review.app.store.live_decisions()) == 1


def test_2_leasing_is_a_same_origin_post(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    port = review.port
    body = json.dumps({"reviewer": "x"}).encode()
    assert raw(port, request(port, "GET", "/api/next?reviewer=x")) == [405]  # an <img src>
    assert raw(port, request(port, "POST", "/api/next", body, Content_Type="text/plain")) == [415]
    cross = request(
        port,
        "POST",
        "/api/next",
        body,
        Content_Type="application/json",
        Origin="http://evil.example",
    )
    assert raw(port, cross) == [403]
    leased = "SELECT count(*) AS n FROM tiles WHERE lease_reviewer IS NOT NULL"
    assert review.app.store.query(leased)[0]["n"] == 0
    same = request(port, "POST", "/api/next", body, Content_Type="application/json")
    assert raw(port, same) == [200]


def served_again(port: int) -> None:
    """Wait until the slots of closed connections come back (the server's threads free them)."""
    deadline = time.monotonic() + 10
    while (statuses := raw(port, request(port, "GET", "/api/stats"))) != [200]:
        assert statuses == [503] and time.monotonic() < deadline, statuses
        time.sleep(0.1)


def test_3_lengths_and_idle_connections_are_bounded(prediction_set, tmp_path, serve_review):
    review = serve_review(
        review_config(prediction_set, tmp_path / "r.sqlite"), idle_seconds=1.0, max_per_client=4
    )
    port = review.port
    for length, status in [("-1", 400), ("abc", 400), ("1e3", 400), ("999999999", 413)]:
        sent = request(
            port, "POST", "/api/undo", Content_Type="application/json", Content_Length=length
        )
        assert raw(port, sent + b"x" * 1000) == [status], length
    # Idle sockets are closed after idle_seconds; beyond max_per_client a client gets 503.
    served_again(port)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(4)]
    time.sleep(0.3)
    assert raw(port, request(port, "GET", "/api/stats")) == [503]
    for s in idle:
        started = time.monotonic()
        assert s.recv(10) == b""  # closed by the server, not by us
        assert time.monotonic() - started < 5
        s.close()
    served_again(port)


def test_4_a_reopened_review_refuses_other_classes_or_threshold(prediction_set, tmp_path):
    from satx.errors import InputError
    from satx.review.run import open_review

    db = tmp_path / "r.sqlite"
    server = open_review(review_config(prediction_set, db, threshold=0.8))
    server.server_close()
    server.app.store.close()
    for flag, value in [("threshold", 0.5), ("positive_class", "not_school")]:
        with pytest.raises(InputError, match=f"--{flag}=.*reviews with {flag}"):
            open_review(review_config(prediction_set, db, **{flag: value}))
    again = open_review(review_config(prediction_set, db))  # no flag: the recorded values
    assert again.app.settings("ana")["threshold"] == 0.8
    again.server_close()
    again.app.store.close()
    proc = cli(
        "satx.review",
        f"--predictions={prediction_set['predictions']}",
        f"--tiles={prediction_set['tiles']}",
        f"--db={db}",
        "--negative_class=background",
        "--port=0",
    )
    assert proc.returncode == 2 and "--negative_class=background" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_5_each_server_has_its_own_cookie_and_it_is_not_the_token(
    prediction_set, tmp_path, serve_review
):
    a = serve_review(review_config(prediction_set, tmp_path / "a.sqlite", token=TOKEN))
    b = serve_review(review_config(prediction_set, tmp_path / "b.sqlite", token=TOKEN))
    cookies = {}
    for review in (a, b):
        answer = exchange(review.port, request(review.port, "GET", f"/?token={TOKEN}"))
        cookie = re.search(rb"Set-Cookie: ([^;]+);", answer).group(1).decode()
        assert TOKEN not in cookie
        cookies[review.port] = cookie
    assert cookies[a.port].split("=")[0] != cookies[b.port].split("=")[0]
    for review, cookie, status in [(a, cookies[a.port], 200), (b, cookies[a.port], 401)]:
        sent = request(review.port, "GET", "/api/stats", Cookie=cookie)
        assert raw(review.port, sent) == [status]
    # Both cookies in one jar (one host, two ports): each server finds its own.
    both = f"{cookies[a.port]}; {cookies[b.port]}"
    for review in (a, b):
        sent = request(review.port, "GET", "/api/stats", Cookie=both)
        assert raw(review.port, sent) == [200]


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"null",
        b'"text"',
        b'{"id": 1, "decision": "positive", "reviewer": 5}',
        b'{"id": 1, "decision": "positive", "reviewer": ["ana"]}',
        b'{"id": 1e300, "decision": "positive", "reviewer": "ana"}',
        b'{"id": Infinity, "decision": "positive", "reviewer": "ana"}',
        b'{"id": NaN, "decision": "positive", "reviewer": "ana"}',
        b'{"id": 9223372036854775808, "decision": "positive", "reviewer": "ana"}',
        b'{"id": true, "decision": "positive", "reviewer": "ana"}',
        b'{"id": 190.9, "decision": "positive", "reviewer": "ana"}',
        b'{"id": "1", "decision": "positive", "reviewer": "ana"}',
        b'{"id": 1, "decision": 1, "reviewer": "ana"}',
        b'{"id": 1, "decision": "yes", "reviewer": "ana"}',
        b"[" * 100_000,
    ],
)
def test_6_malformed_json_gets_400_and_one_error(body, prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    body = body[:MAX_BODY]
    sent = request(review.port, "POST", "/api/decision", body, Content_Type="application/json")
    head, _, payload = exchange(review.port, sent).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), head
    assert list(json.loads(payload)) == ["error"]
    assert review.app.store.live_decisions() == []


def test_6_an_overview_of_no_tile_is_400(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    port = review.port
    for current, status in [("99999999999999999999999", 400), ("-1", 400), ("1", 200), ("", 200)]:
        sent = request(port, "GET", f"/overview.svg?current={current}")
        assert raw(port, sent) == [status], current


def test_7_a_missing_tile_source_is_refused_and_unseen_tiles_are_not_decided(
    prediction_set, tmp_path, serve_review
):
    proc = cli(
        "satx.review",
        f"--predictions={prediction_set['predictions']}",
        f"--tiles={tmp_path / 'no' / 'such' / 'folder'}",
        f"--db={tmp_path / 'missing.sqlite'}",
        "--port=0",
    )
    assert proc.returncode == 2 and "none of the first 8 tiles" in proc.stderr
    assert "no/such/folder" in proc.stderr and "Traceback" not in proc.stderr

    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    lowest = review.app.store.query("SELECT id, z, x, y FROM tiles ORDER BY score LIMIT 1")[0]
    (prediction_set["tiles_dir"] / f"{lowest['z']}/{lowest['x']}/{lowest['y']}.jpg").unlink()
    for decision, status in [("positive", 409), ("negative", 409), ("skip", 200)]:
        body = json.dumps({"id": lowest["id"], "decision": decision, "reviewer": "ana"}).encode()
        sent = request(review.port, "POST", "/api/decision", body, Content_Type="application/json")
        assert raw(review.port, sent + request(review.port, "GET", "/api/stats"))[0] == status
    assert [r["decision"] for r in review.app.store.live_decisions()] == ["skip"]


def test_8_exported_cells_never_start_a_formula(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    for name in ("+ana", "-ana", "@ana", "=1+1"):
        body = json.dumps({"reviewer": name}).encode()
        sent = request(review.port, "POST", "/api/next", body, Content_Type="application/json")
        assert raw(review.port, sent) == [400], name
    # A database made before names were checked: the export neutralises the cells.
    for tile_id, name in [(1, "+ana"), (2, "@ben"), (3, "ana")]:
        review.app.store.decide(tile_id, "positive", name, time.time())
    proc = cli("satx.review", f"--db={tmp_path / 'r.sqlite'}", f"--export={tmp_path / 'l.csv'}")
    assert proc.returncode == 0, proc.stderr
    import csv

    with open(tmp_path / "l.csv", newline="") as f:
        reviewers = [r["reviewer"] for r in csv.DictReader(f)]
    assert reviewers == ["'+ana", "'@ben", "ana"]


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
def test_9_the_server_listens_on_ipv6_loopback(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite", host="::1"))
    assert review.server.url == f"http://[::1]:{review.port}/"
    sent = request(review.port, "GET", "/api/stats", host=f"[::1]:{review.port}")
    assert raw(review.port, sent, host="::1") == [200]


def test_9_urls_name_the_machine_when_bound_to_every_address():
    for host in ("0.0.0.0", "::"):
        urls = page_urls(host, 8765)
        assert urls and not any("0.0.0.0" in u or "[::]" in u for u in urls)
        assert socket.gethostname() in " ".join(urls)
    assert page_urls("127.0.0.1", 8765) == ["http://127.0.0.1:8765/"]


def test_9_export_reads_the_database_without_changing_it(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    review.app.store.decide(1, "positive", "ana", time.time())
    review.stop()
    db = tmp_path / "r.sqlite"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    proc = cli("satx.review", f"--db={db}", f"--export={tmp_path / 'l.csv'}")
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    wal = tmp_path / "r.sqlite-wal"  # SQLite's read-only WAL reader may create it, empty
    assert not wal.exists() or wal.stat().st_size == 0
    (tmp_path / "empty.sqlite").touch()
    (tmp_path / "other.sqlite").write_bytes(b"not a database at all" * 100)
    for name, message in [
        ("empty.sqlite", "no such review database"),
        ("missing.sqlite", "no such review database"),
        ("other.sqlite", "not a review database"),
    ]:
        proc = cli("satx.review", f"--db={tmp_path / name}", f"--export={tmp_path / 'x.csv'}")
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert (tmp_path / "empty.sqlite").stat().st_size == 0


def test_10_export_overwrites_only_an_earlier_export(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    review.app.store.decide(1, "positive", "ana", time.time())
    review.stop()
    mine = tmp_path / "labels.csv"
    mine.write_text("name,phone\nana,555\n")  # a user's CSV of the same name
    export = ("satx.review", f"--db={tmp_path / 'r.sqlite'}")
    proc = cli(*export, f"--export={mine}")
    assert proc.returncode == 2 and "is not a satx.review export" in proc.stderr
    assert mine.read_text() == "name,phone\nana,555\n"
    ours = tmp_path / "ours.csv"
    for _ in range(2):  # a second export replaces the first
        assert cli(*export, f"--export={ours}").returncode == 0
    assert ours.read_text().startswith("z,x,y,label,")
