"""A training run's folder and what the run returns.

Run folder (`--workdir`): config.json, run.json, state.json, history.csv, checkpoints/best.keras,
backup/phase{1,2}/ (BackupAndRestore), logs/ (TensorBoard), model.keras, class_names.json,
summary.json (the `TrainResult`), export/<version>/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satx.io import claim
from satx.io.run_record import Record, write_json

LAYOUT = claim.Layout(
    "train",
    owned=(
        "config.json",
        "run.json",
        "state.json",
        "history.csv",
        "stopping-phase*.json",
        "model.keras",
        "class_names.json",
        "summary.json",
        "checkpoints/",
        "backup/",
        "logs/",
        "export/",
    ),
    legacy=("config.json",),
)


@dataclass(frozen=True)
class TrainResult(Record):
    """What a training run produced; WORKDIR/summary.json holds it.

    Attributes:
        monitor: the validation metric that picked the best epoch.
        best: its best value; best_epoch: the epoch (0-based, across both phases).
        epochs_run: every epoch trained, resumed runs included.
        elapsed_s: this session's training time.
        model: the final `.keras` model (the best epoch's weights).
        best_checkpoint: the best epoch's checkpoint.
        export: the SavedModel version folder (None without `--export`).
        calibration: the temperature and class bias fitted on validation, with NLL before/after.
        tensorboard: the command that shows the logs.
    """

    monitor: str
    best: float | None
    best_epoch: int | None
    epochs_run: tuple[int, ...]
    elapsed_s: float
    model: str
    best_checkpoint: str
    export: str | None
    calibration: dict[str, Any] = field(default_factory=dict)
    tensorboard: str = ""


class Workdir:
    """Paths of a run folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.run = self.root / "run.json"
        self.state = self.root / "state.json"
        self.history = self.root / "history.csv"
        self.best = self.root / "checkpoints" / "best.keras"
        self.logs = self.root / "logs"
        self.model = self.root / "model.keras"
        self.export = self.root / "export"
        self.phase1_weights = self.root / "checkpoints" / "phase1_end.weights.h5"

    def backup(self, phase: int) -> Path:
        """BackupAndRestore folder of a phase."""
        return self.root / "backup" / f"phase{phase}"

    def read_state(self) -> dict[str, Any]:
        """Progress so far (empty for a new run)."""
        return json.loads(self.state.read_text()) if self.state.exists() else {}

    def write_state(self, state: dict[str, Any]) -> None:
        """Record progress atomically."""
        write_json(self.state, state)

    def read_result(self) -> TrainResult:
        """The finished run's result (summary.json)."""
        path = self.root / "summary.json"
        return TrainResult.read(path.read_text(), str(path))

    def write_result(self, result: TrainResult) -> None:
        """Record the result atomically."""
        write_json(self.root / "summary.json", result)
