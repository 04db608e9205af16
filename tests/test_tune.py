"""Keras Tuner over the training core: search space, phases across promotions, a tiny search."""

import keras_tuner as kt
import pytest

from satx import models, tune
from satx.models import ModelConfig
from satx.train_config import TrainConfig
from tests.test_train import sample_records  # noqa: F401 - module fixture


def test_search_space_is_the_predecessors():
    hp = kt.HyperParameters()
    tune.define_hparams(hp, tune.SearchSpace(), ["mobilenetv2", "xception"])
    space = {p.name: p for p in hp.space}
    assert space["backbone"].values == ["mobilenetv2", "xception"]
    assert space["dense_units"].values == [128, 256, 512]
    assert space["dense_activation"].values == ["relu", "elu"]
    assert space["dropout"].values == [0.0, 0.1, 0.25, 0.5]
    assert space["optimizer"].values == ["adam", "rmsprop"]
    assert (space["lr_phase1"].min_value, space["lr_phase1"].max_value) == (1e-4, 1e-3)
    assert (space["lr_phase2"].min_value, space["lr_phase2"].max_value) == (1e-5, 1e-4)
    assert space["lr_phase1"].sampling == "log" and space["lr_phase2"].sampling == "log"
    assert space["n_epo_phase1"].values == [1, 2]
    for name in ("mobilenetv2", "xception"):  # per-backbone cut-offs, only when chosen
        cut = space[f"freeze_cutoff_{name}"]
        assert cut.conditions[0].values == [name]
        assert set(cut.values) == set(models.backbones.get_spec(name).cutoffs)


def _hypermodel(records, tmp_path, **kw):
    base = TrainConfig(
        records=records,
        workdir=str(tmp_path),
        batch_size=8,
        steps_per_epoch=2,
        mixed_precision="off",
        **kw,
        model=ModelConfig(backbone="tiny", weights="none", dense_units=16),
    )
    return tune.SatxHyperModel(base, tune.SearchSpace(n_epo_phase1=(2,)), ["tiny"])


def _backbone_trainable(model):
    return any(layer.trainable_weights for layer in models.backbone_layers(model))


def test_promotion_keeps_the_two_phase_schedule(sample_records, tmp_path):  # noqa: F811
    hm = _hypermodel(sample_records, tmp_path)
    hp = kt.HyperParameters()
    hm.config_for(hp)  # declares the space with default values
    model = hm.build(hp)
    assert not _backbone_trainable(model)  # phase 1 from the start
    hm.fit(hp, model, epochs=1, initial_epoch=0)
    assert hm.phase_log == [{"phase": 1, "first": 0, "end": 1}]
    hm.fit(hp, model, epochs=4, initial_epoch=1)  # crosses into phase 2 at epoch 2
    assert hm.phase_log[1:] == [
        {"phase": 1, "first": 1, "end": 2},
        {"phase": 2, "first": 2, "end": 4},
    ]
    assert _backbone_trainable(model)
    promoted = hm.build(hp)  # Hyperband: rebuilt, weights reloaded, continues at epoch 4
    promoted.set_weights(model.get_weights())
    hm.fit(hp, promoted, epochs=6, initial_epoch=4)
    assert hm.phase_log[3:] == [{"phase": 2, "first": 4, "end": 6}]  # no phase 1 again


@pytest.mark.slow
def test_tiny_hyperband_search_writes_leaderboard_and_best_hparams(sample_records, tmp_path):  # noqa: F811
    hm = _hypermodel(sample_records, tmp_path)
    tuner = tune.make_tuner(hm, str(tmp_path / "tuner"), "t", max_epochs=3, factor=3, seed=1)
    tuner.search(verbose=0)
    rows = tune.leaderboard(tuner)
    assert len(rows) >= 3 and all(r["backbone"] == "tiny" for r in rows)
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and all(s is not None for s in scores)
    promoted = [e for e in hm.phase_log if e["first"] > 0]
    assert promoted and all(e["phase"] == 2 or e["first"] < 2 for e in hm.phase_log)
    best = tune.best_hparams(tuner, hm)
    assert best["backbone"] == "tiny" and best["freeze_cutoff"] == "top"
    config = hm.base.with_overrides(best)
    assert config.model.dense_units in (128, 256, 512) and 1e-4 <= config.lr_phase1 <= 1e-3


@pytest.mark.slow
def test_tune_cli_then_summary_then_train_with_best_hparams(sample_records, tmp_path):  # noqa: F811
    import csv
    import json

    from tests.test_cli import cli

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
        "--backbone=mobilenetv2",
        "--max_epochs=2",
        "--factor=2",
        *common,
        check=True,
    )
    assert "best hyperparameters:" in out.stdout
    rows = list(csv.DictReader((tmp_path / "tune" / "leaderboard.csv").read_text().splitlines()))
    board = json.loads((tmp_path / "tune" / "leaderboard.json").read_text())
    assert len(rows) == len(board) >= 3 and rows[0]["trial"] == board[0]["trial"]
    best = json.loads((tmp_path / "tune" / "best_hparams.json").read_text())
    top = board[0]["hyperparameters"]
    assert best["backbone"] == "mobilenetv2"
    assert best["freeze_cutoff"] == top["freeze_cutoff_mobilenetv2"]
    assert all(best[k] == top[k] for k in ("dense_units", "dropout", "optimizer", "lr_phase1"))
    summary = cli(
        "satx.tune",
        f"--workdir={tmp_path / 'tune'}",
        "--backbone=mobilenetv2",
        "--max_epochs=2",
        "--factor=2",
        "--summary",
        *common,
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
        check=True,
    )
    config = json.loads((tmp_path / "best" / "config.json").read_text())
    assert config["model"]["dense_units"] == best["dense_units"]
    assert config["lr_phase1"] == pytest.approx(best["lr_phase1"])
    assert config["freeze_cutoff"] == best["freeze_cutoff"]
