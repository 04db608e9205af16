"""Sites on a labelled split: hits grouped as `satx.sites` groups them, schools recovered.

When every tile of a split has an address (one zoom), its hits at a threshold are grouped into
8-connected sites, and each tile labelled positive counts as a known school: it is recovered
when a hit tile's centre lies within `radius_m` of its own (a positive tile that is a hit is
recovered; so is one next to a hit). This is `satx.sites`' "known schools recovered" on data
whose answers are known, and `budget@Nsites` chooses thresholds by sites per million tiles.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from satx import geo
from satx.errors import InputError
from satx.sites import curve
from satx.sites.grid import TileGraph, tile_graph
from satx.sites.known import KnownSchools, best_score_near

RADIUS_M = 150.0


def split_graph(tiles: np.ndarray, window: int = 1) -> TileGraph | None:
    """The 8-connected neighbour graph of a split's tiles ([N, 3] z, x, y; -1 without one).

    None when some tile has no address, the zooms differ, or a tile appears twice. Records of
    `window` x `window` windows (`make_records --context`) are named by their top-left tiles:
    their centres are `window / 2` tiles in.
    """
    tiles = np.asarray(tiles)
    if tiles.size == 0 or (tiles[:, 0] < 0).any() or np.unique(tiles[:, 0]).size != 1:
        return None
    try:
        graph = tile_graph(int(tiles[0, 0]), tiles[:, 1], tiles[:, 2])
        return dataclasses.replace(graph, side=window)
    except InputError:
        return None


def sites_at(
    graph: TileGraph, labels: np.ndarray, score: np.ndarray, t: float, radius_m: float = RADIUS_M
) -> dict[str, float | int | None]:
    """Sites of the hits at `t`, per million tiles, and the share of positives recovered."""
    count = graph.components(np.asarray(score) >= t)[0]
    positive = np.asarray(labels) == 1
    half = graph.side / 2  # a tile's centre, or a window's
    lon, lat = geo.grid_to_lonlat(graph.z, graph.x + half, graph.y + half)
    known = KnownSchools("labels", lon[positive], lat[positive], ())
    best = best_score_near(known, lon, lat, score, radius_m)
    return {
        "sites": count,
        "sites_per_million": round(curve.PER_MILLION * count / max(graph.x.size, 1), 3),
        "recovered": round(float((best >= t).mean()), 6) if best.size else None,
        "recovered_radius_m": radius_m,
    }


def budget_in_sites(graph: TileGraph | None, score: np.ndarray, per_million: float) -> float:
    """The lowest threshold found to give at most `per_million` sites per million tiles."""
    if graph is None:
        raise InputError(
            "--threshold=budget@Nsites needs every tile of the split with a tile address at one "
            "zoom (records made from z/x/y-named tiles or places); use budget@N (hits) instead"
        )
    allowed = int(np.floor(per_million * graph.x.size / curve.PER_MILLION))
    return curve.threshold_for_budget(graph, np.asarray(score, np.float64), -np.inf, allowed)
