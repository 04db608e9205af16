"""The review without `--tiles`: tiles from the predictions' own input files, or their scenes."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import mercantile
import numpy as np
import pytest
from PIL import Image

from satx.config import ReviewConfig
from satx.errors import InputError
from satx.predict.run import predict
from satx.review.run import open_review
from tests.support.helpers import encode, noise, write
from tests.support.predict import predict_config
from tests.support.review import call_api

ORIGIN = mercantile.tile(-74.08, 4.60, 18)


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as err:
        return err.code, b""


def _config(predictions, db, **kw) -> ReviewConfig:
    values = {"predictions": str(predictions), "db": str(db), "port": 0, "reviewer": "ana"}
    return ReviewConfig(**{**values, **kw})


def _first(review) -> dict:
    _, item = call_api(review.url, "/api/next", {"reviewer": "ana"})
    return item


def test_predictions_of_class_folders_show_their_own_files_and_neighbours(
    tiny_model, tmp_path, serve_review
):
    """The demo's layout: `<class>/x-y-z.jpg`, which no `--tiles` template reads."""
    files = {}
    for k, (dx, dy) in enumerate(((0, 0), (1, 0), (0, 1))):
        t = mercantile.Tile(ORIGIN.x + dx, ORIGIN.y + dy, 18)
        folder = "school" if k % 2 else "not_school"
        files[t] = write(tmp_path / "tiles" / folder / f"{t.x}-{t.y}-{t.z}.jpg", encode(noise(k)))
    predict(predict_config(tiny_model["export"], tmp_path / "pred", input=str(tmp_path / "tiles")))
    review = serve_review(_config(tmp_path / "pred", tmp_path / "r.sqlite", order="random"))
    item = _first(review)
    tile = mercantile.Tile(item["x"], item["y"], 18)
    status, data = _get(f"{review.url}/tiles/{item['id']}/0/0")
    assert status == 200 and data == files[tile].read_bytes()
    for dx, dy in ((1, 0), (0, 1), (-1, 0), (0, -1), (1, 1)):  # neighbours: where listed
        status, data = _get(f"{review.url}/tiles/{item['id']}/{dx}/{dy}")
        neighbour = mercantile.Tile(tile.x + dx, tile.y + dy, 18)
        if neighbour in files:
            assert status == 200 and data == files[neighbour].read_bytes()
        else:
            assert status == 404


@pytest.mark.realdata
def test_predictions_over_a_scene_show_tiles_cut_from_it(tiny_model, tmp_path, serve_review):
    from tests.support import scenes

    scene = scenes.mercator_scene(tmp_path / "block.tif")
    config = predict_config(tiny_model["export"], tmp_path / "pred", tiles=str(scene))
    predict(config)
    review = serve_review(_config(tmp_path / "pred", tmp_path / "r.sqlite"))
    item = _first(review)
    status, data = _get(f"{review.url}/tiles/{item['id']}/0/0")
    tile = mercantile.Tile(item["x"], item["y"], 17)
    assert status == 200 and data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(
        np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), scenes.original(tile)
    )


def test_without_files_to_show_the_review_asks_for_tiles(tiny_model, sample_records, tmp_path):
    predict(predict_config(tiny_model["export"], tmp_path / "pred", input=sample_records))
    with pytest.raises(InputError, match=r"its tiles came from records input; pass --tiles"):
        open_review(_config(tmp_path / "pred", tmp_path / "r.sqlite"))
    # a source whose secret was redacted from the run record cannot be opened again
    run_file = tmp_path / "pred" / "predict_run.json"
    run = json.loads(run_file.read_text())
    run["input"] = {"kind": "bbox", "count": 1}
    run["config"]["inputs"]["source"]["tiles"] = "https://t/{z}/{x}/{y}.png?key=REDACTED"
    run_file.write_text(json.dumps(run))
    with pytest.raises(InputError, match=r"a tile source with a secret .*pass --tiles=SOURCE"):
        open_review(_config(tmp_path / "pred", tmp_path / "r2.sqlite"))
