"""`python -m tests.support.batches_probe single|multi RECORDS OUT`: each replica's batches.

Run by the multi-worker test as each worker (with TF_CONFIG) and as one device: builds the
training stream as `satx.train` does, distributes it, and writes a SHA-1 of each replica's
images and its labels for 6 steps to OUT (JSON).
"""

import hashlib
import json
import sys

import keras
import tensorflow as tf

from satx.config import TrainConfig
from satx.records.manifest import load_records
from satx.train.distribute import make_strategy
from satx.train.inputs import make_training_data


def main(mode: str, records: str, out: str) -> None:
    multi = mode == "multi"
    strategy = make_strategy("multiworker" if multi else "onedevice")
    config = TrainConfig().with_overrides(
        dict(
            records=records,
            workdir="unused",
            backbone="tiny_flat",
            weights="none",
            image_size=32,
            steps_per_epoch=3,
            per_replica_batch_size=4 if multi else 8,
            deterministic=True,
            cache="none",
        )
    )
    keras.utils.set_random_seed(config.seed)
    data = make_training_data(config, load_records(records), strategy.num_replicas_in_sync, multi)
    next(iter(data.train.take(1)))  # as training does (its TensorBoard sample)
    batches = iter(strategy.experimental_distribute_dataset(data.train))
    rows = []
    for _ in range(6):
        images, labels = (strategy.experimental_local_results(t) for t in next(batches))
        if not multi:  # one device: its batch of 8 as the two halves the workers should get
            images, labels = [images[0][:4], images[0][4:]], [labels[0][:4], labels[0][4:]]
        rows += [
            [hashlib.sha1(x.numpy().tobytes()).hexdigest(), tf.argmax(y, 1).numpy().tolist()]
            for x, y in zip(images, labels, strict=True)
        ]
    with open(out, "w") as f:
        json.dump(rows, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
