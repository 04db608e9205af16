"""Where in a tile the model sees a class: Grad-CAM on the last feature map (issue 39).

satx's head is global average pooling -> dense -> dropout -> logits, so the last feature map is
the pooling layer's input. Grad-CAM (Selvaraju et al., 2017) weighs that map's channels by the
mean gradient of a class's logit and keeps the positive part: a map [h, w] for the class asked
of each image, one backward pass through the backbone per batch whatever the number of
classes. The plain CAM of a head without the hidden dense layer would be the same map up to
scale.

    cam = cam_model(keras_model)             # None: not a satx classifier (no pool/logits)
    maps = class_maps(cam, images, classes)  # [B, h, w] float32, each image's class's map
    px, py = peaks(maps, size)               # the hottest pixel of each image, in its pixels

The export writes this as the `serving_cam` signature (`saved_model.py`); `predict --localize`
runs it on the hits only, after scoring.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf

CAM_SIGNATURE = "serving_cam"
FEATURES_LAYER = "pool"  # its input is the last feature map
LOGITS_LAYER = "logits"


def cam_model(model: Any) -> Any | None:
    """The classifier with two outputs, (last feature map, logits); None when it has no head."""
    import keras

    names = {layer.name for layer in model.layers}
    if not {FEATURES_LAYER, LOGITS_LAYER} <= names:
        return None
    features = model.get_layer(FEATURES_LAYER).input
    logits = model.get_layer(LOGITS_LAYER).output
    return keras.Model(model.input, [features, logits], name="cam")


def class_maps(cam: Any, images: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    """Grad-CAM of class `classes[b]` for each uint8 image [B, S, S, 3]: float32 [B, h, w].

    The images are independent (BatchNorm in inference mode), so the gradient of the chosen
    logits' sum gives each image its own class's gradient in one backward pass.
    """
    with tf.GradientTape() as tape:
        features, logits = cam(images, training=False)
        chosen = tf.gather(logits, tf.cast(classes, tf.int32), axis=1, batch_dims=1)
    grads = tf.cast(tape.gradient(chosen, features), tf.float32)
    weights = tf.reduce_mean(grads, axis=[1, 2])
    return tf.nn.relu(tf.einsum("bhwc,bc->bhw", tf.cast(features, tf.float32), weights))


def peaks(maps: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The hottest pixel of each map [B, h, w] upsampled to size x size: (x, y) in pixels.

    The map is resized bilinearly (its cells' centres onto the image's), so the peak falls
    between cells; x and y are pixel centres (0.5 .. size - 0.5).
    """
    maps = np.asarray(maps, np.float32)
    up = tf.image.resize(maps[..., None], [size, size], method="bilinear").numpy()[..., 0]
    flat = up.reshape(len(up), -1).argmax(axis=1)
    y, x = np.divmod(flat, size)
    return x + 0.5, y + 0.5
