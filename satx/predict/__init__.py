"""Prediction: score every tile of an area (or a list, a folder, records) with a trained model.

`predict(config)` -> `PredictRun`; `dry_run(config)` counts and projects. `inputs` (what to
score, read in chunks) -> `scorer` (load an export or .keras; batches -> probabilities, on any
strategy, or through another inference runtime: `runtimes`) -> `outputs` (rows, resumable
chunk parts, merged GeoJSON/CSV/JSONL) -> `run` (the chunk loop); `result` (a predictions
folder's layout and its `PredictRun`). `python -m satx.predict` is the CLI.
"""

from satx import lazy_exports

_PUBLIC = {
    "predict": "satx.predict.run",
    "dry_run": "satx.predict.run",
    "PredictRun": "satx.predict.result",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
