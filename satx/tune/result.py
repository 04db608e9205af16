"""What a search returns and writes: the leaderboard, the best hyperparameters, the export."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from satx.io import claim
from satx.io.run_record import Record
from satx.train.result import TrainResult

LAYOUT = claim.Layout(
    "tune",
    owned=(
        "tune_run.json",
        "leaderboard.csv",
        "leaderboard.json",
        "best_hparams.json",
        "tuner/",
        "logs/",
        "best/",
        "export/",
    ),
    legacy=("tune_run.json",),
)


@dataclass(frozen=True)
class SearchFiles(Record):
    """Where a search's results are, under WORKDIR."""

    best_hparams: str  # flat overrides: `python -m satx.train --hparams=FILE`
    leaderboard: str  # .csv (and .json beside it)
    logs: str  # TensorBoard: a run per trial, the HParams dashboard


@dataclass(frozen=True)
class TuneResult(Record):
    """The outcome of `tune(config)`.

    Attributes:
        role: single, chief, or worker (a worker of a distributed search reports nothing else).
        tuner_id: this process's Keras Tuner id.
        rows: the leaderboard, best first (rank, trial, backbone, score, epochs, seconds,
            best_step, status, hyperparameters).
        best_hparams: the best trial's flat TrainConfig overrides (None before any trial).
        progress: trials done and to go, the best score, elapsed and ETA.
        files: where the results were written (None before any trial).
        export: the best configuration retrained and exported (`export_best`).
    """

    role: str
    tuner_id: str = ""
    rows: tuple[dict[str, Any], ...] = ()
    best_hparams: dict[str, Any] | None = None
    progress: str = ""
    files: SearchFiles | None = None
    export: TrainResult | None = field(default=None)
