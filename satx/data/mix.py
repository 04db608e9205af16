"""Mixup and CutMix over training batches: each batch mixed with itself reversed.

    mixup:  x = lam * x + (1 - lam) * x[::-1]       y = lam * y + (1 - lam) * y[::-1]
    cutmix: a box of x[::-1] pasted into x          y mixed by the box's share of the tile

`lam` is drawn from Beta(alpha, alpha) per batch. Images stay uint8 (the model's input):
mixup rounds to the nearest level, which is the resolution the tiles had. Random draws are
stateless, keyed by the run's seed and the batch's index, so a run is reproducible.
"""

from __future__ import annotations

import tensorflow as tf

from satx.data.read import AUTOTUNE


def _beta(alpha: float, seeds: tf.Tensor) -> tf.Tensor:
    """One draw of Beta(alpha, alpha), as a ratio of two Gamma draws."""
    a = tf.random.stateless_gamma([], seeds[0], alpha=alpha)
    b = tf.random.stateless_gamma([], seeds[1], alpha=alpha)
    return a / tf.maximum(a + b, 1e-12)


def mixup(images: tf.Tensor, labels: tf.Tensor, lam: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Blend each tile with the batch's reverse by `lam`; labels alike."""
    x = tf.cast(images, tf.float32)
    mixed = lam * x + (1.0 - lam) * tf.reverse(x, [0])
    out = tf.cast(tf.clip_by_value(tf.round(mixed), 0.0, 255.0), images.dtype)
    return out, lam * labels + (1.0 - lam) * tf.reverse(labels, [0])


def cutmix(
    images: tf.Tensor, labels: tf.Tensor, lam: tf.Tensor, seeds: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """Paste a box covering ~(1 - lam) of the tile from the batch's reverse."""
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    side = tf.sqrt(1.0 - lam)
    box_h = tf.cast(side * tf.cast(height, tf.float32), tf.int32)
    box_w = tf.cast(side * tf.cast(width, tf.float32), tf.int32)
    cy = tf.random.stateless_uniform([], seeds[0], 0, height, dtype=tf.int32)
    cx = tf.random.stateless_uniform([], seeds[1], 0, width, dtype=tf.int32)
    y0, y1 = tf.maximum(cy - box_h // 2, 0), tf.minimum(cy + box_h - box_h // 2, height)
    x0, x1 = tf.maximum(cx - box_w // 2, 0), tf.minimum(cx + box_w - box_w // 2, width)
    rows, cols = tf.range(height), tf.range(width)
    inside = ((rows >= y0) & (rows < y1))[:, None] & ((cols >= x0) & (cols < x1))[None, :]
    out = tf.where(inside[None, :, :, None], tf.reverse(images, [0]), images)
    pasted = tf.cast((y1 - y0) * (x1 - x0), tf.float32) / tf.cast(height * width, tf.float32)
    kept = 1.0 - pasted  # the label weight follows the share actually kept (clipped boxes)
    return out, kept * labels + pasted * tf.reverse(labels, [0])


def mix_batches(
    ds: tf.data.Dataset, mixup_alpha: float, cutmix_alpha: float, seed: int
) -> tf.data.Dataset:
    """Batches of `(uint8 images, one-hot labels)` mixed; both alphas > 0: one of them, 50/50."""
    if not (mixup_alpha or cutmix_alpha):
        return ds

    def mix(index: tf.Tensor, batch: tuple[tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = batch
        key = tf.stack([tf.constant(seed, tf.int64), index])
        keys = tf.random.experimental.stateless_split(key, 6)
        if not cutmix_alpha:
            return mixup(images, labels, _beta(mixup_alpha, keys[:2]))
        if not mixup_alpha:
            return cutmix(images, labels, _beta(cutmix_alpha, keys[:2]), keys[2:4])
        use_cutmix = tf.random.stateless_uniform([], keys[4]) < 0.5
        return tf.cond(
            use_cutmix,
            lambda: cutmix(images, labels, _beta(cutmix_alpha, keys[:2]), keys[2:4]),
            lambda: mixup(images, labels, _beta(mixup_alpha, keys[:2])),
        )

    return ds.enumerate().map(mix, num_parallel_calls=AUTOTUNE, deterministic=True)
