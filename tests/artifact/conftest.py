"""The tiny model's export converted for every runtime once per test session (worker)."""

import shutil
from pathlib import Path

import pytest

from satx.artifact.runtimes import importable
from satx.config import ExportConfig

PACKAGES = ("onnxruntime", "tf2onnx", "openvino", "nncf", "ai_edge_litert")
needs_runtimes = pytest.mark.skipif(
    not all(importable(m) for m in PACKAGES),
    reason="the runtimes need the satx[runtimes] extra (onnxruntime, tf2onnx, openvino, nncf, "
    "ai-edge-litert)",
)

FLOATS = ("onnx", "openvino", "litert")
INT8 = ("onnx-int8", "openvino-int8", "litert-int8")


@pytest.fixture(scope="session")
def converted(tiny_model, sample_records, tmp_path_factory):
    """The tiny model's export converted for every runtime, float and int8: (version, manifest)."""
    root = tmp_path_factory.mktemp("runtimes")
    shutil.copytree(Path(tiny_model["export"]).parent, root / "export")
    config = ExportConfig(
        model=str(root / "export"), int8=True, calibration=sample_records, batch_size=8
    )
    from satx.artifact.conversion import export_runtimes

    manifest = export_runtimes(config)
    return root / "export" / Path(tiny_model["export"]).name, manifest
