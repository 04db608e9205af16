"""Hyperparameter search: Keras Tuner Hyperband over the training core.

`hypermodel` (the search space and a HyperModel whose trials are `satx.train` phases) ->
`hyperband` (a budgeted oracle, progress, memory guard) -> `search` (the driver: `tune(config)`
runs, resumes or summarises a search and writes its results). `python -m satx.tune` is the CLI.
"""
