"""`python -m satx.review` as people run it: kill -9 and restart, export, make_records, mistakes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import mercantile
import pytest

from satx.review.store import ReviewStore
from tests.helpers import REPO, cli, read_all
from tests.review.conftest import ORIGIN, write_prediction_set


def start_server(pset, db, *extra):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "satx.review",
            f"--predictions={pset['predictions']}",
            f"--tiles={pset['tiles']}",
            f"--db={db}",
            "--port=0",
            "--reviewer=ana",
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if "open http" not in line:
        proc.kill()
        raise AssertionError(line + proc.stderr.read())
    return proc, line.split("open ")[1].strip().rstrip("/")


def call(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST" if body else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")


@pytest.mark.slow
def test_kill_9_loses_no_committed_decision(tmp_path):
    pset = write_prediction_set(tmp_path, side=8)
    db = tmp_path / "review.sqlite"
    proc, url = start_server(pset, db)
    acked: dict[int, str] = {}
    stop = threading.Event()

    def review() -> None:
        k = 0
        while not stop.is_set():
            try:
                _, tile = call(url, "/api/next?reviewer=ana")
                decision = ("positive", "negative", "skip")[k % 3]
                call(
                    url,
                    "/api/decision",
                    {"id": tile["id"], "decision": decision, "reviewer": "ana"},
                )
            except OSError:
                return  # the server is gone
            acked[tile["id"]] = decision
            k += 1

    worker = threading.Thread(target=review)
    worker.start()
    while len(acked) < 25:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # in the middle of the stream of decisions
    proc.wait()
    stop.set()
    worker.join()

    proc, url = start_server(pset, db)
    try:
        _, stats = call(url, "/api/stats")
        _, tile = call(url, "/api/next?reviewer=ana")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert f"satx.review: stopped; {stats['reviewed']} reviewed" in out  # the summary
    store = ReviewStore(db)
    stored = {
        r["tile_id"]: r["decision"]
        for r in store.query("SELECT tile_id, decision FROM decisions WHERE undone_at IS NULL")
    }
    assert set(acked.items()) <= set(stored.items())  # every answered decision survived
    assert len(stored) - len(acked) <= 1  # at most the one in flight, committed, not answered
    assert stats["reviewed"] == len(stored) and stats["remaining"] == 64 - len(stored)
    assert tile["id"] not in stored  # the restarted review goes on where it stopped


@pytest.mark.slow
def test_decisions_become_the_next_training_set(tiny_model, tmp_path):
    """predict (tiny model) -> review over the API -> export -> make_records -> records."""
    from satx.config import PredictConfig, SourceConfig
    from satx.predict.run import predict

    pset = write_prediction_set(tmp_path, side=4)
    w, s, e, n = mercantile.bounds(ORIGIN.x + 1, ORIGIN.y + 4, 18)[:4]
    e, n = mercantile.bounds(ORIGIN.x + 4, ORIGIN.y + 1, 18)[2:]
    output = tmp_path / "predicted"
    predict(
        PredictConfig(
            model=str(tiny_model["export"]),
            bbox=(w + 1e-7, s + 1e-7, e - 1e-7, n - 1e-7),
            zoom=18,
            source=SourceConfig(tiles=pset["tiles"]),
            output=str(output),
            formats=("csv",),
        )
    )
    pset = {**pset, "predictions": str(output)}
    db = tmp_path / "review.sqlite"
    proc, url = start_server(pset, db, "--order=random")
    made = {}
    try:
        for k in range(12):
            _, tile = call(url, "/api/next?reviewer=ana")
            decision = ("positive", "negative", "skip")[k % 3]
            call(url, "/api/decision", {"id": tile["id"], "decision": decision, "reviewer": "ana"})
            made[mercantile.Tile(tile["x"], tile["y"], tile["z"])] = decision
    finally:
        proc.terminate()
        proc.wait()
    assert len(made) == 12 and set(made) <= set(pset["inner"])

    labels = tmp_path / "labels.csv"
    done = cli("satx.review", f"--db={db}", f"--export={labels}", check=True)
    assert done.stdout.strip() == f"8 labels (4 not_school, 4 school) -> {labels}"
    records = tmp_path / "records"
    cli(
        "tools.make_records",
        f"--input={labels}",
        f"--tiles={pset['tiles']}",
        f"--output={records}",
        "--image_size=32",
        "--min_shards=1",
        check=True,
    )
    manifest, examples = read_all(records)
    names = {"positive": "school", "negative": "not_school"}
    want = {t: names[d] for t, d in made.items() if d != "skip"}
    got = {ex.tile: ex.label_text for _, ex in examples}
    assert got == want
    assert manifest["inputs"]["layout"] == "locations" and manifest["quarantine"]["count"] == 0
    first = next(iter(want))
    image = tmp_path / "tiles" / "18" / str(first.x) / f"{first.y}.jpg"
    stored = {ex.tile: ex.encoded for _, ex in examples}
    assert stored[first] == image.read_bytes()  # the tile itself, byte for byte


@pytest.mark.parametrize(
    "args, message",
    [
        ((), "--db is required"),
        (("--db=r.sqlite",), "--predictions and --tiles are required"),
        (("--db=r.sqlite", "--export=labels.txt"), "name a .csv or .geojson"),
        (("--db=missing.sqlite", "--export=labels.csv"), "no such review database"),
        (("--db=r.sqlite", "--predictions=EMPTY", "--tiles=t/{z}/{x}/{y}.jpg"), "not a finished"),
        (("--db=r.sqlite", "--order=best"), "order"),
    ],
)
def test_usual_mistakes_get_one_line_and_exit_code_2(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("EMPTY", str(tmp_path / "empty")) for a in args]
    args = [a.replace("=r.sqlite", f"={tmp_path / 'r.sqlite'}") for a in args]
    args = [a.replace("=missing.sqlite", f"={tmp_path / 'missing.sqlite'}") for a in args]
    proc = cli("satx.review", *args)
    assert proc.returncode in (1, 2), proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_review_without_decisions_exports_only_the_header(prediction_set, tmp_path):
    from satx.review.export import COLUMNS
    from satx.review.predictions import iter_rows, open_predictions
    from tests.review.conftest import review_config

    config = review_config(prediction_set, tmp_path / "r.sqlite")
    predictions = open_predictions(config)
    ReviewStore(config.db).load(predictions, iter_rows(predictions), 0)
    labels = tmp_path / "labels.csv"
    proc = cli("satx.review", f"--db={config.db}", f"--export={labels}", check=True)
    assert proc.stdout.strip() == f"0 labels (none yet) -> {labels}"
    assert labels.read_text() == ",".join(COLUMNS) + "\n"
