"""What training and tuning tests share: CLI command lines and readers of a run folder."""

import csv

from satx.train.result import Workdir


def history_rows(workdir):
    with open(Workdir(workdir).history) as f:
        return list(csv.DictReader(f))


def train_cmd(records, workdir, *extra):
    return (
        "satx.train",
        f"--records={records}",
        f"--workdir={workdir}",
        "--weights=none",
        "--image_size=32",
        "--batch_size=8",
        "--steps_per_epoch=3",
        "--dense_units=16",
        "--mixed_precision=off",
        *extra,
    )


def trial_files(tuner_dir):
    import json
    from pathlib import Path

    return {
        p.parent.name: json.loads(p.read_text())
        for p in Path(tuner_dir).glob("satx/trial_*/trial.json")
    }


def tune_args(records, workdir, *extra):
    return (
        "satx.tune",
        f"--records={records}",
        f"--workdir={workdir}",
        "--backbone=tiny",
        "--weights=none",
        "--image_size=32",
        "--batch_size=8",
        "--steps_per_epoch=2",
        "--mixed_precision=off",
        "--max_epochs=2",
        "--factor=2",  # Hyperband plan: 5 trials (2 brackets)
        *extra,
    )
