"""Making records: labelled tiles -> validated, split, sharded TFRecords plus a manifest.

Data flows `inputs` (the input's `satx.tiles` listing; places fetched) -> `plan` (hash,
quarantine, `splits`, shards) -> `make` (run the plan in `worker` processes, write `manifest`)
and back out through `schema` / `manifest` readers; `verify` checks a finished folder. Nothing
here imports TensorFlow.
"""
