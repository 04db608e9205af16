"""tf.data input pipelines over a records folder: training stream, evaluation stream, class weights.

Host side only: read shards (parallel interleave), parse in batches (vectorised), decode to uint8
HxWx3 in parallel, resize only when the records' size differs from the model's, batch, prefetch.
Augmentation and normalisation are Keras layers inside the model (satx/augment.py, models.py).

The training stream caches decoded tiles in RAM when the split fits the budget, so epochs after
the first skip reading and decoding; the cached and streaming paths yield identical batches for
the same seed because the cache sits after everything that is fixed per pass and before the
record shuffle, which is the only thing that changes between passes.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from satx import inspect, records, storage
from satx.config import DataConfig
from satx.errors import RecordsError

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
READ_BATCH = 32  # records read, counted and parsed together (vectorised parse_example)
READ_BUFFER_BYTES = 8 << 20
DECODE_PARALLEL = 8  # tiles of one batch decoded at once (batches also run in parallel)
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
META_KEYS = {  # evaluation/prediction stream: geolocation carried next to the image
    "source_id": records.SOURCE_ID,
    "sha256": records.SHA256,
    "label_text": records.CLASS_TEXT,
    "tile_z": records.TILE_Z,
    "tile_x": records.TILE_X,
    "tile_y": records.TILE_Y,
    "quadkey": records.QUADKEY,
    "lon": records.LON,
    "lat": records.LAT,
    "bbox": records.BBOX,
}


@dataclass(frozen=True)
class RecordsInfo:
    """What a records folder holds, from its manifest, with shards checked to exist."""

    root: str
    manifest: dict[str, Any]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in label-index order."""
        return tuple(self.manifest["class_names"])

    @property
    def num_classes(self) -> int:
        """How many classes."""
        return len(self.manifest["class_names"])

    @property
    def image_size(self) -> int:
        """Side in pixels of the stored tiles."""
        return int(self.manifest["image_size"])

    @property
    def compression(self) -> str:
        """`none` or `gzip`."""
        return self.manifest.get("compression", "none")

    def has_split(self, split: str) -> bool:
        """Whether the records have this split (`a+b` names the union of splits a and b)."""
        return all(part in self.manifest["splits"] for part in split.split("+"))

    def count(self, split: str) -> int:
        """Records in a split."""
        return sum(int(self.manifest["splits"][part]["records"]) for part in split.split("+"))

    def class_counts(self, split: str) -> list[int]:
        """Records per class (label-index order) in a split."""
        parts = [self.manifest["splits"][part]["classes"] for part in split.split("+")]
        return [sum(int(per.get(name, 0)) for per in parts) for name in self.class_names]

    def shards(self, split: str) -> list[dict[str, Any]]:
        """The manifest entries of a split's shards, in manifest order."""
        if not self.has_split(split):
            raise RecordsError(
                f"{self.root}: no split {split!r}; it has {sorted(self.manifest['splits'])}"
            )
        parts = split.split("+")
        return [s for s in self.manifest["shards"] if s["split"] in parts]

    def shard_paths(self, split: str) -> list[str]:
        """Paths of a split's shards, in manifest order, readable by tf.io.gfile."""
        root = self.root.rstrip("/")
        return [f"{root}/{s['name']}" for s in self.shards(split)]


def load_records(root: str, check_shards: bool = True) -> RecordsInfo:
    """Read a records folder's manifest and check that its shards exist with the listed sizes.

    Raises:
        RecordsError: no manifest, an unknown schema, or a shard that is missing or resized.
    """
    manifest = inspect.load_manifest(root)
    info = RecordsInfo(root if storage.is_gcs(root) else str(root), manifest)
    if check_shards:
        for shard in manifest["shards"]:
            path = f"{info.root.rstrip('/')}/{shard['name']}"
            try:
                size = tf.io.gfile.stat(path).length
            except tf.errors.NotFoundError:
                size = None
            if size != shard["bytes"]:
                found = "missing" if size is None else f"{size} bytes"
                raise RecordsError(
                    f"{path}: manifest lists {shard['bytes']} bytes, found {found}; the records "
                    "are incomplete or damaged: re-run make_records (or check with "
                    "`python -m tools.inspect_records`)"
                )
    return info


def class_weights(counts: Sequence[int]) -> dict[int, float]:
    """Balanced class weights `n / (k * n_c)` (absent classes get weight 0)."""
    total, k = sum(counts), len(counts)
    return {i: (total / (k * n) if n else 0.0) for i, n in enumerate(counts)}


def resolve_class_weights(info: RecordsInfo, split: str, config: DataConfig) -> dict[int, float]:
    """Class weights from the config when given, else derived from the split's counts."""
    if config.class_weight:
        if len(config.class_weight) != info.num_classes:
            raise RecordsError(
                f"class_weight has {len(config.class_weight)} values for "
                f"{info.num_classes} classes {list(info.class_names)}"
            )
        return dict(enumerate(float(w) for w in config.class_weight))
    return class_weights(info.class_counts(split))


class CorruptionCounter:
    """Records each shard delivered vs. what the manifest says it holds (per full shard read).

    A shard whose framing or CRC is damaged ends at its first bad record (`ignore_errors` on
    that shard only) instead of killing the run; the shortfall is counted here. Images are not
    dropped silently: make_records decoded every one, so a decode failure after a valid CRC is a
    bug and fails loudly.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.expected = 0
        self.delivered = 0
        self.short_shards: dict[str, int] = {}

    def report(self, path: Any, delivered: Any, expected: Any) -> None:
        """Called through tf.py_function (eager tensors) when a shard has been read to its end."""
        name = bytes(np.asarray(path).item()).decode()
        delivered, expected = int(np.asarray(delivered)), int(np.asarray(expected))
        with self._lock:
            self.expected += expected
            self.delivered += delivered
            if delivered < expected:
                self.short_shards[name] = expected - delivered

    @property
    def lost(self) -> int:
        """Records missing from shards read so far."""
        return self.expected - self.delivered

    def check(self, max_fraction: float) -> None:
        """Log losses; raise when they pass `max_fraction` of the records expected."""
        if self.lost:
            log.warning(
                "lost %d of %d records to damaged shards: %s",
                self.lost,
                self.expected,
                self.short_shards,
            )
        if self.expected and self.lost / self.expected > max_fraction:
            raise RecordsError(
                f"{self.lost} of {self.expected} records were unreadable (more than "
                f"{max_fraction:.2%}) in {sorted(self.short_shards)}; check them with "
                "`python -m tools.inspect_records` and re-make the records"
            )


def ram_budget_bytes(fraction: float) -> int:
    """`fraction` of the memory available now (Linux MemAvailable; physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(int(line.split()[1]) * 1024 * fraction)
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * fraction)


def choose_cache(info: RecordsInfo, split: str, size: int, config: DataConfig) -> bool:
    """Whether to cache the decoded split in RAM; logs the choice and why."""
    needed = info.count(split) * size * size * 3
    if config.cache == "none":
        log.info("decoded-tile cache off (--cache=none): streaming %s", split)
        return False
    if config.cache == "ram":
        log.info("decoded-tile cache on (--cache=ram): %s needs %.2f GB", split, needed / 1e9)
        return True
    budget = ram_budget_bytes(config.cache_ram_fraction)
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


def _read_shards(
    paths: list[str],
    counts: list[int],
    info: RecordsInfo,
    shuffle: bool,
    config: DataConfig,
    counter: CorruptionCounter,
) -> tf.data.Dataset:
    files = tf.data.Dataset.from_tensor_slices((paths, tf.constant(counts, tf.int64)))
    if shuffle:  # fixed per pass, so a cache after decode holds the same order as a stream
        files = files.shuffle(len(paths), seed=config.seed, reshuffle_each_iteration=False)
    compression = records.COMPRESSIONS[info.compression]

    def read(path: tf.Tensor, expected: tf.Tensor) -> tf.data.Dataset:
        # A damaged shard ends at its first bad record instead of killing the run; an end
        # marker carrying the number of records read lets us count what was lost. Records
        # travel in small batches: the bookkeeping then costs per batch, not per record
        # (per-record scan/filter halved the read + parse rate, see BUILD_NOTES).
        shard = tf.data.TFRecordDataset(
            path, compression_type=compression, buffer_size=READ_BUFFER_BYTES
        ).ignore_errors()
        shard = shard.batch(READ_BATCH).map(lambda r: (r, False))
        end = tf.data.Dataset.from_tensors((tf.zeros([0], tf.string), True))
        return shard.concatenate(end).scan(
            tf.constant(0, tf.int64),
            lambda n, x: (
                n + tf.size(x[0], tf.int64),
                (x[0], x[1], n + tf.size(x[0], tf.int64), path, expected),
            ),
        )

    def keep_batch(records, at_end, n, path, expected):  # noqa: ANN001, ANN202
        def report() -> tf.Tensor:
            tf.py_function(counter.report, [path, n, expected], [])
            return tf.constant(False)

        return tf.cond(at_end, report, lambda: tf.constant(True))

    # Training reads many shards at once; evaluation reads them in manifest order.
    cycle = min(len(paths), 16) if shuffle else 1
    ds = files.interleave(read, cycle_length=cycle, num_parallel_calls=min(cycle, 8))
    return ds.filter(keep_batch).map(lambda batch, *_: batch)


def decode_tile(encoded: tf.Tensor) -> tf.Tensor:
    """JPEG or PNG bytes -> uint8 HxWx3 (graph-safe; used by training and the export signature).

    JPEG uses the accurate integer DCT: TF's default (fast DCT) gives pixels that differ from
    Pillow, browsers and most other decoders by a few levels.
    """

    def png() -> tf.Tensor:
        # decode_png also decodes GIF and BMP; satx takes JPEG and PNG only, as make_records.
        is_png = tf.equal(tf.strings.substr(encoded, 0, len(_PNG_MAGIC)), _PNG_MAGIC)
        with tf.control_dependencies([tf.debugging.Assert(is_png, ["tile is not JPEG or PNG"])]):
            return tf.io.decode_png(encoded, channels=3)

    return tf.cond(
        tf.io.is_jpeg(encoded),
        lambda: tf.io.decode_jpeg(encoded, channels=3, dct_method="INTEGER_ACCURATE"),
        png,
    )


def resize_uint8(image: tf.Tensor, size: int) -> tf.Tensor:
    """Antialiased resize to [size, size], rounded back to uint8.

    The one resize training, serving and prediction all use, so a model sees the same pixels.
    """
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


def _decoder(info: RecordsInfo, size: int) -> Callable:
    resize = size != info.image_size

    def decode(encoded: tf.Tensor) -> tf.Tensor:
        image = decode_tile(encoded)
        image.set_shape([info.image_size, info.image_size, 3])
        return resize_uint8(image, size) if resize else image

    return decode


def _parsed(
    split: str,
    info: RecordsInfo,
    shuffle: bool,
    config: DataConfig,
    counter: CorruptionCounter,
    keys: tuple[str, ...] | None = None,
    select: Callable[[dict[str, tf.Tensor]], Any] | None = None,
) -> tf.data.Dataset:
    """Records of a split, parsed in batches: only `keys` (default all), then `select`.

    Both act on batches of READ_BATCH records, before `unbatch`, where they cost least.
    """
    counts = [s["records"] for s in info.shards(split)]
    ds = _read_shards(info.shard_paths(split), counts, info, shuffle, config, counter)

    def parse(serialized: tf.Tensor) -> Any:
        features = records.parse_examples(serialized, keys)
        return select(features) if select else features

    return ds.map(parse, num_parallel_calls=AUTOTUNE).unbatch()


def make_train_dataset(
    info: RecordsInfo,
    split: str,
    config: DataConfig,
    counter: CorruptionCounter | None = None,
    cache: bool | None = None,
) -> tf.data.Dataset:
    """Endless shuffled batches of `(uint8 images [B,H,W,3], one-hot float32 labels [B,K])`.

    Use with `steps_per_epoch`. `cache=None` lets the config and RAM budget decide.
    """
    counter = counter or CorruptionCounter()
    size = config.image_size or info.image_size
    use_cache = choose_cache(info, split, size, config) if cache is None else cache
    decode = _decoder(info, size)
    k = info.num_classes

    def encoded_label(features: dict[str, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        return features[records.IMAGE_ENCODED], tf.cast(features[records.CLASS_LABEL], tf.int32)

    def decoded(encoded: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return decode(encoded), label

    keys = (records.IMAGE_ENCODED, records.CLASS_LABEL)
    ds = _parsed(split, info, True, config, counter, keys, encoded_label)
    if use_cache:
        ds = ds.map(decoded, num_parallel_calls=AUTOTUNE).cache()
    ds = ds.shuffle(config.shuffle_buffer, seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.repeat()
    if config.resample_to:
        ds = _resample(ds, config.resample_to, info.class_counts(split), config.seed)
    if use_cache:
        ds = ds.batch(config.batch_size, drop_remainder=True, num_parallel_calls=AUTOTUNE)
    else:
        ds = _batch_then_decode(ds, decode, size, config.batch_size)
    ds = ds.map(lambda x, y: (x, tf.one_hot(y, k, dtype=tf.float32)), num_parallel_calls=AUTOTUNE)
    return ds.with_options(_options(config)).prefetch(AUTOTUNE)


def cores_used() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _batch_then_decode(
    ds: tf.data.Dataset, decode: Callable, size: int, batch_size: int
) -> tf.data.Dataset:
    """Batches of `(encoded, label)` -> batches of `(uint8 images, label)`.

    The streaming path shuffles (and resamples) encoded tiles and decodes whole batches after:
    shuffling never looks at the elements, so the batches equal the cached path's (which
    decodes first). The shuffle buffer holds ~20 KB of JPEG per tile instead of 196 KB of
    pixels (256 px), rejected tiles are never decoded, and one map call per batch spares the
    per-tile stages: streaming went from ~0.6x to ~0.95x of the decode limit on 2 cores
    (docs/benchmarks.md).
    """
    spec = tf.TensorSpec([size, size, 3], tf.uint8)

    def decode_batch(encoded: tf.Tensor, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images = tf.map_fn(
            decode, encoded, fn_output_signature=spec, parallel_iterations=DECODE_PARALLEL
        )
        return images, labels

    ds = ds.batch(batch_size, drop_remainder=True)
    # One batch per core at a time rather than AUTOTUNE: in `satx.bench input` runs a 3-pass
    # measurement sometimes ran at one core's decode rate, AUTOTUNE in 3 of 21 runs, one call
    # per core in 1 of 29 (cause not found; the bench reports the spread).
    # In order even when the stream may reorder: a batch of the next pass must not overtake
    # one of this pass (an epoch would then see a tile twice and miss another).
    return ds.map(decode_batch, num_parallel_calls=max(2, cores_used()), deterministic=True)


def _resample(
    ds: tf.data.Dataset, target: Sequence[float], counts: Sequence[int], seed: int
) -> tf.data.Dataset:
    initial = np.asarray(counts, np.float64) / max(sum(counts), 1)
    return ds.rejection_resample(
        lambda _, y: y,
        target_dist=tf.constant(target, tf.float32),
        initial_dist=tf.constant(initial, tf.float32),
        seed=seed,
    ).map(lambda _, xy: xy)


def make_eval_dataset(
    info: RecordsInfo,
    split: str,
    config: DataConfig,
    counter: CorruptionCounter | None = None,
) -> tf.data.Dataset:
    """One deterministic pass over a split: dicts with `image`, `label` and geolocation fields.

    Keys: `image` (uint8 [B,H,W,3]), `label` (int32 [B]), and META_KEYS (`source_id`,
    `tile_z/x/y`, `quadkey`, `lon`, `lat`, `bbox`, ...). Order = manifest shard order, then
    record order; the last batch may be short.
    """
    counter = counter or CorruptionCounter()
    decode = _decoder(info, config.image_size or info.image_size)

    def to_dict(features: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        out = {key: features[src] for key, src in META_KEYS.items()}
        out["image"] = decode(features[records.IMAGE_ENCODED])
        out["label"] = tf.cast(features[records.CLASS_LABEL], tf.int32)
        return out

    options = tf.data.Options()
    options.deterministic = True
    ds = _parsed(split, info, False, config, counter)
    ds = ds.map(to_dict, num_parallel_calls=AUTOTUNE)
    return ds.batch(config.batch_size).with_options(options).prefetch(AUTOTUNE)


def model_inputs(ds: tf.data.Dataset, num_classes: int) -> tf.data.Dataset:
    """`(image, one-hot label)` pairs from an evaluation dataset, for `model.evaluate`."""
    return ds.map(lambda d: (d["image"], tf.one_hot(d["label"], num_classes, dtype=tf.float32)))


def _options(config: DataConfig) -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = config.deterministic
    options.experimental_optimization.map_parallelization = True
    return options
