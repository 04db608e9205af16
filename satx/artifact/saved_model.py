"""Write a trained classifier as an artifact's version folder: a TF Serving SavedModel.

Signatures (both return `probabilities`, float32 [B, K], calibrated by the temperature and
class bias fitted on the validation split (`satx.artifact.calibration`), plus
`uncalibrated_probabilities` and `logits`, the model's own log-probabilities):
- `serving_default`: `images`, uint8 [B, S, S, 3];
- `serving_bytes`: `encoded`, string [B] of JPEG or PNG tiles (decoded exactly as in training,
  resized when their size differs from the model's);
- `serving_tta` (with `--export_tta`): `images` as above; `probabilities` averaged over the
  tile's 8 symmetries (test-time augmentation, 8x the model's work);
- `serving_cam`: `images` as above and `classes`, int32 [B]; `probabilities`, and
  `class_map` float32 [B, h, w], the Grad-CAM of each image's class on the last feature map
  (`satx.artifact.cam`): where in the tile the model sees it. Written for satx's classifiers
  (a model without their head has none).
The calibration is also written to `calibration.json` beside `class_names.json`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import keras
import tensorflow as tf

from satx.artifact.artifact import CALIBRATION_FILE, CLASS_NAMES_FILE, latest_version
from satx.artifact.calibration import Calibration
from satx.artifact.cam import CAM_SIGNATURE, cam_model, class_maps
from satx.data.decode import decode_to_size, dihedral_mean
from satx.io.storage import atomic_write_local

log = logging.getLogger(__name__)


def _next_version(export_root: str | Path) -> int:
    """1 + the highest numeric version folder under `export_root`."""
    return latest_version(export_root) + 1


def _outputs(probabilities: tf.Tensor, calibration: Calibration) -> dict[str, tf.Tensor]:
    logits = tf.math.log(tf.clip_by_value(tf.cast(probabilities, tf.float32), 1e-12, 1.0))
    calibrated = logits / calibration.temperature
    if calibration.bias:
        calibrated += tf.constant(calibration.bias, tf.float32)
    return {
        "probabilities": tf.nn.softmax(calibrated, axis=-1),
        "uncalibrated_probabilities": tf.cast(probabilities, tf.float32),
        "logits": logits,
    }


def write_saved_model(
    model: keras.Model,
    export_root: str | Path,
    class_names: list[str],
    version: int | None = None,
    calibration: Calibration | None = None,
    tta: bool = False,
) -> Path:
    """Write `export_root/<version>/` (SavedModel + class names); returns the version folder.

    Written to a temporary sibling and renamed, so a half-written export is never picked up by
    TF Serving.
    """
    calibration = calibration or Calibration()
    size = int(model.input.shape[1])
    version = version or _next_version(export_root)
    target = Path(export_root) / str(version)
    tmp = Path(export_root) / f".{version}.tmp-{os.getpid()}"
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(
        name="serving_default",
        fn=lambda images: _outputs(model(images, training=False), calibration),
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")],
    )
    archive.add_endpoint(
        name="serving_bytes",
        fn=lambda encoded: _outputs(
            model(
                tf.map_fn(
                    lambda e: decode_to_size(e, size),
                    encoded,
                    fn_output_signature=tf.TensorSpec([size, size, 3], tf.uint8),
                ),
                training=False,
            ),
            calibration,
        ),
        input_signature=[tf.TensorSpec([None], tf.string, name="encoded")],
    )
    if tta:
        archive.add_endpoint(
            name="serving_tta",
            fn=lambda images: {
                "probabilities": dihedral_mean(
                    lambda x: _outputs(model(x, training=False), calibration)["probabilities"],
                    images,
                )
            },
            input_signature=[tf.TensorSpec([None, size, size, 3], tf.uint8, name="images")],
        )
    cam = cam_model(model)
    if cam is not None:
        archive.track(cam)
        archive.add_endpoint(
            name=CAM_SIGNATURE,
            fn=lambda images, classes: {
                "probabilities": _outputs(model(images, training=False), calibration)[
                    "probabilities"
                ],
                "class_map": class_maps(cam, images, classes),
            },
            input_signature=[
                tf.TensorSpec([None, size, size, 3], tf.uint8, name="images"),
                tf.TensorSpec([None], tf.int32, name="classes"),
            ],
        )
    archive.write_out(str(tmp), verbose=False)
    atomic_write_local(tmp / CLASS_NAMES_FILE, json.dumps(list(class_names)).encode())
    atomic_write_local(tmp / CALIBRATION_FILE, json.dumps(calibration.to_dict()).encode())
    os.replace(tmp, target)
    signatures = "serving_default, serving_bytes" + (", serving_tta" if tta else "")
    signatures += f", {CAM_SIGNATURE}" if cam is not None else ""
    log.info("exported SavedModel to %s (signatures %s)", target, signatures)
    return target
