"""The training and evaluation datasets over a records folder.

Host side only: read shards (parallel interleave), parse in batches (vectorised), decode to uint8
HxWx3, resize only when the records' size differs from the model's, batch, prefetch.
Augmentation and normalisation are Keras layers inside the model (`satx.models`).

The training stream caches decoded tiles in RAM when the split fits the budget, so epochs after
the first skip reading and decoding; the cached and streaming paths yield identical batches for
the same seed because the cache sits after everything that is fixed per pass and before the
record shuffle, which is the only thing that changes between passes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from satx.config import DataConfig
from satx.data.decode import records_decoder
from satx.data.mix import mix_batches
from satx.data.read import AUTOTUNE, CorruptionCounter, parsed_split
from satx.errors import RecordsError
from satx.io.machine import cores_used
from satx.records import schema
from satx.records.manifest import Records

log = logging.getLogger(__name__)

DECODE_PARALLEL = 8  # tiles of one batch decoded at once (batches also run in parallel)
META_KEYS = {  # evaluation stream: geolocation carried next to the image
    "source_id": schema.SOURCE_ID,
    "sha256": schema.SHA256,
    "label_text": schema.CLASS_TEXT,
    "tile_z": schema.TILE_Z,
    "tile_x": schema.TILE_X,
    "tile_y": schema.TILE_Y,
    "quadkey": schema.QUADKEY,
    "lon": schema.LON,
    "lat": schema.LAT,
    "bbox": schema.BBOX,
}


def class_weights(counts: Sequence[int]) -> dict[int, float]:
    """Balanced class weights `n / (k * n_c)` (absent classes get weight 0)."""
    total, k = sum(counts), len(counts)
    return {i: (total / (k * n) if n else 0.0) for i, n in enumerate(counts)}


def resolve_class_weights(records: Records, split: str, config: DataConfig) -> dict[int, float]:
    """Class weights from the config when given, else derived from the split's counts."""
    manifest = records.manifest
    if config.class_weight:
        if len(config.class_weight) != manifest.num_classes:
            raise RecordsError(
                f"class_weight has {len(config.class_weight)} values for "
                f"{manifest.num_classes} classes {list(manifest.class_names)}"
            )
        return dict(enumerate(float(w) for w in config.class_weight))
    return class_weights(manifest.class_counts(split))


def _ram_budget_bytes(fraction: float) -> int:
    """`fraction` of the memory available now (Linux MemAvailable; physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * fraction)
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * fraction)


def choose_cache(records: Records, split: str, size: int, config: DataConfig) -> bool:
    """Whether to cache the decoded split in RAM; logs the choice and why."""
    needed = records.manifest.count(split) * size * size * 3
    if config.cache == "none":
        log.info("decoded-tile cache off (--cache=none): streaming %s", split)
        return False
    if config.cache == "ram":
        log.info("decoded-tile cache on (--cache=ram): %s needs %.2f GB", split, needed / 1e9)
        return True
    budget = _ram_budget_bytes(config.cache_ram_fraction)
    use = needed <= budget
    log.info(
        "decoded-tile cache %s: %s needs %.2f GB of decoded tiles, RAM budget %.2f GB (%.0f%% of "
        "available)",
        "on" if use else "off (streaming)",
        split,
        needed / 1e9,
        budget / 1e9,
        100 * config.cache_ram_fraction,
    )
    return use


def make_train_dataset(
    records: Records,
    split: str,
    config: DataConfig,
    *,
    image_size: int,
    batch_size: int,
    seed: int,
    counter: CorruptionCounter | None = None,
    cache: bool | None = None,
) -> tf.data.Dataset:
    """Endless shuffled batches of `(uint8 images [B,H,W,3], one-hot float32 labels [B,K])`.

    With `mixup_alpha`/`cutmix_alpha` the batches are mixed (`satx.data.mix`): labels become
    soft.

    Args:
        records: the records folder.
        split: the split to read (`a+b` for a union).
        config: how to read it.
        image_size: the model's input side (0: the records' size).
        batch_size: the global batch.
        seed: the run's seed (shard order, shuffling, resampling).
        counter: where damaged shards are counted (a new one if None).
        cache: cache decoded tiles in RAM; None lets the config and the RAM budget decide.

    Use with `steps_per_epoch`.
    """
    counter = counter or CorruptionCounter()
    manifest = records.manifest
    size = image_size or manifest.image_size
    use_cache = choose_cache(records, split, size, config) if cache is None else cache
    decode = records_decoder(manifest.image_size, size)

    def encoded_label(features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return features[schema.IMAGE_ENCODED], tf.cast(features[schema.CLASS_LABEL], tf.int32)

    def decoded(encoded: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return decode(encoded), label

    keys = (schema.IMAGE_ENCODED, schema.CLASS_LABEL)
    ds = parsed_split(
        records, split, shuffle=True, seed=seed, counter=counter, keys=keys, select=encoded_label
    )
    if use_cache:
        ds = ds.map(decoded, num_parallel_calls=AUTOTUNE).cache()
    ds = ds.shuffle(config.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.repeat()
    if config.resample_to:
        ds = _resample(ds, config.resample_to, manifest.class_counts(split), seed)
    # Every stage after the repeat keeps its order even when the stream may reorder: a batch of
    # the next pass must not overtake one of this pass (an epoch would then see a tile twice and
    # miss another; a suite run caught the one-hot map doing it).
    if use_cache:
        ds = ds.batch(
            batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE, deterministic=True
        )
    else:
        ds = _batch_then_decode(ds, decode, size, batch_size)
    k = manifest.num_classes
    ds = ds.map(
        lambda x, y: (x, tf.one_hot(y, k, dtype=tf.float32)),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )
    ds = mix_batches(ds, config.mixup_alpha, config.cutmix_alpha, seed)
    return ds.with_options(_options(config)).prefetch(AUTOTUNE)


def decode_many(decode: Callable, encoded: tf.Tensor, size: int) -> tf.Tensor:
    """A batch of encoded tiles -> uint8 [B, size, size, 3] in one call (`tf.map_fn`)."""
    spec = tf.TensorSpec([size, size, 3], tf.uint8)
    return tf.map_fn(decode, encoded, fn_output_signature=spec, parallel_iterations=DECODE_PARALLEL)


def map_batches(ds: tf.data.Dataset, fn: Callable) -> tf.data.Dataset:
    """`ds.map(fn)` over batches, one batch per core at a time, in order.

    One batch per core rather than AUTOTUNE: in `satx.bench input` runs a 3-pass measurement
    sometimes ran at one core's decode rate, AUTOTUNE in 3 of 21 runs, one call per core in 1
    of 29 (cause not found; the bench reports the spread). In order: a batch of the next pass
    must never overtake (see make_train_dataset).
    """
    return ds.map(fn, num_parallel_calls=max(2, cores_used()), deterministic=True)


def _batch_then_decode(
    ds: tf.data.Dataset, decode: Callable, size: int, batch_size: int
) -> tf.data.Dataset:
    """Batches of `(encoded, label)` -> batches of `(uint8 images, label)`.

    The streaming path shuffles (and resamples) encoded tiles and decodes whole batches after:
    shuffling never looks at the elements, so the batches equal the cached path's (which
    decodes first). The shuffle buffer holds JPEG bytes instead of pixels, rejected tiles are
    never decoded, and one map call per batch spares tf.data's per-tile stages (the gain is in
    docs/benchmarks.md).
    """
    ds = ds.batch(batch_size, drop_remainder=True)
    return map_batches(ds, lambda encoded, labels: (decode_many(decode, encoded, size), labels))


def acceptance(target: Sequence[float], counts: Sequence[int]) -> np.ndarray:
    """Per-class probability of keeping a tile so that kept tiles follow `target`.

    Rejection sampling: keep class c with probability (t_c / p_c) / max_k (t_k / p_k), where p
    is the split's class mix; the most under-represented class is always kept.
    """
    initial = np.asarray(counts, np.float64) / max(sum(counts), 1)
    ratio = np.divide(
        np.asarray(target, np.float64), initial, out=np.zeros(len(initial)), where=initial > 0
    )
    if ratio.max() <= 0:
        raise RecordsError(f"resample_to {tuple(target)}: none of its classes has records")
    return ratio / ratio.max()


def _resample(
    ds: tf.data.Dataset, target: Sequence[float], counts: Sequence[int], seed: int
) -> tf.data.Dataset:
    """Keep each tile with its class's acceptance probability, drawn statelessly per position.

    Not `Dataset.rejection_resample`: it reads its input through two iterators, and a
    reshuffling shuffle hands each iterator (and each epoch) an order from a seed generator they
    share, so which branch reaches an epoch first decided the batches (a flaky cache-vs-stream
    test found it). One pass and a draw keyed on (seed, position) make it reproducible.
    """
    keep_probability = tf.constant(acceptance(target, counts), tf.float32)

    def keep(position: tf.Tensor, element: tuple[tf.Tensor, tf.Tensor]) -> tf.Tensor:
        draw = tf.random.stateless_uniform(
            [], seed=tf.stack([tf.constant(seed, tf.int64), position])
        )
        return draw < tf.gather(keep_probability, element[1])

    return ds.enumerate().filter(keep).map(lambda _, element: element)


def make_eval_dataset(
    records: Records,
    split: str,
    *,
    image_size: int = 0,
    batch_size: int,
    counter: CorruptionCounter | None = None,
) -> tf.data.Dataset:
    """One deterministic pass over a split: dicts with `image`, `label` and geolocation fields.

    Keys: `image` (uint8 [B,H,W,3] at `image_size`, 0: the records' size), `label` (int32
    [B]), and META_KEYS (`source_id`, `tile_z/x/y`, `quadkey`, `lon`, `lat`, `bbox`, ...).
    Order = manifest shard order, then record order; the last batch may be short.
    """
    counter = counter or CorruptionCounter()
    stored = records.manifest.image_size
    size = image_size or stored
    decode = records_decoder(stored, size)

    def to_dict(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = {key: features[src] for key, src in META_KEYS.items()}
        out["image"] = features[schema.IMAGE_ENCODED]  # decoded a batch at a time, below
        out["label"] = tf.cast(features[schema.CLASS_LABEL], tf.int32)
        return out

    def decode_batch(batch: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        return {**batch, "image": decode_many(decode, batch["image"], size)}

    options = tf.data.Options()
    options.deterministic = True
    ds = parsed_split(records, split, shuffle=False, seed=0, counter=counter)
    ds = ds.map(to_dict, num_parallel_calls=AUTOTUNE).batch(batch_size)
    # As in training, a batch at a time (make_records decoded every tile already, so a batch
    # never fails on one).
    return map_batches(ds, decode_batch).with_options(options).prefetch(AUTOTUNE)


def model_inputs(ds: tf.data.Dataset, num_classes: int) -> tf.data.Dataset:
    """`(image, one-hot label)` pairs from an evaluation dataset, for `model.evaluate`."""
    return ds.map(lambda d: (d["image"], tf.one_hot(d["label"], num_classes, dtype=tf.float32)))


def _options(config: DataConfig) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = config.deterministic
    options.experimental_optimization.map_parallelization = True
    return options
