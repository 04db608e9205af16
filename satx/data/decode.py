"""JPEG/PNG bytes -> uint8 tiles: the one decoder and resize of training, serving and prediction.

A model sees the same pixels whichever way a tile reaches it: from records in training, as
bytes through the export's `serving_bytes` signature, or read from a tile source by predict.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf

from satx.tiles.formats import PNG_MAGIC


def decode_tile(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG or PNG bytes -> uint8 HxWx3 (graph-safe).

    JPEG uses the accurate integer DCT: TF's default (fast DCT) gives pixels that differ from
    Pillow, browsers and most other decoders by a few levels.
    """

    def png() -> tf.Tensor:
        # decode_png also decodes GIF and BMP; satx takes JPEG and PNG only, as make_records.
        is_png = tf.equal(tf.strings.substr(encoded, 0, len(PNG_MAGIC)), PNG_MAGIC)
        with tf.control_dependencies([tf.debugging.Assert(is_png, ["tile is not JPEG or PNG"])]):
            return tf.io.decode_png(encoded, channels=3)

    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        png,
    )


def resize_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
    """Antialiased resize to [size, size], rounded back to uint8."""
    resized = tf.image.resize(image, [size, size], antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def decode_to_size(encoded: tf.Tensor, size: int) -> tf.Tensor:
    """JPEG or PNG bytes of any size -> uint8 [size, size, 3], resized only when it differs.

    Used where tiles come from outside the records (serving, prediction): their size is only
    known after decoding.
    """
    image = decode_tile(encoded)
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], size), tf.equal(shape[1], size))
    resized = tf.cond(same, lambda: image, lambda: resize_uint8(image, size))
    return tf.ensure_shape(resized, [size, size, 3])


def records_decoder(stored_size: int, size: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """Decoder for tiles of a records folder (all `stored_size`), resized to `size` if needed."""
    resize = size != stored_size

    def decode(encoded: tf.Tensor) -> tf.Tensor:
        image = decode_tile(encoded)
        image.set_shape([stored_size, stored_size, 3])
        return resize_uint8(image, size) if resize else image

    return decode


def dihedral(images: tf.Tensor) -> list[tf.Tensor]:
    """The 8 symmetries of square tiles [B, S, S, C]: 4 rotations, each also mirrored."""
    out = []
    for k in range(4):
        turned = tf.image.rot90(images, k)
        out += [turned, tf.image.flip_left_right(turned)]
    return out


def dihedral_mean(fn: Callable[[tf.Tensor], tf.Tensor], images: tf.Tensor) -> tf.Tensor:
    """`fn` averaged over the 8 symmetries of `images` (test-time augmentation)."""
    return tf.add_n([fn(x) for x in dihedral(images)]) / 8.0
