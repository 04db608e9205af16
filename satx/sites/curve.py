"""Sites and known schools recovered over thresholds; the threshold for a budget of sites.

The neighbour graph is built once over every hit read (the lowest threshold); each threshold
regroups a subset of it, which costs a connected-components pass, not a new search.
"""

from __future__ import annotations

import numpy as np

from satx.sites.grid import TileGraph
from satx.sites.result import CurvePoint

PER_MILLION = 1_000_000
CURVE_GRID = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99)


def curve_thresholds(threshold: float, floor: float) -> list[float]:
    """The curve's thresholds: a fixed grid from `floor` up, and the chosen one."""
    return sorted({float(threshold), *(t for t in CURVE_GRID if t >= floor)})


def curve_point(
    graph: TileGraph,
    score: np.ndarray,
    t: float,
    tiles_scored: int,
    tile_known: np.ndarray | None = None,
    school_best: np.ndarray | None = None,
) -> CurvePoint:
    """The counts at threshold `t`.

    Args:
        graph: the neighbour graph of every hit read.
        score: their scores.
        t: the threshold.
        tiles_scored: the run's tiles with a score (for sites per million).
        tile_known: per hit, whether a known school is within the radius of its centre.
        school_best: per known school, the best score within the radius (recovered at t when
            it reaches t).
    """
    mask = score >= t
    count, labels = graph.components(mask)
    point = {
        "threshold": round(float(t), 6),
        "hits": int(mask.sum()),
        "sites": count,
        "sites_per_million": round(PER_MILLION * count / max(tiles_scored, 1), 3),
    }
    if tile_known is not None and school_best is not None:
        hit = labels >= 0
        known_sites = np.unique(labels[hit & tile_known]).size
        recovered = int((school_best >= t).sum())
        point.update(
            known_sites=int(known_sites),
            new_sites=count - int(known_sites),
            recovered=recovered,
            recovered_share=round(recovered / school_best.size, 6) if school_best.size else None,
        )
    return CurvePoint(**point)


def threshold_for_budget(
    graph: TileGraph, score: np.ndarray, floor: float, max_sites: int
) -> float:
    """The lowest threshold (from `floor`) found to leave at most `max_sites` sites.

    A binary search over the distinct scores: fewer hits make fewer sites, except where a
    lower threshold merges two sites through a new hit, so the count is nearly but not strictly
    monotonic. Only a threshold whose count was measured within the budget is returned.
    """
    candidates = np.unique(score[score >= floor])
    lo, hi = 0, candidates.size  # candidates[hi:] within budget; hi == size: above every score
    while lo < hi:
        mid = (lo + hi) // 2
        if graph.components(score >= candidates[mid])[0] <= max_sites:
            hi = mid
        else:
            lo = mid + 1
    if hi < candidates.size:
        return float(candidates[hi])
    return float(np.nextafter(candidates[-1], np.inf)) if candidates.size else float(floor)
