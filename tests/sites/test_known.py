"""Known schools: reading, distances against reference math, nearest and within-radius."""

from __future__ import annotations

import json
import math

import mercantile
import numpy as np
import pytest

from satx import geo
from satx.errors import InputError
from satx.sites.known import (
    EARTH_RADIUS_M,
    best_score_near,
    haversine_m,
    nearest,
    read_known,
)


def _schools(tmp_path, points, name="known.geojson"):
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(p)},
            "properties": {"id": f"k{i}"},
        }
        for i, p in enumerate(points)
    ]
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return read_known(str(path))


def test_haversine_matches_reference_values():
    # a degree of latitude (or of longitude on the equator) is R * pi / 180
    one_degree = EARTH_RADIUS_M * math.pi / 180
    assert haversine_m(0.0, 0.0, 0.0, 1.0) == pytest.approx(one_degree, rel=1e-12)
    assert haversine_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(one_degree, rel=1e-12)
    # at latitude phi a degree of longitude shrinks by cos(phi) (small arcs)
    d = haversine_m(-74.0, 60.0, -73.999, 60.0)
    assert d == pytest.approx(one_degree * 0.001 * math.cos(math.radians(60)), rel=1e-6)
    # Bogota to Medellin, checked against the spherical law of cosines
    a, b = (-74.0721, 4.7110), (-75.5812, 6.2442)
    p1, p2, dl = math.radians(a[1]), math.radians(b[1]), math.radians(b[0] - a[0])
    law = EARTH_RADIUS_M * math.acos(
        math.sin(p1) * math.sin(p2) + math.cos(p1) * math.cos(p2) * math.cos(dl)
    )
    assert haversine_m(*a, *b) == pytest.approx(law, rel=1e-9)


def test_nearest_and_within_radius_equal_brute_force(tmp_path):
    rng = np.random.default_rng(1)
    centre = (-74.08, 4.60)
    schools = rng.normal(0, 0.01, size=(60, 2)) + centre
    known = _schools(tmp_path, schools.tolist())
    points = rng.normal(0, 0.01, size=(400, 2)) + centre
    score = rng.uniform(0, 1, 400)
    dist, index = nearest(known, points[:, 0], points[:, 1])
    full = haversine_m(
        points[:, None, 0], points[:, None, 1], schools[None, :, 0], schools[None, :, 1]
    )
    assert np.allclose(dist, full.min(axis=1), rtol=1e-9, atol=1e-6)
    assert np.array_equal(index, full.argmin(axis=1))
    best = best_score_near(known, points[:, 0], points[:, 1], score, 300.0)
    within = full.T <= 300.0  # schools x points
    expected = np.where(
        within.any(axis=1), np.where(within, score[None, :], -np.inf).max(axis=1), -np.inf
    )
    assert np.array_equal(best, expected)


def test_recovered_share_of_a_constructed_case(tmp_path):
    """Four known schools, three inside hit tiles: 0.75 recovered."""
    z, x0, y0 = 18, 77_139, 127_700
    hits = [(x0, y0), (x0 + 1, y0), (x0 + 10, y0 + 10), (x0 + 20, y0)]
    lon, lat = geo.grid_to_lonlat(
        z, np.array([h[0] for h in hits]) + 0.5, np.array([h[1] for h in hits]) + 0.5
    )
    inside = [
        geo.grid_to_lonlat(z, x + 0.3, y + 0.7)
        for x, y in ((x0, y0), (x0 + 10, y0 + 10), (x0 + 20, y0))
    ]
    far = geo.grid_to_lonlat(z, x0 + 40.5, y0 + 40.5)  # ~6 km away
    known = _schools(tmp_path, [[float(a), float(b)] for a, b in [*inside, far]])
    best = best_score_near(known, lon, lat, np.array([0.9, 0.8, 0.7, 0.95]), 150.0)
    assert (best >= 0.5).mean() == 0.75
    assert (best >= 0.9).mean() == 0.5  # the school near the 0.7 hit is lost at 0.9


def test_csv_and_polygons_are_read(tmp_path):
    csv_path = tmp_path / "k.csv"
    csv_path.write_text("name,Longitude,Latitude\nescuela 1,-74.1,4.6\nescuela 2,-74.2,4.7\n")
    k = read_known(str(csv_path))
    assert k.ids == ("escuela 1", "escuela 2") and k.lon.tolist() == [-74.1, -74.2]
    poly = {
        "type": "Feature",
        "properties": {},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [2, 0], [2, 2], [0, 2], [0, 0]]]},
    }
    path = tmp_path / "p.geojson"
    path.write_text(json.dumps(poly))
    k = read_known(str(path))
    assert (k.lon[0], k.lat[0]) == (1.0, 1.0) and k.ids == ("0",)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("k.kml", "<kml/>", "unknown format .kml"),
        ("k.csv", "a,b\n1,2\n", "lon and lat columns"),
        ("k.csv", "lon,lat\nx,2\n", "k.csv:2: lon/lat must be numbers"),
        ("k.geojson", '{"type": "FeatureCollection", "features": []}', "holds no school"),
        (
            "k.geojson",
            '{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": '
            '"urn:ogc:def:crs:EPSG::3857"}}, "features": []}',
            "CRS urn:ogc:def:crs:EPSG::3857",
        ),
        (
            "k.geojson",
            '{"type": "Feature", "properties": {}, "geometry": {"type": "Point", '
            '"coordinates": [-8238000, 512000]}}',
            "not a WGS84",
        ),
        ("k.geojson", "{not json", "cannot read GeoJSON"),
    ],
)
def test_bad_known_files_are_refused_naming_the_file(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_known(str(path))
    assert str(path) in str(err.value)


def test_the_samples_known_schools_sit_in_every_other_school_tile(tmp_path):
    from satx.records.sample import sample_addresses, write_known_schools

    n = write_known_schools(tmp_path / "known.geojson", count=40, school_fraction=0.5, seed=3)
    known = read_known(str(tmp_path / "known.geojson"))
    schools = [t for label, t in sample_addresses(40, 0.5, 3) if label == "school"]
    assert n == len(known) == 10 == len(schools) // 2
    found = [mercantile.tile(lon, lat, 18) for lon, lat in zip(known.lon, known.lat, strict=True)]
    assert found == schools[::2]
