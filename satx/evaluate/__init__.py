"""Evaluation: score a records split with a trained model and report what a mapper needs.

`evaluate(config)` -> `EvaluationReport`. `scores` (ROC/PR, thresholds, confusion, reliability;
pure numpy) -> `plots` (PNG) -> `report` (report.json/.md, errors.geojson, per-tile scores).
The model is loaded and run by `satx.artifact.scorer`, the same code prediction uses.
"""

from satx import lazy_exports

_PUBLIC = {
    "evaluate": "satx.evaluate.report",
    "EvaluationReport": "satx.evaluate.result",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
