"""The review server over real HTTP on loopback: API, leases under concurrency, tokens, guards."""

from __future__ import annotations

import http.client
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from satx.review.run import resolve
from tests.support.review import review_config

TOKEN = "s3cret-review-token-0123456789"


def send(review, method, path, body=None, headers=None, host=None):
    """One raw HTTP request (paths are sent as given: no client-side normalising)."""
    conn = http.client.HTTPConnection("127.0.0.1", review.port, timeout=30)
    all_headers = {"Host": host or f"127.0.0.1:{review.port}", **(headers or {})}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=data, headers=all_headers)
    response = conn.getresponse()
    payload = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), payload


def api(review, method, path, body=None, **kwargs):
    status, _, payload = send(review, method, path, body, **kwargs)
    return status, (json.loads(payload) if payload else None)


def test_two_reviewers_in_parallel_never_share_a_tile(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))

    def work(reviewer: str) -> list[int]:
        seen = []
        for k in range(100):
            status, tile = api(review, "POST", "/api/next", {"reviewer": reviewer})
            assert status == 200, tile
            seen.append(tile["id"])
            decision = ("positive", "negative", "skip")[k % 3]
            body = {"id": tile["id"], "decision": decision, "reviewer": reviewer}
            assert api(review, "POST", "/api/decision", body)[0] == 200
        return seen

    with ThreadPoolExecutor(2) as pool:
        ana, ben = pool.map(work, ["ana", "ben"])
    assert len(set(ana)) == 100 and len(set(ben)) == 100 and not set(ana) & set(ben)
    rows = review.app.store.live_decisions()
    assert len(rows) == 200 and len({(r["z"], r["x"], r["y"]) for r in rows}) == 200
    assert {r["reviewer"] for r in rows} == {"ana", "ben"}
    status, stats = api(review, "GET", "/api/stats")
    assert (stats["reviewed"], stats["remaining"]) == (200, 25)


def test_the_api_answers_204_when_the_queue_is_empty(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite", min_score=0.99))
    ids = []
    while (answer := api(review, "POST", "/api/next", {"reviewer": "ana"}))[0] == 200:
        ids.append(answer[1]["id"])
        api(
            review,
            "POST",
            "/api/decision",
            {"id": ids[-1], "decision": "positive", "reviewer": "ana"},
        )
    assert answer[0] == 204
    assert len(ids) == sum(s >= 0.99 for s in prediction_set["scores"].values())
    assert api(review, "POST", "/api/next", {"reviewer": "a/b"})[0] == 400  # not a reviewer name


def test_tiles_and_their_neighbours_come_from_the_source(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    _, tile = api(review, "POST", "/api/next", {"reviewer": "ana"})
    for dx, dy in [(0, 0), (-1, -1), (1, 1)]:
        status, headers, data = send(review, "GET", f"/tiles/{tile['id']}/{dx}/{dy}")
        want = Path(prediction_set["tiles_dir"], "18", str(tile["x"] + dx), f"{tile['y'] + dy}.jpg")
        assert status == 200 and data == want.read_bytes()
        assert headers["Content-Type"] == "image/jpeg"
    assert send(review, "GET", f"/tiles/{10**6}/0/0")[0] == 404  # not in the predictions
    assert send(review, "GET", f"/tiles/{tile['id']}/2/0")[0] == 404  # not a neighbour
    page = send(review, "GET", "/")
    assert page[0] == 200 and b"review.js" in page[2]
    assert "frame-ancestors 'none'" in page[1]["Content-Security-Policy"]
    svg = send(review, "GET", f"/overview.svg?current={tile['id']}")
    assert svg[0] == 200 and svg[2].count(b'class="cell-pending"') > 1 and b"current" in svg[2]


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/../../etc/passwd",
        "/tiles/1/0/0/../../../../etc/passwd",
        "/static/../store.py",
        "/static/..%2fstore.py",
        "/static/%2e%2e%2fstore.py",
        "/static/..%2F..%2Freview%2Fstore.py",
        "/tiles/%2e%2e/0/0",
        "/..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/tiles/1/0/0%2f..%2f..",
    ],
)
def test_paths_outside_the_tiles_get_nothing(prediction_set, tmp_path, serve_review, path):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    status, _, body = send(review, "GET", path)
    assert status == 404
    assert b"root:" not in body and b"import" not in body and b"\xff\xd8" not in body


def test_a_token_is_required_on_every_request(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite", token=TOKEN))
    for path in ["/", "/api/config", "/api/stats", "/tiles/1/0/0", "/static/review.js"]:
        assert send(review, "GET", path)[0] == 401, path
    assert send(review, "GET", "/?token=wrong-token-wrong-token")[0] == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert send(review, "GET", "/api/stats", headers=bearer)[0] == 200
    status, headers, _ = send(review, "GET", f"/?token={TOKEN}")
    assert status == 303 and headers["Location"] == "/"
    cookie = headers["Set-Cookie"].split(";")[0]
    assert "HttpOnly" in headers["Set-Cookie"] and "SameSite=Strict" in headers["Set-Cookie"]
    next_tile = {"reviewer": "ana"}
    assert send(review, "POST", "/api/next", next_tile, headers={"Cookie": cookie})[0] == 200
    assert send(review, "POST", "/api/next", next_tile)[0] == 401
    body = {"id": 1, "decision": "skip", "reviewer": "ana"}
    assert send(review, "POST", "/api/decision", body)[0] == 401
    assert send(review, "POST", "/api/decision", body, headers=bearer)[0] == 200
    record = review.app.store.query("SELECT record FROM runs")[0]["record"]
    assert TOKEN not in record and '"token": "REDACTED"' in record


def test_cross_site_decisions_are_refused(prediction_set, tmp_path, serve_review):
    review = serve_review(review_config(prediction_set, tmp_path / "r.sqlite"))
    _, tile = api(review, "POST", "/api/next", {"reviewer": "ana"})
    body = {"id": tile["id"], "decision": "positive", "reviewer": "ana"}
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert send(review, "POST", "/api/decision", body, headers=form)[0] == 415
    assert (
        send(review, "POST", "/api/decision", body, headers={"Content-Type": "text/plain"})[0]
        == 415
    )
    evil = {"Origin": "http://evil.example"}
    assert send(review, "POST", "/api/decision", body, headers=evil)[0] == 403
    assert (
        send(review, "POST", "/api/decision", body, headers={"Sec-Fetch-Site": "cross-site"})[0]
        == 403
    )
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 sends its own Host.
    assert send(review, "GET", "/api/stats", host="evil.example")[0] == 421
    assert review.app.store.live_decisions() == []
    same = {"Origin": f"http://127.0.0.1:{review.port}", "Sec-Fetch-Site": "same-origin"}
    assert send(review, "POST", "/api/decision", body, headers=same)[0] == 200


def test_off_loopback_a_token_is_generated_or_must_be_long(prediction_set, tmp_path):
    config = review_config(prediction_set, tmp_path / "r.sqlite", host="0.0.0.0")
    assert len(resolve(config).token) >= 32
    assert resolve(review_config(prediction_set, tmp_path / "r.sqlite")).token == ""
    with pytest.raises(Exception, match="at least 16"):
        resolve(review_config(prediction_set, tmp_path / "r.sqlite", token="short"))


@pytest.mark.parametrize("kind", ["http", "mbtiles", "pmtiles", "gcs"])
def test_any_tile_source_predict_accepts_feeds_the_page(
    kind, prediction_set, tmp_path, serve_review, request
):
    """HTTP (token in the URL), MBTiles, PMTiles; and predictions read from gs://."""
    import contextlib

    import mercantile
    import numpy as np

    from satx.bench.tileserver import TileServer
    from tests.support.helpers import write_mbtiles, write_pmtiles
    from tests.support.review import write_predictions

    folder = Path(prediction_set["tiles_dir"])
    files = {
        mercantile.Tile(int(p.parent.name), int(p.stem), int(p.parent.parent.name)): p.read_bytes()
        for p in folder.glob("*/*/*.jpg")
    }
    predictions, tiles, secret = prediction_set["predictions"], prediction_set["tiles"], ""
    with contextlib.ExitStack() as stack:
        if kind == "http":
            secret = "tile-s3cr3t-4417"
            server = stack.enter_context(TileServer(folder, token=secret))
            tiles = server.template + f"?access_token={secret}"
        elif kind == "mbtiles":
            tiles = str(write_mbtiles(tmp_path / "t.mbtiles", files))
        elif kind == "pmtiles":
            tiles = str(write_pmtiles(tmp_path / "t.pmtiles", files))
        else:
            from tests.support.helpers import GCS_BUCKET

            request.getfixturevalue("gcs")
            inner = prediction_set["inner"][:20]
            scores = np.array([prediction_set["scores"][t] for t in inner])
            predictions = write_predictions(
                f"gs://{GCS_BUCKET}/review/{tmp_path.name}", inner, scores
            )
        config = review_config(
            {**prediction_set, "predictions": predictions, "tiles": tiles}, tmp_path / "r.sqlite"
        )
        review = serve_review(config)
        _, tile = api(review, "POST", "/api/next", {"reviewer": "ana"})
        for dx, dy in [(0, 0), (1, -1)]:
            status, _, data = send(review, "GET", f"/tiles/{tile['id']}/{dx}/{dy}")
            assert status == 200
            assert data == files[mercantile.Tile(tile["x"] + dx, tile["y"] + dy, tile["z"])]
        if secret:
            db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("r.sqlite*"))
            assert secret.encode() not in db_bytes  # not in the run record, nowhere in the db
