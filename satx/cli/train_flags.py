"""The training flags, shared by `satx.train` and `satx.tune`, and flags -> `TrainConfig`.

Config precedence: defaults < --config JSON < --hparams JSON (e.g. a tuner's best_hparams.json)
< flags given on the command line. Every default comes from `TrainConfig`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from satx.cli.flags import define, present
from satx.config import CACHE_MODES, LR_SCHEDULES, OPTIMIZERS, PRECISIONS, STRATEGIES, TrainConfig
from satx.errors import InputError

# flag name -> TrainConfig field (flat name) where the two differ
_FIELDS = {"batch_size": "per_replica_batch_size"}


def _define(kind: str, name: str, help_text: str, **kwargs: Any) -> None:
    define(kind, name, help_text, TrainConfig, _FIELDS.get(name), module_name=__name__, **kwargs)


_define("string", "records", "Records folder (with manifest.json) or gs:// prefix.")
_define("string", "workdir", "Run folder: config, checkpoints, logs, export.")
_define("string", "backbone", "Backbone name from the registry (satx/models/backbones.py).")
_define(
    "string",
    "monitor",
    "Validation metric that picks the best checkpoint and stops early: auto (val_auc binary, "
    "val_accuracy multi-class; val_loss multi-worker), or e.g. val_loss.",
)
_define("string", "weights", "imagenet, none, or a local .weights.h5 path.")
_define("integer", "batch_size", "Per-replica batch; the global batch is this x replicas.")
_define("integer", "n_epo_phase1", "Epochs with the backbone frozen.")
_define("integer", "n_epo_phase2", "Fine-tuning epochs (early stopping may end sooner).")
_define(
    "integer",
    "phase1_image_size",
    "Phase 1 trains at this input size, phase 2 at the model's (progressive resizing); 0 = off.",
)
_define("float", "lr_phase1", "Learning rate of phase 1.")
_define("float", "lr_phase2", "Learning rate of phase 2.")
_define("enum", "optimizer", "Optimizer.", enum_values=list(OPTIMIZERS))
_define("float", "weight_decay", "adamw: decoupled weight decay of the kernels.")
_define(
    "enum",
    "lr_schedule",
    "plateau (cut the rate on a plateau) or cosine (linear warm-up, then cosine decay by step).",
    enum_values=list(LR_SCHEDULES),
)
_define("float", "warmup_epochs", "cosine: warm-up epochs at the start of each phase.")
_define("float", "label_smoothing", "Label smoothing of the cross-entropy.")
_define("float", "ema_momentum", "> 0: validate, checkpoint and export an EMA of the weights.")
_define("float", "mixup_alpha", "Mixup of training batches, Beta(a, a); 0 = off.")
_define("float", "cutmix_alpha", "CutMix of training batches, Beta(a, a); 0 = off.")
_define("float", "bn_momentum", "From scratch: BatchNorm's moving-average momentum.")
_define("boolean", "dihedral", "Augment: the tile's 8 symmetries (flips, quarter turns).")
_define("float", "rotation_deg", "Augment: an extra rotation of +- this many degrees; 0 = off.")
_define("float", "zoom_max", "Augment: zoom in by 1 .. this; 1 = off.")
_define("list", "brightness", "Augment: brightness factor range LOW,HIGH; 1,1 = off.")
_define("float", "channel_shift", "Augment: +- levels added to each channel; 0 = off.")
_define("list", "contrast", "Augment: contrast factor range LOW,HIGH; 1,1 = off.")
_define(
    "string", "freeze_cutoff", "Fine-tune from this backbone layer: name, index, fraction or cut."
)
_define("integer", "dense_units", "Units of the dense head layer.")
_define("string", "dense_activation", "Activation of the dense head.")
_define("float", "dropout", "Dropout before the output layer.")
_define("enum", "mixed_precision", "Mixed precision policy.", enum_values=list(PRECISIONS))
_define("enum", "strategy", "Distribution strategy.", enum_values=list(STRATEGIES))
_define("integer", "cpu_devices", "Split the CPU into N logical devices.")
_define("string", "profile_batches", "Profile batches START,END to TensorBoard.")
_define("string", "train_split", "Split to train on.")
_define("string", "val_split", "Validation split (falls back to test).")
_define("integer", "steps_per_epoch", "Steps per epoch; 0 = one pass.")
_define("boolean", "deterministic", "Reproducible (slower) run.")
_define("enum", "cache", "Decoded-tile RAM cache.", enum_values=list(CACHE_MODES))
_define("list", "class_weight", "Per-class weights; default from counts.")
_define("boolean", "export", "Export a SavedModel at the end.")
_define("boolean", "calibrate", "Fit temperature and class bias on the validation split.")
_define("boolean", "export_tta", "Also export serving_tta (mean over the 8 symmetries).")
CONFIG = define(
    "string",
    "config",
    "A recipe (configs/*.json) or a JSON file with a (partial, nested) TrainConfig.",
    default=None,
)
HPARAMS = define("string", "hparams", "JSON file of flat hyperparameters to apply.", default=None)

# Every flag that sets a TrainConfig field; `seed` and `image_size` live in satx.cli.flags.
CONFIG_FLAGS = (
    "records",
    "workdir",
    "backbone",
    "monitor",
    "weights",
    "batch_size",
    "n_epo_phase1",
    "n_epo_phase2",
    "phase1_image_size",
    "lr_phase1",
    "lr_phase2",
    "optimizer",
    "weight_decay",
    "lr_schedule",
    "warmup_epochs",
    "label_smoothing",
    "ema_momentum",
    "mixup_alpha",
    "cutmix_alpha",
    "bn_momentum",
    "dihedral",
    "rotation_deg",
    "zoom_max",
    "brightness",
    "channel_shift",
    "contrast",
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
    "class_weight",
    "export",
    "calibrate",
    "export_tta",
    "seed",
    "image_size",
)


def load_json(path: str, what: str) -> dict:
    """A JSON object from a file named by flag `--what`, with a clear error."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"--{what}={path}: cannot read JSON ({err})") from err


def train_config_from_flags(skip: tuple[str, ...] = ()) -> TrainConfig:
    """TrainConfig from defaults, --config, --hparams and the flags given explicitly.

    Args:
        skip: flag names to leave out (the tuner handles `--backbone=all` itself).
    """
    config = TrainConfig()
    if CONFIG.value:
        from satx.train.recipe import read_recipe

        config = TrainConfig.from_dict(read_recipe(CONFIG.value)["train"])
    if HPARAMS.value:
        config = config.with_overrides(load_json(HPARAMS.value, "hparams"))
    given = present(n for n in CONFIG_FLAGS if n not in skip)
    for name in ("class_weight", "brightness", "contrast"):
        if name in given:
            given[name] = tuple(float(w) for w in given[name])
    return config.with_overrides({_FIELDS.get(k, k): v for k, v in given.items()})


def run_training_cli(main: Callable[[list[str]], int | None]) -> None:
    """Run a CLI that takes the training flags (train, tune), listing them in its --help."""
    from satx.cli import flags as shared
    from satx.cli import run

    run(main, shared.SEED, shared.OVERWRITE, shared.IMAGE_SIZE, flag_modules=(__name__,))
