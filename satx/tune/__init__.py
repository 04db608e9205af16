"""Hyperparameter search: Keras Tuner Hyperband over the training core.

`tune(config)` -> `TuneResult`. `hypermodel` (the search space and a HyperModel whose trials are
`satx.train` phases) -> `hyperband` (a budgeted oracle, progress, memory guard) -> `search` (the
driver: runs, resumes or summarises a search and writes its results). `python -m satx.tune` is
the CLI.
"""

from satx import lazy_exports

_PUBLIC = {
    "tune": "satx.tune.search",
    "TuneResult": "satx.tune.result",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
