"""A generated site set: predictions of a 30 x 30 block with three schools' worth of hits,
known schools beside them, and the block's imagery (with a border) for the review."""

from __future__ import annotations

from pathlib import Path

import mercantile
import numpy as np

from satx import geo
from tests.support.helpers import encode, noise, write
from tests.support.review import ORIGIN, write_predictions

SIDE = 30
# the schools' hit tiles, as (dx, dy) from the block's corner: a 2x2 campus, an L, one tile
BLOBS = {
    "campus": [(3, 3), (4, 3), (3, 4), (4, 4)],
    "l_shape": [(12, 20), (12, 21), (13, 21)],
    "single": [(9, 5)],
}
# known schools: inside the campus, inside the single tile, and one far from every hit
KNOWN = [(3.4, 3.6), (9.5, 5.5), (18.5, 28.5)]


def site_tile(dx: int, dy: int) -> mercantile.Tile:
    """The block's tile at (dx, dy)."""
    return mercantile.Tile(ORIGIN.x + 1 + dx, ORIGIN.y + 1 + dy, ORIGIN.z)


def write_site_set(root: Path) -> dict:
    """Predictions (DIR/pred), known.csv and imagery DIR/tiles/{z}/{x}/{y}.jpg."""
    tiles = [site_tile(i, j) for j in range(SIDE) for i in range(SIDE)]
    for k, t in enumerate(
        site_tile(i, j) for j in range(-1, SIDE + 1) for i in range(-1, SIDE + 1)
    ):
        write(root / "tiles" / str(t.z) / str(t.x) / f"{t.y}.jpg", encode(noise(50_000 + k)))
    scores = np.random.default_rng(5).uniform(0.0, 0.45, len(tiles))
    index = {t: i for i, t in enumerate(tiles)}
    for k, cells in enumerate(BLOBS.values()):
        for j, cell in enumerate(cells):
            scores[index[site_tile(*cell)]] = 0.97 - 0.1 * k - 0.01 * j
    pred = write_predictions(root / "pred", tiles, scores.round(4))
    corner = site_tile(0, 0)
    lon, lat = geo.grid_to_lonlat(
        corner.z, [corner.x + p[0] for p in KNOWN], [corner.y + p[1] for p in KNOWN]
    )
    known = root / "known.csv"
    rows = "".join(f"k{i},{a},{b}\n" for i, (a, b) in enumerate(zip(lon, lat, strict=True)))
    known.write_text("id,lon,lat\n" + rows)
    return {
        "predictions": pred,
        "known": str(known),
        "tiles": str(root / "tiles" / "{z}/{x}/{y}.jpg"),
        "scores": dict(zip(tiles, scores.round(4).tolist(), strict=True)),
    }


def colour_means(
    tiles: dict[mercantile.Tile, Path], size: int = 32
) -> dict[mercantile.Tile, np.ndarray]:
    """Each tile's mean RGB (0-1) as predict feeds it to a model of `size` px."""
    import tensorflow as tf

    from satx.data.decode import decode_to_size

    return {
        t: decode_to_size(tf.constant(p.read_bytes()), size).numpy().reshape(-1, 3).mean(0) / 255
        for t, p in tiles.items()
    }


def pick_hits(
    means: dict[mercantile.Tile, np.ndarray], sites: int = 3
) -> tuple[np.ndarray, float, list[mercantile.Tile]]:
    """A colour direction w and cut c whose hits (w . mean > c) make `sites` 4-connected sites.

    Tries seeded random directions and every cut between two tiles, keeping cuts with a margin
    of at least 0.01 (so decoding cannot move a tile across it). Returns the first found.
    """
    from satx.sites.grid import tile_graph

    tiles = sorted(means, key=lambda t: (t.x, t.y))
    graph = tile_graph(
        tiles[0].z, np.array([t.x for t in tiles]), np.array([t.y for t in tiles]), 4
    )
    rng = np.random.default_rng(0)
    for w in rng.normal(size=(2000, 3)):
        value = np.array([w @ means[t] for t in tiles])
        order = np.sort(value)[::-1]
        for k in range(sites, len(tiles)):
            cut = (order[k - 1] + order[k]) / 2
            if order[k - 1] - order[k] > 0.01 and graph.components(value > cut)[0] == sites:
                return w, float(cut), [t for t, v in zip(tiles, value, strict=True) if v > cut]
    raise AssertionError("no colour direction separates the tiles into sites")


def export_colour_model(root: Path, w: np.ndarray, cut: float, size: int = 32) -> str:
    """An exported binary classifier whose school score is sigmoid(k (w . mean RGB - cut)).

    Fixed weights, no training: the scores of real tiles are known in advance.
    """
    import keras

    from satx.artifact.saved_model import write_saved_model

    inputs = keras.Input((size, size, 3), dtype="uint8")
    x = keras.layers.Rescaling(1 / 255)(keras.ops.cast(inputs, "float32"))
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(x)
    model = keras.Model(inputs, outputs)
    k = 400.0  # a margin of 0.01 in w . mean is a logit gap of 4: scores near 0 and 1
    dense.set_weights([np.stack([np.zeros(3), k * w], axis=1), np.array([0.0, -k * cut])])
    return str(write_saved_model(model, root / "export", ["not_school", "school"]))
