"""Areas of interest: exact tile sets (against brute force), stable order, clear errors."""

import json
import time

import mercantile
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from satx.config import COUNTRY_TILES
from satx.errors import InputError
from satx.tiles.aoi import PolygonArea, load_aoi
from satx.tiles.areas import BboxArea
from tests.support.helpers import shared_data


def brute_force(geometry, zoom):
    """Every tile of the bounding box tested one by one: interiors overlap."""
    found = set()
    for tile in mercantile.tiles(*geometry.bounds, zoom):
        cell = box(*mercantile.bounds(tile))
        if geometry.intersects(cell) and not geometry.touches(cell):
            found.add(tile)
    return found


TRIANGLE = Polygon([(-74.2, 4.5), (-73.9, 4.55), (-74.05, 4.8)])
CONCAVE = Polygon([(-75.6, 6.2), (-75.5, 6.2), (-75.5, 6.3), (-75.55, 6.22), (-75.6, 6.3)])
HOLED = MultiPolygon(
    [
        Polygon(
            [(-76.6, 3.4), (-76.4, 3.4), (-76.4, 3.6), (-76.6, 3.6)],
            [[(-76.55, 3.45), (-76.45, 3.45), (-76.45, 3.55), (-76.55, 3.55)]],
        ),
        Polygon([(-74.85, 10.9), (-74.75, 10.95), (-74.8, 11.05)]),
    ]
)


@pytest.mark.parametrize(
    "geometry, zoom",
    [(TRIANGLE, 11), (TRIANGLE, 14), (CONCAVE, 15), (HOLED, 13), (HOLED, 15), (TRIANGLE, 0)],
)
def test_tile_sets_equal_brute_force(geometry, zoom):
    area = PolygonArea(geometry, zoom)
    expected = brute_force(geometry, zoom)
    got = area.tiles(0, len(area))
    assert len(area) == len(expected) == len(got) and set(got) == expected
    keys = [mercantile.quadkey(t) for t in got]
    assert keys == sorted(keys)  # a stable order: quadkey order


def test_the_hole_is_left_out_and_slices_agree():
    area = PolygonArea(HOLED, 15)
    hole = box(-76.55, 3.45, -76.45, 3.55)
    inside_hole = [t for t in area.tiles(0, len(area)) if hole.contains(box(*mercantile.bounds(t)))]
    assert not inside_hole
    every = area.tiles(0, len(area))
    for start, stop in ((0, 1), (7, 40), (len(area) - 3, len(area) + 10), (len(area), len(area))):
        assert area.tiles(start, stop) == every[start:stop]


def test_a_tile_that_only_touches_the_outline_is_left_out():
    tile = mercantile.Tile(300, 500, 10)
    square = box(*mercantile.bounds(tile))  # exactly one zoom-10 tile
    assert PolygonArea(square, 10).tiles(0, 10) == [tile]
    assert len(PolygonArea(square, 12)) == 16  # its 16 children, none of the neighbours


def test_bbox_area_keeps_mercantiles_order():
    area = BboxArea((-74.08, 4.6, -74.0775, 4.6025), 18)
    assert area.tiles(0, len(area)) == list(mercantile.tiles(-74.08, 4.6, -74.0775, 4.6025, 18))


def _write(tmp_path, data):
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps(data))
    return str(path)


def _feature(geometry):
    return {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(geometry)}


def test_geojson_forms_and_their_union(tmp_path):
    collection = {"type": "FeatureCollection", "features": [_feature(TRIANGLE), _feature(HOLED)]}
    union = load_aoi(_write(tmp_path, collection), 13)
    assert len(union) == len(PolygonArea(TRIANGLE, 13)) + len(PolygonArea(HOLED, 13))
    assert len(load_aoi(_write(tmp_path, _feature(TRIANGLE)), 13)) == len(PolygonArea(TRIANGLE, 13))
    bare = shapely.geometry.mapping(TRIANGLE)
    assert load_aoi(_write(tmp_path, bare), 13).fingerprint()["zoom"] == 13


@pytest.mark.parametrize(
    "data, message",
    [
        (_feature(Polygon([(170, 0), (-170, 0), (-170, 5), (170, 5)])), "crosses the antimeridian"),
        (_feature(box(-8_200_000, 500_000, -8_100_000, 600_000)), "projected CRS"),
        (
            {**_feature(TRIANGLE), "crs": {"properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}},
            "CRS urn:ogc:def:crs:EPSG::3857",
        ),
        (_feature(shapely.Point(-74, 4.6)), "is a Point"),
        (_feature(Polygon([(0, 0), (1, 1), (1, 0), (0, 1)])), "not a valid polygon"),
        ({"type": "FeatureCollection", "features": []}, "no features"),
    ],
)
def test_bad_aois_get_a_clear_error_naming_the_file(tmp_path, data, message):
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match=message) as err:
        load_aoi(path, 12)
    assert str(err.value).startswith(path)


def test_an_unreadable_file_is_named(tmp_path):
    with pytest.raises(InputError, match="cannot read GeoJSON"):
        load_aoi(str(tmp_path / "nope.geojson"), 12)


@pytest.mark.realdata
def test_colombia_is_counted_exactly_and_fast():
    path = str(shared_data("aoi") / "colombia.geojson")
    z13 = load_aoi(path, 13)
    assert set(z13.tiles(0, len(z13))) == brute_force(z13.geometry, 13)  # ~100k tiles checked
    start = time.monotonic()
    z18 = load_aoi(path, 18)
    seconds = time.monotonic() - start
    assert seconds < 60, seconds  # the bound; ~1 s here
    assert len(z18) == COUNTRY_TILES  # predict's default projection is this very count
    step = len(z18) // 997
    picks = [z18.tiles(i, i + 1)[0] for i in range(0, len(z18), step)]
    keys = [mercantile.quadkey(t) for t in picks]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for tile in picks:  # every tile handed out overlaps the outline
        cell = box(*mercantile.bounds(tile))
        assert z18.geometry.intersects(cell) and not z18.geometry.touches(cell)
