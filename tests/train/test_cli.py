"""The train CLI as a user runs it: flags (defaults from TrainConfig), errors, precedence."""

import json

from tests.support.helpers import cli


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
        "focal_gamma",
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


def test_flag_defaults_come_from_the_config():
    from absl import flags

    import satx.train.__main__  # noqa: F401 - defines the training flags
    from satx.config import TrainConfig, default_of

    for name, field in (("batch_size", "per_replica_batch_size"), ("lr_phase2", None)):
        assert flags.FLAGS[name].default == default_of(TrainConfig, field or name)
    assert flags.FLAGS["dropout"].default == TrainConfig().model.dropout


def test_config_file_then_hparams_then_flags(tmp_path):
    from absl import flags
    from absl.testing import flagsaver

    import satx.train.__main__  # noqa: F401 - defines the training flags
    from satx.config import AugmentConfig
    from satx.train.cli import train_config_from_flags

    config = tmp_path / "c.json"
    config.write_text(json.dumps({"model": {"dropout": 0.4, "dense_units": 32}, "seed": 3}))
    hparams = tmp_path / "h.json"
    hparams.write_text(json.dumps({"dense_units": 64, "lr_phase1": 0.002, "lr_phase2": 0.001}))
    argv = ["satx.train", f"--config={config}", f"--hparams={hparams}", "--lr_phase1=0.005"]
    augment = ["--zoom_max=1", "--brightness=1,1", "--channel_shift=0", "--nodihedral"]
    with flagsaver.flagsaver():
        flags.FLAGS(argv + ["--records=r", "--batch_size=4", "--image_size=48", *augment])
        resolved = train_config_from_flags()
    assert resolved.model.dropout == 0.4 and resolved.seed == 3  # from --config
    assert resolved.model.dense_units == 64 and resolved.lr_phase2 == 0.001  # --hparams wins
    assert resolved.lr_phase1 == 0.005  # a flag given wins over both
    assert resolved.data.records == "r" and resolved.per_replica_batch_size == 4
    assert resolved.model.image_size == 48 and resolved.n_epo_phase1 == 2  # default
    assert resolved.model.augment == AugmentConfig(
        dihedral=False, zoom_max=1.0, brightness=(1.0, 1.0), channel_shift=0.0
    )  # contrast keeps its default
