"""An area of interest: the web-mercator tiles of one zoom that overlap (Multi)Polygons.

A country at zoom 18 is ~50 million tiles, so they are counted exactly and handed out lazily,
never listed. A quadtree is walked from zoom 0: a tile inside the AOI holds all 4^(Z-z) of its
descendants, counted without visiting them; a tile outside holds none; only tiles on the AOI's
boundary are split (~perimeter / tile size of them per zoom, each tested in vectorised shapely
batches). Kept per zoom as sorted keys with subtree counts, they give the exact count and the
i-th tile in quadkey order (a stable order, neighbours close together) in O(zoom) steps.

A tile belongs to the AOI when its interior overlaps the AOI's interior: tiles that only touch
the outline are left out. Coordinates are GeoJSON's (WGS84 longitude, latitude); edges are
straight in longitude/latitude, as GeoJSON defines them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import shapely

from satx import geo
from satx.errors import InputError
from satx.geo import MAX_LAT, MAX_ZOOM

_WGS84 = ("CRS84", "EPSG:4326", "EPSG::4326")


def _tile_boxes(z: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Shapely boxes (west, south, east, north in degrees) of tiles, as mercantile.bounds."""
    n = float(1 << z)
    west, east = x / n * 360.0 - 180.0, (x + 1) / n * 360.0 - 180.0
    north = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * y / n))))
    south = np.degrees(np.arctan(np.sinh(np.pi * (1 - 2 * (y + 1) / n))))
    return shapely.box(west, south, east, north)


@dataclass(frozen=True)
class _Level:
    partial: np.ndarray  # sorted keys of boundary tiles at this zoom
    counts: np.ndarray  # target-zoom tiles under each boundary tile
    inside: np.ndarray  # sorted keys of tiles wholly inside (all their descendants count)


class PolygonArea:
    """The tiles of `zoom` that overlap `geometry` (a shapely (Multi)Polygon in degrees)."""

    kind = "aoi"

    def __init__(self, geometry: Any, zoom: int, name: str = "aoi", digest: str = ""):
        if not 0 <= zoom <= MAX_ZOOM:
            raise InputError(f"--zoom={zoom}: expected 0..{MAX_ZOOM}")
        self.geometry, self.zoom, self.name = geometry, zoom, name
        self.digest = digest or hashlib.sha256(shapely.to_wkb(geometry)).hexdigest()
        shapely.prepare(geometry)
        self._levels = self._walk()
        root = self._levels[0]
        self._count = int(root.counts[0]) if len(root.partial) else 4**zoom * len(root.inside)

    def _classify(self, z: int, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whole, split) keys of tiles at zoom z: wholly counted, or on the boundary.

        At the target zoom every overlapping tile counts once, so nothing is split.
        """
        boxes = _tile_boxes(z, *geo.key_xy(keys))
        inside = shapely.contains(self.geometry, boxes)
        touching = shapely.intersects(self.geometry, boxes) & ~inside
        if touching.any():  # only an edge or a corner in common: no overlap
            touching[touching] = ~shapely.touches(self.geometry, boxes[touching])
        if z == self.zoom:
            return np.sort(keys[inside | touching]), keys[:0]
        return np.sort(keys[inside]), np.sort(keys[touching])

    def _walk(self) -> list[_Level]:
        found = [self._classify(0, np.zeros(1, np.int64))]
        for z in range(1, self.zoom + 1):
            x, y = geo.key_xy(found[-1][1])
            children = np.concatenate([geo.tile_keys(2 * x + dx, 2 * y + dy) for dx, dy in _ORDER])
            found.append(self._classify(z, children))
        levels: list[_Level] = []
        for z in range(self.zoom, -1, -1):  # subtree counts, bottom-up
            inside, partial = found[z]
            counts = np.zeros(len(partial), np.int64)
            if levels:
                below = levels[-1]
                full = 4 ** (self.zoom - z - 1)
                for keys, each in ((below.partial, below.counts), (below.inside, full)):
                    if len(keys):
                        x, y = geo.key_xy(keys)
                        parents = np.searchsorted(partial, geo.tile_keys(x >> 1, y >> 1))
                        np.add.at(counts, parents, each)
            levels.append(_Level(partial, counts, inside))
        return levels[::-1]

    def __len__(self) -> int:
        return self._count

    def _status(self, z: int, x: int, y: int) -> tuple[str, int]:
        """Whether tile (z, x, y) is on the boundary, wholly inside or outside, and its count."""
        key = int(geo.tile_keys(x, y))
        level = self._levels[z]
        i = np.searchsorted(level.partial, key)
        if i < len(level.partial) and level.partial[i] == key:
            return "partial", int(level.counts[i])
        i = np.searchsorted(level.inside, key)
        if i < len(level.inside) and level.inside[i] == key:
            return "inside", 4 ** (self.zoom - z)
        return "outside", 0

    def _blocks(
        self, z: int, x: int, y: int, status: str, count: int, skip: int
    ) -> Iterator[tuple[np.ndarray, ...]]:
        """Runs (xs, ys) of target-zoom tiles under tile (z, x, y) in quadkey order.

        `status` and `count` are the tile's (`_status`); the first `skip` tiles are left out;
        a tile wholly inside comes as lazily cut runs.
        """
        if status == "inside":
            depth = self.zoom - z
            for start in range(skip, count, 1 << 16):
                index = np.arange(start, min(count, start + (1 << 16)), dtype=np.int64)
                dx, dy = geo.morton_xy(index, depth)
                yield (x << depth) | dx, (y << depth) | dy
            return
        for dx, dy in _ORDER:
            child = (2 * x + dx, 2 * y + dy)
            sub_status, sub = self._status(z + 1, *child)
            if skip >= sub:  # outside children count 0 and are always skipped
                skip -= sub
                continue
            yield from self._blocks(z + 1, *child, sub_status, sub, skip)
            skip = 0

    def tiles(self, start: int, stop: int) -> list[mercantile.Tile]:
        """Tiles `start..stop-1` of the area, in quadkey order."""
        stop = min(stop, self._count)
        out: list[mercantile.Tile] = []
        if start >= stop:
            return out
        for xs, ys in self._blocks(0, 0, 0, *self._status(0, 0, 0), start):
            take = min(len(xs), stop - start - len(out))
            pairs = zip(xs[:take].tolist(), ys[:take].tolist(), strict=True)
            out += [mercantile.Tile(a, b, self.zoom) for a, b in pairs]
            if len(out) == stop - start:
                break
        return out

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each tile (x, y) of the target zoom is in the area (vectorised).

        A tile is in it when an ancestor is wholly inside, or when it is itself kept at the
        target zoom (whose `inside` holds every overlapping tile).
        """
        x, y = np.asarray(x, np.int64), np.asarray(y, np.int64)
        found = np.zeros(x.shape, bool)
        for z, level in enumerate(self._levels):
            if len(level.inside):
                shift = self.zoom - z
                keys = geo.tile_keys(x >> shift, y >> shift)
                at = np.minimum(np.searchsorted(level.inside, keys), len(level.inside) - 1)
                found |= level.inside[at] == keys
        return found

    def fingerprint(self) -> dict[str, Any]:
        """What identifies the area (a resumed run must see the same)."""
        return {"aoi": self.name, "aoi_sha256": self.digest, "zoom": self.zoom}


_ORDER = ((0, 0), (1, 0), (0, 1), (1, 1))  # children in quadkey digit order 0, 1, 2, 3


# what shapely.geometry.shape raises on a malformed GeoJSON geometry (found by tests/fuzz)
GEOMETRY_ERRORS = (
    AttributeError,
    IndexError,
    KeyError,
    TypeError,
    ValueError,
    shapely.errors.ShapelyError,
)


def _member(data: Any, name: str) -> Any:
    return data.get(name) if isinstance(data, dict) else None


def features_of(data: Any, where: str) -> list[Any]:
    """The features of a FeatureCollection, or `[data]` for one Feature or geometry.

    Raises:
        InputError: not a JSON object, or `features` is not a list.
    """
    if not isinstance(data, dict):
        raise InputError(f"{where}: not a GeoJSON object")
    if data.get("type") != "FeatureCollection":
        return [data]
    features = data.get("features", [])
    if not isinstance(features, list):
        raise InputError(f"{where}: 'features' is not a list")
    return features


def check_crs(data: dict, where: str) -> None:
    """Refuse GeoJSON that declares a CRS other than WGS84."""
    name = _member(_member(data, "crs"), "properties")
    name = _member(name, "name") or ""
    if not isinstance(name, str):
        raise InputError(f"{where}: crs.properties.name is not a name")
    if name and not any(name.upper().endswith(w) for w in _WGS84):
        raise InputError(
            f"{where}: CRS {name}; satx reads GeoJSON in WGS84 longitude/latitude (RFC 7946): "
            "reproject it, e.g. `ogr2ogr -t_srs EPSG:4326 out.geojson in.geojson`"
        )


def _geometries(data: dict, where: str) -> list[Any]:
    features = features_of(data, where)
    kinds = {"Feature", "FeatureCollection"}
    found = [_member(f, "geometry") if data.get("type") in kinds else f for f in features]
    shapes = []
    for i, geometry in enumerate(found):
        try:
            shape = shapely.geometry.shape(geometry)
        except GEOMETRY_ERRORS as err:
            raise InputError(f"{where}: feature {i}: not a GeoJSON geometry ({err})") from err
        if shape.geom_type not in ("Polygon", "MultiPolygon"):
            raise InputError(
                f"{where}: feature {i} is a {shape.geom_type}; an area of interest needs "
                "Polygon or MultiPolygon features"
            )
        shapes.append(shape)
    if not shapes:
        raise InputError(f"{where}: no features; an area of interest needs (Multi)Polygons")
    return shapes


def check_coordinates(shapes: list[Any], where: str) -> None:
    """Refuse coordinates outside lon/lat ranges (a projected CRS) and antimeridian crossings."""
    for i, shape in enumerate(shapes):
        coords = shapely.get_coordinates(shape)
        lon, lat = coords[:, 0], coords[:, 1]
        if (np.abs(lon) > 180).any() or (np.abs(lat) > 90).any():
            raise InputError(
                f"{where}: feature {i} has coordinates outside longitude -180..180 / latitude "
                "-90..90: it is probably in a projected CRS; reproject it to WGS84 (EPSG:4326)"
            )
        for ring in shapely.get_rings(shape):
            if (np.abs(np.diff(shapely.get_coordinates(ring)[:, 0])) > 180).any():
                raise InputError(
                    f"{where}: feature {i} crosses the antimeridian (an edge spans more than "
                    "180 degrees of longitude); split it at +-180 into a MultiPolygon"
                )


def load_aoi(path: str, zoom: int) -> PolygonArea:
    """The area of a GeoJSON file (FeatureCollection, Feature or geometry) at `zoom`.

    Raises:
        InputError: unreadable file, no (Multi)Polygons, another CRS, an antimeridian crossing,
            or an invalid polygon (naming why).
    """
    try:
        raw = Path(path).read_bytes()
        data = json.loads(raw)
    except (OSError, ValueError, RecursionError) as err:  # not UTF-8 is a ValueError too
        raise InputError(f"--aoi={path}: cannot read GeoJSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"--aoi={path}: not a GeoJSON object")
    check_crs(data, path)
    shapes = _geometries(data, path)
    check_coordinates(shapes, path)
    for i, shape in enumerate(shapes):
        if not shape.is_valid:
            raise InputError(
                f"{path}: feature {i} is not a valid polygon ({shapely.is_valid_reason(shape)}); "
                "repair it (e.g. QGIS 'Fix geometries' or shapely.make_valid)"
            )
    geometry = shapely.union_all(shapes)
    world = shapely.box(-180, -MAX_LAT, 180, MAX_LAT)
    if geometry.is_empty or geometry.intersection(world).area == 0:
        raise InputError(f"{path}: the area is empty within the web-mercator map")
    return PolygonArea(geometry, zoom, name=str(path), digest=hashlib.sha256(raw).hexdigest())
