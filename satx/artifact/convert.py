"""Convert a SavedModel version folder for ONNX Runtime, OpenVINO and LiteRT, float or int8.

Each converter (a runtime spec's `convert`, `satx.artifact.runtimes`) reads the SavedModel's
`serving_default` (uint8 `images` -> calibrated `probabilities`, `uncalibrated_probabilities`,
`logits`) and writes one runtime's files into an empty folder. The int8 ones quantise
statically: activation ranges come from `calibration`, a list of uint8 batches from the
validation split; weights are per-channel where the runtime allows (all three do).
- ONNX: tf2onnx (opset 17, as its own CLI in a child process: it converts through TensorFlow's
  graph tools), then ONNX Runtime's `quantize_static` (QDQ, int8 weights per channel, uint8
  activations; every op type it can quantise up to the head: convolutions alone ran at 1.07x
  the float model, all of them at 2.1x; the head, softmax and calibration stay float).
- OpenVINO: `openvino.convert_model` on the SavedModel, then NNCF's post-training quantisation.
- LiteRT: TensorFlow's `TFLiteConverter` on the signature, int8 with float fallback for what
  has no int8 kernel; the head and what follows it stay float (the quantisation debugger's
  deny list). One quantise/dequantise pair stays on the uncalibrated softmax, so LiteRT int8
  scores move in steps of 1/256 before calibration.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from satx.errors import SatxError

log = logging.getLogger(__name__)

OPSET = 17
INPUT, OUTPUT = "images", "probabilities"  # the SavedModel's serving_default, every runtime's
Batches = list[np.ndarray]


class ConversionFailed(SatxError):
    """A converter could not turn the SavedModel into a runtime's model."""


def _head_and_after(file: Path) -> list[str]:
    """The ONNX nodes from the classifier's last matrix product on, left in float.

    The head, the softmax and the calibration: quantised, scores came out in steps of 1/255.
    """
    import onnx

    nodes = onnx.load(str(file), load_external_data=False).graph.node
    last = max(i for i, n in enumerate(nodes) if n.op_type in ("MatMul", "Gemm"))
    tail, names = [nodes[last]], set(nodes[last].output)
    for node in nodes[last + 1 :]:  # ONNX nodes are in topological order
        if names & set(node.input):
            tail.append(node)
            names |= set(node.output)
    return [n.name for n in tail]


def onnx(version: Path, out: Path, calibration: Batches | None) -> None:
    """ONNX Runtime's model.onnx (tf2onnx; int8: quantize_static, QDQ)."""
    target = out / "model.onnx"
    float_file = target if calibration is None else out / "float.onnx"
    command = [sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(version)]
    command += ["--signature_def", "serving_default", "--opset", str(OPSET)]
    done = subprocess.run(
        [*command, "--output", str(float_file)], capture_output=True, text=True, check=False
    )
    if done.returncode:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise ConversionFailed(f"tf2onnx failed on {version}: {tail}")
    if calibration is None:
        return
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calibration)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    prepared = out / "prepared.onnx"
    quant_pre_process(str(float_file), str(prepared), skip_symbolic_shape=True)
    quantize_static(
        str(prepared),
        str(target),
        Reader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=_head_and_after(prepared),
    )
    float_file.unlink()
    prepared.unlink()


def openvino(version: Path, out: Path, calibration: Batches | None) -> None:
    """OpenVINO's model.xml/.bin (convert_model; int8: NNCF)."""
    import openvino as ov

    model = ov.convert_model(str(version))
    if calibration is not None:
        import nncf

        dataset = nncf.Dataset(calibration)
        model = nncf.quantize(model, dataset, subset_size=len(calibration))
    ov.save_model(model, str(out / "model.xml"), compress_to_fp16=False)


def _litert_tail(float_model: bytes) -> list[str]:
    """The LiteRT tensors from the classifier's last matrix product on, left in float.

    As `_head_and_after`: quantised, the final softmax's rows summed to 0.996 now and then.
    LiteRT lists its ops in execution order; the op list is the interpreter's (private) one.
    """
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=float_model)
    ops = interpreter._get_ops_details()
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    last = max(i for i, op in enumerate(ops) if op["op_name"] == "FULLY_CONNECTED")
    return [names[t] for op in ops[last:] for t in op["outputs"]]


def litert(version: Path, out: Path, calibration: Batches | None) -> None:
    """LiteRT's model.tflite (TFLiteConverter; int8 up to the head, float fallback)."""
    import tensorflow as tf

    def converter() -> tf.lite.TFLiteConverter:
        return tf.lite.TFLiteConverter.from_saved_model(
            str(version), signature_keys=["serving_default"]
        )

    model = converter().convert()
    if calibration is not None:

        def representative() -> Iterator[dict[str, np.ndarray]]:
            for batch in calibration:
                for image in batch:
                    yield {INPUT: image[None]}

        quantising = converter()
        quantising.optimizations = [tf.lite.Optimize.DEFAULT]
        quantising.representative_dataset = representative
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_nodes=_litert_tail(model)
        )
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=quantising, debug_dataset=representative, debug_options=options
        )
        model = debugger.get_nondebug_quantized_model()
    (out / "model.tflite").write_bytes(model)
