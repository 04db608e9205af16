"""Input-side benchmarks: the decode limit, the satx input pipeline, the Keras way.

Every rate is tiles/s over the same encoded tiles, measured in one process:
- decode limit: single-thread `decode_tile` (satx's JPEG/PNG decode, the accurate integer DCT)
  over the encoded tiles held in memory, times the cores this process may use; measured
  alternately with satx streaming, several times, since this machine's speed drifts;
- copy ceiling, what bounds the warm cache: the fastest TensorFlow assembles batches of the same
  number and size of tiles from memory (`tf.gather` of random rows, one batch per core; measured
  with each repeat), and the memory bandwidth (numpy, one thread per core; once): plain copies,
  and batches of random tiles gathered into destinations past the CPU caches;
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
import math
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import tensorflow as tf

from satx.config import DataConfig
from satx.data.decode import decode_tile
from satx.data.pipeline import make_train_dataset
from satx.io.machine import cores_used
from satx.records.manifest import load_records
from satx.tiles.formats import EXTENSIONS

log = logging.getLogger(__name__)

BATCH = 64
MIN_SECONDS = 2.0  # each measurement runs at least this long (whole passes): short ones drift
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


def _timed_passes(ds: tf.data.Dataset, pass_length: int, min_seconds: float) -> float:
    """Elements/s of `ds` (endless) over whole passes of `pass_length`, at least `min_seconds`.

    One pass is timed first to choose how many to measure in one go: a new iterator per pass
    would restart the pipeline, which training never does.
    """
    start = time.perf_counter()
    _drain(ds.take(pass_length))
    one = time.perf_counter() - start
    passes = max(2, math.ceil(min_seconds / max(one, 1e-6)))
    start = time.perf_counter()
    n = _drain(ds.take(passes * pass_length))
    return n / (time.perf_counter() - start)


def single_thread_decode_rate(encoded: list[bytes], min_seconds: float = MIN_SECONDS) -> float:
    """Tiles/s of `decode_tile` on one thread over tiles held in memory."""
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    ds = tf.data.Dataset.from_tensor_slices(encoded).repeat().map(decode_tile)
    ds = ds.with_options(options)
    _drain(ds.take(32))  # trace and warm up
    return _timed_passes(ds, len(encoded), min_seconds)


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


def _satx_input_rate(
    records: str,
    image_size: int,
    warm_cache: bool,
    batch: int = BATCH,
    min_seconds: float = MIN_SECONDS,
) -> float:
    """Tiles/s of satx's training input over whole passes of the `train` split."""
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
    # Whole passes: each refills the shuffle buffer before it yields, a cost training pays too.
    return _timed_passes(ds, steps, min_seconds) * batch


def _gather_rate(
    count: int, image_size: int, batch: int = BATCH, min_seconds: float = MIN_SECONDS
) -> float:
    """What bounds a warm cache: tiles/s of batches assembled from memory by TensorFlow.

    tf.data gathering `batch` random rows of a uint8 [count, S, S, 3] array, one batch per core
    at a time (TensorFlow's copy kernels; satx's cache copies each tile once, into its batch).
    """
    pixels = np.random.default_rng(0).integers(0, 256, (count, image_size, image_size, 3), np.uint8)
    images = tf.constant(pixels)
    options = tf.data.Options()
    options.threading.max_intra_op_parallelism = 1
    rows = tf.data.Dataset.range(count).shuffle(count, seed=1).repeat()
    gathered = rows.batch(batch, drop_remainder=True).map(
        lambda i: tf.gather(images, i), num_parallel_calls=cores_used()
    )
    gathered = gathered.with_options(options).prefetch(2)
    _drain(gathered.take(4))
    return _timed_passes(gathered, max(1, count // batch), min_seconds) * batch


COLD_BYTES = 256 << 20  # destinations cycled through by numpy_gather_rate: well past any CPU cache


def _memcpy_rate(count: int, image_size: int, min_seconds: float = MIN_SECONDS) -> dict:
    """The memory bandwidth, in tiles/s and GB/s, for two access patterns, one thread per core.

    - memcpy: plain copies of `count` tiles into memory already touched (contiguous halves of
      the array; copies this large use glibc's non-temporal stores);
    - gather: numpy batches of `BATCH` random tiles (`np.take`) written into a ring of
      destinations larger than the CPU caches, as a cache's batches are; 196 KB per tile copy
      at 256 px, ordinary stores. This is the memory bound of the warm cache's pattern.
    """
    cores = cores_used()
    pixels = np.random.default_rng(0).integers(0, 256, (count, image_size, image_size, 3), np.uint8)
    copy = np.empty_like(pixels)
    parts = np.array_split(np.arange(count), cores)

    def copy_part(part: np.ndarray) -> None:
        np.copyto(copy[part[0] : part[-1] + 1], pixels[part[0] : part[-1] + 1])

    batch = min(BATCH, count)
    rows = np.random.default_rng(1).permutation(count)
    batches = [rows[i : i + batch] for i in range(0, count - batch + 1, batch)]
    ring = min(len(batches), math.ceil(COLD_BYTES / (batch * pixels[0].nbytes)))
    destinations = [copy[:batch].copy() for _ in range(ring)]  # touched: no page faults timed

    def gather_part(step: int) -> None:
        for n in range(step, len(batches), cores):
            np.take(pixels, batches[n], axis=0, out=destinations[n % ring], mode="clip")

    def rate(work, jobs, tiles: int) -> float:
        with ThreadPoolExecutor(cores) as pool:
            list(pool.map(work, jobs))  # warm up
            done, start = 0, time.perf_counter()
            while done == 0 or time.perf_counter() - start < min_seconds:
                list(pool.map(work, jobs))
                done += tiles
            return done / (time.perf_counter() - start)

    memcpy = rate(copy_part, parts, count)
    gather = rate(gather_part, range(cores), len(batches) * batch)
    return {
        "copy_memcpy_tiles_per_s": round(memcpy, 1),
        "copy_memcpy_gb_per_s": round(memcpy * pixels[0].nbytes / 1e9, 2),
        "copy_numpy_gather_tiles_per_s": round(gather, 1),
        "copy_numpy_gather_gb_per_s": round(gather * pixels[0].nbytes / 1e9, 2),
    }


def _keras_directory_rate(folder: str, image_size: int, batch: int = BATCH) -> float:
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
    folder: str,
    records: str,
    image_size: int,
    encoded: list[bytes],
    repeats: int = 3,
    min_seconds: float = MIN_SECONDS,
) -> dict:
    """The input mode: streaming, warm cache and the Keras way vs the decode and copy limits.

    The decode limit, satx streaming, the warm cache and TensorFlow's copy rate are measured
    `repeats` times, alternating, and reported as medians with their spread; the Keras path
    and the memory bandwidth once.
    """
    manifest = load_records(records).manifest
    count, size = manifest.count("train"), image_size or manifest.image_size
    singles, streams, warms, gathers = [], [], [], []
    for _ in range(repeats):
        singles.append(single_thread_decode_rate(encoded, min_seconds))
        streams.append(_satx_input_rate(records, image_size, False, min_seconds=min_seconds))
        warms.append(_satx_input_rate(records, image_size, True, min_seconds=min_seconds))
        gathers.append(_gather_rate(count, size, min_seconds=min_seconds))
    memcpy = _memcpy_rate(count, size, min_seconds)
    limit = decode_limit(singles)
    stream, warm, gather = (statistics.median(v) for v in (streams, warms, gathers))
    keras_rate = _keras_directory_rate(folder, image_size)
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
        "copy_tf_gather_tiles_per_s": round(gather, 1),
        "copy_tf_gather_spread": [round(min(gathers), 1), round(max(gathers), 1)],
        **memcpy,
        "warm_cache_over_tf_gather": round(warm / gather, 3),
        "warm_cache_over_memcpy": round(warm / memcpy["copy_memcpy_tiles_per_s"], 3),
        "warm_cache_over_numpy_gather": round(warm / memcpy["copy_numpy_gather_tiles_per_s"], 3),
        "tf_gather_over_decode_limit": round(gather / decode, 3),
    }


def tile_files(folder: str) -> list[Path]:
    """Every .jpg/.jpeg/.png under a folder, sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in EXTENSIONS)


def encoded_tiles(folder: str) -> list[bytes]:
    """Every tile file's bytes, sorted by path."""
    return [p.read_bytes() for p in tile_files(folder)]
