"""The text of a sites folder's files, made column by column and streamed in blocks.

A country run has hundreds of thousands of sites: rows are never dicts, numbers are formatted
per column (`repr` of the rounded floats, as JSON and CSV want them), and each file is
written block by block to a temporary file that is moved into place whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from satx import geo
from satx.io import storage
from satx.sites.grid import TileGraph
from satx.sites.known import KnownSchools
from satx.sites.result import SITE_COLUMNS, SITE_TILE_COLUMNS
from satx.sites.table import Sites, members, outlines

BLOCK = 50_000  # sites (or tiles) formatted at a time


@dataclass(frozen=True)
class Proximity:
    """Each site's distance to the nearest known school (inf and -1 without --known)."""

    distance_m: np.ndarray  # float64 [S]
    nearest: np.ndarray  # int64 [S]: index into the known schools
    radius_m: float

    @property
    def known(self) -> np.ndarray:
        """Whether each site is within the radius of a known school."""
        return self.distance_m <= self.radius_m


def site_proximity(
    sites: Sites, tile_distance_m: np.ndarray, tile_nearest: np.ndarray, radius_m: float
) -> Proximity:
    """A site is as near a known school as its nearest tile is (its point: peak or centre)."""
    order, starts = members(sites)
    distance = np.full(len(sites), np.inf)
    nearest = np.full(len(sites), -1, np.int64)
    if order.size:
        site = np.repeat(np.arange(len(sites)), np.diff(starts))
        d = tile_distance_m[order]
        pick = np.lexsort((d, site))  # per site, the nearest tile first
        first = pick[starts[:-1]]
        distance, nearest = d[first], tile_nearest[order][first]
    return Proximity(distance, nearest, radius_m)


def _numbers(values: np.ndarray, decimals: int) -> list[str]:
    return list(map(repr, np.round(np.asarray(values, np.float64), decimals).tolist()))


def site_columns(
    sites: Sites, graph: TileGraph, near: Proximity | None, known: KnownSchools | None
) -> dict[str, list[Any]]:
    """The columns of sites.csv in rank order: numbers as text, `known` as True/False/None."""
    n = len(sites)
    columns: dict[str, list[Any]] = {
        "rank": list(map(str, range(1, n + 1))),
        "site_id": list(sites.ids),
        "lon": _numbers(sites.lon, 7),
        "lat": _numbers(sites.lat, 7),
        "max_score": _numbers(sites.max_score, 6),
        "mean_score": _numbers(sites.mean_score, 6),
        "tiles": list(map(str, sites.tiles.tolist())),
        "z": [str(sites.z)] * n,
        "best_x": list(map(str, graph.x[sites.best].tolist())),
        "best_y": list(map(str, graph.y[sites.best].tolist())),
        "known": [None] * n,
        "known_distance_m": [None] * n,
        "nearest_known": [None] * n,
    }
    if near is not None and known is not None and len(known):
        columns["known"] = near.known.tolist()
        columns["known_distance_m"] = _numbers(near.distance_m, 1)
        columns["nearest_known"] = [known.ids[i] for i in near.nearest.tolist()]
    return columns


def _blocks(count: int) -> Iterator[slice]:
    for start in range(0, count, BLOCK):
        yield slice(start, min(count, start + BLOCK))


def write_text(out: Any, name: str, blocks: Iterator[str]) -> str:
    """Write the blocks to `name` in the store: a temporary file first, moved in whole."""
    with storage.staged_file(out, name) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        for block in blocks:
            f.write(block)
    return out.url(name)


def sites_csv(columns: dict[str, list[Any]]) -> Iterator[str]:
    """sites.csv: `known` is true/false, empty without --known."""
    names = list(SITE_COLUMNS)
    yield ",".join(names) + "\n"
    known = [("" if k is None else "true" if k else "false") for k in columns["known"]]
    cells = [columns[c] if c != "known" else known for c in names]
    for part in _blocks(len(known)):
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerows(
            zip(*(["" if v is None else v for v in c[part]] for c in cells), strict=True)
        )
        yield text.getvalue()


def _properties(columns: dict[str, list[Any]], i: int) -> str:
    known = columns["known"][i]
    nearest = columns["nearest_known"][i]
    return (
        f'{{"rank": {columns["rank"][i]}, "site_id": "{columns["site_id"][i]}", '
        f'"lon": {columns["lon"][i]}, "lat": {columns["lat"][i]}, '
        f'"max_score": {columns["max_score"][i]}, "mean_score": {columns["mean_score"][i]}, '
        f'"tiles": {columns["tiles"][i]}, "z": {columns["z"][i]}, '
        f'"best_x": {columns["best_x"][i]}, "best_y": {columns["best_y"][i]}, '
        f'"known": {"null" if known is None else "true" if known else "false"}, '
        f'"known_distance_m": {columns["known_distance_m"][i] or "null"}, '
        f'"nearest_known": {"null" if nearest is None else json.dumps(nearest)}}}'
    )


def sites_geojson(
    columns: dict[str, list[Any]], geometry: Callable[[slice], Sequence[str]] | None = None
) -> Iterator[str]:
    """Sites as GeoJSON features, one per line: points, or `geometry(block)`'s GeoJSON texts."""
    yield '{"type": "FeatureCollection", "features": [\n'
    count = len(columns["site_id"])
    for part in _blocks(count):
        if geometry is None:
            shapes = [
                f'{{"type": "Point", "coordinates": [{a}, {b}]}}'
                for a, b in zip(columns["lon"][part], columns["lat"][part], strict=True)
            ]
        else:
            shapes = geometry(part)
        lines = [
            f'{{"type": "Feature", "id": "{columns["site_id"][i]}", "geometry": {shape}, '
            f'"properties": {_properties(columns, i)}}}'
            for i, shape in zip(range(part.start, part.stop), shapes, strict=True)
        ]
        yield ",\n".join(lines) + (",\n" if part.stop < count else "\n")
    yield "]}\n"


def outline_texts(sites: Sites, graph: TileGraph) -> Callable[[slice], list[str]]:
    """GeoJSON texts of sites' outlines, a block at a time (one-tile sites without shapely)."""
    order, starts = members(sites)
    single = sites.tiles == 1
    x, y = graph.x[sites.best], graph.y[sites.best]
    west, north = geo.grid_to_lonlat(sites.z, x, y)
    east, south = geo.grid_to_lonlat(sites.z, x + 1, y + 1)
    w, s, e, n = (_numbers(v, 7) for v in (west, south, east, north))

    def block(part: slice) -> list[str]:
        texts = []
        for k in range(part.start, part.stop):
            if single[k]:
                ring = f"[{w[k]}, {s[k]}], [{e[k]}, {s[k]}], [{e[k]}, {n[k]}], [{w[k]}, {n[k]}]"
                texts.append(f'{{"type": "Polygon", "coordinates": [[{ring}, [{w[k]}, {s[k]}]]]}}')
            else:
                (shape,) = outlines(sites, graph, order, starts, [k])
                texts.append(json.dumps(shapely.geometry.mapping(shape)))
        return texts

    return block


def site_tiles_csv(sites: Sites, graph: TileGraph, score: np.ndarray) -> Iterator[str]:
    """site_tiles.csv: each hit tile of a site, sites in rank order, best tile first."""
    yield ",".join(SITE_TILE_COLUMNS) + "\n"
    order, _ = members(sites)
    site = sites.site_of[order]
    order = order[np.lexsort((graph.y[order], graph.x[order], -score[order], site))]
    ids = np.asarray(sites.ids, dtype=object)
    for part in _blocks(order.size):
        i = order[part]
        x, y = graph.x[i], graph.y[i]
        keys = geo.quadkeys(sites.z, x, y)
        scores = _numbers(score[i], 6)
        yield "".join(
            f"{sid},{sites.z},{a},{b},{q},{v}\n"
            for sid, a, b, q, v in zip(
                ids[sites.site_of[i]], x.tolist(), y.tolist(), keys, scores, strict=True
            )
        )
