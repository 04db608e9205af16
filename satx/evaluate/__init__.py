"""Evaluation: score a records split with a trained model and report what a mapper needs.

`evaluate(config)` -> `EvaluationReport`. `scores` (ROC/PR, thresholds, confusion, reliability;
pure numpy) -> `plots` (PNG) -> `report` (report.json/.md, errors.geojson, per-tile scores).
The model is loaded and run by `satx.predict.scorer`, the same code prediction uses.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that `import satx.evaluate.<module>` (review reads predict's result
# types) does not load TensorFlow.
_PUBLIC = {
    "evaluate": "satx.evaluate.report",
    "EvaluationReport": "satx.evaluate.result",
}
__all__ = ["EvaluationReport", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
