"""`satx.predict` over every input kind, on a tiny trained model: scores, places, errors, resume."""

import io
import json
import shutil

import keras
import mercantile
import numpy as np
import pytest
from PIL import Image

from satx import geo
from satx.bench.tileserver import TileServer
from satx.config import COUNTRY_TILES, PredictConfig, SourceConfig
from satx.predict.outputs import Labeller
from satx.predict.run import predict
from tests.support.helpers import GCS_BUCKET as BUCKET
from tests.support.helpers import cli, encode, noise, shared_data, write
from tests.support.predict import (
    AREA_BBOX,
    BBOX,
    bbox_tiles,
    predict_config,
    predicted_errors,
    predicted_rows,
    rows_of,
    sample_tiles_folder,
    score_table,
)


@pytest.fixture(scope="module")
def keras_scores(tiny_model):
    """The Keras model's own school score for a tile's bytes (decoded by Pillow, not TF)."""
    model = keras.saving.load_model(tiny_model["root"] / "model.keras", compile=False)

    def score(data: bytes) -> float:
        image = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))[None]
        return float(model(image, training=False).numpy()[0, 1])

    return score


def _assert_tile_polygon(feature, tile):
    w, s, e, n = mercantile.bounds(tile)
    ring = np.array(feature["geometry"]["coordinates"][0])
    assert ring == pytest.approx(np.array([[w, s], [e, s], [e, n], [w, n], [w, s]]), abs=1e-9)


def test_tile_folder_scores_equal_the_keras_model(
    tiny_model, sample_records, tmp_path, keras_scores
):
    src = sample_tiles_folder(sample_records)
    out = tmp_path / "out"
    summary = predict(
        predict_config(
            tiny_model["export"], out, input=str(src), formats=("csv", "jsonl", "geojson")
        )
    )
    files = sorted(src.rglob("*.jpg"))
    rows = predicted_rows(out)
    assert summary.tiles == summary.scored == len(rows) == len(files) and not summary.errors
    by_id = {r["source_id"]: r for r in rows}
    for path in files[:24]:
        row = by_id[path.relative_to(src).as_posix()]
        assert float(row["score_school"]) == pytest.approx(
            keras_scores(path.read_bytes()), abs=2e-3
        )
        tile = geo.parse_tile_path(row["source_id"])
        assert (int(row["z"]), int(row["x"]), int(row["y"])) == (tile.z, tile.x, tile.y)
        assert row["label"] == ("school" if float(row["score"]) >= 0.5 else "not_school")
    jsonl = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    geojson = json.loads((out / "predictions.geojson").read_text())
    assert [r["source_id"] for r in jsonl] == [r["source_id"] for r in rows]
    assert len(geojson["features"]) == len(rows)
    run = json.loads((out / "predict_run.json").read_text())
    assert run["input"]["kind"] == "folder" and run["versions"]["tensorflow"]
    assert run["projection"]["tiles"] == COUNTRY_TILES and run["projection"]["seconds"] > 0


def test_records_input_and_a_keras_file(tiny_model, sample_records, tmp_path):
    info = tiny_model["records"].manifest
    model = tiny_model["root"] / "model.keras"
    with pytest.raises(Exception, match="class_names"):
        predict(predict_config(model, tmp_path / "x", input=sample_records))
    out = tmp_path / "out"
    summary = predict(
        predict_config(
            model, out, input=sample_records, split="test", class_names=tuple(info.class_names)
        )
    )
    rows = predicted_rows(out)
    assert summary.scored == len(rows) == info.count("test")
    expected = tiny_model["probs"][:, 1]  # evaluate's fixture: the test split in manifest order
    assert [float(r["score_school"]) for r in rows] == pytest.approx(expected, abs=1e-5)
    everything = predict(
        predict_config(tiny_model["export"], tmp_path / "all", input=sample_records)
    )
    assert everything.tiles == sum(info.count(s) for s in info.splits)
    fingerprint = everything.input
    assert fingerprint["manifest_sha256"] == tiny_model["records"].manifest_sha256


def test_bbox_with_a_tile_template(tiny_model, sample_records, tmp_path, keras_scores):
    root = tmp_path / "xyz"
    tiles, missing, corrupt = bbox_tiles(root, sample_tiles_folder(sample_records))
    assert len(tiles) > 6
    out = tmp_path / "out"
    summary = predict(
        predict_config(tiny_model["export"], out, bbox=BBOX, zoom=18, tiles=str(root), chunk_size=5)
    )
    assert summary.tiles == len(tiles) and summary.errors == 2
    errors = predicted_errors(out)
    assert errors == {geo.tile_key(missing): "missing", geo.tile_key(corrupt): "corrupt"}
    features = json.loads((out / "predictions.geojson").read_text())["features"]
    assert len(features) == len(tiles) - 2
    for f in features:
        p = f["properties"]
        tile = mercantile.Tile(p["x"], p["y"], p["z"])
        _assert_tile_polygon(f, tile)
        data = (root / f"18/{tile.x}/{tile.y}.jpg").read_bytes()
        assert p["score_school"] == pytest.approx(keras_scores(data), abs=2e-3)
        assert p["quadkey"] == mercantile.quadkey(tile)
    # a country's box is mostly sea: missing tiles can be counted instead of listed
    counted = predict(
        predict_config(
            tiny_model["export"],
            tmp_path / "c",
            bbox=BBOX,
            zoom=18,
            tiles=str(root),
            list_missing=False,
        )
    )
    assert counted.errors == 2 and counted.missing == 1
    assert predicted_errors(tmp_path / "c") == {geo.tile_key(corrupt): "corrupt"}


def test_csv_list_by_path_by_zxy_and_by_lonlat(tiny_model, sample_records, tmp_path):
    root = tmp_path / "xyz"
    tiles, missing, _ = bbox_tiles(root, sample_tiles_folder(sample_records))
    first, fourth = tiles[0], tiles[3]
    lon, lat = geo.geolocate(fourth)[1:3]
    listing = tmp_path / "list.csv"
    listing.write_text(
        "path,z,x,y,lon,lat\n"
        f"xyz/18/{first.x}/{first.y}.jpg,,,,,\n"  # a path, relative to the CSV
        f",18,{missing.x},{missing.y},,\n"  # z,x,y through the template: missing file
        f",,,,{lon},{lat}\n"  # lon,lat at --zoom through the template
        ",18,abc,1,,\n"  # a bad row
        f"xyz/18/{first.x}/{first.y}.jpg,,,,,\n"  # listed twice: scored once
    )
    out = tmp_path / "out"
    summary = predict(
        predict_config(tiny_model["export"], out, input=str(listing), tiles=str(root), zoom=18)
    )
    rows = predicted_rows(out)
    assert summary.tiles == 4 and summary.scored == 2
    assert [r["source_id"] for r in rows] == [
        f"xyz/18/{first.x}/{first.y}.jpg",
        geo.tile_key(fourth),
    ]
    assert (int(rows[0]["x"]), int(rows[0]["y"])) == (first.x, first.y)
    reasons = sorted(predicted_errors(out).values())
    assert reasons == ["bad_row", "missing"]


def test_bad_tiles_land_in_the_errors_file(tiny_model, tmp_path):
    folder = tmp_path / "tiles"
    good = encode(noise(1))
    write(folder / "18/1/1.jpg", good)
    write(folder / "18/1/2.jpg", b"")
    write(folder / "18/1/3.jpg", b"not an image at all")
    write(folder / "18/1/4.png", encode(noise(2, (32, 32, 3)), "GIF"))
    write(folder / "18/1/5.jpg", good[:200])
    write(folder / "18/1/6.png", encode(noise(3, (48, 40, 4)), "PNG"))  # RGBA, other size: fine
    out = tmp_path / "out"
    summary = predict(predict_config(tiny_model["export"], out, input=str(folder)))
    assert predicted_errors(out) == {
        "18/1/2.jpg": "empty_file",
        "18/1/3.jpg": "not_an_image",
        "18/1/4.png": "unsupported_format",
        "18/1/5.jpg": "corrupt",
    }
    assert summary.scored == 2 and [r["source_id"] for r in predicted_rows(out)] == [
        "18/1/1.jpg",
        "18/1/6.png",
    ]


def test_min_score_keeps_only_hits_and_a_changed_run_is_refused(
    tiny_model, sample_records, tmp_path
):
    from satx.errors import OutputExistsError

    src, out = sample_tiles_folder(sample_records), tmp_path / "out"
    everything = rows_of(
        predict(predict_config(tiny_model["export"], tmp_path / "all", input=str(src)))
    )
    cut = float(np.median([float(r["score"]) for r in everything]))
    summary = predict(predict_config(tiny_model["export"], out, input=str(src), min_score=cut))
    assert (
        summary.kept
        == sum(float(r["score"]) >= cut for r in everything)
        == len(predicted_rows(out))
    )
    assert summary.scored == len(everything)
    with pytest.raises(OutputExistsError, match="another prediction run"):
        predict(predict_config(tiny_model["export"], out, input=str(src), min_score=0.1))
    again = predict(
        predict_config(tiny_model["export"], out, input=str(src), min_score=0.1, overwrite=True)
    )
    assert again.kept == sum(float(r["score"]) >= 0.1 for r in everything)


def test_labeller_binary_and_multiclass():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    top = Labeller.make(["a", "b", "c"], "", 0.5)
    assert top.label_score(probs)[0] == ["a", "c"]
    assert top.label_score(probs)[1] == pytest.approx([0.7, 0.6])
    named = Labeller.make(["a", "b", "c"], "b", 0.5)
    assert named.label_score(probs)[1] == pytest.approx([0.2, 0.3])
    binary = Labeller.make(["no", "yes"], "", 0.25)
    labels, scores = binary.label_score(np.array([[0.8, 0.2], [0.7, 0.3]]))
    assert labels == ["no", "yes"] and scores == pytest.approx([0.2, 0.3])
    flipped = Labeller.make(["no", "yes"], "no", 0.5)
    assert flipped.label_score(np.array([[0.8, 0.2]]))[0] == ["no"]


def test_mixed_precision_keras_model(tiny_model, tmp_path):
    from satx.artifact.scorer import Scorer

    path = tiny_model["root"] / "model.keras"
    plain, mixed = Scorer(path), Scorer(path, policy="mixed_bfloat16")
    assert mixed.policy == "mixed_bfloat16" and plain.policy == "float32"
    images = noise(7, (6, 32, 32, 3))
    assert mixed(images) == pytest.approx(plain(images), abs=2e-2)


def test_real_xyz_tiles_land_at_their_mercantile_bounds(tiny_model, tmp_path):
    """Real z17 (and z12, JPEG content named .png) tiles named x-y-z, scored and placed."""
    src = shared_data("xyz-tiles")
    files = sorted(p for p in src.rglob("*") if p.suffix in (".jpg", ".png"))
    out = tmp_path / "out"
    summary = predict(
        predict_config(tiny_model["export"], out, input=str(src), formats=("geojson",))
    )
    assert summary.scored == len(files) == 20 and summary.errors == 0
    features = json.loads((out / "predictions.geojson").read_text())["features"]
    for f, path in zip(features, files, strict=True):
        tile = geo.parse_tile_path(path.name)
        assert f["properties"]["source_id"] == path.relative_to(src).as_posix()
        _assert_tile_polygon(f, tile)
    z17 = [f for f in features if f["properties"]["z"] == 17]
    assert len(z17) == 8
    for f in z17:  # near Lisbon, Portugal
        w, s = f["geometry"]["coordinates"][0][0]
        assert -9.6 < w < -6.1 and 36.9 < s < 42.2
    shutil.rmtree(out)


def test_gcs_tiles_and_gcs_output_match_a_local_run(gcs, tiny_model, sample_records, tmp_path):
    """Tiles read from gs:// (bbox template and folder listing), results written to gs://."""
    from tests.support.helpers import download_tree, upload_tree

    root = tmp_path / "xyz"
    tiles, missing, corrupt = bbox_tiles(root, sample_tiles_folder(sample_records))
    upload_tree(root, f"gs://{BUCKET}/pred/tiles")
    local = predict(predict_config(tiny_model["export"], tmp_path / "local", input=str(root)))
    template = f"gs://{BUCKET}/pred/tiles/{{z}}/{{x}}/{{y}}.jpg"
    for name, kw in (
        ("bbox", dict(bbox=BBOX, zoom=18, tiles=template)),
        ("folder", dict(input=f"gs://{BUCKET}/pred/tiles")),
    ):
        url = f"gs://{BUCKET}/pred/out-{name}"
        summary = predict(predict_config(tiny_model["export"], url, chunk_size=4, **kw))
        assert summary.files["csv"] == f"{url}/predictions.csv"
        download_tree(url, tmp_path / name)
        rows = {
            geo.tile_key(geo.parse_tile_path(r["source_id"])): r
            for r in predicted_rows(tmp_path / name)
        }
        expected = {geo.tile_key(geo.parse_tile_path(r["source_id"])): r for r in rows_of(local)}
        assert rows.keys() == expected.keys() and len(rows) == len(tiles) - 2
        for key, row in rows.items():  # batches of 4 vs 128: float sums in another order
            assert float(row["score_school"]) == pytest.approx(
                float(expected[key]["score_school"]), abs=2e-6
            )
        # a folder listing only holds files that exist; the bbox also names the missing tile
        reasons = ["corrupt", "missing"] if name == "bbox" else ["corrupt"]
        assert sorted(predicted_errors(tmp_path / name).values()) == reasons


def test_records_on_gcs_are_streamed_and_score_as_locally(
    gcs, tiny_model, sample_records, tmp_path
):
    from pathlib import Path

    from tests.support.helpers import upload_tree

    upload_tree(Path(sample_records), f"gs://{BUCKET}/pred/records")
    kw = dict(split="test", formats=("csv",))
    local = predict(
        predict_config(tiny_model["export"], tmp_path / "local", input=sample_records, **kw)
    )
    remote = predict(
        predict_config(
            tiny_model["export"], tmp_path / "gcs", input=f"gs://{BUCKET}/pred/records", **kw
        )
    )
    assert remote.scored == local.scored > 0
    assert predicted_rows(tmp_path / "gcs") == predicted_rows(tmp_path / "local")


def test_aoi_with_a_hole_scores_exactly_its_tiles_and_dry_run_counts_them(
    tiny_model, sample_records, tmp_path
):
    from shapely.geometry import Polygon, box, mapping

    from satx.predict.run import dry_run

    root = tmp_path / "xyz"
    tiles, missing, corrupt = bbox_tiles(root, sample_tiles_folder(sample_records))
    w, s, e, n = BBOX
    hole = mercantile.bounds(tiles[len(tiles) // 2])  # one whole tile cut out
    aoi = Polygon(box(w, s, e, n).exterior.coords, [box(*hole).exterior.coords])
    path = tmp_path / "aoi.geojson"
    path.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": mapping(aoi)}))
    expected = {
        t
        for t in mercantile.tiles(*aoi.bounds, 18)
        if aoi.intersects(box(*mercantile.bounds(t)))
        and not aoi.touches(box(*mercantile.bounds(t)))
    }
    assert tiles[len(tiles) // 2] not in expected and len(expected) > 4
    kw = dict(aoi=str(path), zoom=18, tiles=str(root), chunk_size=4)
    counted = dry_run(predict_config(tiny_model["export"], "", dry_run=True, **kw))
    assert counted.tiles == len(expected) and counted.model_tiles_per_s > 0
    assert not (tmp_path / "out").exists()
    summary = predict(predict_config(tiny_model["export"], tmp_path / "out", **kw))
    rows = predicted_rows(tmp_path / "out")
    scored = {mercantile.Tile(int(r["x"]), int(r["y"]), int(r["z"])) for r in rows}
    errors = predicted_errors(tmp_path / "out")
    assert summary.tiles == len(expected) and summary.input["kind"] == "aoi"
    assert scored | {geo.parse_tile_path(k + ".jpg") for k in errors} == expected
    keys = [mercantile.quadkey(mercantile.Tile(int(r["x"]), int(r["y"]), 18)) for r in rows]
    assert keys == sorted(keys)  # written in the area's stable (quadkey) order
    out = cli(
        "satx.predict",
        f"--model={tiny_model['export']}",
        f"--aoi={path}",
        "--zoom=18",
        f"--tiles={root}",
        "--dry_run",
        check=True,
    )
    assert f"{len(expected)} tiles at zoom 18: {path}" in out.stdout
    assert (
        f"tile source: {root}/{{z}}/{{x}}/{{y}}.jpg" in out.stdout and "tiles/s here" in out.stdout
    )


def test_folder_http_mbtiles_and_pmtiles_give_identical_predictions(
    tiny_model, area_tiles, tmp_path
):
    root, tiles, missing, corrupt = area_tiles
    results = {}
    with TileServer(root / "xyz") as server:
        for name, spec in (
            ("folder", str(root / "xyz")),
            ("http", server.template),
            ("mbtiles", str(root / "t.mbtiles")),
            ("pmtiles", str(root / "t.pmtiles")),
        ):
            config = PredictConfig.make(
                model=str(tiny_model["export"]),
                output=str(tmp_path / name),
                bbox=AREA_BBOX,
                zoom=18,
                source=SourceConfig(tiles=spec),
                chunk_size=8,
                batch_size=8,
            )
            summary = predict(config)
            assert summary.tiles == len(tiles) and summary.missing == 1, name
            results[name] = score_table(tmp_path / name)
    scores, errors = results["folder"]
    assert len(scores) == len(tiles) - 2
    key = "{0.z}/{0.x}/{0.y}".format
    assert errors == {key(missing): "missing", key(corrupt): "corrupt"}
    for name, table in results.items():
        assert table == results["folder"], name
