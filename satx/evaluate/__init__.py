"""Evaluation: score a records split with a trained model and report what a mapper needs.

`scores` (ROC/PR, thresholds, confusion, calibration; pure numpy) -> `plots` (PNG) -> `report`
(`evaluate(config)`: report.json/.md, errors.geojson, per-tile scores). The model is loaded and
run by `satx.predict.scorer`, the same code prediction uses.
"""
