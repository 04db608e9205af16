"""What an evaluation returns and writes as report.json: `EvaluationReport`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from satx.io.run_record import Record


@dataclass(frozen=True)
class EvaluationReport(Record):
    """Every number of one evaluation (`satx.evaluate.scores.report`) and where it came from.

    Attributes:
        count, accuracy: tiles scored and the share right (binary: at `threshold`).
        roc_auc, pr_auc: of the positive class (binary) or macro one-vs-rest means.
        threshold, threshold_mode: binary: the score cut and the rule that chose it (a number,
            youden, topleft, precision@P, recall@R, budget@N); multi-class: None, argmax.
        threshold_chosen_on: the split the rule was applied to (binary).
        at_threshold: precision, recall, hits per million, ... at the threshold, on this split;
            at_threshold_chosen: the same on the split it was chosen on (when that differs).
        confusion_matrix: rows true class, columns predicted.
        expected_calibration_error: of the positive (binary) or top score.
        calibration: the export's temperature and bias, and the ECE without them.
        per_class: precision, recall, F1, support, ROC/PR AUC per class.
        errors_geojson, errors_by_parent_tile: binary errors on the map, and counted per zoom-12
            parent tile.
        plots: the PNG files beside report.json.
        records, records_manifest_sha256, records_listing_sha256, config, versions: the run.
    """

    count: int
    accuracy: float
    roc_auc: float | None
    pr_auc: float | None
    threshold: float | None
    threshold_mode: str
    at_threshold: dict[str, Any] | None
    confusion_matrix: tuple[tuple[int, ...], ...]
    expected_calibration_error: float
    per_class: dict[str, dict[str, Any]]
    class_names: tuple[str, ...] = ()
    split: str = ""
    model: str = ""
    runtime: str = "tf"
    threshold_chosen_on: str | None = None
    at_threshold_chosen: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    errors_geojson: str | None = None
    errors_by_parent_tile: dict[str, dict[str, int]] | None = None
    plots: tuple[str, ...] = ()
    records: str = ""
    records_manifest_sha256: str = ""
    records_listing_sha256: str = ""
    command: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
