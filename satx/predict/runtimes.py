"""Inference runtimes an export can be scored with: TensorFlow, ONNX Runtime, OpenVINO, LiteRT.

`python -m satx.export` writes, inside an export's version folder, the same model for other
runtimes and `runtimes.json`, which records each one's file, its measured rate and its agreement
with TensorFlow on the test split:

    export/1/saved_model.pb ...             TensorFlow (the reference; TF Serving reads it)
    export/1/runtimes/onnx/model.onnx       ONNX Runtime, float32
    export/1/runtimes/onnx-int8/model.onnx  ONNX Runtime, int8 (static, QDQ, per-channel)
    export/1/runtimes/openvino/model.xml    OpenVINO, float32 (`openvino-bf16` runs the same
                                            files in bfloat16 where the CPU has it)
    export/1/runtimes/openvino-int8/...     OpenVINO, int8 (NNCF post-training quantisation)
    export/1/runtimes/litert/model.tflite   LiteRT (XNNPACK), float32; litert-int8 likewise
    export/1/runtimes.json

Every runtime takes the SavedModel's input (uint8 tiles [B, S, S, 3]) and returns its
`probabilities` (calibrated, as exported). `--runtime=auto` picks the fastest one the export
measured that is installed here and allowed as a default (an int8 model whose ROC AUC dropped
more than the export's limit is not), else TensorFlow.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from satx.config import RUNTIMES
from satx.errors import InputError

log = logging.getLogger(__name__)

MANIFEST = "runtimes.json"
FOLDER = "runtimes"
INPUT, OUTPUT = "images", "probabilities"
Predict = Callable[[np.ndarray], np.ndarray]


def _threads() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _load_onnx(file: Path, variant: str) -> Predict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads()
    options.log_severity_level = 3
    # its threads share the cores with decoding: no busy-waiting between batches
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    return lambda images: session.run([OUTPUT], {INPUT: images})[0]


def _load_openvino(file: Path, variant: str) -> Predict:
    import openvino as ov

    # One stream over every core: a batch is one request. OpenVINO would otherwise compute in
    # bfloat16 on CPUs that have it; `openvino` stays float32, `openvino-bf16` asks for it.
    precision = "bf16" if variant == "bf16" else "f32"
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    config["ENABLE_CPU_PINNING"] = False  # the cores are shared with decoding
    compiled = ov.Core().compile_model(str(file), "CPU", config)
    output = compiled.output(OUTPUT)
    request = compiled.create_infer_request()
    return lambda images: request.infer({INPUT: images})[output].copy()


def _load_litert(file: Path, variant: str) -> Predict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(file), num_threads=_threads())
    runner = interpreter.get_signature_runner("serving_default")
    return lambda images: runner(**{INPUT: images})[OUTPUT]


@dataclass(frozen=True)
class Runtime:
    """One way to run an exported model: its package, its file, how to load it."""

    family: str  # onnx, openvino, litert
    module: str  # what to import
    pip: str  # what to install
    filename: str
    load: Callable[[Path, str], Predict]


FAMILIES = {
    "onnx": Runtime("onnx", "onnxruntime", "onnxruntime", "model.onnx", _load_onnx),
    "openvino": Runtime("openvino", "openvino", "openvino", "model.xml", _load_openvino),
    "litert": Runtime("litert", "ai_edge_litert", "ai-edge-litert", "model.tflite", _load_litert),
}
NAMES = RUNTIMES
CHOICES = ("auto", *NAMES)


def parse(name: str) -> tuple[Runtime, str]:
    """`openvino-int8` -> (the OpenVINO runtime, "int8")."""
    if name not in NAMES or name == "tf":
        raise InputError(f"--runtime={name}: choose from {', '.join(CHOICES)}")
    family, _, variant = name.partition("-")
    return FAMILIES[family], variant


def files_of(name: str) -> str:
    """The folder (relative to the version folder) holding a runtime's files."""
    runtime, variant = parse(name)
    return f"{FOLDER}/{runtime.family if variant == 'bf16' else name}"


def model_file(version: Path, name: str) -> Path:
    """The file a runtime loads from an export's version folder."""
    return version / files_of(name) / parse(name)[0].filename


def importable(module: str) -> bool:
    """Whether `module` imports here (imported: a broken install counts as missing)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def installed(name: str) -> bool:
    """Whether the package a runtime needs imports here."""
    return name == "tf" or importable(parse(name)[0].module)


def read_manifest(version: Path) -> dict[str, Any]:
    """`runtimes.json` of an export (empty when nothing but TensorFlow was exported)."""
    path = version / MANIFEST
    return json.loads(path.read_text()) if path.exists() else {"runtimes": {}}


def _auto(version: Path, manifest: dict[str, Any]) -> str:
    entries = manifest["runtimes"]
    best, best_rate = "tf", float(manifest.get("tf_tiles_per_s") or 0)
    for name, entry in entries.items():
        if not entry.get("default_ok", False):
            log.info("runtime %s not used by auto: %s", name, entry.get("not_default_because"))
            continue
        if not installed(name):
            log.info("runtime %s exported but %s is not installed", name, parse(name)[0].pip)
            continue
        if model_file(version, name).exists() and entry.get("tiles_per_s", 0) > best_rate:
            best, best_rate = name, entry["tiles_per_s"]
    if best != "tf":
        log.info(
            "runtime auto: %s (%.0f tiles/s model alone at export, TensorFlow %.0f)",
            best,
            best_rate,
            manifest.get("tf_tiles_per_s") or 0,
        )
    return best


def resolve(version: Path, requested: str) -> str:
    """The runtime a run uses: `requested`, checked, or auto's pick (cheap: nothing loaded).

    Raises InputError naming the missing package or file.
    """
    if requested == "tf":
        return "tf"
    if requested == "auto":
        if not version.is_dir():  # a .keras file: TensorFlow only
            return "tf"
        return _auto(version, read_manifest(version))
    runtime, _ = parse(requested)
    if not version.is_dir():
        raise InputError(
            f"--runtime={requested}: {version} is a .keras file; score an export folder made by "
            f"satx.train and `python -m satx.export --to={runtime.family}`"
        )
    file = model_file(version, requested)
    if not file.exists():
        raise InputError(
            f"--runtime={requested}: {file} does not exist; make it with `python -m satx.export "
            f"--model={version} --to={runtime.family}"
            + (" --int8 --calibration=RECORDS`" if requested.endswith("int8") else "`")
        )
    if not installed(requested):
        raise InputError(
            f"--runtime={requested}: the {runtime.pip} package is not installed; "
            "pip install 'satx[runtimes]'"
        )
    return requested


def load(version: Path, name: str) -> Predict:
    """A function uint8 [B, S, S, 3] -> probabilities [B, K] (float32) running `name`."""
    runtime, variant = parse(name)
    return runtime.load(model_file(version, name), variant)
