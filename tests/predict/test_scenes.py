"""`satx.predict --tiles=SCENE`: the scenes' footprint by default, at their own zoom; resumable
after kill -9, the same rows on Beam, and another scene refused on resume."""

from __future__ import annotations

import json

import pytest

from satx.config import SourceConfig
from satx.errors import OutputExistsError
from satx.predict.run import dry_run, predict
from tests.support import scenes
from tests.support.helpers import cli
from tests.support.predict import beam_config, predicted_rows, same_outputs

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return scenes.mercator_scene(tmp_path_factory.mktemp("scene") / "block.tif")


def _config(model, out, scene, **kw):
    return beam_config(model, out, source=SourceConfig(tiles=str(scene)), **kw)


def test_a_scene_s_default_area_is_its_footprint_at_its_own_zoom(tiny_model, scene, tmp_path):
    assert dry_run(_config(tiny_model["export"], "", scene, dry_run=True)).tiles == 8
    deeper = dry_run(_config(tiny_model["export"], "", scene, dry_run=True, zoom=18))
    assert deeper.tiles == 32 and deeper.input["aoi"] == "scene footprint"
    run = predict(_config(tiny_model["export"], tmp_path / "out", scene))
    assert run.tiles == run.scored == 8 and run.errors == 0
    expected = {f"17/{t.x}/{t.y}" for t in scenes.BLOCK if t != scenes.HOLE}
    assert {f"{r['z']}/{r['x']}/{r['y']}" for r in predicted_rows(tmp_path / "out")} == expected
    (recorded,) = run.input["scenes"]
    assert recorded["sha256"] and recorded["bands"] == [1, 2, 3]
    # the same output over other imagery is refused, not mixed
    other = scenes.sixteen_bit_scene(tmp_path / "other.tif")
    with pytest.raises(OutputExistsError, match=r"another prediction run \(different input\)"):
        predict(_config(tiny_model["export"], tmp_path / "out", other, bands=(3, 2, 1)))


@pytest.mark.slow
def test_a_killed_scene_run_resumes_and_beam_writes_the_same(tiny_model, scene, tmp_path):
    clean = predict(_config(tiny_model["export"], tmp_path / "clean", scene, zoom=18))
    args = [
        "satx.predict",
        f"--model={tiny_model['export']}",
        f"--tiles={scene}",
        "--zoom=18",
        "--chunk_size=5",
        "--batch_size=4",
        f"--output={tmp_path / 'killed'}",
    ]
    killed = cli(*args, env={"SATX_FAILPOINTS": "predict.chunk_done:2"})
    assert killed.returncode == -9, killed.stderr[-2000:]
    resumed = cli(*args, check=True)
    assert "resuming: 2 of" in resumed.stderr
    same_outputs(tmp_path / "clean", tmp_path / "killed")
    pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
    from satx.predict.beam import predict_beam

    predict_beam(_config(tiny_model["export"], tmp_path / "beam", scene, zoom=18, engine="beam"))
    same_outputs(tmp_path / "clean", tmp_path / "beam")
    run = json.loads((tmp_path / "beam" / "predict_run.json").read_text())
    assert run["tiles"] == clean.tiles == 32 and run["scored"] == 32


def test_every_row_format_carries_each_tile_s_coverage(tiny_model, tmp_path):
    """The 16-bit scene's 64-pixel nodata frame: edge tiles 3/4 covered, corners 9/16."""
    framed = scenes.sixteen_bit_scene(tmp_path / "framed.tif")
    formats = ("csv", "jsonl", "geojson", "parquet", "raster")
    out = tmp_path / "out"
    predict(_config(tiny_model["export"], out, framed, bands=(3, 2, 1), formats=formats))
    xs, ys = sorted({t.x for t in scenes.BLOCK}), sorted({t.y for t in scenes.BLOCK})
    edges = {t: (t.x in (xs[0], xs[-1])) + (t.y in (ys[0], ys[-1])) for t in scenes.BLOCK}
    want = {f"{t.x}/{t.y}": (1.0, 0.75, 0.5625)[e] for t, e in edges.items() if t != scenes.HOLE}
    csv_rows = predicted_rows(out)
    assert list(csv_rows[0])[7:10] == ["lon", "lat", "coverage"]
    assert {f"{r['x']}/{r['y']}": float(r["coverage"]) for r in csv_rows} == want
    lines = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert {f"{r['x']}/{r['y']}": r["coverage"] for r in lines} == want
    features = json.loads((out / "predictions.geojson").read_text())["features"]
    assert {
        f"{f['properties']['x']}/{f['properties']['y']}": f["properties"]["coverage"]
        for f in features
    } == want
    import pyarrow.dataset

    table = pyarrow.dataset.dataset(out / "predictions.parquet").to_table().to_pylist()
    assert {f"{r['x']}/{r['y']}": r["coverage"] for r in table} == want
    # the score raster and sites work as on any other input
    import rasterio

    with rasterio.open(out / "predictions.tif") as raster:
        assert (raster.read(1) > 0).sum() == len(want)  # a pixel per scored tile
    from satx.config import SitesConfig
    from satx.sites.run import find_sites

    sites = find_sites(SitesConfig(predictions=str(out), output=str(tmp_path / "s"), min_score=0))
    assert sites.tiles_scored == sites.hits == len(want) and sites.sites >= 1
