"""The command line `satx.train` and `satx.tune` share: the recipe flags, flags -> `TrainConfig`.

Config precedence: defaults < --config JSON < --hparams JSON (e.g. a tuner's best_hparams.json)
< flags given on the command line. Every training flag is a `TrainConfig` knob.
"""

from __future__ import annotations

import json
from pathlib import Path

from satx.cli.flags import FLAGS, caller_module, define, flag_values
from satx.config import TrainConfig
from satx.errors import InputError


def define_recipe_flags() -> None:
    """--config and --hparams, filed under the calling CLI."""
    module = caller_module(1)
    define(
        "string",
        "config",
        "A recipe (configs/*.json) or a JSON file with a (partial, nested) TrainConfig.",
        None,
        module_name=module,
    )
    define(
        "string", "hparams", "JSON file of flat hyperparameters to apply.", None, module_name=module
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
        skip: field names to leave out (the tuner handles `--backbone=all` itself).
    """
    config = TrainConfig()
    if FLAGS["config"].value:
        from satx.train.recipe import read_recipe

        config = TrainConfig.from_dict(read_recipe(FLAGS["config"].value)["train"])
    if FLAGS["hparams"].value:
        config = config.with_overrides(load_json(FLAGS["hparams"].value, "hparams"))
    return config.with_overrides(flag_values(TrainConfig, given_only=True, skip=skip))
