"""The runtime registry: every name, folder, choice and conversion derives from one spec each."""

from pathlib import Path

import pytest

from satx.artifact import runtimes
from satx.artifact.runtimes import SPECS, RuntimeSpec, Variant
from satx.config import EXPORT_RUNTIMES, RUNTIMES, ExportConfig, PredictConfig
from satx.errors import InputError


def test_the_cli_choices_are_the_registrys_names():
    assert EXPORT_RUNTIMES == ("onnx", "openvino", "litert")
    assert RUNTIMES == (
        "tf",
        "onnx",
        "onnx-int8",
        "openvino",
        "openvino-bf16",
        "openvino-int8",
        "litert",
        "litert-int8",
    )
    assert ExportConfig.__dataclass_fields__["to"].metadata["choices"] == EXPORT_RUNTIMES
    assert PredictConfig.leaves()["runtime"].choices == ("auto", *RUNTIMES)


def test_files_and_variants():
    version = Path("v")
    assert runtimes.model_file(version, "onnx") == version / "runtimes/onnx/model.onnx"
    assert runtimes.model_file(version, "onnx-int8") == version / "runtimes/onnx-int8/model.onnx"
    # bf16 runs the float files in bfloat16; int8 has its own
    assert runtimes.files_of("openvino-bf16") == "runtimes/openvino"
    assert runtimes.parse("openvino-bf16")[1].name == "bf16"
    assert runtimes.parse("litert") == (SPECS["litert"], None)
    for bad in ("tf", "onnx-bf16", "tensorrt"):
        with pytest.raises(InputError, match="choose from auto, tf, onnx"):
            runtimes.parse(bad)


def test_conversions_follow_the_variants(monkeypatch):
    no_bf16 = Variant("bf16", own_files=False, available=lambda: False)
    spec = SPECS["openvino"]
    monkeypatch.setitem(
        SPECS, "openvino", RuntimeSpec(**{**spec.__dict__, "variants": (no_bf16, spec.variants[1])})
    )
    assert runtimes.conversions(("onnx", "openvino"), int8=False) == [
        ("onnx", True),
        ("openvino", True),
    ]
    assert runtimes.conversions(("openvino", "litert"), int8=True) == [
        ("openvino", True),
        ("openvino-int8", True),
        ("litert", True),
        ("litert-int8", True),
    ]


def test_what_conversion_lacks_is_named_by_pip_name(monkeypatch):
    present = {"onnxruntime", "openvino"}
    monkeypatch.setattr(runtimes, "importable", lambda module: module in present)
    assert runtimes.missing_for_conversion(("onnx",), int8=False) == ["tf2onnx"]
    assert runtimes.missing_for_conversion(("openvino",), int8=False) == []
    assert runtimes.missing_for_conversion(("openvino", "litert"), int8=True) == [
        "ai-edge-litert",
        "nncf",
    ]
