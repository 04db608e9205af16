"""The trained model as one artifact: written by training, opened, scored, converted.

An export folder (`EXPORT/<version>/`, TF Serving's layout; the files: `artifact.py`) is the
only thing the stages after training share about a model:
- `saved_model`: training writes a version (SavedModel, class names, calibration);
- `artifact`: `open_artifact(--model)` checks and reads it once; picks the runtime;
- `scorer`: `Scorer` loads it for TensorFlow or another runtime (predict, evaluate, bench);
- `runtimes`: one spec per inference runtime (ONNX Runtime, OpenVINO, LiteRT), `convert`
  their converters;
- `conversion`: `export_runtimes` converts, measures and checks against TensorFlow
  (`agreement`), writing runtimes.json (`satx.export`, `--export_runtimes` of train and tune).

Importing the package loads nothing heavy; `Scorer` and `write_saved_model` load TensorFlow.
"""

from satx import lazy_exports

_PUBLIC = {
    "Artifact": "satx.artifact.artifact",
    "open_artifact": "satx.artifact.artifact",
    "Scorer": "satx.artifact.scorer",
    "write_saved_model": "satx.artifact.saved_model",
    "export_runtimes": "satx.artifact.conversion",
}
__getattr__ = lazy_exports(__name__, _PUBLIC)
