"""Decoding a chunk's tiles for the model: in batches, with each failure found and named.

`decoded_batches` streams `(position, image)` batches to the scorer (`core.score_chunk`);
`decode_all` decodes every readable tile into one array (the cells that predict's windows are
assembled from). A tile that does not decode is never a zero-filled image: it gets a reason
in the chunk's errors, in make_records' quarantine vocabulary.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from satx.data.decode import decode_to_size
from satx.data.pipeline import decode_many, map_batches
from satx.predict.inputs import ChunkData, readable
from satx.records import images


def failure_reason(data: bytes) -> tuple[str, str]:
    """Why a tile's bytes did not decode, in the quarantine vocabulary of make_records."""
    try:
        fmt = images.check_format(data)
    except images.ImageRejected as err:
        return err.reason, err.detail
    return "corrupt", f"{fmt.upper()} data does not decode (truncated or damaged); re-download it"


def decoded_batches(
    chunk: ChunkData,
    positions: list[int],
    size: int,
    batch_size: int,
    per_tile: bool = False,
    serial: bool = False,
) -> tf.data.Dataset:
    """`(position, uint8 image)` batches; what fails to decode is left out.

    By default whole batches decode in one call each (`tf.map_fn`, as training does: one map
    call per batch spares tf.data's per-tile stages), one batch per core; a batch holding a
    tile that does not decode is left out whole, and `per_tile=True` decodes tiles one by one,
    leaving out only the bad ones (`score_chunk` uses it for the positions a batch lost).
    `serial=True` decodes a batch only when it is asked for (no decoding ahead), for a model
    on the CPU: it spreads each batch over every core itself, and decoding beside it slowed
    both (MobileNetV2 224 px end to end: 0.6-0.7x of the rate the two allow one after the
    other with decoding ahead, 0.9-1.0x serial; docs/benchmarks.md).
    """
    ds = tf.data.Dataset.from_tensor_slices(
        (np.asarray(positions, np.int64), [chunk.encoded[i] for i in positions])
    )
    if per_tile:
        ds = ds.map(lambda i, b: (i, decode_to_size(b, size)), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.ignore_errors().batch(batch_size).prefetch(tf.data.AUTOTUNE)

    def decode_batch(index: tf.Tensor, encoded: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return index, decode_many(lambda b: decode_to_size(b, size), encoded, size)

    if serial:
        options = tf.data.Options()
        options.autotune.enabled = False
        options.experimental_optimization.map_parallelization = False
        options.experimental_optimization.inject_prefetch = False
        return ds.batch(batch_size).map(decode_batch).ignore_errors().with_options(options)
    return (
        map_batches(ds.batch(batch_size), decode_batch).ignore_errors().prefetch(tf.data.AUTOTUNE)
    )


def decode_all(chunk: ChunkData, size: int, batch_size: int, serial: bool) -> np.ndarray:
    """Every tile of `chunk` as a size x size uint8 image [n, size, size, 3].

    The rows of tiles that were not read or do not decode stay zero: their reasons are in
    `chunk.errors`, and the caller must not use them.
    """
    pixels = np.zeros((len(chunk.tiles), size, size, 3), np.uint8)
    done = np.zeros(len(chunk.tiles), bool)
    ok = readable(chunk)
    for per_tile, positions in ((False, ok), (True, None)):
        if per_tile:  # the positions of batches that held a tile that does not decode
            positions = [i for i in ok if not done[i]]
        if not positions:
            continue
        ds = decoded_batches(chunk, positions, size, batch_size, per_tile, serial and not per_tile)
        for index, batch in ds:
            pixels[index.numpy()] = batch.numpy()
            done[index.numpy()] = True
    for i in ok:
        if not done[i]:
            chunk.errors[i] = failure_reason(chunk.encoded[i])
    return pixels
