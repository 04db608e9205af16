"""Labelled places (GeoJSON points and polygons, CSVs of lon,lat or z,x,y) -> records, with
tiles fetched from a real loopback tile places_server."""

import json

import mercantile
import pytest
import shapely

from satx.records.make import make_records
from satx.tiles.aoi import PolygonArea
from tests.support.helpers import read_all, shard_digests
from tests.support.places import POLYGON, T, Z, places_config, tile_point, write_places


def test_geojson_places_become_geolocated_records(places_server, tmp_path):
    out = tmp_path / "records"
    manifest = make_records(places_config(write_places(tmp_path), out, places_server))
    examples = [e for _, e in read_all(out)[1]]
    by_tile = {(e.tile[2], e.tile[0], e.tile[1]): e for e in examples}
    polygon_tiles = PolygonArea(POLYGON, Z).tiles(0, 4)
    assert set(polygon_tiles) == {T[14], T[15], T[20], T[21]}
    expected = {T[0]: "school", T[1]: "school", T[2]: "not_school"}
    expected |= {t: "not_school" for t in polygon_tiles}
    expected |= {t: "not_school" if i % 2 else "school" for i, t in enumerate(T[24:], 24)}
    assert set(by_tile) == {(t.z, t.x, t.y) for t in expected}
    for tile, label in expected.items():
        e = by_tile[(tile.z, tile.x, tile.y)]
        assert manifest.class_names[e.label] == label
        assert e.source_id == f"{tile.z}/{tile.x}/{tile.y}"
        assert e.geolocation.quadkey == mercantile.quadkey(tile)
        lon, lat = e.geolocation.lon, e.geolocation.lat
        assert mercantile.tile(lon, lat, Z) == tile
        assert e.geolocation.bbox == pytest.approx(mercantile.bounds(tile), abs=1e-6)
    quarantined = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    reasons = sorted(q["reason"] for q in quarantined)
    assert reasons == ["bad_geometry", "conflicting_labels", "missing_label", "no_imagery"]
    conflict = next(q for q in quarantined if q["reason"] == "conflicting_labels")
    assert conflict["source_id"] == f"{Z}/{T[3].x}/{T[3].y}"
    inputs = json.loads((out / "manifest.json").read_text())["inputs"]
    assert inputs["layout"] == "locations"
    assert inputs["tile_source"].endswith("?access_token=REDACTED")
    # school: 2 points in T0, T1, T3, DARK, 6 in T24.. = 11 -> T0, T1, DARK, 6 tiles (T3 conflicts)
    # not_school: T2, T3, the polygon, 6 in T24.. = 9 -> T2, the polygon's 4, 6 tiles
    assert inputs["geometries"] == {
        "not_school": {"geometries": 9, "tiles": 11},
        "school": {"geometries": 11, "tiles": 9},
    }
    assert "rec-s3cr3t-991" not in "".join(
        p.read_text("latin-1") for p in out.rglob("*") if p.is_file()
    )


def test_centroid_mode_and_csv_inputs_agree(places_server, tmp_path):
    polygon = {"type": "Feature", "geometry": shapely.geometry.mapping(POLYGON)}
    polygon["properties"] = {"kind": "school"}
    path = tmp_path / "one.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [polygon]}))
    out = tmp_path / "centroid"
    make_records(
        places_config(
            path,
            out,
            places_server,
            label_property="kind",
            polygon_mode="centroid",
            split="train:1",
        )
    )
    examples = [e for _, e in read_all(out)[1]]
    lon, lat = POLYGON.centroid.x, POLYGON.centroid.y
    assert [tuple(e.tile) for e in examples] == [tuple(mercantile.tile(lon, lat, Z))]
    rows = [(t, "school" if i % 3 else "not_school") for i, t in enumerate(T)]
    lonlat, zxy = tmp_path / "lonlat.csv", tmp_path / "zxy.csv"
    lonlat.write_text(
        "lon,lat,label\n"
        + "".join(f"{tile_point(t)[0]},{tile_point(t)[1]},{lab}\n" for t, lab in rows)
    )
    zxy.write_text("z,x,y,label\n" + "".join(f"{t.z},{t.x},{t.y},{lab}\n" for t, lab in rows))
    make_records(places_config(lonlat, tmp_path / "a", places_server))
    make_records(places_config(zxy, tmp_path / "b", places_server))
    assert shard_digests(tmp_path / "a") == shard_digests(tmp_path / "b")
    assert len(read_all(tmp_path / "a")[1]) == len(T)
