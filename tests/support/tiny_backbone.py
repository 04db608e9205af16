"""A two-conv `tiny` backbone so model, training and tuning tests run in seconds on a CPU.

Imported by conftest; CLI subprocesses load it with
`SATX_BACKBONE_MODULES=tests.support.tiny_backbone`.
Not listed: `--backbone=all` and the benchmarks' defaults leave it out.
"""

import keras

from satx.models.backbones import register_backbone


@register_backbone(
    "tiny",
    image_size=32,
    min_image_size=8,
    cutoffs={"top": "conv2"},
    default_cutoff="conv2",
    listed=False,
)
def tiny(include_top=False, weights=None, input_shape=(32, 32, 3)):
    if weights is not None:
        raise ValueError("the tiny test backbone has no pretrained weights")
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv1")(inputs)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.ReLU(name="relu1")(x)
    x = keras.layers.Conv2D(16, 3, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2")(x)
    x = keras.layers.ReLU(name="relu2")(x)
    return keras.Model(inputs, x, name="tiny")


@register_backbone(
    "tiny_flat",
    image_size=32,
    min_image_size=8,
    cutoffs={"top": "conv2"},
    default_cutoff="conv2",
    listed=False,
)
def tiny_flat(include_top=False, weights=None, input_shape=(32, 32, 3)):
    """`tiny` without BatchNorm: per-replica batch statistics would make replicas differ."""
    if weights is not None:
        raise ValueError("the tiny test backbone has no pretrained weights")
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv2")(x)
    return keras.Model(inputs, x, name="tiny_flat")
