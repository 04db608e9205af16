"""`python -m satx.train --records=DIR --workdir=RUN [--backbone=mobilenetv2 ...]`.

Config precedence: defaults < --config JSON < --hparams JSON (e.g. a tuner's best_hparams.json)
< flags given on the command line (satx/cli/train_flags.py).
"""

from __future__ import annotations

import json
import shlex
import sys

from satx.cli import flags as shared
from satx.cli import load_tensorflow
from satx.cli.train_flags import run_training_cli, train_config_from_flags


def main(argv: list[str]) -> int:
    """Train, export, and print where everything went."""
    load_tensorflow()
    from satx.train.fit import train

    del argv
    config = train_config_from_flags()
    command = shlex.join(["python", "-m", "satx.train", *sys.argv[1:]])
    summary = train(config, command=command, overwrite=shared.OVERWRITE.value)
    print(json.dumps(summary, indent=2))
    return 0


def entry() -> None:
    """Console-script entry point."""
    run_training_cli(main)


if __name__ == "__main__":
    entry()
