"""Prediction: score every tile of an area (or a list, a folder, records) with a trained model.

`predict(config)` -> `PredictRun`; `dry_run(config)` counts and projects. `inputs` (what to
score, read in chunks) -> the artifact's `Scorer` (satx.artifact) -> `formats` and `outputs`
(rows per format, resumable chunk parts, the merge) -> `core` (the engine-free steps) ->
`run` (the local engine's loop) or `beam` (Beam's); `result` (a predictions folder's layout and
its `PredictRun`). `python -m satx.predict` is the CLI.
"""

from satx import lazy_exports

_PUBLIC = {
    "predict": "satx.predict.run",
    "dry_run": "satx.predict.run",
    "PredictRun": "satx.predict.result",
}
__all__ = sorted(_PUBLIC)
__getattr__ = lazy_exports(__name__, _PUBLIC)
