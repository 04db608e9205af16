"""`python -m satx.train --records=DIR --workdir=RUN [--backbone=mobilenetv2 ...]`.

Config precedence: defaults < --config JSON < --hparams JSON (e.g. a tuner's best_hparams.json)
< flags given on the command line.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from absl import flags

from satx import flags as shared
from satx.cli import run

FLAGS = flags.FLAGS
_RECORDS = flags.DEFINE_string(
    "records", None, "Records folder (with manifest.json) or gs:// prefix."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run folder: config, checkpoints, logs, export.")
_BACKBONE = flags.DEFINE_string("backbone", "mobilenetv2", "Backbone name (see satx.backbones).")
_WEIGHTS = flags.DEFINE_string(
    "weights", "imagenet", "imagenet, none, or a local .weights.h5 path."
)
_BATCH = flags.DEFINE_integer("batch_size", 32, "Per-replica batch size.")
_N1 = flags.DEFINE_integer("n_epo_phase1", 2, "Epochs with the backbone frozen.")
_N2 = flags.DEFINE_integer(
    "n_epo_phase2", 10, "Fine-tuning epochs (early stopping may end sooner)."
)
_LR1 = flags.DEFINE_float("lr_phase1", 3e-4, "Learning rate of phase 1.")
_LR2 = flags.DEFINE_float("lr_phase2", 3e-5, "Learning rate of phase 2.")
_OPTIMIZER = flags.DEFINE_enum("optimizer", "adam", ["adam", "rmsprop"], "Optimizer.")
_CUTOFF = flags.DEFINE_string(
    "freeze_cutoff", "", "Fine-tune from this backbone layer: name, index, fraction or named cut."
)
_DENSE = flags.DEFINE_integer("dense_units", 256, "Units of the dense head layer.")
_ACTIVATION = flags.DEFINE_string("dense_activation", "relu", "Activation of the dense head.")
_DROPOUT = flags.DEFINE_float("dropout", 0.25, "Dropout before the output layer.")
_PRECISION = flags.DEFINE_enum(
    "mixed_precision", "auto", ["auto", "float16", "bfloat16", "off"], "Mixed precision policy."
)
_STRATEGY = flags.DEFINE_enum(
    "strategy", "auto", ["auto", "mirrored", "multiworker", "onedevice"], "Distribution strategy."
)
_CPU_DEVICES = flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into N logical devices.")
_PROFILE = flags.DEFINE_string("profile_batches", "", "Profile batches START,END to TensorBoard.")
_TRAIN_SPLIT = flags.DEFINE_string("train_split", "train", "Split to train on.")
_VAL_SPLIT = flags.DEFINE_string("val_split", "val", "Validation split (falls back to test).")
_STEPS = flags.DEFINE_integer("steps_per_epoch", 0, "Steps per epoch; 0 = one pass.")
_DETERMINISTIC = flags.DEFINE_boolean("deterministic", False, "Reproducible (slower) run.")
_CACHE = flags.DEFINE_enum("cache", "auto", ["auto", "ram", "none"], "Decoded-tile RAM cache.")
_CLASS_WEIGHT = flags.DEFINE_list("class_weight", [], "Per-class weights; default from counts.")
_EXPORT = flags.DEFINE_boolean("export", True, "Export a SavedModel at the end.")
_CONFIG = flags.DEFINE_string("config", None, "JSON file with a (partial) TrainConfig.")
_HPARAMS = flags.DEFINE_string("hparams", None, "JSON file of flat hyperparameters to apply.")

# Flags that map one-to-one onto config keys of the same name (TrainConfig, ModelConfig).
_CONFIG_FLAGS = (
    "records",
    "workdir",
    "backbone",
    "weights",
    "batch_size",
    "n_epo_phase1",
    "n_epo_phase2",
    "lr_phase1",
    "lr_phase2",
    "optimizer",
    "freeze_cutoff",
    "dense_units",
    "dense_activation",
    "dropout",
    "mixed_precision",
    "strategy",
    "cpu_devices",
    "profile_batches",
    "train_split",
    "val_split",
    "steps_per_epoch",
    "deterministic",
    "cache",
    "export",
    "seed",
    "image_size",
)


def _load_json(path: str, what: str) -> dict:
    from satx.errors import InputError

    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--{what}={path}: cannot read JSON ({err})") from err


def resolve_config(skip: tuple[str, ...] = ()):  # noqa: ANN201 - TrainConfig
    """TrainConfig from defaults, --config, --hparams and the flags given explicitly.

    Args:
        skip: flag names to leave out (the tuner handles `--backbone=all` itself).
    """
    from satx.train_config import TrainConfig

    config = TrainConfig(records=_RECORDS.value or "", workdir=_WORKDIR.value or "")
    if _CONFIG.value:
        config = TrainConfig.from_dict({**config.to_dict(), **_load_json(_CONFIG.value, "config")})
    if _HPARAMS.value:
        config = config.with_overrides(_load_json(_HPARAMS.value, "hparams"))
    given = {
        name: FLAGS[name].value
        for name in _CONFIG_FLAGS
        if FLAGS[name].present and name not in skip
    }
    if FLAGS["class_weight"].present:
        given["class_weight"] = tuple(float(w) for w in _CLASS_WEIGHT.value)
    return config.with_overrides(given)


def main(argv: list[str]) -> int:
    """Train, export, and print where everything went."""
    from satx.train import train

    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    config = resolve_config()
    if not config.records or not config.workdir:
        print("error: --records and --workdir are required", file=sys.stderr)
        return 2
    command = shlex.join(["python", "-m", "satx.train", *sys.argv[1:]])
    summary = train(config, command=command, overwrite=shared.OVERWRITE.value)
    print(json.dumps(summary, indent=2))
    return 0


def entry() -> None:
    """Console-script entry point."""
    run(main, shared.SEED, shared.OVERWRITE, shared.IMAGE_SIZE)


if __name__ == "__main__":
    entry()
