"""A generated prediction set for the review: tiles on disk, predictions in predict's format,
and review servers run in a thread of the test process."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import mercantile
import numpy as np

from tests.support.helpers import REPO, encode, noise, write

CLASSES = ("not_school", "school")
ZOOM = 18
ORIGIN = mercantile.tile(-74.08, 4.60, ZOOM)  # Bogota


def block(side: int, z: int = ZOOM) -> list[mercantile.Tile]:
    """`side` x `side` tiles from ORIGIN."""
    return [
        mercantile.Tile(ORIGIN.x + i, ORIGIN.y + j, z) for j in range(side) for i in range(side)
    ]


def write_predictions(folder: Path | str, tiles: list[mercantile.Tile], scores: np.ndarray) -> str:
    """Predictions of `tiles` written by satx.predict's own output code (parts, then merge).

    The review reads exactly what predict writes; predict_run.json holds what a finished run
    records about its classes, threshold and model.
    """
    from satx.io import storage
    from satx.io.run_record import json_bytes
    from satx.predict.outputs import Labeller, PredictionOutput, format_rows
    from satx.predict.result import RUN_NAME, PredictRun
    from satx.tiles.refs import TileRef

    probs = np.stack([1 - scores, scores], axis=1)
    labels, _ = Labeller.make(list(CLASSES), "", 0.5).label_score(probs)
    out = PredictionOutput(str(folder), ("csv", "geojson"), CLASSES)
    out.start({"test": "review", "tiles": len(tiles)}, overwrite=False)
    items = [TileRef(f"{t.z}/{t.x}/{t.y}", t) for t in tiles]
    texts = format_rows(items, labels, scores, probs, CLASSES, ("csv", "geojson"))
    out.write_chunk(0, texts, "", {"tiles": len(tiles)})
    run = PredictRun(
        tiles=len(tiles),
        files=out.merge(1, len(tiles)),
        class_names=CLASSES,
        positive_class="school",
        threshold=0.5,
        model="models/school/export/3",
    )
    storage.open_store(str(folder)).write_bytes(RUN_NAME, json_bytes(run))
    return str(folder)


def write_prediction_set(root: Path, side: int = 15, seed: int = 0) -> dict:
    """Tiles of a (side+2)^2 block as DIR/{z}/{x}/{y}.jpg and predictions of its inner side^2."""
    tiles_dir = root / "tiles"
    for k, t in enumerate(block(side + 2)):
        write(tiles_dir / str(t.z) / str(t.x) / f"{t.y}.jpg", encode(noise(seed * 10_000 + k)))
    inner = [mercantile.Tile(t.x + 1, t.y + 1, t.z) for t in block(side)]
    score = np.random.default_rng(seed).uniform(0, 1, len(inner)).round(4)
    return {
        "predictions": write_predictions(root / "pred", inner, score),
        "tiles": str(tiles_dir / "{z}/{x}/{y}.jpg"),
        "tiles_dir": tiles_dir,
        "inner": inner,
        "scores": dict(zip(inner, score.tolist(), strict=True)),
    }


def review_config(pset: dict, db: Path, **overrides):
    """A ReviewConfig for a prediction set on loopback, any free port."""
    from satx.config import ReviewConfig, SourceConfig

    values = {"predictions": pset["predictions"], "db": str(db), "port": 0, "reviewer": "ana"}
    values.update(overrides)
    return ReviewConfig(source=SourceConfig(tiles=pset["tiles"]), **values)


class RunningReview:
    """A review server running in a thread of the test process."""

    def __init__(self, config, **server_options):
        from satx.review.run import open_review

        self.server = open_review(config, **server_options)
        self.app = self.server.app
        self.url = self.server.url.rstrip("/")
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.source.close()
        self.app.store.close()


def start_review_process(pset, db, *extra):
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


def call_api(url, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, method="POST" if body else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as response:
        return response.status, json.loads(response.read() or b"null")
