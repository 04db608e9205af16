"""Training: two-phase transfer learning from records, resumable, on any distribution strategy.

`train(config)` -> `TrainResult`. `phases` (build, freeze/unfreeze, compile: shared with tuning)
-> `fit` (the run folder, data, callbacks, resume) -> `export` (TF Serving SavedModel);
`result` (the run folder and what it returns). `distribute` picks devices, strategy and
precision. `python -m satx.train` is the CLI.
"""

from satx import lazy_exports

_PUBLIC = {
    "train": "satx.train.fit",
    "TrainResult": "satx.train.result",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
