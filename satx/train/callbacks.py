"""Keras callbacks of training and tuning: logging, throughput, corruption checks, run state."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from satx.config import TrainConfig
from satx.data.read import CorruptionCounter
from satx.io.run_record import write_json

log = logging.getLogger(__name__)


class _LearningRateLog(keras.callbacks.Callback):
    """Put the optimizer's learning rate into the epoch logs (TensorBoard, CSV)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Add `learning_rate`."""
        if logs is not None and "learning_rate" not in logs:
            logs["learning_rate"] = float(np.asarray(self.model.optimizer.learning_rate))


class _Throughput(keras.callbacks.Callback):
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


class _CorruptionCheck(keras.callbacks.Callback):
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


class BestEpochStopping(keras.callbacks.EarlyStopping):
    """EarlyStopping that restores the best epoch's weights, by any margin.

    Keras' EarlyStopping uses `min_delta` twice: for patience, and for which weights it keeps
    (an epoch better by less than `min_delta` is not kept). With the default 0.01 on `val_auc`,
    a binary run whose AUC rose from 0.994 (epoch 2) to 0.9995 (epoch 10) ended with epoch 2's
    weights in `model.keras` and the export, while `checkpoints/best.keras` and the summary
    named epoch 10. Here `min_delta` only decides patience; `best_any` is the best value seen,
    and its epoch's weights are restored, as the best checkpoint holds them.
    """

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.best_any: float | None = None

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Reset, as EarlyStopping does."""
        super().on_train_begin(logs)
        self.best_any = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Patience as EarlyStopping; the weights of any better epoch."""
        super().on_epoch_end(epoch, logs)
        current = (logs or {}).get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        current = float(current)
        if self.best_any is None or bool(self.monitor_op(current, self.best_any)):
            self.best_any, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()


class ResumableStopping(keras.callbacks.Callback):
    """EarlyStopping's and ReduceLROnPlateau's state, and the learning rate, across a resume.

    BackupAndRestore brings back the weights, the optimizer and the epoch, but these callbacks
    would restart with fresh patience and best values, and a rate lowered by the plateau after
    the backup was written would be lost. At each epoch end this writes their state keyed by the
    epoch a resumed run starts from; when BackupAndRestore resumes at that epoch, it is put back
    (EarlyStopping's best weights come from the best checkpoint). Place it after both callbacks
    and BackupAndRestore. A kill between BackupAndRestore's write and this one leaves no state
    for the resumed epoch: patience then restarts, with a warning.
    """

    FIELDS = {
        "BestEpochStopping": ("wait", "best", "stopped_epoch", "best_epoch", "best_any"),
        "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
    }

    def __init__(self, path: Path, callbacks: list[keras.callbacks.Callback], best_model: Path):
        super().__init__()
        self.path, self.callbacks, self.best_model = Path(path), callbacks, Path(best_model)

    def _read(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Put the saved state back when BackupAndRestore resumed the run."""
        start = getattr(self.model, "_initial_epoch", None)
        if not start:
            return
        saved = self._read().get(str(start))
        if saved is None:
            log.warning("%s: no callback state for epoch %d; patience restarts", self.path, start)
            return
        for cb in self.callbacks:
            for name in self.FIELDS[type(cb).__name__]:
                setattr(cb, name, saved[type(cb).__name__][name])
            if getattr(cb, "restore_best_weights", False) and self.best_model.exists():
                best = keras.saving.load_model(self.best_model, compile=False)
                cb.best_weights = best.get_weights()
        rate = self.model.optimizer.learning_rate
        if saved.get("learning_rate") is not None and isinstance(rate, keras.Variable):
            rate.assign(saved["learning_rate"])
        log.info("resumed at epoch %d with the stopping state %s", start, saved)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Record the state a run resuming at `epoch + 1` needs."""
        state: dict[str, Any] = {
            type(cb).__name__: {n: getattr(cb, n) for n in self.FIELDS[type(cb).__name__]}
            for cb in self.callbacks
        }
        rate = self.model.optimizer.learning_rate
        if isinstance(rate, keras.Variable):
            state["learning_rate"] = float(rate.numpy())
        saved = self._read()
        saved[str(epoch + 1)] = state
        write_json(self.path, {k: saved[k] for k in sorted(saved, key=int)[-3:]})


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
        _LearningRateLog(),
        _Throughput(config.per_replica_batch_size),
        _CorruptionCheck(counter, config.data.max_corrupt_fraction),
    ]


def tensorboard_callback(logdir: str | Path, config: TrainConfig) -> keras.callbacks.TensorBoard:
    """TensorBoard logging, with profiler traces of `--profile_batches` when given."""
    start, end = config.profile_range()
    return keras.callbacks.TensorBoard(
        str(logdir), profile_batch=(start, end) if end else 0, write_graph=False
    )
