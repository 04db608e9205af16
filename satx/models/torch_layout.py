"""Backbones in PyTorch's layout, so PyTorch ImageNet checkpoints reproduce their outputs in Keras.

`mobilenet_v2` is torchvision's MobileNetV2 (Sandler et al. 2018) built from Keras layers. It
differs from `keras.applications.MobileNetV2` in the two places where a torchvision checkpoint
needs it (measured for issue 36; either difference alone ruins the ImageNet predictions):
- every stride-2 3x3 convolution pads one pixel on each side (Keras pads bottom/right only);
- BatchNorm's epsilon is 1e-5 (Keras' MobileNetV2 uses 1e-3; 5,527 of its 17,056 channels have
  a running variance below 1e-3).
The layer names are Keras' (`Conv1`, `block_13_expand`, `Conv_1`, ...), so the fine-tuning
cut-offs of `mobilenetv2` name the same places. Inputs use torchvision's preprocessing.

`state_dict_map(model, state)` maps a torchvision or timm state dict onto the layers by name:
`{layer name: [arrays in Keras order]}`.
"""

from __future__ import annotations

from collections.abc import Iterator

import keras
import numpy as np

# (expansion, output channels, repeats, first stride): torchvision's inverted_residual_setting
_BLOCKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
_BLOCKS += ((6, 160, 3, 2), (6, 320, 1, 1))
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.999  # keras.applications' (PyTorch's 0.1 is 0.9 here); fine-tuning freezes BN


def _conv_bn(x, filters: int, kernel: int, stride: int, name: str, bn: str, relu: bool = True):
    if stride == 2:
        x = keras.layers.ZeroPadding2D(kernel // 2, name=f"{name}_pad")(x)
    padding = "valid" if stride == 2 else "same"
    if filters:
        conv = keras.layers.Conv2D(filters, kernel, stride, padding, use_bias=False, name=name)
    else:
        conv = keras.layers.DepthwiseConv2D(kernel, stride, padding, use_bias=False, name=name)
    x = keras.layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=bn)(conv(x))
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x


def _block(x, expansion: int, filters: int, stride: int, prefix: str):
    channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = _conv_bn(y, channels * expansion, 1, 1, f"{prefix}expand", f"{prefix}expand_BN")
    y = _conv_bn(y, 0, 3, stride, f"{prefix}depthwise", f"{prefix}depthwise_BN")
    y = _conv_bn(y, filters, 1, 1, f"{prefix}project", f"{prefix}project_BN", relu=False)
    if stride == 1 and channels == filters:
        y = keras.layers.Add(name=f"{prefix}add")([x, y])
    return y


def _prefixes() -> Iterator[tuple[str, int, int, int]]:
    """(Keras name prefix, expansion, filters, stride) of each inverted residual block."""
    index = 0
    for expansion, filters, repeats, stride in _BLOCKS:
        for i in range(repeats):
            prefix = "expanded_conv_" if index == 0 else f"block_{index}_"
            yield prefix, expansion, filters, stride if i == 0 else 1
            index += 1


def mobilenet_v2(
    include_top: bool = False,
    weights: str | None = None,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    classes: int = 1000,
) -> keras.Model:
    """MobileNetV2 (width 1.0) as torchvision builds it, in Keras layers, without weights.

    `weights` must be None: satx loads checkpoints itself (`satx.models.weights`).
    """
    if weights is not None:
        raise ValueError("torch-layout backbones are built empty; weights come from a checkpoint")
    inputs = keras.Input(input_shape)
    x = _conv_bn(inputs, 32, 3, 2, "Conv1", "bn_Conv1")
    for prefix, expansion, filters, stride in _prefixes():
        x = _block(x, expansion, filters, stride, prefix)
    x = _conv_bn(x, 1280, 1, 1, "Conv_1", "Conv_1_bn")
    x = keras.layers.ReLU(6.0, name="out_relu")(x)  # Keras' name for the last activation
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(x)
        x = keras.layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, x, name="mobilenetv2_tv")


# -- name maps: which tensors of a state dict fill which Keras layer ---------------------------

_BN_PARTS = ("weight", "bias", "running_mean", "running_var")


def _torchvision_names() -> Iterator[tuple[str, str, str]]:
    """(Keras layer, kind, torchvision module) for every weighted layer."""
    yield "Conv1", "conv", "features.0.0"
    yield "bn_Conv1", "bn", "features.0.1"
    for index, (prefix, expansion, _, _) in enumerate(_prefixes(), start=1):
        parts = ["expand", "depthwise", "project"] if expansion != 1 else ["depthwise", "project"]
        for j, part in enumerate(parts):
            kind = "depthwise" if part == "depthwise" else "conv"
            if part == "project":  # a bare conv, then its BatchNorm
                yield f"{prefix}{part}", kind, f"features.{index}.conv.{j}"
                yield f"{prefix}{part}_BN", "bn", f"features.{index}.conv.{j + 1}"
            else:  # Conv2dNormActivation: .0 conv, .1 BatchNorm
                yield f"{prefix}{part}", kind, f"features.{index}.conv.{j}.0"
                yield f"{prefix}{part}_BN", "bn", f"features.{index}.conv.{j}.1"
    yield "Conv_1", "conv", "features.18.0"
    yield "Conv_1_bn", "bn", "features.18.1"
    yield "predictions", "dense", "classifier.1"


def _timm_names() -> Iterator[tuple[str, str, str]]:
    """The same for timm's `mobilenetv2_100` (conv_stem, blocks.S.B.conv_pw, ..., conv_head)."""
    yield "Conv1", "conv", "conv_stem"
    yield "bn_Conv1", "bn", "bn1"
    stage_of = [s for s, (_, _, repeats, _) in enumerate(_BLOCKS) for _ in range(repeats)]
    for index, (prefix, expansion, _, _) in enumerate(_prefixes()):
        stage = stage_of[index]
        block = f"blocks.{stage}.{index - stage_of.index(stage)}"
        if expansion == 1:  # DepthwiseSeparableConv
            parts = [("depthwise", "conv_dw", "bn1"), ("project", "conv_pw", "bn2")]
        else:  # InvertedResidual
            parts = [("expand", "conv_pw", "bn1"), ("depthwise", "conv_dw", "bn2")]
            parts.append(("project", "conv_pwl", "bn3"))
        for part, conv, norm in parts:
            kind = "depthwise" if part == "depthwise" else "conv"
            yield f"{prefix}{part}", kind, f"{block}.{conv}"
            yield f"{prefix}{part}_BN", "bn", f"{block}.{norm}"
    yield "Conv_1", "conv", "conv_head"
    yield "Conv_1_bn", "bn", "bn2"
    yield "predictions", "dense", "classifier"


def _tensor_names(kind: str, module: str) -> list[str]:
    if kind == "bn":
        return [f"{module}.{part}" for part in _BN_PARTS]
    if kind == "dense":
        return [f"{module}.weight", f"{module}.bias"]
    return [f"{module}.weight"]


def _to_keras(kind: str, arrays: list[np.ndarray]) -> list[np.ndarray]:
    if kind == "conv":  # (out, in, h, w) -> (h, w, in, out)
        return [arrays[0].transpose(2, 3, 1, 0)]
    if kind == "depthwise":  # (channels, 1, h, w) -> (h, w, channels, 1)
        return [arrays[0].transpose(2, 3, 0, 1)]
    if kind == "dense":  # (out, in) -> (in, out)
        return [arrays[0].T, arrays[1]]
    return arrays  # BatchNorm: gamma, beta, moving mean, moving variance


def state_dict_map(
    model: keras.Model, state: dict[str, np.ndarray]
) -> tuple[dict[str, list[np.ndarray]], list[str]]:
    """The Keras arrays of each weighted layer of `model`, from a torchvision or timm state dict.

    Returns:
        `{layer name: arrays}` and the names of the tensors the map used (the caller checks
        that every tensor was used and every layer filled).
    """
    names = _timm_names if "conv_stem.weight" in state else _torchvision_names
    present = {layer.name for layer in model.layers}
    mapped: dict[str, list[np.ndarray]] = {}
    used: list[str] = []
    for layer, kind, module in names():
        keys = _tensor_names(kind, module)
        if layer not in present and kind == "dense":
            used += [key for key in keys if key in state]  # the ImageNet top of a no-top model
            continue
        missing = [key for key in keys if key not in state]
        if missing:
            raise KeyError(f"no tensor {missing[0]} for layer {layer}")
        mapped[layer] = _to_keras(kind, [state[key] for key in keys])
        used += keys
        if kind == "bn" and f"{module}.num_batches_tracked" in state:
            used.append(f"{module}.num_batches_tracked")
    return mapped, used
