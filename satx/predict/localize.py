"""predict `--localize=cam`: each hit's point inside its tile (or window), after scoring (issue 39).

Only hits are localised, once a chunk is scored, so the scoring pass is what it was. A hit's
image (its tile, or with `--context` its best window: the one scoring its class highest) goes
through the export's `serving_cam` signature (`satx.artifact.cam`: Grad-CAM of the class on
the last feature map); the map's peak is the point. Rows gain four columns, empty for rows
that are not hits:

    peak_lon, peak_lat   the point in degrees (web-mercator interpolation inside the image)
    peak_x, peak_y       the point in the image's pixels at 256 px a tile (a 2x2 window: 512)

`satx.sites` places a site at its best tile's point and matches known schools against the
hits' points, instead of tile centres.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from satx import geo
from satx.artifact.artifact import Artifact
from satx.artifact.cam import CAM_SIGNATURE, cam_model, class_maps, peaks
from satx.errors import InputError
from satx.predict.decode import decode_all
from satx.predict.inputs import ChunkData
from satx.predict.outputs import Labeller

COLUMNS = ("peak_lon", "peak_lat", "peak_x", "peak_y")
TILE_PX = 256  # peak_x/peak_y's scale: pixels of a 256 px tile


class Localizer:
    """The class-activation maps of a model (its export's `serving_cam`, or a .keras file's)."""

    def __init__(self, artifact: Artifact, image_size: int):
        self.image_size = image_size
        if artifact.is_keras:
            import keras

            cam = cam_model(keras.saving.load_model(artifact.path, compile=False))
            self._maps: Callable = lambda images, classes: class_maps(cam, images, classes)
        else:
            loaded = tf.saved_model.load(str(artifact.path))
            signature = loaded.signatures.get(CAM_SIGNATURE)
            self._loaded = loaded  # keeps the variables alive
            cam = signature
            if signature is not None:
                self._maps = lambda images, classes: signature(images=images, classes=classes)[
                    "class_map"
                ]
        if cam is None:
            raise InputError(
                f"--localize=cam: {artifact.path} has no class-activation maps (no "
                f"{CAM_SIGNATURE} signature: exported before satx had them, or not a satx "
                "classifier); export it again with satx.train or satx.export"
            )

    def points(
        self, images: np.ndarray, classes: np.ndarray, batch: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each image's peak for its class, as fractions of the image's width and height."""
        fx, fy = np.zeros(len(images)), np.zeros(len(images))
        for start in range(0, len(images), batch):
            part = slice(start, start + batch)
            chosen = tf.constant(classes[part], tf.int32)
            maps = np.asarray(self._maps(tf.constant(images[part], tf.uint8), chosen))
            x, y = peaks(maps, self.image_size)
            fx[part], fy[part] = x / self.image_size, y / self.image_size
        return fx, fy


def place(
    z: int, x: np.ndarray, y: np.ndarray, side: int, fx: np.ndarray, fy: np.ndarray
) -> dict[str, np.ndarray]:
    """The columns of points at fractions (fx, fy) of images whose top-left tile is (x, y).

    `side` is an image's side in tiles (1, or the window's C).
    """
    lon, lat = geo.grid_to_lonlat(z, np.asarray(x) + fx * side, np.asarray(y) + fy * side)
    lon = (lon + 180.0) % 360.0 - 180.0  # a window over the antimeridian
    values = (lon, lat, fx * TILE_PX * side, fy * TILE_PX * side)
    return dict(zip(COLUMNS, values, strict=True))


def localize_chunk(
    localizer: Localizer, chunk: ChunkData, probs: np.ndarray, labeller: Labeller, batch: int
) -> None:
    """Add the peak columns to a scored chunk (`chunk.extra`): a point for each hit."""
    n = len(chunk.tiles)
    chunk.extra.update({name: np.full(n, np.nan) for name in COLUMNS})
    labels, scores = labeller.label_score(np.nan_to_num(probs))
    hits = [
        i
        for i in range(n)
        if i not in chunk.errors
        and chunk.tiles[i].tile is not None
        and labeller.is_hit(float(scores[i]), labels[i])
    ]
    if not hits:
        return
    names = labeller.class_names
    classes = np.array(
        [names.index(labels[i]) if labeller.positive is None else labeller.positive for i in hits]
    )
    ws = chunk.windows
    if ws is None:
        own = ChunkData([chunk.tiles[i] for i in hits], [chunk.encoded[i] for i in hits])
        images = decode_all(own, localizer.image_size, batch, serial=False)
        corners = [chunk.tiles[i].tile for i in hits]
    else:  # each hit's best window for its class
        assert ws.probs is not None
        cover = ws.covering[hits]
        score = np.where(cover >= 0, ws.probs[np.maximum(cover, 0), classes[:, None]], np.nan)
        best = cover[np.arange(len(hits)), np.nanargmax(score, axis=1)]
        images = ws.mosaics(best, localizer.image_size)
        corners = [ws.windows[w].top_left for w in best]
    fx, fy = localizer.points(images, classes, batch)
    x, y = (np.array([getattr(t, k) for t in corners]) for k in "xy")
    columns = place(corners[0].z, x, y, 1 if ws is None else ws.size, fx, fy)
    for name, values in columns.items():
        chunk.extra[name][hits] = values
