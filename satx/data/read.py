"""Read a split's shards with tf.data, parse them with the records schema, count what is lost.

A damaged shard ends at its first bad record instead of killing the run; what it could not
deliver is counted per shard against the manifest (`CorruptionCounter`), and the run fails past
a threshold. Images behind a valid checksum are never dropped: make_records decoded every one,
so a decode failure there is a bug and fails loudly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from satx.errors import RecordsError
from satx.records import schema
from satx.records.manifest import Records

log = logging.getLogger(__name__)

AUTOTUNE = tf.data.AUTOTUNE
READ_BATCH = 128  # records read, counted and parsed together (vectorised parse_example)
READ_BUFFER_BYTES = 8 << 20
_DTYPES = {"bytes": tf.string, "int64": tf.int64, "float": tf.float32}


def feature_spec() -> dict[str, tf.io.FixedLenFeature]:
    """The records schema (`satx.records.schema.FEATURES`) as a tf.io parse spec."""
    return {
        key: tf.io.FixedLenFeature(
            [] if f.length == 1 else [f.length], _DTYPES[f.kind], default_value=f.default
        )
        for key, f in schema.FEATURES.items()
    }


def parse_examples(
    serialized: tf.Tensor, keys: tuple[str, ...] | None = None
) -> dict[str, tf.Tensor]:
    """Parse a batch (1-D string tensor) of serialized records; works eagerly and in tf.data.

    `keys` limits parsing to those features (training needs only the image and its label).
    """
    spec = feature_spec()
    if keys is not None:
        spec = {key: spec[key] for key in keys}
    return tf.io.parse_example(serialized, spec)


class CorruptionCounter:
    """Records each shard delivered vs. what the manifest says it holds (per full shard read)."""

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


def _read_shards(
    records: Records, split: str, shuffle: bool, seed: int, counter: CorruptionCounter
) -> tf.data.Dataset:
    paths = records.shard_paths(split)
    counts = [s.records for s in records.manifest.shards_of(split)]
    files = tf.data.Dataset.from_tensor_slices((paths, tf.constant(counts, tf.int64)))
    if shuffle:  # fixed per pass, so a cache after decode holds the same order as a stream
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=False)
    compression = schema.COMPRESSION_TYPES[records.manifest.compression]

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

    def keep_batch(*element: tf.Tensor) -> tf.Tensor:
        _, at_end, n, path, expected = element

        def report() -> tf.Tensor:
            tf.py_function(counter.report, [path, n, expected], [])
            return tf.constant(False)

        return tf.cond(at_end, report, lambda: tf.constant(True))

    # Training reads many shards at once; evaluation reads them in manifest order.
    cycle = min(len(paths), 16) if shuffle else 1
    ds = files.interleave(read, cycle_length=cycle, num_parallel_calls=min(cycle, 8))
    return ds.filter(keep_batch).map(lambda batch, *_: batch)


def parsed_split(
    records: Records,
    split: str,
    *,
    shuffle: bool,
    seed: int,
    counter: CorruptionCounter,
    keys: tuple[str, ...] | None = None,
    select: Callable[[dict[str, tf.Tensor]], Any] | None = None,
) -> tf.data.Dataset:
    """Records of a split, parsed in batches: only `keys` (default all), then `select`.

    Both act on batches of READ_BATCH records, before `unbatch`, where they cost least.
    """
    ds = _read_shards(records, split, shuffle, seed, counter)

    def parse(serialized: tf.Tensor) -> Any:
        features = parse_examples(serialized, keys)
        return select(features) if select else features

    return ds.map(parse, num_parallel_calls=AUTOTUNE).unbatch()
