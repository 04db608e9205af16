"""Known schools: read them, and measure how far hits and sites are from them.

`--known=FILE` is GeoJSON (Point, MultiPoint, Polygon or MultiPolygon features in WGS84; a
polygon counts as its centroid, or a point on its surface when the centroid falls outside)
or CSV with a header naming `lon,lat` (or `lng`/`longitude`, `latitude`) and optionally `id`.

Distances are great-circle metres on a sphere of the Earth's mean radius. Points go to unit
vectors, where a k-d tree (scipy) finds nearest neighbours by chord length, which orders
exactly as arc length: `arc = 2 R asin(chord / 2)`. Distances are measured between tile
centres and schools, so a school inside a hit tile is at most half a tile's diagonal away
(~108 m at zoom 18 on the equator, less elsewhere).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from scipy.spatial import cKDTree

from satx.errors import InputError
from satx.tiles.aoi import GEOMETRY_ERRORS, check_crs, features_of

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius
LON_NAMES = ("lon", "lng", "longitude")
LAT_NAMES = ("lat", "latitude")
ID_NAMES = ("id", "school_id", "name")


@dataclass(frozen=True)
class KnownSchools:
    """Points of known schools, with an id each (the file's, or its feature/row number)."""

    path: str
    lon: np.ndarray
    lat: np.ndarray
    ids: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.lon.size)


def haversine_m(
    lon1: np.ndarray, lat1: np.ndarray, lon2: np.ndarray, lat2: np.ndarray
) -> np.ndarray:
    """Great-circle metres between points (degrees), elementwise."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """[N, 3] points on the unit sphere."""
    lam, phi = np.radians(np.asarray(lon, np.float64)), np.radians(np.asarray(lat, np.float64))
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)


def chord_of(metres: float) -> float:
    """The unit-sphere chord of an arc of `metres`."""
    return float(2 * np.sin(min(metres / EARTH_RADIUS_M, np.pi) / 2))


def metres_of(chord: np.ndarray) -> np.ndarray:
    """The arc in metres of unit-sphere chords (inf stays inf)."""
    chord = np.asarray(chord, np.float64)
    out = np.full(chord.shape, np.inf)
    finite = np.isfinite(chord)
    out[finite] = 2 * EARTH_RADIUS_M * np.arcsin(np.clip(chord[finite] / 2, 0.0, 1.0))
    return out


def nearest(known: KnownSchools, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each point: metres to the nearest known school and its index (-1: none known)."""
    n = np.asarray(lon).size
    if len(known) == 0 or n == 0:
        return np.full(n, np.inf), np.full(n, -1, np.int64)
    tree = cKDTree(unit_vectors(known.lon, known.lat))
    chord, index = tree.query(unit_vectors(lon, lat), k=1)
    return metres_of(chord), np.asarray(index, np.int64)


def best_score_near(
    known: KnownSchools, lon: np.ndarray, lat: np.ndarray, score: np.ndarray, radius_m: float
) -> np.ndarray:
    """For each known school: the highest score of the points within `radius_m` (-inf: none).

    A school is recovered at threshold t when this is at least t, so one pass gives the
    recovery curve over every threshold.
    """
    best = np.full(len(known), -np.inf)
    if len(known) == 0 or np.asarray(lon).size == 0:
        return best
    points = cKDTree(unit_vectors(lon, lat))
    schools = cKDTree(unit_vectors(known.lon, known.lat))
    pairs = schools.sparse_distance_matrix(points, chord_of(radius_m), output_type="ndarray")
    np.maximum.at(best, pairs["i"], np.asarray(score, np.float64)[pairs["j"]])
    return best


def read_known(path: str) -> KnownSchools:
    """Known schools from GeoJSON or CSV (see the module docstring).

    Raises:
        InputError: unreadable file, unknown format, a CRS other than WGS84, bad coordinates,
            or no school in it.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"--known={path}: no such file")
    suffix = p.suffix.lower()
    if suffix in (".geojson", ".json"):
        lon, lat, ids = _from_geojson(p)
    elif suffix == ".csv":
        lon, lat, ids = _from_csv(p)
    else:
        raise InputError(
            f"--known={path}: unknown format {suffix or '(no extension)'}; give GeoJSON "
            "(.geojson) or CSV with lon,lat columns (.csv)"
        )
    if not lon:
        raise InputError(f"--known={path}: holds no school")
    lon_a, lat_a = np.asarray(lon, np.float64), np.asarray(lat, np.float64)
    bad = ~((np.abs(lon_a) <= 180) & (np.abs(lat_a) <= 90))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(
            f"--known={path}: school {ids[i]} at ({lon[i]}, {lat[i]}) is not a WGS84 "
            "longitude/latitude; reproject the file to EPSG:4326"
        )
    return KnownSchools(str(p), lon_a, lat_a, tuple(ids))


def _from_geojson(p: Path) -> tuple[list[float], list[float], list[str]]:
    try:
        data = json.loads(p.read_bytes())
    except (OSError, ValueError, RecursionError) as err:
        raise InputError(f"--known={p}: cannot read GeoJSON ({err})") from None
    if not isinstance(data, dict):
        raise InputError(f"--known={p}: not a GeoJSON object")
    check_crs(data, f"--known={p}")
    features = features_of(data, f"--known={p}")
    lon, lat, ids = [], [], []
    for i, feature in enumerate(features):
        where = f"--known={p}: feature {i}"
        try:
            shape = shapely.geometry.shape(feature.get("geometry"))
        except GEOMETRY_ERRORS as err:
            raise InputError(f"{where}: not a GeoJSON geometry ({err})") from None
        props = feature.get("properties")
        props = props if isinstance(props, dict) else {}
        name = str(next((props[k] for k in ID_NAMES if props.get(k) not in (None, "")), i))
        for x, y in _points(shape, where):
            lon.append(x)
            lat.append(y)
            ids.append(name)
    return lon, lat, ids


def _points(shape: shapely.Geometry, where: str) -> list[tuple[float, float]]:
    kind = shape.geom_type
    if kind in ("Point", "MultiPoint"):
        return [tuple(c) for c in shapely.get_coordinates(shape)]
    if kind in ("Polygon", "MultiPolygon"):
        c = shape.centroid if shape.centroid.within(shape) else shape.point_on_surface()
        return [(c.x, c.y)]
    raise InputError(f"{where}: a {kind}; known schools are points or polygons")


def _from_csv(p: Path) -> tuple[list[float], list[float], list[str]]:
    try:
        with p.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            fields, rows = reader.fieldnames, list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"--known={p}: cannot read CSV ({err})") from None
    columns = {c.strip().lower(): c for c in fields or [] if c}
    lon_col = next((columns[n] for n in LON_NAMES if n in columns), None)
    lat_col = next((columns[n] for n in LAT_NAMES if n in columns), None)
    if lon_col is None or lat_col is None:
        raise InputError(f"--known={p}: needs a header with lon and lat columns")
    id_col = next((columns[n] for n in ID_NAMES if n in columns), None)
    lon, lat, ids = [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            lon.append(float(row[lon_col]))
            lat.append(float(row[lat_col]))
        except (TypeError, ValueError) as err:
            raise InputError(f"--known={p}:{line}: lon/lat must be numbers ({err})") from err
        ids.append(str(row[id_col]) if id_col and row.get(id_col) else str(line))
    return lon, lat, ids
