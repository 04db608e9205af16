"""predict --mask: only the area's tiles near built-up features are scored; the run records
the mask, a resumed run with another mask is refused, --dry_run counts both."""

from __future__ import annotations

import json

import mercantile
import pytest
import shapely

from satx.errors import OutputExistsError
from satx.predict.run import dry_run, predict
from tests.support.helpers import cli, one_error_line
from tests.support.predict import (
    BBOX,
    bbox_tiles,
    predict_config,
    predicted_rows,
    sample_tiles_folder,
)

pytest.importorskip("pyogrio", reason="masks need the satx[geo] extra")


def _mask(path, points):
    features = [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": p}}
        for p in points
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return str(path)


@pytest.fixture
def area(tiny_model, sample_records, tmp_path):
    root = tmp_path / "xyz"
    tiles, missing, corrupt = bbox_tiles(root, sample_tiles_folder(sample_records))
    corner = mercantile.bounds(tiles[0])  # a building in the area's first tile
    house = [(corner.west + corner.east) / 2, (corner.south + corner.north) / 2]
    return {"root": root, "tiles": tiles, "house": house, "model": tiny_model["export"]}


def _cli_area(area, *extra):
    """`satx.predict` over the area from the command line, with more flags."""
    bbox = ",".join(map(str, BBOX))
    return (
        "satx.predict",
        f"--model={area['model']}",
        f"--bbox={bbox}",
        "--zoom=18",
        f"--tiles={area['root']}",
        *extra,
    )


def _config(area, out, mask, **kw):
    return predict_config(
        area["model"], out, bbox=BBOX, zoom=18, tiles=str(area["root"]), mask=mask, **kw
    )


def test_only_tiles_near_the_mask_are_scored_and_the_run_records_the_mask(area, tmp_path):
    mask = _mask(tmp_path / "houses.geojson", [area["house"]])
    run = predict(_config(area, tmp_path / "out", mask, mask_buffer_m=10))
    assert run.tiles == 1 and run.input["area_tiles"] == len(area["tiles"])
    assert run.input["mask_sha256"] and run.input["mask_buffer_m"] == 10
    [row] = predicted_rows(tmp_path / "out")
    first = area["tiles"][0]
    assert (int(row["x"]), int(row["y"])) == (first.x, first.y)
    wide = predict(_config(area, tmp_path / "wide", mask, mask_buffer_m=150))
    assert 1 < wide.tiles < len(area["tiles"])
    # the mask's tiles are kept in the output, named by the mask's content and settings
    assert len(list((tmp_path / "wide" / "_mask").glob("*.npy"))) == 1
    # another mask into the same output is refused, and says so
    other = _mask(tmp_path / "other.geojson", [[area["house"][0] + 0.001, area["house"][1]]])
    with pytest.raises(OutputExistsError, match="a different --mask"):
        predict(_config(area, tmp_path / "wide", other, mask_buffer_m=150))


def test_dry_run_counts_the_area_and_what_the_mask_keeps(area, tmp_path):
    mask = _mask(tmp_path / "houses.geojson", [area["house"]])
    d = dry_run(_config(area, tmp_path / "dry", mask, mask_buffer_m=150, dry_run=True))
    wide = predict(_config(area, tmp_path / "wide", mask, mask_buffer_m=150))
    assert d.tiles == wide.tiles and d.input["area_tiles"] == len(area["tiles"])
    assert not (tmp_path / "dry").exists()  # a dry run writes nothing


def test_a_mask_with_nothing_in_the_area_scores_nothing_and_says_so(area, tmp_path):
    mask = _mask(tmp_path / "far.geojson", [[10.0, 50.0]])
    out = tmp_path / "out"
    proc = cli(*_cli_area(area, f"--mask={mask}", f"--output={out}"), check=True)
    assert "no feature within 150 m of the area: nothing to score" in proc.stderr
    assert proc.stdout.startswith("0 tiles: 0 scored")
    assert predicted_rows(out) == []


@pytest.mark.slow
def test_kill_9_and_resume_with_the_mask_scores_each_kept_tile_once(area, tmp_path):
    houses = [area["house"], [area["house"][0] + 0.0015, area["house"][1] + 0.0015]]
    mask = _mask(tmp_path / "houses.geojson", houses)
    reference = predict(_config(area, tmp_path / "ref", mask, mask_buffer_m=100, chunk_size=2))
    args = _cli_area(
        area,
        f"--mask={mask}",
        "--mask_buffer_m=100",
        "--chunk_size=2",
        f"--output={tmp_path / 'out'}",
    )
    killed = cli(*args, env={"SATX_FAILPOINTS": "predict.chunk_done:2"})
    assert killed.returncode == -9
    again = cli(*args, check=True)
    assert "resuming: 2 of" in again.stderr
    got = sorted((r["x"], r["y"], r["score_school"]) for r in predicted_rows(tmp_path / "out"))
    want = sorted((r["x"], r["y"], r["score_school"]) for r in predicted_rows(tmp_path / "ref"))
    assert got == want and len(got) == reference.kept


def test_a_mask_needs_an_area_and_bad_masks_are_one_line(area, tmp_path):
    (tmp_path / "m.kml").write_text("<kml/>")
    (tmp_path / "empty.geojson").write_text('{"type": "FeatureCollection", "features": []}')
    cases = {
        f"--mask={tmp_path / 'm.kml'}": "unknown format .kml",
        f"--mask={tmp_path / 'none.geojson'}": "no such file",
        f"--mask={tmp_path / 'empty.geojson'}": "holds no feature",
    }
    for arg, message in cases.items():
        line = one_error_line(cli(*_cli_area(area, arg, f"--output={tmp_path / 'o'}")))
        assert message in line, line
    folder = cli(
        "satx.predict",
        f"--model={area['model']}",
        f"--input={area['root']}",
        f"--mask={tmp_path / 'm.kml'}",
        f"--output={tmp_path / 'p'}",
    )
    assert folder.returncode == 2 and "--mask keeps tiles of an area" in folder.stderr
    assert shapely  # the module's geometry library is importable beside the mask


def test_the_beam_engine_scores_the_same_masked_tiles(area, tmp_path):
    pytest.importorskip("apache_beam", reason="the Beam engine needs the satx[beam] extra")
    from satx.predict.beam import predict_beam

    mask = _mask(tmp_path / "houses.geojson", [area["house"]])
    local = predict(_config(area, tmp_path / "local", mask, mask_buffer_m=150))
    beam = predict_beam(_config(area, tmp_path / "beam", mask, mask_buffer_m=150, engine="beam"))
    assert (beam.tiles, beam.scored, beam.kept) == (local.tiles, local.scored, local.kept)
    assert predicted_rows(tmp_path / "beam") == predicted_rows(tmp_path / "local")
    assert beam.input == local.input
