"""The classifier: uint8 tiles in, class probabilities out, pure Keras 3.

    image (uint8) -> float32 -> augment (training only) -> the backbone's preprocessing -> backbone
    (pretrained: BatchNorm in inference mode) -> global average pool -> dense -> dropout -> softmax
    (float32, also under mixed precision)

Two-phase transfer learning works on this model: `freeze_backbone` (phase 1, head only) and
`unfreeze_from` (phase 2, backbone layers from a cut point on; BatchNorm of a pretrained
backbone stays frozen).
"""

from __future__ import annotations

import keras

from satx.config import ModelConfig
from satx.models import backbones
from satx.models.augment import build_augmentation

BACKBONE_LAYER = "backbone"  # the backbone sits inside the model as a nested model of this name


def _fast_batchnorm(backbone: keras.Model, momentum: float = 0.5) -> None:
    # keras.applications use momentum 0.99-0.999, tuned for ImageNet-length runs: from scratch,
    # the moving statistics would lag far behind for hundreds of steps and make validation
    # (inference mode) predict near-constants early on. Measured on the sample tiles (MobileNetV2,
    # 64 px, 12 steps/epoch): val AUC per epoch 0.5,0.5,0.5,0.5,0.65,1.0 at momentum 0.9 and
    # 0.93,0.94,0.98,0.99,0.99,1.0 at 0.5.
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum


def build_classifier(config: ModelConfig, num_classes: int, *, seed: int) -> keras.Model:
    """Build the (uncompiled) classifier for `num_classes` classes (2 for binary).

    `seed` is the run's: it seeds the augmentation layers (weights follow Keras' global seed,
    which the run sets from the same value).
    """
    spec = backbones.get_spec(config.backbone)
    size = backbones.input_size(config)
    backbone = backbones.create_backbone(config.backbone, size, config.weights)
    if not config.pretrained:
        _fast_batchnorm(backbone, config.bn_momentum)
    # Wrap so the backbone always has the same layer name, whatever Keras calls it.
    inner = keras.Input((size, size, 3), name="backbone_input")
    backbone = keras.Model(inner, backbone(inner), name=BACKBONE_LAYER)

    inputs = keras.Input((size, size, 3), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0, dtype="float32", name="to_float")(inputs)
    augment = build_augmentation(config.augment, seed)
    if augment.layers:  # an empty Sequential cannot be built
        x = augment(x)
    x = backbones.Preprocess(spec.preprocess, name="preprocess")(x)
    # Pretrained: BatchNorm keeps its learned statistics (inference mode) in both phases.
    # From scratch it must learn them, so it follows the training flag like any layer.
    x = backbone(x, training=False) if config.pretrained else backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dense(config.dense_units, activation=config.dense_activation, name="dense")(x)
    x = keras.layers.Dropout(config.dropout, name="dropout")(x)
    x = keras.layers.Dense(num_classes, name="logits")(x)
    outputs = keras.layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"satx_{config.backbone}")


def backbone_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """The layers of the model's backbone, in order."""
    return model.get_layer(BACKBONE_LAYER).layers[-1].layers


def freeze_backbone(model: keras.Model) -> None:
    """Phase 1: only the head trains."""
    model.get_layer(BACKBONE_LAYER).trainable = False


def unfreeze_from(
    model: keras.Model,
    cutoff: backbones.Cutoff,
    backbone_name: str,
    freeze_batchnorm: bool = True,
) -> int:
    """Phase 2: backbone layers from the cut point on train.

    BatchNorm stays frozen when `freeze_batchnorm` (pretrained backbones: fine-tuning its
    statistics on small batches destroys them); from scratch it trains like the rest.

    Returns:
        The index of the first trainable backbone layer.
    """
    outer = model.get_layer(BACKBONE_LAYER)
    inner = outer.layers[-1]
    spec = backbones.get_spec(backbone_name)
    start = backbones.resolve_cutoff(inner, cutoff, spec.cutoffs)
    outer.trainable = True
    inner.trainable = True
    for i, layer in enumerate(inner.layers):
        is_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = i >= start and not (is_norm and freeze_batchnorm)
    return start
