"""Export for inference runtimes: an export's SavedModel as ONNX, OpenVINO and LiteRT models.

`export_runtimes(config)` -> `runtimes.json` beside the SavedModel. `convert` (one converter per
runtime, float or int8) -> `agreement` (scores, ROC AUC and decisions against TensorFlow's) ->
`run` (convert, load through predict's Scorer, measure, record). predict and evaluate load
the files through `satx.predict.runtimes` (`--runtime`).
"""

from satx import lazy_exports

_PUBLIC = {"export_runtimes": "satx.export.run"}
__getattr__ = lazy_exports(__name__, _PUBLIC)
