"""`satx.evaluate` on a tiny trained model: export and .keras give the Keras model's numbers."""

import csv
import json

import numpy as np
import pytest

from satx.config import EvaluateConfig
from satx.evaluate import scores
from satx.evaluate.report import evaluate as run_evaluate
from tests.support.helpers import cli


def evaluate(model, records, output, **kw):
    return run_evaluate(EvaluateConfig(model=model, records=records, output=output, **kw))


def test_export_and_keras_file_give_the_models_metrics(tiny_model, sample_records, tmp_path):
    info = tiny_model["records"].manifest
    expected = scores.report(
        tiny_model["labels"], tiny_model["probs"], list(info.class_names), "youden"
    )
    for name, model in (
        ("export", tiny_model["root"] / "export"),  # newest version inside
        ("keras", tiny_model["root"] / "model.keras"),
    ):
        out = tmp_path / name
        report = evaluate(
            str(model),
            sample_records,
            str(out),
            threshold="youden",
            threshold_split="",  # chosen on the test split itself, as `expected` is
            scores_out=str(out / "scores.csv"),
        )
        on_disk = json.loads((out / "report.json").read_text())
        for key in ("accuracy", "roc_auc", "pr_auc", "threshold"):
            assert on_disk[key] == pytest.approx(expected[key], abs=1e-5), (name, key)
        assert on_disk["confusion_matrix"] == expected["confusion_matrix"]
        assert report.count == info.count("test")
        assert "ROC AUC" in (out / "report.md").read_text()
        rows = list(csv.DictReader((out / "scores.csv").open()))
        assert len(rows) == info.count("test")
        header = ["source_id", "z", "x", "y", "label", "score_not_school", "score_school"]
        assert list(rows[0]) == header
        recomputed = scores.roc_auc(
            np.array([r["label"] == "school" for r in rows], dtype=int),
            np.array([float(r["score_school"]) for r in rows]),
        )
        assert recomputed == pytest.approx(expected["roc_auc"], abs=1e-4)  # from the CSV alone
        assert all(int(r["z"]) == 18 for r in rows)  # sample tiles carry zoom-18 addresses


def test_cli_reports_and_refuses_a_model_of_other_classes(tiny_model, sample_records, tmp_path):
    import shutil

    args = ("satx.evaluate", f"--records={sample_records}", f"--output={tmp_path / 'r'}")
    ok = cli(*args, f"--model={tiny_model['export']}", "--threshold=topleft", check=True)
    assert "tiles: accuracy" in ok.stdout and (tmp_path / "r" / "report.json").exists()
    other = tmp_path / "other"
    shutil.copytree(tiny_model["export"], other)
    (other / "class_names.json").write_text(json.dumps(["a", "b"]))
    refused = cli(*args, f"--model={other}")
    assert refused.returncode == 2 and "trained on classes ['a', 'b']" in refused.stderr
    missing = cli("satx.evaluate", f"--records={sample_records}")
    assert missing.returncode == 2 and "are required" in missing.stderr


def test_plots_and_the_error_geojson(tiny_model, sample_records, tmp_path):
    import mercantile

    from satx.geo import parse_tile_path

    out = tmp_path / "r"
    report = evaluate(str(tiny_model["export"]), sample_records, str(out), threshold="0.5")
    for name in ("confusion", "roc", "pr", "scores", "reliability"):
        png = (out / f"{name}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000, name
        assert f"![{name}]({name}.png)" in (out / "report.md").read_text()
    features = json.loads((out / "errors.geojson").read_text())["features"]
    labels, probs = tiny_model["labels"], tiny_model["probs"]
    wrong = int(np.sum((probs[:, 1] >= 0.5).astype(int) != labels))
    assert features and len(features) == wrong  # every sample tile has an address
    regions = report.errors_by_parent_tile
    assert sum(sum(v.values()) for v in regions.values()) == wrong
    for f in features:
        p = f["properties"]
        tile = mercantile.Tile(p["x"], p["y"], p["z"])
        assert parse_tile_path(p["source_id"]) == tile
        w, s, e, n = mercantile.bounds(tile)
        ring = np.array(f["geometry"]["coordinates"][0])
        assert ring == pytest.approx(np.array([[w, s], [e, s], [e, n], [w, n], [w, s]]), abs=1e-6)
        assert p["quadkey"] == mercantile.quadkey(tile)
        assert p["error"] == ("false_positive" if p["label"] == "not_school" else "false_negative")
        parent = mercantile.parent(tile, zoom=12)
        assert f"12/{parent.x}/{parent.y}" in regions


def test_multiclass_plots(tmp_path):
    from satx.evaluate.report import Scored, _plots

    rng = np.random.default_rng(2)
    labels = rng.integers(0, 3, 40)
    probs = rng.dirichlet(np.ones(3), 40)
    scored = Scored(
        labels,
        probs,
        [f"t{i}" for i in range(40)],
        -np.ones((40, 3), int),
        np.zeros((40, 4)),
        [""] * 40,
    )
    names = ["a", "b", "c"]
    report = scores.report(labels, probs, names)
    paths = _plots(scored, report, names, tmp_path)
    assert [p.name for p in paths] == ["confusion.png", "scores.png", "reliability.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in paths)


def test_a_calibrated_export_reports_its_calibration(tiny_model, sample_records, tmp_path):
    import keras

    from satx.artifact.calibration import Calibration
    from satx.artifact.saved_model import write_saved_model

    model = keras.saving.load_model(tiny_model["root"] / "model.keras", compile=False)
    names = list(tiny_model["records"].manifest.class_names)
    fitted = Calibration(temperature=2.0, bias=(0.0, -0.7))
    export = write_saved_model(model, tmp_path / "export", names, calibration=fitted)
    out = tmp_path / "eval"
    report = evaluate(str(export), sample_records, str(out), scores_out=str(out / "scores.csv"))
    rows = list(csv.DictReader((out / "scores.csv").open()))
    got = np.array([[float(r[f"score_{c}"]) for c in names] for r in rows])
    np.testing.assert_allclose(got, fitted.apply(tiny_model["probs"]), atol=1e-5)
    c = report.calibration
    assert (c["temperature"], c["bias"]) == (2.0, [0.0, -0.7])
    assert c["ece_calibrated"] == report.expected_calibration_error
    raw = scores.reliability(tiny_model["labels"], tiny_model["probs"][:, 1]).ece
    assert c["ece_uncalibrated"] == pytest.approx(raw, abs=1e-4)
    assert "reliability_uncalibrated.png" in report.plots
    assert "temperature 2.000" in (out / "report.md").read_text()


def test_threshold_chosen_on_validation_applies_to_test_and_to_predict(
    tiny_model, sample_records, tmp_path
):
    from satx.artifact.scorer import Scorer
    from satx.config import PredictConfig
    from satx.evaluate.report import score_split
    from satx.predict.run import predict

    out = tmp_path / "eval"
    report = evaluate(
        str(tiny_model["export"]), sample_records, str(out), threshold="budget@300000"
    )
    val = score_split(Scorer(tiny_model["export"]), tiny_model["records"], "val", 64)
    expected = scores.choose_threshold(val.labels, val.probs[:, 1], "budget@300000")
    assert report.threshold_chosen_on == "val" and report.threshold == expected
    assert report.at_threshold_chosen["hits_per_million"] <= 300000
    assert "chosen on the val split" in (out / "report.md").read_text()
    pred = tmp_path / "pred"
    config = PredictConfig.make(
        model=str(tiny_model["export"]),
        output=str(pred),
        input=sample_records,
        split="test",
        threshold_from=str(out / "report.json"),
    )
    predict(config)
    rows = list(csv.DictReader((pred / "predictions.csv").open()))
    # scores are written to 6 decimals: a tile within that of the threshold may go either way
    clear = [r for r in rows if abs(float(r["score"]) - expected) > 1e-6]
    assert rows and all((r["label"] == "school") == (float(r["score"]) >= expected) for r in clear)
