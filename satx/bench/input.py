"""Input-side benchmarks: the decode limit, the satx input pipeline, the Keras way.

Every rate is tiles/s over the same encoded tiles, measured in one process:
- decode limit: single-thread `decode_tile` (satx's JPEG/PNG decode, the accurate integer DCT)
  over the encoded tiles held in memory, times the cores this process may use; measured
  alternately with satx streaming, several times, since this machine's speed drifts;
- satx input: `make_train_dataset` from the records (read, parse, decode, shuffle, batch,
  one-hot; augmentation excluded, it runs in the model), streaming and with the decoded-tile
  cache warm;
- Keras: `keras.utils.image_dataset_from_directory` over the same tiles as files, with satx's
  augmentation layers applied in the dataset map, which is what a user would write instead.
Datasets are drained inside TensorFlow (`Dataset.reduce`), so Python iteration costs nothing.
"""

from __future__ import annotations

import io
import logging
import statistics
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from satx.config import DataConfig
from satx.data.decode import decode_tile
from satx.data.pipeline import cores_used, make_train_dataset
from satx.records.manifest import load_records
from satx.records.sources import IMAGE_EXTENSIONS

log = logging.getLogger(__name__)

BATCH = 64
LIMIT_KEYS = (  # what decode_limit reports, and every mode that compares with it repeats
    "decode_single_thread_tiles_per_s",
    "decode_single_thread_spread",
    "cores",
    "decode_limit_tiles_per_s",
)


def generate_tiles(folder: Path, count: int, size: int = 256, seed: int = 1) -> None:
    """`count` distinct JPEG tiles in `FOLDER/<class>/{x}-{y}-18.jpg`, quickly.

    64 tiles are drawn (~10 ms each); the rest are shifted and flipped copies re-encoded at the
    same quality, so every file has its own bytes (make_records drops duplicate content) and
    the same kind of content.
    """
    from PIL import Image

    from satx.records.sample import write_sample_tiles

    drawn = write_sample_tiles(
        folder, count=min(count, 64), school_fraction=0.3, seed=seed, size=size
    )
    rng = np.random.default_rng(seed)
    for i in range(count - len(drawn)):
        base = drawn[i % len(drawn)]
        pixels = np.asarray(Image.open(base).convert("RGB"))
        pixels = np.roll(pixels, tuple(int(v) for v in rng.integers(1, size, 2)), axis=(0, 1))
        pixels = np.rot90(pixels, int(rng.integers(0, 4)))
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="JPEG", quality=90)
        (base.parent / f"{200000 + i}-{100000 + i % 50000}-18.jpg").write_bytes(buffer.getvalue())


def _drain(ds: tf.data.Dataset) -> int:
    """Consume a dataset inside TensorFlow; returns how many elements it had."""
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, *_: n + 1).numpy())


def single_thread_decode_rate(encoded: list[bytes]) -> float:
    """Tiles/s of `decode_tile` on one thread over tiles held in memory."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = tf.data.Dataset.from_tensor_slices(encoded).map(decode_tile).with_options(options)
    _drain(ds.take(32))  # trace and warm up
    start = time.perf_counter()
    n = _drain(ds)
    return n / (time.perf_counter() - start)


def decode_limit(rates: list[float]) -> dict:
    """The median of single-thread decode `rates`, its spread, and it times the cores used."""
    single = statistics.median(rates)
    cores = cores_used()
    return {
        "decode_single_thread_tiles_per_s": round(single, 1),
        "decode_single_thread_spread": [round(min(rates), 1), round(max(rates), 1)],
        "cores": cores,
        "decode_limit_tiles_per_s": round(single * cores, 1),
    }


def satx_input_rate(
    records: str, image_size: int, warm_cache: bool, batch: int = BATCH, passes: int = 3
) -> float:
    """Tiles/s of satx's training input over `passes` passes of the `train` split."""
    folder = load_records(records)
    ds = make_train_dataset(
        folder,
        "train",
        DataConfig(records=records),
        image_size=image_size,
        batch_size=batch,
        seed=1,
        cache=warm_cache,
    )
    steps = max(1, folder.manifest.count("train") // batch)
    # Warm-up: tracing and the shuffle buffer; with the cache, two passes so it is complete.
    _drain(ds.take(2 * steps + 2 if warm_cache else 2))
    # Several passes: each pass refills the shuffle buffer before it yields, which on a small
    # split (buffer ~ split) would otherwise dominate one pass.
    start = time.perf_counter()
    n = _drain(ds.take(passes * steps))
    return n * batch / (time.perf_counter() - start)


def keras_directory_rate(folder: str, image_size: int, batch: int = BATCH) -> float:
    """Tiles/s of `image_dataset_from_directory` + satx's augmentation in the dataset map."""
    import keras

    from satx.config import AugmentConfig
    from satx.models.augment import build_augmentation

    ds = keras.utils.image_dataset_from_directory(
        folder,
        label_mode="categorical",
        image_size=(image_size, image_size),
        batch_size=batch,
        shuffle=True,
        seed=1,
        verbose=False,
    )
    augment = build_augmentation(AugmentConfig(), seed=1)
    ds = ds.map(
        lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)
    _drain(ds.take(1))  # trace the map
    start = time.perf_counter()
    tiles = int(
        ds.reduce(tf.constant(0, tf.int64), lambda n, xy: n + tf.shape(xy[0], tf.int64)[0]).numpy()
    )
    return tiles / (time.perf_counter() - start)


def bench_input(
    folder: str, records: str, image_size: int, encoded: list[bytes], repeats: int = 3
) -> dict:
    """The input mode: satx streaming, warm cache and the Keras way vs the decode limit.

    The decode limit, satx streaming and the warm cache are measured `repeats` times,
    alternating, and reported as medians with their spread; the Keras path once.
    """
    singles, streams, warms = [], [], []
    for _ in range(repeats):
        singles.append(single_thread_decode_rate(encoded))
        streams.append(satx_input_rate(records, image_size, warm_cache=False))
        warms.append(satx_input_rate(records, image_size, warm_cache=True))
    limit = decode_limit(singles)
    stream, warm = statistics.median(streams), statistics.median(warms)
    keras_rate = keras_directory_rate(folder, image_size)
    cores, decode = limit["cores"], limit["decode_limit_tiles_per_s"]
    return {
        **limit,
        "image_size": image_size,
        "repeats": repeats,
        "satx_tiles_per_s": round(stream, 1),
        "satx_spread": [round(min(streams), 1), round(max(streams), 1)],
        "satx_tiles_per_s_per_core": round(stream / cores, 1),
        "satx_warm_cache_tiles_per_s": round(warm, 1),
        "satx_warm_cache_spread": [round(min(warms), 1), round(max(warms), 1)],
        "keras_directory_tiles_per_s": round(keras_rate, 1),
        "keras_directory_tiles_per_s_per_core": round(keras_rate / cores, 1),
        "satx_over_decode_limit": round(stream / decode, 3),
        "satx_over_keras_directory": round(stream / keras_rate, 3),
        "warm_cache_over_decode_limit": round(warm / decode, 3),
    }


def tile_files(folder: str) -> list[Path]:
    """Every .jpg/.jpeg/.png under a folder, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def encoded_tiles(folder: str) -> list[bytes]:
    """Every tile file's bytes, sorted by path."""
    return [p.read_bytes() for p in tile_files(folder)]
