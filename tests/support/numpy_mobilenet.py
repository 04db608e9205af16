"""A numpy forward pass of torchvision's MobileNetV2, straight from its state dict.

The reference the Keras build in `satx.models.torch_layout` is checked against: written from
torchvision's module (Conv2d with padding k//2 on every side, BatchNorm eps 1e-5, ReLU6), not
from satx's code, in float64.
"""

from __future__ import annotations

import numpy as np

SETTING = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))
SETTING += ((6, 160, 3, 2), (6, 320, 1, 1))


def _conv(x: np.ndarray, weight: np.ndarray, stride: int, groups: int = 1) -> np.ndarray:
    """NHWC input, torch (out, in/groups, k, k) weight, padding k // 2 on every side."""
    k = weight.shape[-1]
    pad = k // 2
    x = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(1, 2))
    windows = windows[:, ::stride, ::stride]  # (n, h, w, c, k, k)
    if groups == 1:
        return np.einsum("nhwcij,ocij->nhwo", windows, weight, optimize=True)
    return np.einsum("nhwcij,cij->nhwc", windows, weight[:, 0], optimize=True)


def _bn(x: np.ndarray, state: dict, name: str) -> np.ndarray:
    scale = state[f"{name}.weight"] / np.sqrt(state[f"{name}.running_var"] + 1e-5)
    return (x - state[f"{name}.running_mean"]) * scale + state[f"{name}.bias"]


def _relu6(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0.0, 6.0)


def features(state: dict, images: np.ndarray) -> np.ndarray:
    """The backbone's last feature map (after the last ReLU6), NHWC, of preprocessed images."""
    state = {key: np.asarray(value, np.float64) for key, value in state.items()}
    x = np.asarray(images, np.float64)
    x = _relu6(_bn(_conv(x, state["features.0.0.weight"], 2), state, "features.0.1"))
    index = 1
    for expansion, _, repeats, first_stride in SETTING:
        for i in range(repeats):
            stride = first_stride if i == 0 else 1
            prefix = f"features.{index}.conv"
            y, j = x, 0
            if expansion != 1:
                y = _relu6(_bn(_conv(y, state[f"{prefix}.0.0.weight"], 1), state, f"{prefix}.0.1"))
                j = 1
            channels = y.shape[-1]
            depthwise = state[f"{prefix}.{j}.0.weight"]
            y = _relu6(_bn(_conv(y, depthwise, stride, channels), state, f"{prefix}.{j}.1"))
            y = _bn(_conv(y, state[f"{prefix}.{j + 1}.weight"], 1), state, f"{prefix}.{j + 2}")
            x = x + y if stride == 1 and x.shape[-1] == y.shape[-1] else y
            index += 1
    return _relu6(_bn(_conv(x, state["features.18.0.weight"], 1), state, "features.18.1"))
