"""Training: two-phase transfer learning from records, resumable, on any distribution strategy.

`phases` (build, freeze/unfreeze, compile: shared with tuning) -> `fit` (the run folder, data,
callbacks, resume) -> `export` (TF Serving SavedModel). `distribute` picks devices, strategy and
precision. `python -m satx.train` is the CLI.
"""
