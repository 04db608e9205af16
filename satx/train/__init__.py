"""Training: two-phase transfer learning from records, resumable, on any distribution strategy.

`train(config)` -> `TrainResult`. `phases` (build, freeze/unfreeze, compile: shared with tuning)
-> `fit` (the run folder, data, callbacks, resume) -> `export` (TF Serving SavedModel);
`result` (the run folder and what it returns). `distribute` picks devices, strategy and
precision. `python -m satx.train` is the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that `import satx.train.<module>` (review reads predict's result
# types) does not load TensorFlow.
_PUBLIC = {
    "train": "satx.train.fit",
    "TrainResult": "satx.train.result",
}
__all__ = ["TrainResult", "train"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
