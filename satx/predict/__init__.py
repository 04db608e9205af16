"""Prediction: score every tile of an area (or a list, a folder, records) with a trained model.

`predict(config)` -> `PredictRun`; `dry_run(config)` counts and projects. `inputs` (what to
score, read in chunks) -> `scorer` (load an export or .keras; batches -> probabilities, on any
strategy) -> `outputs` (rows, resumable chunk parts, merged GeoJSON/CSV/JSONL) -> `run` (the
chunk loop); `result` (a predictions folder's layout and its `PredictRun`).
`python -m satx.predict` is the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that `import satx.predict.<module>` (review reads predict's result
# types) does not load TensorFlow.
_PUBLIC = {
    "predict": "satx.predict.run",
    "dry_run": "satx.predict.run",
    "PredictRun": "satx.predict.result",
}
__all__ = ["PredictRun", "dry_run", "predict"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
