"""Benchmarks, one command each: `python -m satx.bench input|records|train|predict|all`.

`run` makes one set of tiles and records and runs the modes on them: `input` (decode limit,
the training stream, the warm cache, the Keras way), `records` (make_records through its CLI),
`train` (records vs synthetic batches per backbone; memory across tuning trials) and `predict`
(the real `satx.predict` per backbone). Every mode prints a table and returns JSON.
"""
