"""Mixup and CutMix: pixels and labels mixed by the same share; reproducible by seed."""

import numpy as np
import pytest
import tensorflow as tf

from satx.data.mix import mix_batches

SIZE = 16


def _batches(count: int = 4) -> tf.data.Dataset:
    """Batches of two tiles: all 0 (class 0) and all 200 (class 1)."""
    images = np.stack(
        [np.zeros((SIZE, SIZE, 3), np.uint8), np.full((SIZE, SIZE, 3), 200, np.uint8)]
    )
    labels = np.eye(2, dtype=np.float32)
    return tf.data.Dataset.from_tensors((images, labels)).repeat(count)


def _mixed(seed: int, **alphas: float) -> list[tuple[np.ndarray, np.ndarray]]:
    ds = mix_batches(_batches(), alphas.get("mixup", 0.0), alphas.get("cutmix", 0.0), seed)
    return [(x.numpy(), y.numpy()) for x, y in ds]


def test_mixup_blends_pixels_and_labels_by_the_same_weight():
    for images, labels in _mixed(1, mixup=0.4):
        np.testing.assert_allclose(labels.sum(axis=1), 1.0, rtol=1e-6)
        for image, label in zip(images, labels, strict=True):
            # a tile is uniform, 200 x its class-1 weight (rounded to a level)
            assert np.ptp(image) == 0
            assert abs(float(image[0, 0, 0]) - 200 * label[1]) <= 0.5 + 1e-3


def test_cutmix_label_is_the_pasted_share_of_the_tile():
    shares = []
    for images, labels in _mixed(2, cutmix=1.0):
        for image, label in zip(images, labels, strict=True):
            pixels_200 = float(np.mean(image[..., 0] == 200))
            assert label[1] == pytest.approx(pixels_200, abs=1e-6)
            shares.append(pixels_200)
    assert len(set(np.round(shares, 4))) > 2  # boxes differ from batch to batch


def test_the_seed_decides_the_mix():
    both = {"mixup": 0.2, "cutmix": 1.0}
    first, again, other = _mixed(5, **both), _mixed(5, **both), _mixed(6, **both)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other, strict=True))


def test_no_alpha_no_mixing():
    ds = _batches(1)
    assert mix_batches(ds, 0.0, 0.0, 1) is ds
