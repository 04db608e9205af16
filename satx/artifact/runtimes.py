"""Inference runtimes an export can be converted for and scored with: one spec each.

    RuntimeSpec("onnx", module="onnxruntime", pip="onnxruntime", filename="model.onnx",
                load=_load_onnx, convert=convert.onnx, convert_needs=(("tf2onnx", "tf2onnx"),))

A spec is everything satx knows about a runtime: the package it runs on (and what converting
for it needs beyond TensorFlow), the file it loads, how to convert a SavedModel for it and how
to load the result, and its variants: `int8` (its own files, statically quantised on
calibration tiles) or `bf16` (the float files run in bfloat16 where the CPU has it). The CLI
choices (`--to`, `--runtime`), "not installed" messages, `--runtime=auto`, the bench and
`satx.export` all derive from `SPECS`; adding a runtime is one spec here (and its two
functions).

Every runtime takes the SavedModel's input (uint8 tiles [B, S, S, 3]) and returns its
`probabilities` (calibrated, as exported). Light to import: each runtime's package is imported
when it is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satx.artifact import convert
from satx.artifact.convert import INPUT, OUTPUT, Batches
from satx.errors import InputError
from satx.io.machine import cores_used

FOLDER = "runtimes"  # inside a version folder: runtimes/<name>/<filename>
Predict = Callable[[np.ndarray], np.ndarray]


def _load_onnx(file: Path, variant: str) -> Predict:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cores_used()
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


def _openvino_bf16() -> bool:
    import openvino as ov

    return "BF16" in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


def _load_litert(file: Path, variant: str) -> Predict:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(file), num_threads=cores_used())
    runner = interpreter.get_signature_runner("serving_default")
    return lambda images: runner(**{INPUT: images})[OUTPUT]


@dataclass(frozen=True)
class Variant:
    """A reduced-precision way to run a runtime: `int8` (own files) or `bf16` (the float ones)."""

    name: str
    own_files: bool  # converted into runtimes/<family>-<name>/ (quantised on calibration tiles)
    needs: tuple[tuple[str, str], ...] = ()  # (module, pip) its conversion needs besides
    available: Callable[[], bool] | None = None  # where the machine decides (bf16)


INT8 = Variant("int8", own_files=True)


@dataclass(frozen=True)
class RuntimeSpec:
    """One inference runtime: its package, its file, how to convert for it and load it."""

    family: str
    module: str  # what to import to run it
    pip: str  # what to install
    filename: str
    load: Callable[[Path, str], Predict]  # (file, variant) -> predict
    convert: Callable[[Path, Path, Batches | None], None]  # (SavedModel, folder, calibration)
    convert_needs: tuple[tuple[str, str], ...] = ()  # (module, pip) beyond `module` itself
    variants: tuple[Variant, ...] = (INT8,)

    def names(self) -> tuple[str, ...]:
        """`onnx`, `onnx-int8`, ...: what `--runtime` calls its models."""
        return (self.family, *(f"{self.family}-{v.name}" for v in self.variants))


SPECS = {
    spec.family: spec
    for spec in (
        RuntimeSpec(
            "onnx",
            "onnxruntime",
            "onnxruntime",
            "model.onnx",
            _load_onnx,
            convert.onnx,
            convert_needs=(("tf2onnx", "tf2onnx"),),
        ),
        RuntimeSpec(
            "openvino",
            "openvino",
            "openvino",
            "model.xml",
            _load_openvino,
            convert.openvino,
            variants=(
                Variant("bf16", own_files=False, available=_openvino_bf16),
                Variant("int8", own_files=True, needs=(("nncf", "nncf"),)),
            ),
        ),
        RuntimeSpec(
            "litert",
            "ai_edge_litert",
            "ai-edge-litert",
            "model.tflite",
            _load_litert,
            convert.litert,
        ),
    )
}
EXPORT_RUNTIMES = tuple(SPECS)  # what `satx.export --to` converts for
RUNTIMES = ("tf", *(name for spec in SPECS.values() for name in spec.names()))
CHOICES = ("auto", *RUNTIMES)


def parse(name: str) -> tuple[RuntimeSpec, Variant | None]:
    """`openvino-int8` -> (OpenVINO's spec, its int8 variant)."""
    if name not in RUNTIMES or name == "tf":
        raise InputError(f"--runtime={name}: choose from {', '.join(CHOICES)}")
    family, _, variant = name.partition("-")
    spec = SPECS[family]
    return spec, next((v for v in spec.variants if v.name == variant), None)


def files_of(name: str) -> str:
    """The folder (relative to the version folder) holding a runtime's files."""
    spec, variant = parse(name)
    return f"{FOLDER}/{name if variant is None or variant.own_files else spec.family}"


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


def missing_for_conversion(families: tuple[str, ...], int8: bool) -> list[str]:
    """Pip names of what converting for `families` (and their int8 models) needs and lacks."""
    needs = []
    for family in families:
        spec = SPECS[family]
        needs += [*spec.convert_needs, (spec.module, spec.pip)]
        needs += [need for v in spec.variants if int8 and v.own_files for need in v.needs]
    return sorted({pip for module, pip in needs if not importable(module)})


def conversions(families: tuple[str, ...], int8: bool) -> list[tuple[str, bool]]:
    """(runtime, whether it has files of its own to convert) in the order they are made."""
    names = []
    for family in families:
        spec = SPECS[family]
        names.append((family, True))
        for v in spec.variants:
            if (v.own_files and not int8) or (v.available and not v.available()):
                continue
            names.append((f"{family}-{v.name}", v.own_files))
    return names


def load(version: Path, name: str) -> Predict:
    """A function uint8 [B, S, S, 3] -> probabilities [B, K] (float32) running `name`."""
    spec, variant = parse(name)
    return spec.load(model_file(version, name), variant.name if variant else "")
