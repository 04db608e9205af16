"""Labelled places around a 6x6 block of zoom-18 tiles, served by a loopback tile places_server."""

import json

import mercantile
import shapely

from satx.config import RecordsConfig, SourceConfig

Z = 18

T = [mercantile.Tile(77128 + i % 6, 127700 + i // 6, Z) for i in range(36)]  # a 6x6 block

DARK = mercantile.Tile(77000, 127000, Z)  # the places_server has no imagery here


def tile_point(tile, dx=0.5, dy=0.5):
    w, s, e, n = mercantile.bounds(tile)
    return w + (e - w) * dx, n - (n - s) * dy


def point_feature(tile, label, dx=0.5, dy=0.5, **props):
    lon, lat = tile_point(tile, dx, dy)
    geometry = {"type": "Point", "coordinates": [lon, lat]}
    return {"type": "Feature", "geometry": geometry, "properties": {"label": label, **props}}


# a polygon over tiles T[14], T[15], T[20], T[21] (the corners of a 2x2 block, inset)
_W, _, _, _N = mercantile.bounds(T[14])

_, _S, _E, _ = mercantile.bounds(T[21])

POLYGON = shapely.box(_W + 1e-5, _S + 1e-5, _E - 1e-5, _N - 1e-5)

PLACES_TOKEN = "rec-s3cr3t-991"  # the places places_server's token


def write_places(tmp_path):
    features = [
        point_feature(T[0], "school", 0.2, 0.2),
        point_feature(T[0], "school", 0.8, 0.8),  # same tile, same label: one example
        point_feature(T[1], "school"),
        point_feature(T[2], "not_school"),
        point_feature(T[3], "school"),
        point_feature(T[3], "not_school", 0.1, 0.9),  # conflicting labels in one tile
        point_feature(DARK, "school"),  # no imagery there
        point_feature(T[4], ""),  # no label
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
        *[point_feature(t, "not_school" if i % 2 else "school") for i, t in enumerate(T[24:], 24)],
    ]
    path = tmp_path / "places.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def places_config(input_path, out, places_server, **kw):
    source = SourceConfig(tiles=f"{places_server.template}?access_token=rec-s3cr3t-991")
    values = dict(image_size=32, min_shards=2, split="train:0.5,val:0.5") | kw
    return RecordsConfig(input=str(input_path), output=str(out), zoom=Z, source=source, **values)
