"""Hit tiles -> sites: connected components on the tile grid, in numpy and scipy.

Two hits of one zoom join a site when they are neighbours: with `connectivity=8` when their
columns and rows each differ by at most `1 + max_gap` (Chebyshev distance), with 4 when the
differences add up to at most `1 + max_gap` (Manhattan distance). `max_gap=1` bridges one
tile without a hit between two hits. Columns wrap at the antimeridian.

How it scales: tiles are keyed `x * W + y` and sorted once; each neighbour offset is one
vectorised `searchsorted` of the shifted keys, giving the edges; scipy's connected components
labels the sparse graph. Memory is a few arrays of the hit count (no tile grid), so a country
run's hundreds of thousands of hits group in seconds. The edges are kept: `components(mask)`
regroups any subset (the hits above a higher threshold) without searching again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import csgraph

from satx.errors import InputError

CONNECTIVITIES = (4, 8)


def neighbour_offsets(connectivity: int, max_gap: int) -> list[tuple[int, int]]:
    """Half of the (dx, dy) offsets that join two hits (the other half mirrors them)."""
    if connectivity not in CONNECTIVITIES:
        raise InputError(f"--connectivity={connectivity}: use 4 or 8")
    if max_gap < 0:
        raise InputError(f"--max_gap={max_gap}: use 0 or more tiles")
    reach = 1 + max_gap
    offsets = []
    for dx in range(0, reach + 1):
        for dy in range(-reach, reach + 1):
            if dx == 0 and dy <= 0:
                continue
            near = max(dx, abs(dy)) if connectivity == 8 else dx + abs(dy)
            if near <= reach:
                offsets.append((dx, dy))
    return offsets


@dataclass(frozen=True)
class TileGraph:
    """The hits of one zoom and which of them neighbour each other."""

    z: int
    x: np.ndarray  # int64 [N]
    y: np.ndarray  # int64 [N]
    edges: np.ndarray  # int64 [E, 2], i < j never required
    side: int = 1  # each node's side in tiles: 2 for 2x2 windows named by their top-left tile

    def components(self, mask: np.ndarray | None = None) -> tuple[int, np.ndarray]:
        """(sites, the site number of each hit) over the hits where `mask` holds (-1 elsewhere)."""
        n = self.x.size
        keep = np.ones(n, bool) if mask is None else np.asarray(mask, bool)
        labels = np.full(n, -1, np.int64)
        index = np.flatnonzero(keep)
        if index.size == 0:
            return 0, labels
        position = np.full(n, -1, np.int64)
        position[index] = np.arange(index.size)
        a, b = self.edges[:, 0], self.edges[:, 1]
        live = keep[a] & keep[b]
        graph = sparse.coo_matrix(
            (np.ones(int(live.sum()), np.int8), (position[a[live]], position[b[live]])),
            shape=(index.size, index.size),
        )
        count, found = csgraph.connected_components(graph, directed=False)
        labels[index] = found
        return int(count), labels


def tile_graph(
    z: int, x: np.ndarray, y: np.ndarray, connectivity: int = 8, max_gap: int = 0
) -> TileGraph:
    """The neighbour graph of hits at zoom `z` (each tile once).

    Raises:
        InputError: a tile is listed twice (the predictions hold it twice).
    """
    offsets = neighbour_offsets(connectivity, max_gap)
    x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
    side, reach = 1 << z, 1 + max_gap
    width = side + 2 * reach + 1  # room for y + dy on both sides of the grid
    key = x * width + (y + reach)
    order = np.argsort(key, kind="stable")
    ordered = key[order]
    if ordered.size > 1 and np.any(ordered[1:] == ordered[:-1]):
        i = order[np.flatnonzero(ordered[1:] == ordered[:-1])[0]]
        raise InputError(f"tile {z}/{x[i]}/{y[i]} is listed twice in the predictions")
    pairs = []
    for dx, dy in offsets:
        target = ((x + dx) % side) * width + (y + dy + reach)
        at = np.minimum(np.searchsorted(ordered, target), max(ordered.size - 1, 0))
        hit = ordered[at] == target if ordered.size else np.zeros(0, bool)
        source = np.flatnonzero(hit)
        pairs.append(np.stack([source, order[at[hit]]], axis=1))
    edges = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    return TileGraph(z, x, y, edges.astype(np.int64))
