"""Labelled places -> labelled tiles: GeoJSON points and polygons, and one label per tile.

- a Point gives the tile that contains it; a (Multi)Polygon every tile whose interior overlaps
  it (`satx.tiles.aoi`), or only its centroid's tile with `polygon_mode="centroid"`;
- several places with one label in one tile make one tile; different labels in one tile are
  a `conflicting_labels` rejection (`merge_places`).
CSV rows of lon,lat or z,x,y are places too (`satx.tiles.tables`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import mercantile
import shapely

from satx import geo
from satx.errors import InputError
from satx.tiles.aoi import (
    GEOMETRY_ERRORS,
    PolygonArea,
    check_coordinates,
    check_crs,
    features_of,
)
from satx.tiles.refs import Listing, Rejection, TileRef
from satx.tiles.windows import window_of_point, window_of_tile

GEOJSON_SUFFIXES = (".geojson", ".json")


def is_geojson(path: str) -> bool:
    """Whether `path` names a GeoJSON file (by its extension)."""
    return path.lower().endswith(GEOJSON_SUFFIXES)


def _shape_tiles(
    shape: Any, zoom: int, polygon_mode: str = "cover", context: int = 1
) -> list[mercantile.Tile]:
    """The tiles of `zoom` a place names (see the module docstring).

    With `context` > 1, windows' top-left tiles: a point's window is centred nearest it, a
    covered tile's holds it at its centre (`satx.tiles.windows`).
    """
    kind = shape.geom_type

    def of_point(lon: float, lat: float) -> mercantile.Tile:
        if context > 1:
            return window_of_point(lon, lat, zoom, context).top_left
        return mercantile.tile(lon, lat, zoom)

    if kind in ("Point", "MultiPoint"):
        points = shapely.get_coordinates(shape)
        return list(dict.fromkeys(of_point(lon, lat) for lon, lat in points))
    if kind in ("Polygon", "MultiPolygon"):
        if polygon_mode == "centroid":
            point = shape.centroid if shape.centroid.within(shape) else shape.point_on_surface()
            return [of_point(point.x, point.y)]
        area = PolygonArea(shape, zoom)
        tiles = area.tiles(0, len(area))
        if context > 1:
            return list(dict.fromkeys(window_of_tile(t, context).top_left for t in tiles))
        return tiles
    raise ValueError(f"a {kind}: use Point, MultiPoint, Polygon or MultiPolygon")


def _feature(
    feature: Any, origin: str, label_property: str, zoom: int, polygon_mode: str, context: int
):
    """A feature's refs, or a Rejection."""
    if not isinstance(feature, dict):
        return Rejection(origin, "", "bad_geometry", f"{origin}: not a GeoJSON feature")
    props = feature.get("properties")
    label = str((props if isinstance(props, dict) else {}).get(label_property) or "").strip()
    if not label:
        return Rejection(origin, "", "missing_label", f"{origin}: no {label_property!r}")
    try:
        shape = shapely.geometry.shape(feature.get("geometry"))
        check_coordinates([shape], origin)
        tiles = _shape_tiles(shape, zoom, polygon_mode, context)
    except GEOMETRY_ERRORS as err:
        return Rejection(origin, label, "bad_geometry", f"{origin}: {err}")
    except InputError as err:
        return Rejection(origin, label, "bad_geometry", str(err))
    return [TileRef(geo.tile_key(t), t, None, label, None, origin) for t in tiles]


def read_geojson(
    path: str,
    zoom: int,
    label_property: str = "label",
    polygon_mode: str = "cover",
    context: int = 1,
) -> Listing:
    """The labelled tiles of a GeoJSON FeatureCollection (or one Feature), before merging.

    Features without a usable label or geometry are rejected, one Rejection each.

    Raises:
        InputError: the file cannot be read or declares a CRS other than WGS84.
    """
    try:
        data = json.loads(Path(path).read_bytes())
    except (OSError, ValueError, RecursionError) as err:  # not UTF-8 is a ValueError too
        raise InputError(f"--input={path}: cannot read GeoJSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"--input={path}: not a GeoJSON object (a FeatureCollection)")
    check_crs(data, path)
    features = features_of(data, f"--input={path}")
    refs: list[TileRef] = []
    rejected: list[Rejection] = []
    for i, feature in enumerate(features):
        origin = f"{path}: feature {i}"
        found = _feature(feature, origin, label_property, zoom, polygon_mode, context)
        if isinstance(found, Rejection):
            rejected.append(found)
        else:
            refs += found
    return Listing("locations", tuple(refs), tuple(rejected))


def merge_places(refs: list[TileRef]) -> tuple[list[TileRef], list[Rejection]]:
    """One ref per tile, in tile order; a tile that places give different labels is refused.

    A CSV row's split (`split` column) stays with its tile; places giving one tile different
    splits are refused too (a tile is in one split).
    """
    labels: dict[mercantile.Tile, set[str]] = defaultdict(set)
    splits: dict[mercantile.Tile, set[str | None]] = defaultdict(set)
    origins: dict[mercantile.Tile, list[str]] = defaultdict(list)
    for r in refs:
        assert r.tile is not None
        labels[r.tile].add(r.label)
        splits[r.tile].add(r.split)
        origins[r.tile].append(r.origin)
    merged, conflicts = [], []
    for tile in sorted(labels, key=lambda t: (t.z, t.x, t.y)):
        key = geo.tile_key(tile)
        if len(labels[tile]) == 1 and len(splits[tile]) == 1:
            label, split = next(iter(labels[tile])), next(iter(splits[tile]))
            merged.append(TileRef(key, tile, None, label, split, origins[tile][0]))
            continue
        shown = "; ".join(origins[tile][:5]) + ("; ..." if len(origins[tile]) > 5 else "")
        if len(labels[tile]) > 1:
            names = ", ".join(sorted(labels[tile]))
            detail = f"tile {key} is labelled {names} by {shown}"
            conflicts.append(Rejection(key, "", "conflicting_labels", detail))
        else:
            names = ", ".join(sorted(str(s) for s in splits[tile]))
            detail = f"tile {key} is put in splits {names} by {shown}"
            conflicts.append(Rejection(key, "", "conflicting_splits", detail))
    return merged, conflicts


def count_per_label(refs: list[TileRef], merged: list[TileRef]) -> dict[str, dict[str, int]]:
    """Label -> places (distinct origins) and tiles (after merging)."""
    places: dict[str, set[str]] = defaultdict(set)
    for r in refs:
        places[r.label].add(r.origin)
    return {
        label: {"geometries": len(places[label]), "tiles": sum(r.label == label for r in merged)}
        for label in sorted(places)
    }
