"""`python -m satx.train --records=DIR --workdir=RUN [--backbone=mobilenetv2 ...]`.

Config precedence: defaults < --config JSON < --hparams JSON (e.g. a tuner's best_hparams.json)
< flags given on the command line. Every `TrainConfig` knob is a flag.
"""

from __future__ import annotations

import json

from satx.cli import command_line, entry_point, load_tensorflow
from satx.cli.flags import define, define_flags
from satx.config import TrainConfig
from satx.config.source import OVERWRITE_HELP
from satx.train.cli import define_recipe_flags, train_config_from_flags

define_flags(TrainConfig)
define_recipe_flags()
_OVERWRITE = define("boolean", "overwrite", OVERWRITE_HELP, False)


def main(argv: list[str]) -> int:
    """Train, export (and convert with --export_runtimes), and print where everything went."""
    load_tensorflow()
    from satx.artifact.conversion import export_after_training
    from satx.artifact.report import format_table
    from satx.train.fit import train

    del argv
    config = train_config_from_flags()
    command = command_line("satx.train")
    summary = train(config, command=command, overwrite=_OVERWRITE.value)
    print(json.dumps(summary.to_dict(), indent=2))
    converted = export_after_training(summary.export, config, command)
    if converted:
        print(format_table(converted))
    return 0


entry = entry_point(main)


if __name__ == "__main__":
    entry()
