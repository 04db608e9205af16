"""Keras callbacks of training and tuning: logging, throughput, corruption checks, run state."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from satx.config import TrainConfig
from satx.data.read import CorruptionCounter


class LearningRateLog(keras.callbacks.Callback):
    """Put the optimizer's learning rate into the epoch logs (TensorBoard, CSV)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Add `learning_rate`."""
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))


class Throughput(keras.callbacks.Callback):
    """Training images per second of each epoch (validation excluded), as `images_per_sec`."""

    def __init__(self, per_replica_batch: int):
        super().__init__()
        self.per_replica_batch = per_replica_batch

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start the clock."""
        self.batches, self.seconds, self.start = 0, 0.0, time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count a batch."""
        self.batches += 1
        self.seconds = time.perf_counter() - self.start

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Add `images_per_sec`."""
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if logs is not None and self.seconds > 0:
            images = self.batches * self.per_replica_batch * replicas
            logs["images_per_sec"] = images / self.seconds


class CorruptionCheck(keras.callbacks.Callback):
    """Stop the run when too many records were corrupt."""

    def __init__(self, counter: CorruptionCounter, max_fraction: float):
        super().__init__()
        self.counter, self.max_fraction = counter, max_fraction

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Raise RecordsError past the threshold."""
        self.counter.check(self.max_fraction)


class StateTracker(keras.callbacks.Callback):
    """Record epochs run and the best monitored value in the run's state.json."""

    def __init__(self, work: Any, monitor: str, mode: str):
        super().__init__()
        self.work, self.monitor, self.mode = work, monitor, mode

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Update state.json atomically."""
        state = self.work.read_state()
        value = (logs or {}).get(self.monitor)
        best = state.get("best")
        if value is not None:
            value = float(value)
            better = best is None or (value > best if self.mode == "max" else value < best)
            if better:
                state["best"], state["best_epoch"] = value, epoch
        state["epochs_run"] = sorted(set(state.get("epochs_run", [])) | {epoch})
        self.work.write_state(state)


class EpochHook(keras.callbacks.Callback):
    """Call a function at every epoch end (used for failpoints)."""

    def __init__(self, fn: Callable[[], None]):
        super().__init__()
        self.fn = fn

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Call the function."""
        self.fn()


class AugmentedImages(keras.callbacks.Callback):
    """Write a few tiles as the model's augmentation sees them to TensorBoard."""

    def __init__(self, logdir: Path, sample: Any, count: int):
        super().__init__()
        self.logdir, self.sample, self.count = logdir, sample, count

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """One image summary at the start of training."""
        images = tf.cast(self.sample[: self.count], tf.float32)
        names = [layer.name for layer in self.model.layers]
        if "augment" in names:
            images = self.model.get_layer("augment")(images, training=True)
        writer = tf.summary.create_file_writer(str(self.logdir))
        with writer.as_default():
            tf.summary.image("augmented_tiles", images / 255.0, step=0, max_outputs=self.count)
        writer.flush()


def ema_callbacks(config: TrainConfig) -> list[keras.callbacks.Callback]:
    """For a run with an EMA of the weights: the callback that swaps it into the model.

    Put it after BackupAndRestore (which must save the raw weights: a resumed run trains on
    from them) and before everything that reads the weights at an epoch's end (EarlyStopping,
    ModelCheckpoint). Validation and the best checkpoint then use the averaged weights, and so
    does the final model: the swap leaves the average in the model after the last epoch, and
    EarlyStopping restores the best epoch's (averaged) weights when training ends.
    """
    if not config.ema_momentum:
        return []
    return [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)]


def epoch_log_callbacks(
    config: TrainConfig, counter: CorruptionCounter
) -> list[keras.callbacks.Callback]:
    """What every training `fit` (train and tune) adds to the epoch logs and checks.

    They come before TensorBoard and CSV callbacks, which write the epoch logs they extend.
    """
    return [
        LearningRateLog(),
        Throughput(config.per_replica_batch_size),
        CorruptionCheck(counter, config.data.max_corrupt_fraction),
    ]


def tensorboard_callback(logdir: str | Path, config: TrainConfig) -> keras.callbacks.TensorBoard:
    """TensorBoard logging, with profiler traces of `--profile_batches` when given."""
    start, end = config.profile_range()
    return keras.callbacks.TensorBoard(
        str(logdir), profile_batch=(start, end) if end else 0, write_graph=False
    )
