"""A settlement mask: the tiles of one zoom within a buffer of built-up features.

Most of a country is forest, water or open land where no school stands. `--mask=FILE` keeps
the tiles within `--mask_buffer_m` metres of a feature of FILE:

- building footprints or settlement polygons/points as GeoParquet (`.parquet`), FlatGeobuf
  (`.fgb`) or GeoJSON (`.geojson`, `.json`), in any CRS that PROJ reads (the formats of
  Microsoft's, Google's and Overture's building data);
- a raster (`.tif`, `.tiff`, GeoTIFF or COG, any CRS) where a pixel at or above
  `--mask_threshold` is built up (GHSL's layout); each such pixel is a point whose buffer
  also covers the pixel (its half diagonal).

Features are streamed in batches, never read whole, and become tile keys at once: a feature
smaller than a few tiles counts as its bounding box, and a tile is kept when the ground
distance from its rectangle to that box is at most the buffer (measured in tile units, with
the web-mercator scale at the feature's latitude: exact for such distances). A bounding box
can only keep more than the footprint would, by at most the footprint's own size (tens of
metres for a building). Larger features (settlement outlines) are buffered exactly with
shapely. Memory follows the kept tiles (8 bytes each), not the features.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import shapely

from satx import geo
from satx.errors import InputError
from satx.io.progress import Progress
from satx.io.run_record import file_sha256

log = logging.getLogger(__name__)

VECTOR_SUFFIXES = (".parquet", ".geoparquet", ".fgb", ".geojson", ".json")
RASTER_SUFFIXES = (".tif", ".tiff")
SMALL = 8  # a feature spanning at most this many tiles (buffer included) counts as its box
BATCH = 65_536
MERGE_EVERY = 32  # batches of keys gathered before they are merged into the sorted set


def mask_identity(path: str, buffer_m: float, threshold: float) -> dict[str, Any]:
    """What identifies a mask: its file (and sha256), buffer and threshold."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"--mask={path}: no such file")
    return {
        "mask": str(p),
        "mask_sha256": file_sha256(p),
        "mask_buffer_m": buffer_m,
        "mask_threshold": threshold,
    }


def check_mask_file(path: str) -> str:
    """The mask's format (its suffix), or an InputError: no such file, or an unknown format."""
    suffix = Path(path).suffix.lower()
    if suffix not in (*RASTER_SUFFIXES, *VECTOR_SUFFIXES):
        raise InputError(
            f"--mask={path}: unknown format {suffix or '(no extension)'}; give GeoParquet "
            "(.parquet), FlatGeobuf (.fgb), GeoJSON (.geojson) or a GeoTIFF (.tif)"
        )
    if not Path(path).expanduser().is_file():
        raise InputError(f"--mask={path}: no such file")
    return suffix


def mask_keys(path: str, zoom: int, buffer_m: float, threshold: float = 1.0) -> np.ndarray:
    """Sorted keys (x << 32 | y) of the tiles of `zoom` within `buffer_m` of FILE's features.

    Raises:
        InputError: an unknown format, a CRS that cannot be read, an empty file.
    """
    suffix = check_mask_file(path)
    if suffix in RASTER_SUFFIXES:
        batches = _raster_points(path, threshold)
    elif suffix in (".parquet", ".geoparquet"):
        batches = _geoparquet_batches(path)
    else:
        batches = _ogr_batches(path)
    merged, pending, features = np.zeros(0, np.int64), [], 0
    progress = Progress("mask", 0, unit="features", every_s=10.0)
    for bounds, extra_m, shapes in batches:
        features += len(bounds)
        pending.append(_cover(zoom, bounds, buffer_m + extra_m, shapes))
        if len(pending) >= MERGE_EVERY:
            merged = np.unique(np.concatenate([merged, *pending]))
            pending = []
        progress.update(features)
    if not features:
        raise InputError(f"--mask={path}: holds no feature (nothing built up to keep)")
    keys = np.unique(np.concatenate([merged, *pending]))
    log.info("mask %s: %d features -> %d tiles at zoom %d", path, features, keys.size, zoom)
    return keys


def _cover(zoom: int, bounds: np.ndarray, buffer_m: Any, shapes: Any) -> np.ndarray:
    """Keys of the tiles within `buffer_m` of features with these lon/lat `bounds` [N, 4]."""
    if len(bounds) == 0:
        return np.zeros(0, np.int64)
    w, s, e, n = bounds.T
    fx0, fy1 = geo.lonlat_to_grid(zoom, w, s)
    fx1, fy0 = geo.lonlat_to_grid(zoom, e, n)
    tile_m = geo.WORLD_M * np.cos(np.radians((s + n) / 2)) / (1 << zoom)
    r = np.broadcast_to(np.asarray(buffer_m, np.float64), w.shape) / tile_m
    x0, x1 = np.floor(fx0 - r).astype(np.int64), np.floor(fx1 + r).astype(np.int64)
    y0, y1 = np.floor(fy0 - r).astype(np.int64), np.floor(fy1 + r).astype(np.int64)
    small = np.maximum(x1 - x0, y1 - y0) < SMALL
    keys = [_cover_boxes(*(a[small] for a in (fx0, fx1, fy0, fy1, r, x0, x1, y0, y1)))]
    for i in np.flatnonzero(~small):
        shape = None if shapes is None else shapes[i]
        keys.append(_cover_large(zoom, shape, fx0[i], fx1[i], fy0[i], fy1[i], r[i]))
    side = 1 << zoom
    out = np.concatenate(keys)
    x, y = geo.key_xy(out)
    return out[(x >= 0) & (x < side) & (y >= 0) & (y < side)]


def _box_distance(tx: Any, ty: Any, fx0: Any, fx1: Any, fy0: Any, fy1: Any) -> Any:
    """Squared distance in tile units from tile (tx, ty)'s square to a feature's box."""
    dx = np.maximum(0, np.maximum(tx - fx1, fx0 - (tx + 1)))
    dy = np.maximum(0, np.maximum(ty - fy1, fy0 - (ty + 1)))
    return dx * dx + dy * dy


def _cover_boxes(*a: np.ndarray) -> np.ndarray:
    """Small features (fx0, fx1, fy0, fy1, r, x0, x1, y0, y1 each): 8 x 8 candidates at once."""
    fx0, fx1, fy0, fy1, r, x0, x1, y0, y1 = a
    d = np.arange(SMALL, dtype=np.int64)
    tx = x0[:, None, None] + d[None, :, None]
    ty = y0[:, None, None] + d[None, None, :]
    inside = (tx <= x1[:, None, None]) & (ty <= y1[:, None, None])
    near = (
        _box_distance(tx, ty, *(v[:, None, None] for v in (fx0, fx1, fy0, fy1)))
        <= (r * r)[:, None, None]
    )
    keep = inside & near
    tx, ty = np.broadcast_arrays(tx, ty)
    return np.unique(geo.tile_keys(tx[keep], ty[keep]))


def _cover_large(zoom: int, shape: Any, *box: float) -> np.ndarray:
    """A large feature's tiles: its geometry in tile units, buffered, against each candidate.

    `box` is the feature's fx0, fx1, fy0, fy1 and the buffer r, in tile units.
    """
    fx0, fx1, fy0, fy1, r = box
    xs = np.arange(np.floor(fx0 - r), np.floor(fx1 + r) + 1, dtype=np.int64)
    ys = np.arange(np.floor(fy0 - r), np.floor(fy1 + r) + 1, dtype=np.int64)
    tx, ty = (a.ravel() for a in np.meshgrid(xs, ys, indexing="ij"))
    if shape is None:  # a point (a raster pixel): its box is the point
        keep = _box_distance(tx, ty, fx0, fx1, fy0, fy1) <= r * r
    else:

        def to_grid(coords: np.ndarray) -> np.ndarray:
            return np.stack(geo.lonlat_to_grid(zoom, coords[:, 0], coords[:, 1]), axis=1)

        zone = shapely.buffer(shapely.transform(shape, to_grid), r)
        shapely.prepare(zone)
        keep = shapely.intersects(zone, shapely.box(tx, ty, tx + 1, ty + 1))
    return geo.tile_keys(tx[keep], ty[keep])


def _to_wgs84(crs: Any, where: str) -> Any:
    """A lon/lat transformer from `crs` (None when it already is WGS84 lon/lat)."""
    from pyproj import CRS, Transformer
    from pyproj.exceptions import CRSError

    if crs in (None, "", {}):
        return None
    try:
        source = CRS.from_user_input(crs)
    except CRSError as err:
        raise InputError(
            f"{where}: cannot read its CRS ({err}); reproject it to EPSG:4326"
        ) from err
    if source.equals(CRS.from_user_input("OGC:CRS84")) or source.equals("EPSG:4326"):
        return None
    return Transformer.from_crs(source, "OGC:CRS84", always_xy=True)


def _bounds_in_wgs84(shapes: np.ndarray, transformer: Any) -> tuple[np.ndarray, Any]:
    """Each geometry's lon/lat bounds [N, 4] (and the geometries in lon/lat)."""
    if transformer is not None:
        shapes = shapely.transform(
            shapes, lambda c: np.stack(transformer.transform(c[:, 0], c[:, 1]), axis=1)
        )
    return shapely.bounds(shapes), shapes


def _geoparquet_batches(path: str) -> Iterator[tuple[np.ndarray, float, np.ndarray]]:
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise InputError("--mask=*.parquet needs pyarrow: pip install 'satx[geo]'") from err
    try:
        reader = pq.ParquetFile(path)
        meta = json.loads((reader.schema_arrow.metadata or {}).get(b"geo", b"{}"))
    except Exception as err:  # pyarrow raises its own many kinds for a file that is not parquet
        raise InputError(f"--mask={path}: not a GeoParquet file ({err})") from err
    column = meta.get("primary_column")
    if not column:
        raise InputError(f"--mask={path}: no GeoParquet `geo` metadata naming a geometry column")
    spec = meta["columns"][column]
    if spec.get("encoding", "WKB") != "WKB":
        raise InputError(f"--mask={path}: geometry encoding {spec['encoding']}; satx reads WKB")
    transformer = _to_wgs84(spec.get("crs"), f"--mask={path}")
    for batch in reader.iter_batches(batch_size=BATCH, columns=[column]):
        shapes = shapely.from_wkb(batch.column(0).to_numpy(zero_copy_only=False))
        shapes = shapes[~shapely.is_missing(shapes)]
        bounds, shapes = _bounds_in_wgs84(shapes, transformer)
        yield bounds, 0.0, shapes


def _ogr_batches(path: str) -> Iterator[tuple[np.ndarray, float, np.ndarray]]:
    try:
        import pyogrio
        from pyogrio import raw
    except ImportError as err:
        raise InputError(f"--mask={path}: FlatGeobuf/GeoJSON need pyogrio: satx[geo]") from err
    try:
        info = pyogrio.read_info(path)
    except Exception as err:  # GDAL's errors for a file it cannot open
        raise InputError(f"--mask={path}: cannot read it as FlatGeobuf or GeoJSON ({err})") from err
    transformer = _to_wgs84(info.get("crs"), f"--mask={path}")
    with raw.open_arrow(path, batch_size=BATCH, columns=[], use_pyarrow=True) as (meta, reader):
        name = meta.get("geometry_name") or "wkb_geometry"
        for batch in reader:
            shapes = shapely.from_wkb(batch.column(name).to_numpy(zero_copy_only=False))
            shapes = shapes[~shapely.is_missing(shapes)]
            bounds, shapes = _bounds_in_wgs84(shapes, transformer)
            yield bounds, 0.0, shapes


def _raster_points(path: str, threshold: float) -> Iterator[tuple[np.ndarray, Any, None]]:
    """Built-up pixels as points, with their half diagonal in metres, a band of rows at a time."""
    try:
        import rasterio
        from rasterio.errors import RasterioIOError
        from rasterio.warp import transform as warp
        from rasterio.windows import Window
    except ImportError as err:
        raise InputError("--mask=*.tif needs rasterio: pip install 'satx[geo]'") from err
    try:
        src = rasterio.open(path)
    except RasterioIOError as err:
        raise InputError(f"--mask={path}: not a readable GeoTIFF ({err})") from err
    with src:
        if src.crs is None:
            raise InputError(
                f"--mask={path}: the raster has no CRS; give it one (gdal_edit -a_srs)"
            )
        half = 0.5 * float(np.hypot(src.transform.a, src.transform.e))
        rows = max(1, (1 << 22) // max(src.width, 1))
        for top in range(0, src.height, rows):
            window = Window(0, top, src.width, min(rows, src.height - top))
            data = src.read(1, window=window, masked=True)
            row, col = np.nonzero(np.ma.filled(data >= threshold, False))
            if row.size == 0:
                continue
            xs, ys = src.xy(row + top, col)
            lon, lat = (np.asarray(v) for v in warp(src.crs, "OGC:CRS84", xs, ys))
            metres = half if src.crs.is_projected else half * 111_320.0
            if src.crs.is_projected and src.crs.linear_units_factor[1] != 1.0:
                metres = half * src.crs.linear_units_factor[1]
            yield np.stack([lon, lat, lon, lat], axis=1), metres, None


class MaskedArea:
    """The tiles of an area (bbox or AOI) that a mask keeps, in quadkey order."""

    kind = "mask"

    def __init__(self, area: Any, keys: np.ndarray, identity: dict[str, Any]):
        x, y = geo.key_xy(keys)
        inside = area.contains(x, y)
        x, y = x[inside], y[inside]
        order = np.argsort(geo.morton(area.zoom, x, y), kind="stable")
        self.area, self.zoom, self.identity = area, area.zoom, identity
        self.x, self.y = x[order], y[order]
        self._keys = np.sort(geo.tile_keys(self.x, self.y))

    def contains(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether each tile (x, y) of the area's zoom is one the mask keeps."""
        keys = geo.tile_keys(np.asarray(x, np.int64), np.asarray(y, np.int64))
        if not self._keys.size:
            return np.zeros(keys.shape, bool)
        at = np.minimum(np.searchsorted(self._keys, keys), self._keys.size - 1)
        return self._keys[at] == keys

    def __len__(self) -> int:
        return int(self.x.size)

    def tiles(self, start: int, stop: int) -> list[Any]:
        """Tiles `start..stop-1` of the masked area."""
        import mercantile

        pairs = zip(self.x[start:stop].tolist(), self.y[start:stop].tolist(), strict=True)
        return [mercantile.Tile(a, b, self.zoom) for a, b in pairs]

    def fingerprint(self) -> dict[str, Any]:
        """The area, how many tiles it has, and the mask."""
        return {
            **self.area.fingerprint(),
            "area": self.area.kind,
            "area_tiles": len(self.area),
            **self.identity,
        }
