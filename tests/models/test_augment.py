"""Augmentation layers: eager and in tf.function, inference identity, ranges, symmetries."""

from collections import Counter

import keras
import numpy as np
import pytest
import tensorflow as tf

from satx.config import AugmentConfig
from satx.models import augment
from satx.models.augment import build_augmentation


def _batch(n=8, size=16, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (n, size, size, 3)).astype("float32")


LAYERS = [
    lambda: augment.RandomDihedral(seed=1),
    lambda: augment.RandomBrightness((0.8, 1.2), seed=1),
    lambda: augment.RandomChannelShift(10.0, seed=1),
    lambda: augment.RandomContrast((0.8, 1.2), seed=1),
    lambda: build_augmentation(AugmentConfig(rotation_deg=10.0), seed=1),
]


@pytest.mark.parametrize("make", LAYERS)
@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_layers_shape_dtype_range_and_inference_identity(make, mode):
    layer = make()
    x = _batch()
    call = (
        (lambda t, training: layer(t, training=training))
        if mode == "eager"
        else tf.function(lambda t, training: layer(t, training=training), reduce_retracing=True)
    )
    out = np.asarray(call(tf.constant(x), True))
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0
    assert not np.allclose(out, x)
    np.testing.assert_array_equal(np.asarray(call(tf.constant(x), False)), x)


def _symmetries(image):
    """The 8 images of the dihedral group acting on `image`, keyed by name."""
    out = {}
    for k in range(4):
        rotated = np.rot90(image, k, axes=(0, 1))
        out[f"rot{90 * k}"] = rotated
        out[f"rot{90 * k}+flip"] = np.fliplr(rotated)
    return out


@pytest.mark.parametrize("mode", ["eager", "tf.function"])
def test_dihedral_produces_all_8_symmetries_evenly(mode):
    image = np.arange(5 * 5 * 3, dtype="float32").reshape(5, 5, 3)  # no symmetry of its own
    targets = _symmetries(image)
    assert len({t.tobytes() for t in targets.values()}) == 8
    layer = augment.RandomDihedral(seed=7)
    fn = layer if mode == "eager" else tf.function(lambda t, training: layer(t, training=training))
    out = np.asarray(fn(tf.constant(np.repeat(image[None], 800, axis=0)), training=True))
    seen = Counter()
    for result in out:
        names = [n for n, t in targets.items() if np.array_equal(result, t)]
        assert len(names) == 1  # always exactly one symmetry: pixels only move
        seen[names[0]] += 1
    assert set(seen) == set(targets)
    assert all(60 <= n <= 140 for n in seen.values()), seen  # ~100 each


def test_flip_alone_misses_rotations():
    """The reason RandomDihedral exists: Keras' flip never yields 90-degree rotations."""
    image = np.arange(5 * 5 * 3, dtype="float32").reshape(5, 5, 3)
    targets = _symmetries(image)
    flip = keras.layers.RandomFlip("horizontal_and_vertical", seed=3)
    out = np.asarray(flip(np.repeat(image[None], 200, axis=0), training=True))
    found = {n for r in out for n, t in targets.items() if np.array_equal(r, t)}
    assert "rot90" not in found and "rot270" not in found


def test_same_seed_same_draws_another_seed_other_draws():
    x = _batch(seed=3)
    a = build_augmentation(AugmentConfig(), seed=11)(x, training=True)
    b = build_augmentation(AugmentConfig(), seed=11)(x, training=True)
    c = build_augmentation(AugmentConfig(), seed=12)(x, training=True)
    np.testing.assert_allclose(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(c))


def test_strength_follows_the_config():
    x = np.full((64, 8, 8, 3), 100.0, "float32")
    bright = np.asarray(augment.RandomBrightness((0.8, 1.2), seed=0)(x, training=True))
    assert bright.min() >= 80.0 and bright.max() <= 120.0 and bright.std() > 5
    shifted = np.asarray(augment.RandomChannelShift(10.0, seed=0)(x, training=True))
    assert shifted.min() >= 90.0 and shifted.max() <= 110.0
    per_channel = shifted[:, 0, 0, :]
    assert (per_channel.std(axis=1) > 0).mean() > 0.9  # channels move independently
    zoom = build_augmentation(
        AugmentConfig(
            dihedral=False, brightness=(1, 1), channel_shift=0, contrast=(1, 1), zoom_max=1.2
        ),
        seed=0,
    )
    assert [layer.name for layer in zoom.layers] == ["zoom"]
    off = build_augmentation(
        AugmentConfig(
            dihedral=False, brightness=(1, 1), channel_shift=0, contrast=(1, 1), zoom_max=1.0
        ),
        seed=0,
    )
    assert off.layers == []


def test_config_round_trip():
    stack = build_augmentation(AugmentConfig(rotation_deg=5.0), seed=9)
    restored = keras.Sequential.from_config(stack.get_config())
    assert [type(a) for a in restored.layers] == [type(b) for b in stack.layers]
    for a, b in zip(restored.layers, stack.layers, strict=True):
        assert a.get_config() == b.get_config()
