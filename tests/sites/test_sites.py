"""satx.sites end to end on predictions written by predict's own output code."""

from __future__ import annotations

import csv
import json

import mercantile
import numpy as np
import pytest

from satx.config import SitesConfig
from satx.errors import InputError, OutputExistsError
from satx.sites.result import SitesRun
from satx.sites.run import find_sites
from tests.support.helpers import cli, one_error_line
from tests.support.sites import BLOBS, site_tile


def _config(site_set, out, **settings):
    return SitesConfig(predictions=site_set["predictions"], output=str(out), **settings)


def _rows(path):
    return list(csv.DictReader(path.open()))


def test_sites_from_hits_ranked_with_known_and_new(site_set, tmp_path):
    out = tmp_path / "sites"
    run = find_sites(_config(site_set, out, known=site_set["known"]))
    assert (run.hits, run.sites, run.tiles_scored, run.biggest_site) == (8, 3, 900, 4)
    assert run.sites_per_million == pytest.approx(3 / 900 * 1e6, abs=1e-3)
    sites = _rows(out / "sites.csv")
    assert [int(s["tiles"]) for s in sites] == [4, 3, 1]  # ranked by best score
    assert [s["known"] for s in sites] == ["true", "false", "true"]
    assert float(sites[0]["known_distance_m"]) < 110 and sites[0]["nearest_known"] == "k0"
    campus_best = site_tile(3, 3)
    assert sites[0]["site_id"] == mercantile.quadkey(campus_best)
    assert run.known.recovered == 2 and run.known.recovered_share == pytest.approx(2 / 3)
    assert (run.known.known_sites, run.known.new_sites) == (2, 1)
    # every hit tile is in exactly one site; no other tile is
    members = _rows(out / "site_tiles.csv")
    hit_tiles = {(int(m["x"]), int(m["y"])) for m in members}
    expected = {(site_tile(*c).x, site_tile(*c).y) for cells in BLOBS.values() for c in cells}
    assert len(members) == len(hit_tiles) == 8 and hit_tiles == expected
    assert {m["site_id"] for m in members} == {s["site_id"] for s in sites}
    # GeoJSON points and polygons carry the same rows
    points = json.loads((out / "sites.geojson").read_text())["features"]
    shapes = json.loads((out / "sites_polygons.geojson").read_text())["features"]
    assert [f["properties"]["site_id"] for f in points] == [s["site_id"] for s in sites]
    assert [f["geometry"]["type"] for f in shapes] == ["Polygon"] * 3
    assert SitesRun.load(str(out)) == run
    assert run.curve[0].threshold == 0.5 and run.curve[-1].threshold == 0.99
    at_090 = next(p for p in run.curve if p.threshold == 0.9)
    assert (at_090.sites, at_090.recovered, at_090.new_sites) == (1, 1, 0)  # the campus only
    assert "**3 sites**" in (out / "report.md").read_text()
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"


def test_a_rerun_writes_the_same_files_and_other_settings_are_refused(site_set, tmp_path):
    out = tmp_path / "sites"
    config = _config(site_set, out, known=site_set["known"])
    find_sites(config)
    names = ("sites.csv", "sites.geojson", "sites_polygons.geojson", "site_tiles.csv", "report.md")
    first = {n: (out / n).read_bytes() for n in names}
    find_sites(config)
    assert {n: (out / n).read_bytes() for n in names} == first
    other = config.with_overrides({"connectivity": 4})
    with pytest.raises(OutputExistsError, match="holds other sites"):
        find_sites(other)
    run = find_sites(other.with_overrides({"overwrite": True}))
    assert run.connectivity == 4 and run.sites == 3  # every blob is joined by its edges


def test_threshold_from_a_report_and_a_budget_of_sites(site_set, tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"threshold": 0.9, "class_names": ["not_school", "school"]}))
    run = find_sites(_config(site_set, tmp_path / "a", threshold_from=str(report)))
    assert (run.threshold, run.sites, run.hits) == (0.9, 1, 4)
    assert str(report) in run.threshold_source
    budget = find_sites(_config(site_set, tmp_path / "b", max_sites=2))
    assert budget.sites == 2 and budget.threshold == pytest.approx(0.85)  # above the single
    assert "--max_sites" in budget.threshold_source
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"threshold": 0.9, "class_names": ["a", "b"]}))
    with pytest.raises(InputError, match="not a binary evaluation"):
        find_sites(_config(site_set, tmp_path / "c", threshold_from=str(wrong)))


def test_gaps_join_sites_and_the_polygon_has_parts(site_set, tmp_path):
    run = find_sites(_config(site_set, tmp_path / "g", max_gap=4, polygons=True))
    assert run.sites == 2  # the single is 5 tiles from the campus (joined), the L 15 (not)
    shapes = json.loads((tmp_path / "g" / "sites_polygons.geojson").read_text())["features"]
    assert sorted(f["geometry"]["type"] for f in shapes) == ["MultiPolygon", "Polygon"]


def _no_locations(tmp_path):
    from satx.io import storage
    from satx.io.run_record import json_bytes
    from satx.predict.outputs import Labeller, PredictionOutput, format_rows
    from satx.predict.result import RUN_NAME, PredictRun
    from satx.tiles.refs import TileRef

    classes = ("not_school", "school")
    scores = np.array([0.9, 0.2])
    probs = np.stack([1 - scores, scores], axis=1)
    labels, _ = Labeller.make(list(classes), "", 0.5).label_score(probs)
    folder = tmp_path / "paths"
    out = PredictionOutput(str(folder), ("csv",), classes)
    out.start({"test": "paths"}, overwrite=False)
    items = [TileRef("a/tile.jpg", None), TileRef("b/tile.jpg", None)]
    out.write_chunk(
        0, format_rows(items, labels, scores, probs, classes, ("csv",)), "", {"tiles": 2}
    )
    run = PredictRun(tiles=2, files=out.merge(1, 2), class_names=classes, positive_class="school")
    storage.open_store(str(folder)).write_bytes(RUN_NAME, json_bytes(run))
    return folder


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(site_set, tmp_path):
    crs = tmp_path / "known_3857.geojson"
    crs.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "crs": {"type": "name", "properties": {"name": "EPSG:3857"}},
                "features": [],
            }
        )
    )
    (tmp_path / "known.kml").write_text("<kml/>")
    cases = {
        f"--predictions={_no_locations(tmp_path)}": "no z/x/y",
        f"--known={tmp_path / 'known.kml'}": "unknown format .kml",
        f"--known={crs}": "CRS EPSG:3857",
    }
    for arg, message in cases.items():
        args = [f"--predictions={site_set['predictions']}", f"--output={tmp_path / 'out'}", arg]
        line = one_error_line(cli("satx.sites", *args))
        assert line.startswith("error: ") and message in line, line


def test_a_sites_folder_finds_its_predictions_from_itself(site_set, tmp_path, monkeypatch):
    """Made from a project root with relative paths, then moved with its predictions and read
    from elsewhere: the recorded path is relative to the sites folder."""
    import shutil

    from satx.predict.result import PredictRun

    project = tmp_path / "project"
    shutil.copytree(site_set["predictions"], project / "build" / "predict")
    monkeypatch.chdir(project)
    run = find_sites(SitesConfig(predictions="build/predict", output="build/sites"))
    assert run.predictions == "../predict"
    shutil.move(project / "build", tmp_path / "moved")
    monkeypatch.chdir(tmp_path / "moved" / "predict")
    again = SitesRun.load(str(tmp_path / "moved" / "sites"))
    assert PredictRun.load(again.predictions).tiles == PredictRun.load(".").tiles
    # a gs:// or absolute input stays as given
    absolute = find_sites(_config(site_set, tmp_path / "abs"))
    assert absolute.predictions == site_set["predictions"]
