"""Two-phase transfer learning from records: `train(config)` and `python -m satx.train`.

Phase 1 trains the head with the backbone frozen for `n_epo_phase1` epochs at `lr_phase1`;
phase 2 unfreezes the backbone from `freeze_cutoff` and fine-tunes at `lr_phase2` with early
stopping (best weights restored) and LR reduction on plateau. Epochs are numbered across both
phases (phase 2 starts at epoch `n_epo_phase1`).

Run folder (`--workdir`): config.json, run.json, state.json, history.csv, checkpoints/best.keras,
backup/phase{1,2}/ (BackupAndRestore), logs/ (TensorBoard), model.keras, export/<version>/.
A killed run re-run with the same command resumes at the epoch it reached.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf

from satx import data, failpoints, models
from satx.callbacks import (
    AugmentedImages,
    CorruptionCheck,
    EpochHook,
    LearningRateLog,
    StateTracker,
    Throughput,
)
from satx.config import DataConfig
from satx.distribute import make_strategy, set_precision, split_cpu
from satx.errors import InputError, OutputExistsError
from satx.export import export_saved_model
from satx.metrics import PositiveClassAUC
from satx.models import freeze_backbone, unfreeze_from
from satx.run_record import versions, write_json
from satx.train_config import TrainConfig

log = logging.getLogger(__name__)


def monitor_for(num_classes: int, requested: str = "auto") -> tuple[str, str]:
    """The validation metric that picks the best model, and its mode."""
    if requested != "auto":
        return requested, "min" if "loss" in requested else "max"
    return ("val_auc", "max") if num_classes == 2 else ("val_accuracy", "max")


def make_metrics(num_classes: int) -> list[keras.metrics.Metric]:
    """Accuracy, AUC, precision and recall; for binary, of the positive class (index 1)."""
    if num_classes == 2:
        return [
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            PositiveClassAUC(class_index=1, name="auc"),
            keras.metrics.Precision(name="precision", class_id=1),
            keras.metrics.Recall(name="recall", class_id=1),
        ]
    return [
        keras.metrics.CategoricalAccuracy(name="accuracy"),
        keras.metrics.AUC(name="auc", multi_label=True, num_labels=num_classes),
        keras.metrics.Precision(name="precision"),
        keras.metrics.Recall(name="recall"),
    ]


def make_optimizer(name: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """The predecessor's optimizers: `adam` or `rmsprop`."""
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    return optimizers[name](learning_rate=learning_rate)


def compile_phase(model: keras.Model, config: TrainConfig, phase: int, num_classes: int) -> None:
    """Freeze/unfreeze for `phase` and compile with that phase's learning rate.

    From scratch (no pretrained weights) there is nothing to transfer: a frozen random backbone
    only yields noise features, so the whole network trains in both phases and phase 2 differs
    only by its learning rate (the freeze cut-off is ignored).
    """
    if not config.model.pretrained:
        unfreeze_from(model, 0, config.model.backbone, freeze_batchnorm=False)
        log.info("phase %d: from scratch, the whole network trains", phase)
        lr = config.lr_phase1 if phase == 1 else config.lr_phase2
    elif phase == 1:
        freeze_backbone(model)
        lr = config.lr_phase1
    else:
        cutoff = config.freeze_cutoff or _default_cutoff(config)
        start = unfreeze_from(model, cutoff, config.model.backbone, config.model.pretrained)
        log.info("phase 2: fine-tuning backbone layers from index %d (%s)", start, cutoff)
        lr = config.lr_phase2
    model.compile(
        optimizer=make_optimizer(config.optimizer, lr),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=make_metrics(num_classes),
    )


def _default_cutoff(config: TrainConfig) -> Any:
    from satx.backbones import get_spec

    return get_spec(config.model.backbone).default_cutoff


class Workdir:
    """Paths of a run folder."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.run = self.root / "run.json"
        self.state = self.root / "state.json"
        self.history = self.root / "history.csv"
        self.best = self.root / "checkpoints" / "best.keras"
        self.logs = self.root / "logs"
        self.model = self.root / "model.keras"
        self.export = self.root / "export"
        self.phase1_weights = self.root / "checkpoints" / "phase1_end.weights.h5"

    def backup(self, phase: int) -> Path:
        """BackupAndRestore folder of a phase."""
        return self.root / "backup" / f"phase{phase}"

    def read_state(self) -> dict[str, Any]:
        """Progress so far (empty for a new run)."""
        return json.loads(self.state.read_text()) if self.state.exists() else {}

    def write_state(self, state: dict[str, Any]) -> None:
        """Record progress atomically."""
        write_json(self.state, state)


def _check_workdir(work: Workdir, config: TrainConfig, overwrite: bool) -> None:
    resolved = config.to_dict()
    if work.config.exists():
        previous = json.loads(work.config.read_text())
        if overwrite:
            shutil.rmtree(work.root)
        elif previous != resolved:
            changed = sorted(k for k in resolved if previous.get(k) != resolved[k])
            raise OutputExistsError(
                f"{work.root} holds a run with a different config (changed: {changed}); "
                "pass --overwrite to start over, or use another --workdir"
            )
    work.root.mkdir(parents=True, exist_ok=True)
    write_json(work.config, resolved)


@dataclass(frozen=True)
class TrainingData:
    """The datasets and step counts of a run, and the `fit` arguments they imply."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    val_split: str
    steps: int
    val_steps: int
    class_weight: dict[int, float] | None
    counter: data.CorruptionCounter

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


def make_training_data(config: TrainConfig, info: data.RecordsInfo, replicas: int) -> TrainingData:
    """Training and validation datasets for `config` at a global batch of batch x replicas."""
    val_split = config.val_split if info.has_split(config.val_split) else "test"
    if not info.has_split(val_split):
        val_split = config.val_split  # let shard_paths raise the clear error
    global_batch = config.batch_size * replicas
    dcfg = DataConfig(
        records=config.records,
        image_size=config.model.input_size(),
        batch_size=global_batch,
        cache=config.cache,
        deterministic=config.deterministic,
        class_weight=config.class_weight,
        resample_to=config.resample_to,
        seed=config.seed,
        max_corrupt_fraction=config.max_corrupt_fraction,
    )
    if dcfg.image_size > info.image_size:
        log.warning(
            "upsampling %dpx records to the model's %dpx input (%.1fx the pixels to compute); "
            "pass --image_size=%d to train at the records' size",
            info.image_size,
            dcfg.image_size,
            (dcfg.image_size / info.image_size) ** 2,
            info.image_size,
        )
    counter = data.CorruptionCounter()
    train_ds = data.make_train_dataset(info, config.train_split, dcfg, counter)
    # One pass per epoch, repeated: every epoch validates on exactly the whole split, whether
    # Keras resets the iterator (one device) or keeps it across epochs (tf.distribute).
    val_ds = data.model_inputs(data.make_eval_dataset(info, val_split, dcfg), info.num_classes)
    val_ds = val_ds.repeat()
    return TrainingData(
        train=train_ds,
        val=val_ds,
        val_split=val_split,
        steps=config.steps_per_epoch or max(1, info.count(config.train_split) // global_batch),
        val_steps=math.ceil(info.count(val_split) / global_batch),
        class_weight=(
            None
            if config.resample_to
            else data.resolve_class_weights(info, config.train_split, dcfg)
        ),
        counter=counter,
    )


def phase_segments(n_epo_phase1: int, first: int, end: int) -> list[tuple[int, int, int]]:
    """Split epochs [first, end) into `(phase, first, end)` runs: phase 1 below n_epo_phase1."""
    segments = []
    if first < min(n_epo_phase1, end):
        segments.append((1, first, min(n_epo_phase1, end)))
        first = min(n_epo_phase1, end)
    if end > first:
        segments.append((2, first, end))
    return segments


def epoch_log_callbacks(
    config: TrainConfig, counter: data.CorruptionCounter
) -> list[keras.callbacks.Callback]:
    """What every training `fit` (train and tune) adds to the epoch logs and checks.

    They come before TensorBoard and CSV callbacks, which write the epoch logs they extend.
    """
    return [
        LearningRateLog(),
        Throughput(config.batch_size),
        CorruptionCheck(counter, config.max_corrupt_fraction),
    ]


def tensorboard_callback(logdir: str | Path, config: TrainConfig) -> keras.callbacks.TensorBoard:
    """TensorBoard logging, with profiler traces of `--profile_batches` when given."""
    start, end = config.profile_range()
    return keras.callbacks.TensorBoard(
        str(logdir), profile_batch=(start, end) if end else 0, write_graph=False
    )


def _callbacks(config, work, phase, monitor, mode, state, counter, sample):  # noqa: ANN001, ANN202
    callbacks = [
        *epoch_log_callbacks(config, counter),
        keras.callbacks.BackupAndRestore(str(work.backup(phase))),
        keras.callbacks.ModelCheckpoint(
            str(work.best),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=state.get("best"),
        ),
        StateTracker(work, monitor, mode),
        keras.callbacks.CSVLogger(str(work.history), append=True),
        tensorboard_callback(work.logs, config),
        EpochHook(lambda: failpoints.hit("train.epoch_end")),
    ]
    if phase == 1 and sample is not None:
        callbacks.insert(
            0, AugmentedImages(work.logs / "images", sample, config.tensorboard_images)
        )
    if phase == 2:
        callbacks[:0] = [
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                mode=mode,
                patience=config.patience,
                min_delta=config.min_delta,
                restore_best_weights=True,
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor=monitor, mode=mode, factor=config.lr_factor, patience=config.lr_patience
            ),
        ]
    return callbacks


def train(config: TrainConfig, command: str | None = None, overwrite: bool = False) -> dict:
    """Train, checkpoint, and export a classifier; returns the run summary.

    Raises:
        OutputExistsError: the workdir holds a run with another config and overwrite is off.
        RecordsError / InputError / BackboneError: unusable records, flags or weights.
    """
    if not config.records or not config.workdir:
        raise InputError("--records and --workdir are required")
    split_cpu(config.cpu_devices)
    info = data.load_records(config.records)  # bad records fail before a workdir is made
    work = Workdir(config.workdir)
    _check_workdir(work, config, overwrite)
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = set_precision(config.mixed_precision)
    strategy = make_strategy(config.strategy)
    replicas = strategy.num_replicas_in_sync
    run_data = make_training_data(config, info, replicas)
    monitor, mode = monitor_for(info.num_classes, config.monitor)
    write_json(
        work.run,
        {
            "command": command if command is not None else " ".join(sys.argv),
            "records": config.records,
            "records_manifest_sha256": info.manifest["inputs"]["manifest_sha256"],
            "seed": config.seed,
            "versions": versions(),
            "strategy": type(strategy).__name__,
            "replicas": replicas,
            "global_batch": config.batch_size * replicas,
            "dtype_policy": policy,
            "steps_per_epoch": run_data.steps,
            "val_split": run_data.val_split,
            "monitor": monitor,
            "class_weight": run_data.class_weight,
        },
    )
    state = work.read_state()
    if state.get("done"):
        log.info("%s: training already complete; --overwrite to retrain", work.root)
        return json.loads((work.root / "summary.json").read_text())
    with strategy.scope():
        model = models.build_classifier(config.model, info.num_classes)
    sample = next(iter(run_data.train.take(1)))[0][: config.tensorboard_images]
    n1, n2 = config.n_epo_phase1, config.n_epo_phase2
    start_time = time.monotonic()
    if state.get("phase1_done"):
        model.load_weights(work.phase1_weights)
    first = n1 if state.get("phase1_done") else 0
    for phase, start, end in phase_segments(n1, first, n1 + n2):
        with strategy.scope():
            compile_phase(model, config, phase, info.num_classes)
        log.info("phase %d: epochs %d..%d, %d steps/epoch", phase, start, end - 1, run_data.steps)
        callbacks = _callbacks(
            config, work, phase, monitor, mode, work.read_state(), run_data.counter, sample
        )
        model.fit(
            epochs=end,
            initial_epoch=start,
            callbacks=callbacks,
            verbose=2,
            **run_data.fit_kwargs(),
        )
        if phase == 1:
            model.save_weights(work.phase1_weights)
            work.write_state({**work.read_state(), "phase1_done": True})
    summary = _finish(model, config, work, info, monitor, time.monotonic() - start_time)
    work.write_state({**work.read_state(), "done": True})
    return summary


def _finish(model, config, work, info, monitor, elapsed) -> dict:  # noqa: ANN001
    model.save(work.model)
    write_json(work.root / "class_names.json", list(info.class_names))  # read next to .keras
    export_root = Path(config.export_dir) if config.export_dir else work.export
    export_dir = (
        export_saved_model(model, export_root, list(info.class_names)) if config.export else None
    )
    state = work.read_state()
    summary = {
        "monitor": monitor,
        "best": state.get("best"),
        "best_epoch": state.get("best_epoch"),
        "epochs_run": state.get("epochs_run", []),
        "elapsed_s": round(elapsed, 1),
        "model": str(work.model),
        "best_checkpoint": str(work.best),
        "export": str(export_dir) if export_dir else None,
        "tensorboard": f"tensorboard --logdir {work.logs}",
    }
    write_json(work.root / "summary.json", summary)
    return summary


if __name__ == "__main__":
    from satx.cli.train import entry

    entry()
