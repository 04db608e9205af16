"""Sites from grouped hits: one row per site, ranked, and each site's outline.

A site's id is the quadkey of its best tile (highest score; ties by column, then row), so it
stays the same across reruns and whatever order the predictions listed the tiles in. Its
point is the score-weighted centre of its tiles, or, when predict localised its hits
(`--localize=cam`), its best tile's class-activation peak; its polygon the union of its
tiles (several parts when `max_gap` joined tiles that do not touch). Sites rank by best
score, then mean score, then size, then id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import shapely

from satx import geo
from satx.sites.grid import TileGraph


@dataclass(frozen=True)
class Sites:
    """Ranked sites (arrays in rank order) and the site of each hit."""

    z: int
    ids: tuple[str, ...]
    best: np.ndarray  # int64 [S]: the hit index of each site's best tile
    tiles: np.ndarray  # int64 [S]: tiles per site
    max_score: np.ndarray  # float64 [S]
    mean_score: np.ndarray  # float64 [S]
    lon: np.ndarray  # float64 [S]: the score-weighted centre
    lat: np.ndarray
    site_of: np.ndarray  # int64 [N hits]: rank of the hit's site, -1 when not a hit

    def __len__(self) -> int:
        return len(self.ids)


def make_sites(
    graph: TileGraph,
    score: np.ndarray,
    mask: np.ndarray | None = None,
    points: tuple[np.ndarray, np.ndarray] | None = None,
) -> Sites:
    """The sites of the hits where `mask` holds (every hit when None).

    With `points` (each hit's lon, lat: predict --localize's peaks), a site is placed at its
    best tile's point instead of the score-weighted centre.
    """
    count, labels = graph.components(mask)
    idx = np.flatnonzero(labels >= 0)
    label, s = labels[idx], np.asarray(score, np.float64)[idx]
    x, y = graph.x[idx], graph.y[idx]
    tiles = np.bincount(label, minlength=count)
    total = np.bincount(label, weights=s, minlength=count)
    order = np.lexsort((y, x, -s, label))  # by site, then best first
    first = order[np.r_[0, np.flatnonzero(np.diff(label[order])) + 1]] if idx.size else order
    best = idx[first]
    weight = np.where(total[label] > 0, s, 1.0)  # all-zero scores: the plain centre
    sum_w = np.bincount(label, weights=weight, minlength=count)
    fx = np.bincount(label, weights=weight * (x + 0.5), minlength=count) / np.maximum(sum_w, 1e-300)
    fy = np.bincount(label, weights=weight * (y + 0.5), minlength=count) / np.maximum(sum_w, 1e-300)
    lon, lat = geo.grid_to_lonlat(graph.z, fx, fy)
    if points is not None:
        lon, lat = np.asarray(points[0])[best], np.asarray(points[1])[best]
    ids = geo.quadkeys(graph.z, graph.x[best], graph.y[best])
    max_score = np.asarray(score, np.float64)[best]
    mean = total / np.maximum(tiles, 1)
    rank = np.lexsort((ids, -tiles, -mean, -max_score)) if count else np.zeros(0, int)
    position = np.empty(count, np.int64)
    position[rank] = np.arange(count)
    site_of = np.full(labels.size, -1, np.int64)
    site_of[idx] = position[label]
    return Sites(
        z=graph.z,
        ids=tuple(ids[rank].tolist()),
        best=best[rank],
        tiles=tiles[rank],
        max_score=max_score[rank],
        mean_score=mean[rank],
        lon=lon[rank],
        lat=lat[rank],
        site_of=site_of,
    )


def members(sites: Sites) -> tuple[np.ndarray, np.ndarray]:
    """(hit indices grouped by site in rank order, each site's start in them) for slicing."""
    hits = np.flatnonzero(sites.site_of >= 0)
    order = hits[np.argsort(sites.site_of[hits], kind="stable")]
    starts = np.searchsorted(sites.site_of[order], np.arange(len(sites) + 1))
    return order, starts


def outlines(
    sites: Sites,
    graph: TileGraph,
    order: np.ndarray | None = None,
    starts: np.ndarray | None = None,
    which: Sequence[int] | None = None,
) -> list[shapely.Geometry]:
    """Sites' tiles as one (Multi)Polygon each in lon/lat, exterior rings counter-clockwise.

    `which`: the sites (ranks) to outline, default all; `order, starts`: `members(sites)`, when
    the caller has it. The union is taken on the integer tile grid (exact), then the corners go
    to degrees (7 decimals).
    """
    if order is None or starts is None:
        order, starts = members(sites)
    shapes = []
    for k in range(len(sites)) if which is None else which:
        tiles = order[starts[k] : starts[k + 1]]
        boxes = shapely.box(graph.x[tiles], graph.y[tiles], graph.x[tiles] + 1, graph.y[tiles] + 1)
        shapes.append(boxes[0] if boxes.size == 1 else shapely.coverage_union_all(boxes))
    z = graph.z

    def to_degrees(coords: np.ndarray) -> np.ndarray:
        lon, lat = geo.grid_to_lonlat(z, coords[:, 0], coords[:, 1])
        return np.round(np.stack([lon, lat], axis=1), 7)

    shapes = shapely.transform(np.asarray(shapes, dtype=object), to_degrees)
    return list(shapely.orient_polygons(shapes))
