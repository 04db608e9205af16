"""What a training run feeds `model.fit`: the training and validation streams and step counts.

Shared by training (`satx.train.fit`) and tuning (`satx.tune.hypermodel`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import tensorflow as tf

from satx.config import TrainConfig
from satx.data.pipeline import (
    make_eval_dataset,
    make_train_dataset,
    model_inputs,
    resolve_class_weights,
)
from satx.data.read import CorruptionCounter
from satx.models import backbones
from satx.records.manifest import Records

log = logging.getLogger(__name__)


# The validation stream runs without tf.data's autotuning. Keras drops the last epoch's
# validation iterator when the next validation starts, and TensorFlow's autotuning thread of
# that iterator sleeps between rounds (up to a minute); its cancellation does not wake it, so
# the drop waits for the next round with both cores idle (docs/history.md, issue 15). Without
# autotuning there is no such thread, and AUTOTUNE stages run one call per core, plenty for one
# pass of the split.
_NO_AUTOTUNE = tf.data.Options()
_NO_AUTOTUNE.autotune.enabled = False


@dataclass(frozen=True)
class TrainingData:
    """The datasets and step counts of a run, and the `fit` arguments they imply."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    val_split: str
    steps: int
    val_steps: int
    class_weight: dict[int, float] | None
    counter: CorruptionCounter

    def fit_kwargs(self) -> dict[str, Any]:
        """What every `model.fit` of training and tuning passes besides epochs and callbacks."""
        return {
            "x": self.train,
            "steps_per_epoch": self.steps,
            "validation_data": self.val,
            "validation_steps": self.val_steps,
            "class_weight": self.class_weight,
            "shuffle": False,  # the dataset shuffles itself
        }


def make_training_data(
    config: TrainConfig, records: Records, replicas: int, multiworker: bool = False
) -> TrainingData:
    """Training and validation datasets for `config` at a global batch of per-replica x replicas.

    Multi-worker: every worker reads the same seeded stream and takes its replicas' slices of
    each global batch (tf.data's DATA auto-shard), so a step sees exactly the batch one worker
    would; FILE sharding would read less but give each worker other tiles.
    """
    manifest = records.manifest
    val_split = config.val_split if manifest.has_split(config.val_split) else "test"
    if not manifest.has_split(val_split):
        val_split = config.val_split  # let the manifest raise the clear error
    global_batch = config.per_replica_batch_size * replicas
    size = backbones.input_size(config.model)
    if size > manifest.image_size:
        log.warning(
            "upsampling %dpx records to the model's %dpx input (%.1fx the pixels to compute); "
            "pass --image_size=%d to train at the records' size",
            manifest.image_size,
            size,
            (size / manifest.image_size) ** 2,
            manifest.image_size,
        )
    counter = CorruptionCounter()
    train_ds = make_train_dataset(
        records,
        config.train_split,
        config.data,
        image_size=size,
        batch_size=global_batch,
        seed=config.seed,
        counter=counter,
    )
    # One pass per epoch, repeated: every epoch validates on exactly the whole split, whether
    # Keras resets the iterator (one device) or keeps it across epochs (tf.distribute).
    val_ds = make_eval_dataset(records, val_split, image_size=size, batch_size=global_batch)
    val_ds = model_inputs(val_ds, manifest.num_classes).repeat().with_options(_NO_AUTOTUNE)
    if multiworker:
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA
        )
        train_ds, val_ds = train_ds.with_options(options), val_ds.with_options(options)
    train_count = manifest.count(config.train_split)
    return TrainingData(
        train=train_ds,
        val=val_ds,
        val_split=val_split,
        steps=config.steps_per_epoch or max(1, train_count // global_batch),
        val_steps=math.ceil(manifest.count(val_split) / global_batch),
        class_weight=(
            None
            if config.data.resample_to
            else resolve_class_weights(records, config.train_split, config.data)
        ),
        counter=counter,
    )
