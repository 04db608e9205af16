"""Hyperparameter search: Keras Tuner Hyperband over the training core.

`tune(config)` -> `TuneResult`. `hypermodel` (the search space and a HyperModel whose trials are
`satx.train` phases) -> `hyperband` (a budgeted oracle, progress, memory guard) -> `search` (the
driver: runs, resumes or summarises a search and writes its results). `python -m satx.tune` is
the CLI.
"""

from __future__ import annotations

import importlib
from typing import Any

# Imported on first use, so that `import satx.tune.<module>` (review reads predict's result
# types) does not load TensorFlow.
_PUBLIC = {
    "tune": "satx.tune.search",
    "TuneResult": "satx.tune.result",
}
__all__ = ["TuneResult", "tune"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
