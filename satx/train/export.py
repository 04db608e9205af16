"""Export a trained classifier: a TF Serving SavedModel with two signatures, plus `.keras`.

Signatures (both return `{"probabilities": float32 [B, K]}`):
- `serving_default`: `images`, uint8 [B, S, S, 3];
- `serving_bytes`: `encoded`, string [B] of JPEG or PNG tiles (decoded exactly as in training,
  resized when their size differs from the model's).
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import keras
import tensorflow as tf

from satx.data.decode import decode_to_size
from satx.io.storage import atomic_write_local

log = logging.getLogger(__name__)


def latest_version(export_root: str | Path) -> int:
    """The highest numeric version folder under `export_root` (TF Serving's layout), or 0."""
    root = Path(export_root)
    versions = (
        [int(p.name) for p in root.iterdir() if re.fullmatch(r"\d+", p.name)]
        if root.exists()
        else []
    )
    return max(versions, default=0)


def next_version(export_root: str | Path) -> int:
    """1 + the highest numeric version folder under `export_root`."""
    return latest_version(export_root) + 1


def export_saved_model(
    model: keras.Model, export_root: str | Path, class_names: list[str], version: int | None = None
) -> Path:
    """Write `export_root/<version>/` (SavedModel + class names); returns the version folder.

    Written to a temporary sibling and renamed, so a half-written export is never picked up by
    TF Serving.
    """
    size = int(model.input.shape[1])
    version = version or next_version(export_root)
    target = Path(export_root) / str(version)
    tmp = Path(export_root) / f".{version}.tmp-{os.getpid()}"
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda images: {"probabilities": model(images, training=False)},
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")],
    )
    archive.add_endpoint(
        name="serving_bytes",
        fn=lambda encoded: {
            "probabilities": model(
                tf.map_fn(
                    lambda e: decode_to_size(e, size),
                    encoded,
                    fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
                ),
                training=False,
            )
        },
        input_signature=[tf.TensorSpec([None], tf.string, name="encoded")],
    )
    archive.write_out(str(tmp), verbose=False)
    atomic_write_local(tmp / "class_names.json", json.dumps(list(class_names)).encode())
    os.replace(tmp, target)
    log.info("exported SavedModel to %s (signatures serving_default, serving_bytes)", target)
    return target
