"""Device-side augmentation: Keras 3 layers that run inside the model, only in training.

Inputs are float pixels in [0, 255] (the model casts uint8 first); outputs stay in [0, 255].
Every layer takes an explicit seed, honours `training`, is the identity at inference and
implements `get_config`, so a saved model reloads in Keras safe mode.

Overhead tiles have no "up": all 8 symmetries of the square (dihedral group D4) are equally
valid. `RandomFlip("horizontal_and_vertical")` draws one coin for both axes and never produces
the 90-degree rotations; `RandomDihedral` draws three independent coins (flip left-right, flip
up-down, transpose) per image, which together give each of the 8 symmetries with p = 1/8.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from satx.config import AugmentConfig

PACKAGE = "satx"


class _SeededAugment(keras.layers.Layer):
    """Base: a seed generator, identity outside training, config round trip."""

    def __init__(self, seed: int | None = None, **kwargs: Any):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        """Augment when training, pass through otherwise."""
        if not training:
            return inputs
        return self.augment(inputs)

    def augment(self, images: Any) -> Any:
        """The training-time transformation of a batch."""
        raise NotImplementedError

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        """Shape is unchanged."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        return {**super().get_config(), "seed": self.seed}

    def _per_image(self, images: Any, minval: float, maxval: float, channels: int = 1) -> Any:
        batch = ops.shape(images)[0]
        return keras.random.uniform(
            (batch, 1, 1, channels), minval, maxval, dtype=images.dtype, seed=self.seed_generator
        )


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomDihedral(_SeededAugment):
    """One of the 8 symmetries of a square tile per image (flips x 90-degree rotations)."""

    def augment(self, images: Any) -> Any:
        """Three independent coins per image: flip left-right, flip up-down, transpose."""
        batch = ops.shape(images)[0]
        coins = keras.random.uniform((3, batch, 1, 1, 1), seed=self.seed_generator) < 0.5
        images = ops.where(coins[0], ops.flip(images, axis=2), images)
        images = ops.where(coins[1], ops.flip(images, axis=1), images)
        return ops.where(coins[2], ops.transpose(images, (0, 2, 1, 3)), images)


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomBrightness(_SeededAugment):
    """Multiply each image by a factor drawn from `factor_range`."""

    def __init__(self, factor_range: tuple[float, float] = (0.8, 1.2), **kwargs: Any):
        super().__init__(**kwargs)
        self.factor_range = tuple(factor_range)

    def augment(self, images: Any) -> Any:
        """Scale and clip to [0, 255]."""
        factor = self._per_image(images, *self.factor_range)
        return ops.clip(images * factor, 0.0, 255.0)

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        return {**super().get_config(), "factor_range": self.factor_range}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomChannelShift(_SeededAugment):
    """Add an independent offset in [-levels, levels] to each channel of each image."""

    def __init__(self, levels: float = 10.0, **kwargs: Any):
        super().__init__(**kwargs)
        self.levels = float(levels)

    def augment(self, images: Any) -> Any:
        """Shift and clip to [0, 255]."""
        shift = self._per_image(images, -self.levels, self.levels, channels=ops.shape(images)[-1])
        return ops.clip(images + shift, 0.0, 255.0)

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        return {**super().get_config(), "levels": self.levels}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RandomContrast(_SeededAugment):
    """Scale each image's deviation from its own mean by a factor from `factor_range`."""

    def __init__(self, factor_range: tuple[float, float] = (0.9, 1.1), **kwargs: Any):
        super().__init__(**kwargs)
        self.factor_range = tuple(factor_range)

    def augment(self, images: Any) -> Any:
        """Stretch around the per-image mean and clip to [0, 255]."""
        factor = self._per_image(images, *self.factor_range)
        mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
        return ops.clip((images - mean) * factor + mean, 0.0, 255.0)

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        return {**super().get_config(), "factor_range": self.factor_range}


def build_augmentation(config: AugmentConfig, seed: int) -> keras.Sequential:
    """The training augmentation stack for `config` (identity at inference), seeded by the run."""
    layers: list[keras.layers.Layer] = []
    if config.dihedral:
        layers.append(RandomDihedral(seed=seed, name="dihedral"))
    if config.rotation_deg > 0:
        factor = config.rotation_deg / 360.0
        layers.append(
            keras.layers.RandomRotation(
                factor, fill_mode="reflect", seed=seed + 1, name="rotation", dtype="float32"
            )
        )
    if config.zoom_max > 1.0:
        zoom = -(1.0 - 1.0 / config.zoom_max)  # negative: zoom in, showing 1/zoom of the tile
        layers.append(
            keras.layers.RandomZoom(
                (zoom, 0.0), fill_mode="reflect", seed=seed + 2, name="zoom", dtype="float32"
            )
        )
    if tuple(config.brightness) != (1.0, 1.0):
        layers.append(RandomBrightness(config.brightness, seed=seed + 3, name="brightness"))
    if config.channel_shift > 0:
        layers.append(RandomChannelShift(config.channel_shift, seed=seed + 4, name="channel_shift"))
    if tuple(config.contrast) != (1.0, 1.0):
        layers.append(RandomContrast(config.contrast, seed=seed + 5, name="contrast"))
    return keras.Sequential(layers, name="augment")
