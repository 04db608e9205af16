"""The mappers' loop as people run it, command after command: tiles -> records -> search ->
model -> predictions -> review -> the next records; and the benchmarks' JSON."""

from __future__ import annotations

import json

import mercantile
import pytest

from tests.support.helpers import (
    TINY,
    cli,
    read_all,
    records_cmd,
)
from tests.support.review import ORIGIN, call_api, start_review_process, write_prediction_set


@pytest.mark.slow
def test_sample_tiles_then_records_then_inspect(tmp_path):
    tiles, out = tmp_path / "tiles", tmp_path / "records"
    cli("tools.make_sample_tiles", f"--output={tiles}", "--count=40", "--size=32", check=True)
    made = cli(*records_cmd(tiles, out), check=True)
    assert "train" in made.stdout and "manifest.json" in made.stdout
    assert "make_records: done, 40 tiles" in made.stderr
    again = cli(*records_cmd(tiles, out))
    assert again.returncode == 2 and "--overwrite" in again.stderr
    shown = cli("tools.inspect_records", str(out), "--examples=2", check=True)
    assert "verified 12 shards: 12 ok, 0 bad" in shown.stdout
    assert shown.stdout.count("quadkey") == 2
    shard = sorted(out.glob("train-*.tfrecord"))[0]
    shard.write_bytes(shard.read_bytes()[:-10])
    broken = cli("tools.inspect_records", str(out), "--examples=0")
    assert broken.returncode == 1 and f"BAD  {shard.name}" in broken.stdout


@pytest.mark.slow
def test_tune_cli_then_summary_then_train_with_best_hparams(sample_records, tmp_path):
    import csv
    import json

    common = (
        f"--records={sample_records}",
        "--weights=none",
        "--image_size=32",
        "--batch_size=8",
        "--steps_per_epoch=2",
        "--mixed_precision=off",
    )
    out = cli(
        "satx.tune",
        f"--workdir={tmp_path / 'tune'}",
        "--backbone=tiny",
        "--max_epochs=2",
        "--factor=2",
        "--profile_batches=1,2",  # optional profiler traces, per trial as in training
        *common,
        env=TINY,
        check=True,
    )
    assert "best hyperparameters:" in out.stdout
    traces = list((tmp_path / "tune" / "logs").glob("*/execution0/**/*.xplane.pb"))
    assert traces and b"Iterator::" in traces[0].read_bytes()
    rows = list(csv.DictReader((tmp_path / "tune" / "leaderboard.csv").read_text().splitlines()))
    board = json.loads((tmp_path / "tune" / "leaderboard.json").read_text())
    assert len(rows) == len(board) >= 3 and rows[0]["trial"] == board[0]["trial"]
    best = json.loads((tmp_path / "tune" / "best_hparams.json").read_text())
    top = board[0]["hyperparameters"]
    assert best["backbone"] == "tiny"
    # from scratch every layer trains: a freeze cut-off would mean nothing, so none is searched
    assert "freeze_cutoff" not in best and not any(k.startswith("freeze_cutoff") for k in top)
    assert all(best[k] == top[k] for k in ("dense_units", "dropout", "optimizer", "lr_phase1"))
    summary = cli(
        "satx.tune",
        f"--workdir={tmp_path / 'tune'}",
        "--backbone=tiny",
        "--max_epochs=2",
        "--factor=2",
        "--summary",
        *common,
        env=TINY,
        check=True,
    )
    assert "Trial" not in summary.stdout and board[0]["trial"] in summary.stdout
    # --summary rewrites best_hparams.json (with tied scores it may name another trial)
    best = json.loads((tmp_path / "tune" / "best_hparams.json").read_text())
    cli(
        "satx.train",
        f"--workdir={tmp_path / 'best'}",
        f"--hparams={tmp_path / 'tune' / 'best_hparams.json'}",
        "--n_epo_phase2=0",
        "--export=false",
        *common,
        env=TINY,
        check=True,
    )
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["model"]["dense_units"] == best["dense_units"]
    assert config["lr_phase1"] == pytest.approx(best["lr_phase1"])
    assert config["freeze_cutoff"] == ""  # the default: no cut-off was searched


@pytest.mark.slow
def test_decisions_become_the_next_training_set(tiny_model, tmp_path):
    """predict (tiny model) -> review over the API -> export -> make_records -> records."""
    from satx.config import PredictConfig, SourceConfig
    from satx.predict.run import predict

    pset = write_prediction_set(tmp_path, side=4)
    w, s, e, n = mercantile.bounds(ORIGIN.x + 1, ORIGIN.y + 4, 18)[:4]
    e, n = mercantile.bounds(ORIGIN.x + 4, ORIGIN.y + 1, 18)[2:]
    output = tmp_path / "predicted"
    predict(
        PredictConfig.make(
            model=str(tiny_model["export"]),
            bbox=(w + 1e-7, s + 1e-7, e - 1e-7, n - 1e-7),
            zoom=18,
            source=SourceConfig(tiles=pset["tiles"]),
            output=str(output),
            formats=("csv",),
        )
    )
    pset = {**pset, "predictions": str(output)}
    db = tmp_path / "review.sqlite"
    proc, url = start_review_process(pset, db, "--order=random")
    made = {}
    try:
        for k in range(12):
            _, tile = call_api(url, "/api/next", {"reviewer": "ana"})
            decision = ("positive", "negative", "skip")[k % 3]
            call_api(
                url, "/api/decision", {"id": tile["id"], "decision": decision, "reviewer": "ana"}
            )
            made[mercantile.Tile(tile["x"], tile["y"], tile["z"])] = decision
    finally:
        proc.terminate()
        proc.wait()
    assert len(made) == 12 and set(made) <= set(pset["inner"])

    labels = tmp_path / "labels.csv"
    done = cli("satx.review", f"--db={db}", f"--export={labels}", check=True)
    assert done.stdout.splitlines()[0] == f"8 labels (4 not_school, 4 school) -> {labels}"
    records = tmp_path / "records"
    cli(
        "tools.make_records",
        f"--input={labels}",
        f"--tiles={pset['tiles']}",
        f"--output={records}",
        "--image_size=32",
        "--min_shards=1",
        check=True,
    )
    manifest, examples = read_all(records)
    names = {"positive": "school", "negative": "not_school"}
    want = {t: names[d] for t, d in made.items() if d != "skip"}
    got = {ex.tile: ex.label_text for _, ex in examples}
    assert got == want
    assert manifest["inputs"]["layout"] == "locations" and manifest["quarantine"]["count"] == 0
    first = next(iter(want))
    image = tmp_path / "tiles" / "18" / str(first.x) / f"{first.y}.jpg"
    stored = {ex.tile: ex.encoded for _, ex in examples}
    assert stored[first] == image.read_bytes()  # the tile itself, byte for byte


def test_cli_all_writes_one_json_object_per_mode(tmp_path):

    out = tmp_path / "bench.json"
    proc = cli(
        "satx.bench",
        "all",
        "--num_tiles=64",
        "--image_size=32",
        "--backbone=tiny",
        "--steps=1",
        "--train_seconds=0.1",
        "--repeats=1",
        "--predict_tiles=16",
        "--fetch_thread_counts=8",
        f"--json_out={out}",
        env={"SATX_BACKBONE_MODULES": "tests.support.tiny_backbone"},
        check=True,
    )
    result = json.loads(out.read_text())
    assert {"input", "records", "train", "predict", "fetch", "settings"} <= set(result)
    assert "satx streaming" in proc.stdout
    bad = cli("satx.bench", "nonsense")
    assert bad.returncode == 2 and "usage" in bad.stderr


@pytest.mark.slow
@pytest.mark.realdata
def test_real_tiles_to_sites_reviewed_in_chromium_to_the_next_records(
    tmp_path, serve_review, browser
):
    """The real z17 tiles on a loopback tile server -> predict over their bbox -> sites (one
    known) -> the review of sites in Chromium (y, ?, n, undo, n) -> export -> make_records."""
    import csv
    import shutil

    from satx import geo
    from satx.bench.tileserver import TileServer
    from satx.config import ReviewConfig, SourceConfig
    from tests.support.browser import centre_loaded, needs_browser, wait_idle
    from tests.support.helpers import shared_data
    from tests.support.sites import colour_means, export_colour_model, pick_hits

    if needs_browser.args[0]:
        pytest.skip(needs_browser.kwargs["reason"])
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    real = {geo.parse_tile_path(p.name): p for p in shared_data("xyz-tiles").glob("*-*-17.jpg")}
    folder = tmp_path / "xyz"
    for t, p in real.items():
        (folder / "17" / str(t.x)).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, folder / "17" / str(t.x) / f"{t.y}.jpg")
    # a model with fixed weights whose hits are three real tiles no two of which touch
    w, cut, hits = pick_hits(colour_means(real))
    export = export_colour_model(tmp_path, w, cut)
    west = min(mercantile.bounds(t).west for t in real) + 1e-6
    east = max(mercantile.bounds(t).east for t in real) - 1e-6
    south = min(mercantile.bounds(t).south for t in real) + 1e-6
    north = max(mercantile.bounds(t).north for t in real) - 1e-6
    known = tmp_path / "known.geojson"
    g = geo.geolocate(hits[0])
    point = {"type": "Point", "coordinates": [g.lon, g.lat]}
    feature = {"type": "Feature", "geometry": point, "properties": {"id": "escuela"}}
    known.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}))

    with TileServer(folder) as server:
        cli(
            "satx.predict",
            f"--model={export}",
            f"--bbox={west},{south},{east},{north}",
            "--zoom=17",
            f"--tiles={server.template}",
            f"--output={tmp_path / 'pred'}",
            "--formats=csv",
            check=True,
        )
        made = cli(
            "satx.sites",
            f"--predictions={tmp_path / 'pred'}",
            f"--output={tmp_path / 'sites'}",
            "--connectivity=4",
            f"--known={known}",
            check=True,
        )
        assert f"{len(hits)} hit tiles (threshold 0.5) -> 3 sites" in made.stdout
        assert "1 of 1 recovered" in made.stdout and "1 sites known, 2 new" in made.stdout
        review = serve_review(
            ReviewConfig(
                sites=str(tmp_path / "sites"),
                source=SourceConfig(tiles=server.template),
                db=str(tmp_path / "review.sqlite"),
                port=0,
                reviewer="mapper",
            )
        )
        browser.get(f"{review.url}/")
        wait_idle(browser)
        assert "sites" in browser.find_element(By.ID, "task").text
        body = browser.find_element(By.TAG_NAME, "body")
        shown = []

        def press(key):
            WebDriverWait(browser, 30).until(centre_loaded)
            site = browser.execute_script("return state.tile.site")
            assert browser.find_element(By.ID, "site").text.startswith(site["site_id"])
            shown.append((site["site_id"], site["known"]))
            body.send_keys(key)
            wait_idle(browser)

        for key in ("y", "?", "n"):
            press(key)
        assert browser.find_element(By.ID, "done").is_displayed()  # three sites, three answers
        body.send_keys("u")  # the last answer taken back: its site is shown again
        wait_idle(browser)
        press("n")
        assert shown[3] == shown[2]
        assert sorted(k for _, k in shown[:3]) == [False, False, True]
        decisions = {r["site_id"]: r["decision"] for r in review.app.store.live_decisions()}
        assert list(decisions.values()) == ["positive", "unrecognized", "negative"]
        assert "1 unrecognized" in browser.find_element(By.ID, "reviewed").text
        labels = tmp_path / "labels.csv"
        out = cli("satx.review", f"--db={tmp_path / 'review.sqlite'}", f"--export={labels}")
        assert "2 labels (1 not_school, 1 school)" in out.stdout, out.stderr
        assert "1 unrecognized" in out.stdout
        rows = list(csv.DictReader(labels.open()))
        assert [r["site_id"] for r in rows] == [
            s for s, d in decisions.items() if d != "unrecognized"
        ]
        records = tmp_path / "records-2"
        cli(
            "tools.make_records",
            f"--input={labels}",
            f"--tiles={server.template}",
            f"--output={records}",
            "--image_size=256",
            "--min_shards=1",
            check=True,
        )
    manifest = json.loads((records / "manifest.json").read_text())
    assert manifest["records"] == 2 and sorted(manifest["class_names"]) == ["not_school", "school"]
