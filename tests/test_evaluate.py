"""`satx.evaluate` on a tiny trained model: export and .keras give the Keras model's numbers."""

import csv
import json

import numpy as np
import pytest

from satx import data, models, scores
from satx.config import DataConfig
from satx.evaluate import evaluate
from satx.export import export_saved_model
from satx.models import ModelConfig
from satx.train import compile_phase
from satx.train_config import TrainConfig
from tests.test_train import sample_records  # noqa: F401 - module fixture


@pytest.fixture(scope="module")
def tiny_model(sample_records, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("evaluate")
    config = TrainConfig(
        records=sample_records,
        workdir=str(root),
        model=ModelConfig(backbone="tiny", weights="none", dense_units=8),
    )
    info = data.load_records(sample_records)
    model = models.build_classifier(config.model, info.num_classes)
    compile_phase(model, config, 1, info.num_classes)
    train = data.make_train_dataset(info, "train", DataConfig(records=sample_records, batch_size=8))
    model.fit(train, steps_per_epoch=4, epochs=1, verbose=0)
    model.save(root / "model.keras")
    export = export_saved_model(model, root / "export", list(info.class_names))
    eval_ds = data.make_eval_dataset(info, "test", DataConfig(records=sample_records))
    labels = np.concatenate([b["label"].numpy() for b in eval_ds])
    probs = np.concatenate([model(b["image"], training=False).numpy() for b in eval_ds])
    return {"root": root, "export": export, "labels": labels, "probs": probs, "info": info}


def test_export_and_keras_file_give_the_models_metrics(tiny_model, sample_records, tmp_path):  # noqa: F811
    info = tiny_model["info"]
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
            scores_out=str(out / "scores.csv"),
        )
        on_disk = json.loads((out / "report.json").read_text())
        for key in ("accuracy", "roc_auc", "pr_auc", "threshold"):
            assert on_disk[key] == pytest.approx(expected[key], abs=1e-5), (name, key)
        assert on_disk["confusion_matrix"] == expected["confusion_matrix"]
        assert report["count"] == info.count("test")
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


def test_cli_reports_and_refuses_a_model_of_other_classes(tiny_model, sample_records, tmp_path):  # noqa: F811
    import shutil

    from tests.test_cli import cli

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
