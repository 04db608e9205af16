"""Prediction: score every tile of an area (or a list, a folder, records) with a trained model.

`inputs` (what to score, read in chunks) -> `scorer` (load an export or .keras; batches ->
probabilities, on any strategy) -> `outputs` (resumable chunk parts, merged GeoJSON/CSV/JSONL)
-> `run` (`predict(config)`: the chunk loop). `python -m satx.predict` is the CLI.
"""
