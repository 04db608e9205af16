"""The settlement mask: footprints in three formats and a raster against brute-force distances."""

from __future__ import annotations

import json

import mercantile
import numpy as np
import pytest
import shapely

from satx.errors import InputError
from satx.geo import morton
from satx.sites.known import haversine_m
from satx.tiles.aoi import PolygonArea
from satx.tiles.areas import BboxArea
from satx.tiles.mask import MaskedArea, mask_keys

Z = 18
BUFFER = 150.0


def _buildings(lon0, lat0, n, seed, size_m=(8, 30)):
    """`n` axis-aligned building rectangles (lon/lat boxes) and a few points near (lon0, lat0)."""
    rng = np.random.default_rng(seed)
    lon = lon0 + rng.uniform(-0.01, 0.01, n)
    lat = lat0 + rng.uniform(-0.01, 0.01, n)
    w = rng.uniform(*size_m, n) / (111_320 * np.cos(np.radians(lat)))
    h = rng.uniform(*size_m, n) / 110_574
    shapes = list(shapely.box(lon, lat, lon + w, lat + h))
    shapes[: n // 10] = list(shapely.points(lon[: n // 10], lat[: n // 10]))  # some points
    return shapes


def _reference(shapes, buffer_m, ambiguous_m=1.0):
    """(sure, unsure) keys: tiles whose haversine distance to a feature's box is within the
    buffer, and those within `ambiguous_m` of it either way (left out of the comparison)."""
    sure, unsure = set(), set()
    for shape in shapes:
        w, s, e, n = shape.bounds
        for t in mercantile.tiles(w - 0.005, s - 0.005, e + 0.005, n + 0.005, Z):
            b = mercantile.bounds(t)
            lon_t = np.clip((w + e) / 2, b.west, b.east)
            lat_t = np.clip((s + n) / 2, b.south, b.north)
            lon_f, lat_f = np.clip(lon_t, w, e), np.clip(lat_t, s, n)
            lon_t, lat_t = np.clip(lon_f, b.west, b.east), np.clip(lat_f, b.south, b.north)
            d = float(haversine_m(lon_t, lat_t, lon_f, lat_f))
            key = (t.x << 32) | t.y
            if abs(d - buffer_m) <= ambiguous_m:
                unsure.add(key)
            elif d < buffer_m:
                sure.add(key)
    return sure, unsure - sure


def _geojson(path, shapes, crs=None):
    features = [
        {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(s)}
        for s in shapes
    ]
    data = {"type": "FeatureCollection", "features": features}
    if crs:
        data["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(data))
    return str(path)


def _geoparquet(path, shapes):
    import pyarrow as pa
    import pyarrow.parquet as pq

    meta = {
        "version": "1.1.0",
        "primary_column": "geom",
        "columns": {"geom": {"encoding": "WKB", "geometry_types": []}},
    }
    table = pa.table(
        {"geom": pa.array(shapely.to_wkb(np.array(shapes, dtype=object)).tolist(), pa.binary())}
    )
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(meta)}), path)
    return str(path)


def _flatgeobuf(path, shapes, crs="EPSG:4326"):
    gpd = pytest.importorskip("geopandas")
    frame = gpd.GeoDataFrame({"id": range(len(shapes))}, geometry=shapes, crs="EPSG:4326").to_crs(
        crs
    )
    frame.to_file(path, driver="FlatGeobuf")
    return str(path)


@pytest.mark.parametrize(("lon0", "lat0"), [(-74.08, 4.60), (10.75, 59.91)])  # Bogota, Oslo
def test_footprints_in_three_formats_keep_the_tiles_within_the_buffer(tmp_path, lon0, lat0):
    pytest.importorskip("pyogrio", reason="FlatGeobuf masks need the satx[geo] extra")
    shapes = _buildings(lon0, lat0, 300, seed=1)
    sure, unsure = _reference(shapes, BUFFER)
    found = {
        fmt: set(mask_keys(write(tmp_path / f"m.{fmt}", shapes), Z, BUFFER).tolist())
        for fmt, write in (("geojson", _geojson), ("parquet", _geoparquet), ("fgb", _flatgeobuf))
    }
    assert found["geojson"] == found["parquet"] == found["fgb"]
    got = found["geojson"]
    assert sure <= got and not (got - sure - unsure)  # exact, but for ties within a metre
    assert len(sure) > 200


def test_a_projected_crs_is_read_and_reprojected(tmp_path):
    pytest.importorskip("pyogrio", reason="FlatGeobuf masks need the satx[geo] extra")
    shapes = _buildings(-74.08, 4.60, 100, seed=2)
    wgs84 = set(mask_keys(_flatgeobuf(tmp_path / "a.fgb", shapes), Z, BUFFER).tolist())
    utm = set(mask_keys(_flatgeobuf(tmp_path / "b.fgb", shapes, "EPSG:32618"), Z, BUFFER).tolist())
    # reprojected rectangles are not quite rectangles in lon/lat: a tile or two at the edge
    assert len(wgs84 ^ utm) <= 0.01 * len(wgs84)


def test_a_large_settlement_polygon_is_buffered_exactly(tmp_path):
    """A town outline ~5 km across: tiles within the buffer of the polygon itself (not its box),
    checked by shapely distances in a local azimuthal equidistant projection."""
    from pyproj import Transformer

    town = shapely.Polygon([(-74.10, 4.58), (-74.06, 4.585), (-74.09, 4.62)])
    got = set(mask_keys(_geojson(tmp_path / "town.geojson", [town]), Z, BUFFER).tolist())
    local = Transformer.from_crs(
        "OGC:CRS84", "+proj=aeqd +lat_0=4.6 +lon_0=-74.08 +units=m", always_xy=True
    )

    def metric(shape):
        return shapely.transform(
            shapely.segmentize(shape, 0.0001),
            lambda c: np.stack(local.transform(c[:, 0], c[:, 1]), axis=1),
        )

    town_m = metric(town)
    sure, unsure = set(), set()
    for t in mercantile.tiles(-74.105, 4.575, -74.055, 4.625, Z):
        b = mercantile.bounds(t)
        d = metric(shapely.box(b.west, b.south, b.east, b.north)).distance(town_m)
        key = (t.x << 32) | t.y
        if abs(d - BUFFER) <= 2.0:
            unsure.add(key)
        elif d < BUFFER:
            sure.add(key)
    assert sure <= got and not (got - sure - unsure)
    w, s, e, n = town.bounds  # its box's far corner is ~2 km from the outline: not kept
    corner = mercantile.tile(e - 0.001, n - 0.001, Z)
    assert (corner.x << 32) | corner.y not in got


def test_a_raster_keeps_the_tiles_near_its_built_up_pixels(tmp_path):
    rasterio = pytest.importorskip("rasterio", reason="raster masks need the satx[geo] extra")
    from affine import Affine

    # a 100 m grid in UTM 18N (GHSL's layout is a grid like this, in Mollweide)
    west, north, size = 580_000.0, 515_000.0, 100.0
    grid = np.zeros((40, 40), np.uint8)
    grid[[5, 5, 20, 33], [7, 8, 20, 2]] = [1, 3, 1, 9]
    grid[10, 10] = 0
    path = tmp_path / "built.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=40,
        height=40,
        count=1,
        dtype="uint8",
        crs="EPSG:32618",
        transform=Affine.translation(west, north) @ Affine.scale(size, -size),
    ) as dst:
        dst.write(grid, 1)
    from pyproj import Transformer

    to_lonlat = Transformer.from_crs("EPSG:32618", "OGC:CRS84", always_xy=True)
    rows, cols = np.nonzero(grid >= 1)
    lon, lat = to_lonlat.transform(west + (cols + 0.5) * size, north - (rows + 0.5) * size)
    half = 0.5 * np.hypot(size, size)
    sure, unsure = _reference(list(shapely.points(lon, lat)), BUFFER + half)
    got = set(mask_keys(str(path), Z, BUFFER, threshold=1).tolist())
    assert sure <= got and not (got - sure - unsure)
    # a threshold keeps only the pixels at or above it
    high = set(mask_keys(str(path), Z, BUFFER, threshold=3).tolist())
    assert high < got and high


def test_masked_area_is_the_area_s_tiles_the_mask_keeps_in_quadkey_order():
    bbox = (-74.085, 4.595, -74.075, 4.605)
    area = BboxArea(bbox, Z)
    inner = list(mercantile.tiles(*bbox, Z))
    keys = np.array(sorted((t.x << 32) | t.y for t in inner[::3]), np.int64)
    outside = mercantile.tile(-75.0, 5.0, Z)
    keys = np.append(keys, (outside.x << 32) | outside.y)
    masked = MaskedArea(area, keys, {"mask": "m"})
    tiles = masked.tiles(0, len(masked))
    assert set(tiles) == set(inner[::3]) and len(masked) == len(inner[::3])
    assert [mercantile.quadkey(t) for t in tiles] == sorted(mercantile.quadkey(t) for t in tiles)
    assert masked.fingerprint()["area_tiles"] == len(area)
    # a polygon AOI's membership, vectorised, is its own tile list
    aoi = PolygonArea(shapely.Polygon([(-74.085, 4.595), (-74.075, 4.596), (-74.08, 4.605)]), Z)
    mine = aoi.tiles(0, len(aoi))
    box_tiles = np.array([(t.x, t.y) for t in inner])
    inside = aoi.contains(box_tiles[:, 0], box_tiles[:, 1])
    assert {t for t, ok in zip(inner, inside, strict=True) if ok} == set(mine)
    assert (
        morton(Z, np.array([1]), np.array([0]))[0] == 1
        and morton(Z, np.array([0]), np.array([1]))[0] == 2
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("m.kml", "<kml/>", "unknown format .kml"),
        ("m.geojson", '{"type": "FeatureCollection", "features": []}', "holds no feature"),
        ("m.parquet", "not parquet", "not a GeoParquet file"),
        ("m.tif", "not a tiff", "not a readable GeoTIFF"),
    ],
)
def test_bad_masks_are_refused_naming_the_file(tmp_path, name, text, message):
    pytest.importorskip("pyogrio", reason="masks need the satx[geo] extra")
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        mask_keys(str(path), Z, BUFFER)
    assert str(path) in str(err.value)


def test_a_crs_that_cannot_be_read_is_refused(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    meta = {
        "version": "1.1.0",
        "primary_column": "g",
        "columns": {"g": {"encoding": "WKB", "geometry_types": [], "crs": "no such CRS"}},
    }
    table = pa.table({"g": pa.array([shapely.to_wkb(shapely.Point(1, 2))], pa.binary())})
    path = tmp_path / "m.parquet"
    pq.write_table(table.replace_schema_metadata({"geo": json.dumps(meta)}), path)
    with pytest.raises(InputError, match="cannot read its CRS"):
        mask_keys(str(path), Z, BUFFER)
