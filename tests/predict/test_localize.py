"""`--localize=cam`: Grad-CAM points inside hit tiles and windows (issue 39).

A tiny model trained to find one bright square on a plain background must put each hit's
point on the square; the export's `serving_cam` must score exactly as `serving_default`.
"""

import csv

import keras
import mercantile
import numpy as np
import pytest
import tensorflow as tf

from satx.artifact.artifact import open_artifact
from satx.artifact.saved_model import write_saved_model
from satx.config import SitesConfig
from satx.config.runs import AugmentConfig, ModelConfig
from satx.data.decode import decode_to_size
from satx.models.classifier import build_classifier
from satx.predict.localize import Localizer
from satx.predict.run import predict
from satx.sites.run import find_sites
from tests.support.helpers import encode, shared_data, write
from tests.support.predict import predict_config, predicted_rows

SIZE, SQUARE = 64, 10
GROUND = (90, 110, 80)


def _scenes(rng, n):
    """Tiles of plain ground (a little noise) with one square: bright (class 1) or dark (0)."""
    images = np.full((n, SIZE, SIZE, 3), GROUND, np.uint8)
    images += rng.integers(0, 12, images.shape, dtype=np.uint8)
    labels = rng.integers(0, 2, n)
    corners = rng.integers(0, SIZE - SQUARE, (n, 2))
    for image, label, (x, y) in zip(images, labels, corners, strict=True):
        image[y : y + SQUARE, x : x + SQUARE] = (250, 250, 250) if label else (20, 20, 20)
    return images, labels, corners + SQUARE / 2


@pytest.fixture(scope="module")
def square_model(tmp_path_factory):
    """The tiny backbone at 64 px, trained to tell bright squares from dark ones (~10 s)."""
    images, labels, _ = _scenes(np.random.default_rng(0), 512)
    config = ModelConfig(
        backbone="tiny",
        image_size=SIZE,
        weights="none",
        dense_units=16,
        dropout=0.0,
        augment=AugmentConfig(dihedral=False, zoom_max=1.0),
    )
    keras.utils.set_random_seed(1)
    model = build_classifier(config, 2, seed=1)
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(images, labels, batch_size=32, epochs=4, verbose=0, shuffle=False)
    root = tmp_path_factory.mktemp("square")
    return write_saved_model(model, root / "export", ["ground", "square"])


def test_the_peak_lies_on_the_object(square_model):
    images, labels, centres = _scenes(np.random.default_rng(7), 64)
    loaded = tf.saved_model.load(str(square_model))
    classes = tf.ones(64, tf.int32)
    cam = loaded.signatures["serving_cam"](images=tf.constant(images), classes=classes)
    serve = loaded.signatures["serving_default"](images=tf.constant(images))
    assert np.array_equal(cam["probabilities"].numpy(), serve["probabilities"].numpy())
    assert (serve["probabilities"].numpy().argmax(1) == labels).mean() > 0.95
    fx, fy = Localizer(open_artifact(square_model), SIZE).points(images, np.ones(64, int), 16)
    squares = labels == 1
    error = np.hypot(fx * SIZE - centres[:, 0], fy * SIZE - centres[:, 1])[squares]
    centre_error = np.hypot(SIZE / 2 - centres[:, 0], SIZE / 2 - centres[:, 1])[squares]
    # within a few pixels: the square is 10 px; the tile's centre is ~20 px off on average
    assert np.median(error) <= 4.0 and error.max() <= 8.0
    assert np.median(centre_error) > 3 * np.median(error)


def test_cam_signature_scores_as_serving_on_real_tiles(tiny_model):
    files = sorted(shared_data("xyz-tiles").rglob("*.*"))[:8]
    files = [f for f in files if f.suffix.lower() in (".jpg", ".jpeg", ".png")]
    assert files, "no tiles in ../shared/data/xyz-tiles"
    images = tf.stack([decode_to_size(tf.constant(f.read_bytes()), 32) for f in files])
    loaded = tf.saved_model.load(str(tiny_model["export"]))
    classes = tf.constant([i % 2 for i in range(len(files))], tf.int32)
    cam = loaded.signatures["serving_cam"](images=images, classes=classes)
    serve = loaded.signatures["serving_default"](images=images)
    assert np.array_equal(cam["probabilities"].numpy(), serve["probabilities"].numpy())
    assert cam["class_map"].shape[0] == len(files) and len(cam["class_map"].shape) == 3
    assert np.all(cam["class_map"].numpy() >= 0)


def _square_area(root):
    """A 4x3 block of zoom-18 tiles, each with one square; returns each square's lon/lat."""
    images, labels, centres = _scenes(np.random.default_rng(11), 12)
    labels[:] = 1
    for i, image in enumerate(images):  # all bright: every tile is a hit
        x, y = (centres[i] - SQUARE / 2).astype(int)
        image[...] = np.full(image.shape, GROUND, np.uint8)
        image[y : y + SQUARE, x : x + SQUARE] = 250
    tiles = [mercantile.Tile(77130 + i % 4, 127715 + i // 4, 18) for i in range(12)]
    truth = {}
    for tile, image, (cx, cy) in zip(tiles, images, centres, strict=True):
        write(root / f"18/{tile.x}/{tile.y}.png", encode(image, "PNG"))
        west, south, east, north = mercantile.xy_bounds(tile)
        lon, lat = mercantile.lnglat(
            west + cx / SIZE * (east - west), north - cy / SIZE * (north - south)
        )
        truth[f"18/{tile.x}/{tile.y}"] = (lon, lat)
    west, _, _, north = mercantile.bounds(tiles[0])
    _, south, east, _ = mercantile.bounds(tiles[-1])
    return truth, (west + 1e-6, south + 1e-6, east - 1e-6, north - 1e-6)


def _metres(a, b):
    return np.hypot((a[0] - b[0]) * 111_320 * np.cos(np.radians(a[1])), (a[1] - b[1]) * 110_540)


@pytest.mark.parametrize("context", [1, 2])
def test_predict_places_each_hit_at_its_object(square_model, tmp_path, context):
    truth, bbox = _square_area(tmp_path / "tiles")
    out = tmp_path / "out"
    summary = predict(
        predict_config(
            square_model,
            out,
            tiles=str(tmp_path / "tiles/{z}/{x}/{y}.png"),
            bbox=bbox,
            zoom=18,
            context=context,
            localize="cam",
        )
    )
    rows = predicted_rows(out)
    assert len(rows) == summary.scored == 12
    header = next(csv.reader((out / "predictions.csv").open()))
    assert {"peak_lon", "peak_lat", "peak_x", "peak_y"} <= set(header)
    errors, centres = [], []
    for r in rows:
        if r["label"] != "square":
            assert r["peak_lon"] == ""
            continue
        point = (float(r["peak_lon"]), float(r["peak_lat"]))
        # a window's peak may be a neighbour's square: the nearest square is the one it found
        errors.append(min(_metres(point, square) for square in truth.values()))
        centres.append(_metres((float(r["lon"]), float(r["lat"])), truth[r["source_id"]]))
    assert len(errors) >= 10
    # a zoom-18 tile is ~150 m a side here (2.4 m a pixel): the points are metres off the
    # squares, the tiles' centres tens. A window is shrunk to the model's 64 px (squares of 5
    # px the model never saw in training), so its points are coarser.
    factor = 3 if context == 1 else 2
    assert np.median(errors) < np.median(centres) / factor, (errors, centres)
    # sites: a site sits at its best tile's point; the known match measures from the points
    squares = [(float(r["peak_lon"]), float(r["peak_lat"])) for r in rows if r["peak_lon"]]
    known = tmp_path / "known.csv"
    known.write_text(
        "id,lon,lat\n" + "".join(f"s{i},{a},{b}\n" for i, (a, b) in enumerate(squares))
    )
    find_sites(
        SitesConfig(
            predictions=str(out), output=str(tmp_path / "sites"), known=str(known), known_radius_m=1
        )
    )
    sites = list(csv.DictReader((tmp_path / "sites/sites.csv").open()))
    assert sites
    for site in sites:
        assert site["known"] == "true"  # within 1 m: a point is, a tile centre would not be
        point = (float(site["lon"]), float(site["lat"]))
        assert any(point == pytest.approx(p, abs=1e-6) for p in squares)
