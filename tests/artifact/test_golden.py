"""`satx.export`'s runtimes.json for a fixed model and records: the record it wrote before the
artifact layer and the runtime registry (issue 37), in every field that does not depend on
timing or on the converted model's floats. The expected values were written by the code of
70172c3, before the registry.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import cli

TOP_KEYS = [
    "agreement_on",
    "command",
    "config.agreement_split",
    "config.agreement_tiles",
    "config.batch_size",
    "config.calibration",
    "config.calibration_split",
    "config.calibration_tiles",
    "config.float_tolerance",
    "config.int8",
    "config.max_auc_drop",
    "config.model",
    "config.threshold",
    "config.threshold_from",
    "config.to",
    "image_size",
    "num_classes",
    "tf_tiles_per_s",
]
ENTRY_KEYS = [
    "agreement.auc_drop",
    "agreement.flipped",
    "agreement.flipped_share",
    "agreement.max_abs_diff",
    "agreement.mean_abs_diff",
    "agreement.roc_auc",
    "agreement.roc_auc_tf",
    "agreement.threshold",
    "agreement.tiles",
    "bytes",
    "convert_seconds",
    "default_ok",
    "file",
    "not_default_because",
    "sha256",
    "tiles_per_s",
]
RUNTIMES = ("litert", "litert-int8", "onnx", "onnx-int8")
EXPECTED_PATHS = sorted([*TOP_KEYS, *(f"runtimes.{r}.{k}" for r in RUNTIMES for k in ENTRY_KEYS)])
EXPECTED = {
    "agreement_on": "RECORDS split test",
    "config": {
        "agreement_split": "test",
        "agreement_tiles": 0,
        "batch_size": 32,
        "calibration": "RECORDS",
        "calibration_split": "val",
        "calibration_tiles": 256,
        "float_tolerance": 0.0001,
        "int8": True,
        "max_auc_drop": 0.005,
        "model": "EXPORT",
        "threshold": 0.5,
        "threshold_from": "",
        "to": ["onnx", "litert"],
    },
    "image_size": 32,
    "num_classes": 2,
    "runtimes": {
        "litert": {
            "agreement": {"threshold": 0.5, "tiles": 15},
            "default_ok": True,
            "file": "runtimes/litert/model.tflite",
            "not_default_because": None,
        },
        "litert-int8": {
            "agreement": {"threshold": 0.5, "tiles": 15},
            "file": "runtimes/litert-int8/model.tflite",
        },
        "onnx": {
            "agreement": {"threshold": 0.5, "tiles": 15},
            "default_ok": True,
            "file": "runtimes/onnx/model.onnx",
            "not_default_because": None,
        },
        "onnx-int8": {
            "agreement": {"threshold": 0.5, "tiles": 15},
            "file": "runtimes/onnx-int8/model.onnx",
        },
    },
}
TIMED_OR_FLOAT = {"bytes", "convert_seconds", "sha256", "tiles_per_s", "agreement"}


def _paths(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix]
    return [p for k, v in sorted(node.items()) for p in _paths(v, f"{prefix}.{k}" if prefix else k)]


def _stable(record: dict[str, Any], places: dict[str, str]) -> dict[str, Any]:
    """The record without its timings, floats and run record, with its paths named."""
    text = json.dumps(record, sort_keys=True)
    for path, name in places.items():
        text = text.replace(path, name)
    stable = json.loads(text)
    for drop in ("versions", "command", "tf_tiles_per_s"):
        stable.pop(drop, None)
    for name, entry in stable["runtimes"].items():
        if name.endswith("-int8"):  # within the limits or not: the int8 model's floats decide
            entry.pop("default_ok")
            entry.pop("not_default_because")
        agreement = entry.get("agreement") or {}
        for key in TIMED_OR_FLOAT:
            entry.pop(key, None)
        entry["agreement"] = {k: agreement[k] for k in ("tiles", "threshold") if k in agreement}
    return stable


@pytest.mark.slow
def test_runtimes_json_is_what_it_always_was(tiny_model, sample_records, tmp_path):
    export = tmp_path / "export"
    shutil.copytree(Path(tiny_model["export"]).parent, export)
    args = ["satx.export", f"--model={export}", "--to=onnx,litert", "--int8"]
    cli(*args, f"--calibration={sample_records}", check=True)
    record = json.loads(next(export.glob("*/runtimes.json")).read_text())
    stable = _stable(record, {str(export): "EXPORT", sample_records: "RECORDS"})
    assert sorted(_paths({k: v for k, v in record.items() if k != "versions"})) == EXPECTED_PATHS
    assert stable == EXPECTED
