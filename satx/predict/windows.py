"""predict `--context=C`: overlapping C x C windows over an area, each tile read once (issue 39).

A chunk is still a run of the area's tiles, so resume, Beam and the output files work as with
single tiles. Its windows are every window of stride one tile holding one of its tiles
(`tiles.windows.covering`: C^2 per tile). The windows' tiles (the chunk's own and their
neighbours, in the area or around it) are read once through the tile source, decoded once at
1/C of the model's side, and each window is assembled from the decoded tiles: C^2 windows
share a tile without reading or decoding it again.

- Each tile's row scores the max of its windows' probabilities (so sites, the raster and
  review read tile scores as before), with `windows` (how many of its C^2 windows were scored)
  and `score_mean` (their mean score).
- `windows.csv` has a row per window: its name, top-left tile, footprint and scores. The chunk
  holding the window's first tile in the area writes it, so each window appears once.

A window is scored only whole. A tile without imagery, or one that does not decode, leaves out
every window holding it: black gaps would be a trait the model never saw in training. A tile
whose windows were all left out is an error, `no_window`, naming the gap.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass

import mercantile
import numpy as np

from satx import geo
from satx.io import csv_out
from satx.tiles.areas import Area
from satx.tiles.base import Errors, SceneSource, TileSource
from satx.tiles.windows import Window, covering

WINDOWS_NAME = "windows.csv"
WINDOWS_PART = "windows.csv"  # parts/00000012.windows.csv
COLUMNS = ("windows", "score_mean")  # what each tile's row gains


@dataclass
class WindowSet:
    """One chunk's windows and the tiles they hold (cells), each read once."""

    size: int
    windows: list[Window]
    cells: list[mercantile.Tile]
    encoded: list[bytes | None]
    errors: Errors  # cell position -> (reason, detail)
    members: np.ndarray  # [W, C*C]: each window's cells, row by row
    owned: np.ndarray  # [W] bool: this chunk writes the window's row
    covering: np.ndarray  # [n, C*C]: each chunk tile's windows (-1: none, at the poles)
    at: np.ndarray  # [n]: each chunk tile's cell
    pixels: np.ndarray | None = None  # [cells, side, side, 3] once decoded
    probs: np.ndarray | None = None  # [W, K] once scored (NaN: a window not whole)

    def mosaics(self, index: np.ndarray, size: int) -> np.ndarray:
        """The windows at `index` as uint8 images [len(index), size, size, 3] (decoded cells)."""
        assert self.pixels is not None
        c, side = self.size, self.pixels.shape[1]
        tiles = self.pixels[self.members[index]].reshape(len(index), c, c, side, side, 3)
        mosaic = tiles.transpose(0, 1, 3, 2, 4, 5).reshape(len(index), c * side, c * side, 3)
        if c * side != size:  # the one resize of training and serving (TF: imported here only)
            from satx.data.decode import resize_uint8

            return resize_uint8(mosaic, size).numpy()
        return mosaic

    def batches(
        self, scored: np.ndarray, batch: int, size: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`(window positions, uint8 mosaics [b, size, size, 3])` of the windows in `scored`."""
        positions = np.flatnonzero(scored)
        for start in range(0, len(positions), batch):
            index = positions[start : start + batch]
            yield index, self.mosaics(index, size)


def _morton_order(tiles: set[mercantile.Tile], z: int) -> list[mercantile.Tile]:
    """Tiles in quadkey order: a scene source cuts runs of neighbours together."""
    listed = list(tiles)
    x = np.array([t.x for t in listed], np.int64)
    y = np.array([t.y for t in listed], np.int64)
    return [listed[i] for i in np.argsort(geo.morton(z, x, y), kind="stable")]


def plan_windows(area: Area, tiles: list[mercantile.Tile], size: int) -> WindowSet:
    """The windows over `tiles` (a chunk of `area`) and the cells to read; no bytes yet."""
    per_tile = [covering(t, size) for t in tiles]
    windows = sorted({w for ws in per_tile for w in ws})
    where = {w: i for i, w in enumerate(windows)}
    cells = _morton_order({c for w in windows for c in w.tiles}, tiles[0].z) if tiles else []
    cell = {c: i for i, c in enumerate(cells)}
    members = np.array([[cell[c] for c in w.tiles] for w in windows], np.int64)
    members = members.reshape(len(windows), size * size)
    cover = np.full((len(tiles), size * size), -1, np.int64)
    for j, ws in enumerate(per_tile):
        cover[j, : len(ws)] = [where[w] for w in ws]
    # a window's row is written by the chunk holding its first tile (row by row) in the area
    xs = np.array([cells[i].x for i in members.ravel()], np.int64)
    ys = np.array([cells[i].y for i in members.ravel()], np.int64)
    inside = area.contains(xs, ys).reshape(members.shape)
    first = members[np.arange(len(windows)), np.argmax(inside, axis=1)]
    mine = np.zeros(len(cells), bool)
    at = np.array([cell[t] for t in tiles], np.int64)
    mine[at] = True
    return WindowSet(size, windows, cells, [], {}, members, mine[first], cover, at)


def read_cells(ws: WindowSet, source: TileSource) -> list[float] | None:
    """Read the cells' bytes into `ws`; with scenes, returns each cell's coverage."""
    if isinstance(source, SceneSource):
        ws.encoded, ws.errors, coverage = source.read_covered(ws.cells)
        return coverage
    ws.encoded, ws.errors = source.read(ws.cells)
    return None


def tile_scores(
    ws: WindowSet, probs: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per chunk tile: the max of its windows' probabilities [n, K], their count, mean score.

    `probs` [W, K] and `score` [W] are the windows' (NaN where a window was not scored).
    """
    cover = ws.covering
    valid = (cover >= 0) & ~np.isnan(score[np.maximum(cover, 0)])
    count = valid.sum(axis=1)
    stacked = np.where(valid[..., None], probs[np.maximum(cover, 0)], -np.inf)
    best = stacked.max(axis=1)
    best[count == 0] = np.nan
    total = np.where(valid, score[np.maximum(cover, 0)], 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return best, count, mean


def gap_of(ws: WindowSet, j: int) -> str:
    """Why chunk tile j has no scored window: the first of its windows' unusable tiles."""
    for w in ws.covering[j]:
        if w < 0:
            continue
        for c in ws.members[w]:
            if c in ws.errors:
                reason, _ = ws.errors[c]
                return (
                    f"each of its windows holds a tile left out: {geo.tile_key(ws.cells[c])} "
                    f"({reason}), in {ws.windows[w].name}"
                )
    return "no window holds it"


def header(class_names: tuple[str, ...]) -> str:
    """The first line of windows.csv."""
    base = ["window", "z", "x", "y", "size", "label", "score", "lon", "lat"]
    bounds = ["west", "south", "east", "north"]
    return ",".join([*base, *bounds, *(f"score_{c}" for c in class_names)]) + "\n"


def rows_text(
    ws: WindowSet, probs: np.ndarray, labels: list[str], score: np.ndarray, keep: np.ndarray
) -> str:
    """The chunk's own scored windows at `keep` positions, as windows.csv lines."""
    out = io.StringIO()
    writer = csv_out.writer(out)
    for i in keep:
        w = ws.windows[i]
        lon, lat = w.centre()
        place = [round(lon, 7), round(lat, 7), *(round(v, 7) for v in w.bounds())]
        by_class = [round(float(v), 6) for v in probs[i]]
        writer.writerow(
            [w.name, w.z, w.x, w.y, w.size, labels[i], round(float(score[i]), 6), *place, *by_class]
        )
    return out.getvalue()
