import pytest

from satx.errors import InputError
from satx.train_config import TrainConfig
from tests.test_cli import cli


def test_round_trip_and_flat_overrides():
    config = TrainConfig(records="r", workdir="w")
    assert TrainConfig.from_dict(config.to_dict()) == config
    tuned = config.with_overrides(
        {
            "dropout": 0.5,
            "lr_phase1": 1e-4,
            "zoom_max": 1.1,
            "backbone": "xception",
            "freeze_cutoff": 0.75,
            "class_weight": [2, 1],
        }
    )
    assert tuned.model.dropout == 0.5 and tuned.model.backbone == "xception"
    assert tuned.lr_phase1 == 1e-4 and tuned.freeze_cutoff == "0.75"
    assert tuned.model.augment.zoom_max == 1.1 and tuned.class_weight == (2, 1)
    assert tuned.model.augment.dihedral and config.model.dropout == 0.25  # nothing else moved
    with pytest.raises(InputError, match="unknown config keys"):
        config.with_overrides({"learning_rate": 1.0})


def test_invalid_values_are_clear():
    with pytest.raises(InputError, match="optimizer"):
        TrainConfig(records="r", workdir="w", optimizer="sgd")
    with pytest.raises(InputError, match="profile_batches"):
        TrainConfig(records="r", workdir="w", profile_batches="5")


def test_train_cli_flags_and_errors(tmp_path):
    out = cli("satx.train", "--help").stdout
    for flag in [
        "records",
        "backbone",
        "workdir",
        "weights",
        "image_size",
        "batch_size",
        "n_epo_phase1",
        "n_epo_phase2",
        "lr_phase1",
        "lr_phase2",
        "freeze_cutoff",
        "mixed_precision",
        "strategy",
        "profile_batches",
        "seed",
        "train_split",
        "val_split",
        "hparams",
        "config",
        "cpu_devices",
    ]:
        assert f"--{flag}:" in out or f"--[no]{flag}:" in out, flag
    missing = cli(
        "satx.train",
        f"--records={tmp_path / 'nope'}",
        f"--workdir={tmp_path / 'w'}",
        "--weights=none",
    )
    assert missing.returncode == 2 and "manifest.json not found" in missing.stderr
    bad = cli("satx.train", "--records=x", "--workdir=y", "--backbone=resnet9000")
    assert bad.returncode == 2 and "choose one of" in bad.stderr


def test_phase_segments_split_an_epoch_range():
    from satx.train import phase_segments

    assert phase_segments(2, 0, 5) == [(1, 0, 2), (2, 2, 5)]
    assert phase_segments(2, 1, 2) == [(1, 1, 2)]
    assert phase_segments(2, 4, 6) == [(2, 4, 6)]  # a promoted Hyperband trial
    assert phase_segments(0, 0, 3) == [(2, 0, 3)]
    assert phase_segments(3, 0, 0) == []
