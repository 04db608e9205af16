"""GeoParquet outputs: a file per chunk, one table, the `geo` metadata of GeoParquet 1.1."""

from __future__ import annotations

import json

import mercantile
import numpy as np
import pytest

from satx.errors import InputError
from satx.predict.run import predict
from tests.support.predict import predict_bbox, predict_config, predicted_rows

pa = pytest.importorskip("pyarrow", reason="GeoParquet output needs the satx[geo] extra")
pa_dataset = pytest.importorskip("pyarrow.dataset")
pq = pytest.importorskip("pyarrow.parquet")
import shapely  # noqa: E402


@pytest.fixture
def bbox_run(tiny_model, sample_records, tmp_path):
    formats = ("csv", "parquet")
    run, out, tiles, _, _ = predict_bbox(
        tiny_model["export"], sample_records, tmp_path, formats=formats
    )
    return run, out, tiles


def test_parquet_parts_read_as_one_table_equal_to_the_csv(bbox_run):
    run, out, tiles = bbox_run
    folder = out / "predictions.parquet"
    assert run.files["parquet"] == str(folder)
    chunks = sorted(p.name for p in folder.iterdir())
    assert chunks == [f"chunk-{k:08d}.parquet" for k in range(len(chunks))] and len(chunks) > 1
    table = pa_dataset.dataset(str(folder), format="parquet").to_table()
    rows = predicted_rows(out)
    assert table.num_rows == len(rows) == len(tiles) - 2
    got = table.sort_by([("x", "ascending"), ("y", "ascending")]).to_pylist()
    want = sorted(rows, key=lambda r: (int(r["x"]), int(r["y"])))
    for g, w in zip(got, want, strict=True):
        assert (g["z"], g["x"], g["y"]) == (int(w["z"]), int(w["x"]), int(w["y"]))
        assert (g["source_id"], g["quadkey"], g["label"]) == (
            w["source_id"],
            w["quadkey"],
            w["label"],
        )
        assert g["score"] == float(w["score"]) and g["score_school"] == float(w["score_school"])
        assert (g["lon"], g["lat"]) == pytest.approx((float(w["lon"]), float(w["lat"])), abs=1e-6)
        b = mercantile.bounds(g["x"], g["y"], g["z"])
        shape = shapely.from_wkb(g["geometry"])
        assert shape.equals_exact(shapely.box(b.west, b.south, b.east, b.north), 1e-9)
        assert shapely.is_ccw(shape.exterior)
        assert g["bbox"] == pytest.approx(
            {"xmin": b.west, "ymin": b.south, "xmax": b.east, "ymax": b.north}, abs=1e-9
        )


def test_geo_metadata_follows_geoparquet_1_1_and_geopandas_reads_it(bbox_run):
    gpd = pytest.importorskip("geopandas", reason="the test extra brings GeoPandas")
    _, out, tiles = bbox_run
    folder = out / "predictions.parquet"
    for path in sorted(folder.iterdir()):
        meta = json.loads(pq.read_schema(path).metadata[b"geo"])
        # the required members of GeoParquet 1.1's metadata, and the values they may take
        assert meta["version"] == "1.1.0" and meta["primary_column"] == "geometry"
        column = meta["columns"]["geometry"]
        assert column["encoding"] == "WKB" and column["geometry_types"] == ["Polygon"]
        assert column["orientation"] == "counterclockwise" and "crs" not in column  # OGC:CRS84
        assert column["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
        table = pq.read_table(path)
        xs = [v["xmin"] for v in table.column("bbox").to_pylist()]
        ys = [v["ymax"] for v in table.column("bbox").to_pylist()]
        assert column["bbox"][0] == pytest.approx(min(xs)) and column["bbox"][3] == pytest.approx(
            max(ys)
        )
    frame = gpd.read_parquet(folder)
    assert frame.crs.to_string() == "OGC:CRS84" and len(frame) == len(tiles) - 2
    assert frame.geometry.geom_type.unique().tolist() == ["Polygon"]
    bounds = frame.geometry.bounds
    assert np.allclose((bounds["minx"] + bounds["maxx"]) / 2, frame["lon"], atol=1e-6)


def test_sites_and_review_read_the_parquet_parts(bbox_run, tmp_path):
    from satx.config import SitesConfig
    from satx.review.predictions import iter_rows, open_predictions
    from satx.sites.run import find_sites
    from tests.support.review import review_config

    run, out, _ = bbox_run
    assert run.rows_file() == "predictions.parquet"
    sites = find_sites(SitesConfig(predictions=str(out), output=str(tmp_path / "s"), min_score=0.0))
    assert sites.tiles_scored == run.kept and sites.hits == run.kept
    config = review_config(
        {"predictions": str(out), "tiles": "x/{z}/{x}/{y}.jpg"}, tmp_path / "r.sqlite"
    )
    predictions = open_predictions(config)
    assert predictions.rows_file == "predictions.parquet"
    rows = [r for r in iter_rows(predictions) if r is not None]
    csv_scores = {(int(r["x"]), int(r["y"])): float(r["score_school"]) for r in predicted_rows(out)}
    assert {(r.x, r.y): r.score for r in rows} == csv_scores


def test_a_large_run_is_not_written_as_one_geojson(tiny_model, tmp_path):
    # 1.2 M zoom-18 tiles: every one in predictions.geojson would be a file nobody opens
    config = predict_config(
        tiny_model["export"],
        tmp_path / "big",
        bbox=(-75.5, 3.0, -74.0, 4.5),
        zoom=18,
        tiles=str(tmp_path / "none/{z}/{x}/{y}.jpg"),
    )
    with pytest.raises(InputError, match="1,19.,... tiles: a predictions.geojson"):
        predict(config)
    assert not (tmp_path / "big" / "predict_config.json").exists()  # refused before claiming
