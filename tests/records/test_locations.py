"""Labelled places (GeoJSON points and polygons, CSVs of lon,lat or z,x,y) -> records, with
tiles fetched from a real loopback tile server."""

import json

import mercantile
import pytest
import shapely

from satx.bench.tileserver import TileServer
from satx.config import RecordsConfig, SourceConfig
from satx.records.make import make_records
from satx.tiles.aoi import PolygonArea
from tests.helpers import cli, read_all, records_cmd, shard_digests, xyz_folder

Z = 18
T = [mercantile.Tile(77128 + i % 6, 127700 + i // 6, Z) for i in range(36)]  # a 6x6 block
DARK = mercantile.Tile(77000, 127000, Z)  # the server has no imagery here


def _centre(tile, dx=0.5, dy=0.5):
    w, s, e, n = mercantile.bounds(tile)
    return w + (e - w) * dx, n - (n - s) * dy


def _point(tile, label, dx=0.5, dy=0.5, **props):
    lon, lat = _centre(tile, dx, dy)
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "geometry": geometry, "properties": {"label": label, **props}}


# a polygon over tiles T[14], T[15], T[20], T[21] (the corners of a 2x2 block, inset)
_W, _, _, _N = mercantile.bounds(T[14])
_, _S, _E, _ = mercantile.bounds(T[21])
POLYGON = shapely.box(_W + 1e-5, _S + 1e-5, _E - 1e-5, _N - 1e-5)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagery")
    xyz_folder(root, T)
    with TileServer(root, token="rec-s3cr3t-991") as running:
        yield running


def _places(tmp_path):
    features = [
        _point(T[0], "school", 0.2, 0.2),
        _point(T[0], "school", 0.8, 0.8),  # same tile, same label: one example
        _point(T[1], "school"),
        _point(T[2], "not_school"),
        _point(T[3], "school"),
        _point(T[3], "not_school", 0.1, 0.9),  # conflicting labels in one tile
        _point(DARK, "school"),  # no imagery there
        _point(T[4], ""),  # no label
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[-74, 4], [-74.1, 4.1]]},
            "properties": {"label": "school"},
        },
        {
            "type": "Feature",
            "geometry": shapely.geometry.mapping(POLYGON),
            "properties": {"label": "not_school"},
        },
        *[_point(t, "not_school" if i % 2 else "school") for i, t in enumerate(T[24:], 24)],
    ]
    path = tmp_path / "places.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def _config(input_path, out, server, **kw):
    source = SourceConfig(tiles=f"{server.template}?access_token=rec-s3cr3t-991")
    values = dict(image_size=32, min_shards=2, split="train:0.5,val:0.5") | kw
    return RecordsConfig(input=str(input_path), output=str(out), zoom=Z, source=source, **values)


def test_geojson_places_become_geolocated_records(server, tmp_path):
    out = tmp_path / "records"
    manifest = make_records(_config(_places(tmp_path), out, server))
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


def test_centroid_mode_and_csv_inputs_agree(server, tmp_path):
    polygon = {"type": "Feature", "geometry": shapely.geometry.mapping(POLYGON)}
    polygon["properties"] = {"kind": "school"}
    path = tmp_path / "one.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [polygon]}))
    out = tmp_path / "centroid"
    make_records(
        _config(path, out, server, label_property="kind", polygon_mode="centroid", split="train:1")
    )
    examples = [e for _, e in read_all(out)[1]]
    lon, lat = POLYGON.centroid.x, POLYGON.centroid.y
    assert [tuple(e.tile) for e in examples] == [tuple(mercantile.tile(lon, lat, Z))]
    rows = [(t, "school" if i % 3 else "not_school") for i, t in enumerate(T)]
    lonlat, zxy = tmp_path / "lonlat.csv", tmp_path / "zxy.csv"
    lonlat.write_text(
        "lon,lat,label\n" + "".join(f"{_centre(t)[0]},{_centre(t)[1]},{lab}\n" for t, lab in rows)
    )
    zxy.write_text("z,x,y,label\n" + "".join(f"{t.z},{t.x},{t.y},{lab}\n" for t, lab in rows))
    make_records(_config(lonlat, tmp_path / "a", server))
    make_records(_config(zxy, tmp_path / "b", server))
    assert shard_digests(tmp_path / "a") == shard_digests(tmp_path / "b")
    assert len(read_all(tmp_path / "a")[1]) == len(T)


def test_kill_9_while_fetching_then_rerun_gives_the_same_records(server, tmp_path):
    places = _places(tmp_path)
    source = f"--tiles={server.template}?access_token=rec-s3cr3t-991"
    args = (
        *records_cmd(places, tmp_path / "whole", "--zoom=18", source),
        "--split=train:0.5,val:0.5",
    )
    before = sum(server.requests.values())
    cli(*args, check=True)
    per_run = sum(server.requests.values()) - before  # one request per distinct tile
    killed_args = [a.replace("whole", "killed") for a in args]
    killed = cli(*killed_args, "--fetch_threads=2", env={"SATX_FAILPOINTS": "fetch.request:9"})
    assert killed.returncode == -9
    cached = [p for p in (tmp_path / "killed" / "_progress" / "tiles").rglob("*") if p.is_file()]
    assert 0 < len(cached) < per_run
    before = sum(server.requests.values())
    again = cli(*killed_args, check=True)
    assert sum(server.requests.values()) - before == per_run - len(cached)  # nothing twice
    assert shard_digests(tmp_path / "killed") == shard_digests(tmp_path / "whole")
    assert not (tmp_path / "killed" / "_progress").exists()
    for proc in (killed, again):
        assert "rec-s3cr3t-991" not in proc.stdout + proc.stderr
