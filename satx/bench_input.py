"""Input-side benchmarks: the decode limit, the satx input pipeline, the Keras way, make_records.

Every rate is tiles/s over the same encoded tiles, measured in one process:
- decode limit: single-thread `decode_tile` (satx's JPEG/PNG decode, the accurate integer DCT)
  over the encoded tiles held in memory, times the cores this process may use; measured
  alternately with satx streaming, several times, since this machine's speed drifts;
- satx input: `make_train_dataset` from the records (read, parse, decode, shuffle, batch,
  one-hot; augmentation excluded, it runs in the model), streaming and with the decoded-tile
  cache warm;
- Keras: `keras.utils.image_dataset_from_directory` over the same tiles as files, with satx's
  augmentation layers applied in the dataset map, which is what a user would write instead;
- records: `make_records` end to end over the same folder, through its CLI.
Datasets are drained inside TensorFlow (`Dataset.reduce`), so Python iteration costs nothing.
"""

from __future__ import annotations

import io
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from satx.data import cores_used
from satx.errors import RecordsError

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

    from satx.sample import write_sample_tiles

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
    from satx.data import decode_tile

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
    from satx import data
    from satx.config import DataConfig

    info = data.load_records(records)
    config = DataConfig(records=records, image_size=image_size, batch_size=batch)
    ds = data.make_train_dataset(info, "train", config, cache=warm_cache)
    steps = max(1, info.count("train") // batch)
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

    from satx.augment import AugmentConfig, build_augmentation

    ds = keras.utils.image_dataset_from_directory(
        folder,
        label_mode="categorical",
        image_size=(image_size, image_size),
        batch_size=batch,
        shuffle=True,
        seed=1,
        verbose=False,
    )
    augment = build_augmentation(AugmentConfig())
    ds = ds.map(
        lambda x, y: (augment(x, training=True), y), num_parallel_calls=tf.data.AUTOTUNE
    ).prefetch(tf.data.AUTOTUNE)
    _drain(ds.take(1))  # trace the map
    start = time.perf_counter()
    tiles = int(
        ds.reduce(tf.constant(0, tf.int64), lambda n, xy: n + tf.shape(xy[0], tf.int64)[0]).numpy()
    )
    return tiles / (time.perf_counter() - start)


def bench_records(folder: str, output: str, image_size: int) -> dict:
    """make_records over `folder` (every tile into `train`), run as users run it: its CLI.

    A process of its own matters: make_records never imports TensorFlow, so its workers are
    forked and ready at once, while a process holding TensorFlow (this one) must spawn them.
    `seconds` is the make_records call inside the CLI (from its manifest); `cli_seconds` adds
    the interpreter start-up and imports.
    """
    command = [
        sys.executable,
        "-m",
        "satx.cli.make_records",
        f"--input={folder}",
        f"--output={output}",
        f"--image_size={image_size}",
        "--split=train:1",
        f"--min_shards={2 * cores_used()}",
        "--overwrite",
    ]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    cli_seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RecordsError(f"make_records failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    manifest = json.loads((Path(output) / "manifest.json").read_text())
    tiles = int(manifest["splits"]["train"]["records"])
    phases = manifest["run"]["phases_s"]
    seconds = manifest["run"]["elapsed_s"]
    return {
        "tiles": tiles,
        "seconds": seconds,
        "cli_seconds": round(cli_seconds, 4),
        "plan_seconds": phases["plan"],
        "write_seconds": phases["write"],
        "make_records_tiles_per_s": round(tiles / seconds, 1),
        "make_records_cli_tiles_per_s": round(tiles / cli_seconds, 1),
        # the write phase alone (validate, encode, write): the rate a long run converges to,
        # less the per-tile share of discovery and hashing
        "make_records_write_tiles_per_s": round(tiles / phases["write"], 1),
        "quarantined": int(manifest["quarantine"]["count"]),
        "changed": sum(manifest["image_changes"].values()),
    }


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


def records_ratio(result: dict, limit: dict) -> dict:
    """The records mode's result with the decode limit and the ratio to it."""
    decode = limit["decode_limit_tiles_per_s"]
    return {
        **result,
        **{key: limit[key] for key in LIMIT_KEYS},
        "make_records_over_decode_limit": round(result["make_records_tiles_per_s"] / decode, 3),
        "make_records_write_over_decode_limit": round(
            result["make_records_write_tiles_per_s"] / decode, 3
        ),
    }


def tile_files(folder: str) -> list[Path]:
    """Every .jpg/.jpeg/.png under a folder, sorted by path."""
    from satx.sources import IMAGE_EXTENSIONS

    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def encoded_tiles(folder: str) -> list[bytes]:
    """Every tile file's bytes, sorted by path."""
    return [p.read_bytes() for p in tile_files(folder)]
