"""One training run: `train(config)` -> `TrainResult`, resumable at the epoch it reached.

The run folder is `satx.train.result.Workdir`. A killed run re-run with the same command resumes
at the epoch it reached (phase 1 is not redone once finished).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from satx.artifact.calibration import Calibration, fit_calibration, nll
from satx.artifact.saved_model import write_saved_model
from satx.config import TrainConfig
from satx.data.read import CorruptionCounter
from satx.errors import InputError, OutputExistsError
from satx.io import claim, failpoints, storage
from satx.io.lock import output_lock
from satx.io.run_record import run_record, write_json
from satx.models import backbones
from satx.records.manifest import Records, load_records
from satx.train.callbacks import (
    AugmentedImages,
    BestEpochStopping,
    EpochHook,
    ResumableStopping,
    StateTracker,
    ema_callbacks,
    epoch_log_callbacks,
    tensorboard_callback,
)
from satx.train.distribute import (
    build_from_local_batch,
    is_chief,
    make_strategy,
    set_precision,
    split_cpu,
)
from satx.train.inputs import TrainingData, make_training_data
from satx.train.phases import (
    build_model,
    compile_phase,
    config_for_phase,
    monitor_for,
    phase_segments,
)
from satx.train.result import LAYOUT, TrainResult, Workdir

log = logging.getLogger(__name__)


def _check_workdir(work: Workdir, config: TrainConfig, overwrite: bool) -> None:
    resolved = config.to_dict()
    if work.config.exists():
        previous = json.loads(work.config.read_text())
        if overwrite:
            claim.remove_owned(storage.LocalStore(work.root), LAYOUT)
        elif previous != resolved:
            changed = _changed(previous, resolved)
            raise OutputExistsError(
                f"{work.root} holds a run with a different config (changed: {changed}); "
                "pass --overwrite to start over, or use another --workdir"
            )
    work.root.mkdir(parents=True, exist_ok=True)
    write_json(work.config, resolved)


def _changed(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the leaves that differ between two nested config dicts."""
    found = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += _changed(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}")
    return found


def _callbacks(
    config: TrainConfig,
    work: Workdir,
    phase: int,
    metric: tuple[str, str],
    state: dict[str, Any],
    counter: CorruptionCounter,
    sample: tf.Tensor | None,
) -> list[keras.callbacks.Callback]:
    monitor, mode = metric
    stopping: list[keras.callbacks.Callback] = []
    if phase == 2:
        stopping.append(
            BestEpochStopping(
                monitor=monitor,
                mode=mode,
                patience=config.patience,
                min_delta=config.min_delta,
                restore_best_weights=True,
            )
        )
        if config.lr_schedule == "plateau":  # a schedule owns the learning rate otherwise
            stopping.append(
                keras.callbacks.ReduceLROnPlateau(
                    monitor=monitor,
                    mode=mode,
                    factor=config.lr_factor,
                    patience=config.lr_patience,
                    min_delta=config.min_delta,  # one notion of a real improvement for both
                )
            )
    callbacks = [
        *epoch_log_callbacks(config, counter),
        keras.callbacks.BackupAndRestore(str(work.backup(phase))),
        *ema_callbacks(config),  # from here on, epoch ends see the averaged weights
        *stopping,
        *(
            [ResumableStopping(work.root / f"stopping-phase{phase}.json", stopping, work.best)]
            if stopping
            else []
        ),
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
    return callbacks


def _run_record(
    config: TrainConfig,
    records: Records,
    strategy: tf.distribute.Strategy,
    policy: str,
    run_data: TrainingData,
    monitor: str,
    command: str | None,
) -> dict[str, Any]:
    replicas = strategy.num_replicas_in_sync
    return run_record(  # the config itself is config.json
        command,
        inputs=records.identity(),
        seed=config.seed,
        strategy=type(strategy).__name__,
        replicas=replicas,
        global_batch_size=config.per_replica_batch_size * replicas,
        dtype_policy=policy,
        steps_per_epoch=run_data.steps,
        val_split=run_data.val_split,
        monitor=monitor,
        class_weight=run_data.class_weight,
        weights=backbones.weights_record(config.model.backbone, config.model.weights),
    )


def train(config: TrainConfig, command: str | None = None, overwrite: bool = False) -> TrainResult:
    """Train, checkpoint, and export a classifier; returns the run summary.

    Raises:
        OutputExistsError: the workdir holds a run with another config and overwrite is off.
        RecordsError / InputError / BackboneError: unusable records, flags or weights.
    """
    if not config.data.records or not config.workdir:
        raise InputError("--records and --workdir are required")
    backbones.get_spec(config.model.backbone)  # an unknown name fails before anything starts
    split_cpu(config.cpu_devices)
    records = load_records(config.data.records)  # bad records fail before a workdir is made
    # MultiWorkerMirroredStrategy configures collective ops, which must precede any TF op.
    if is_chief():
        inputs = (("--records", config.data.records),)
        with output_lock(config.workdir, "train", LAYOUT, inputs):
            strategy = make_strategy(config.strategy)
            return _train(config, records, strategy, command, overwrite)
    strategy = make_strategy(config.strategy)
    # Another worker of a multi-worker run: it runs the same steps (every collective needs it)
    # but writes its checkpoints, logs and export to a scratch folder, removed at the end.
    scratch = tempfile.mkdtemp(prefix=f"satx-worker-{os.getpid()}-")
    try:
        return _train(
            config.with_overrides({"workdir": scratch, "export_dir": ""}),
            records,
            strategy,
            command,
            overwrite=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(
    config: TrainConfig,
    records: Records,
    strategy: tf.distribute.Strategy,
    command: str | None,
    overwrite: bool,
) -> TrainResult:
    work = Workdir(config.workdir)
    _check_workdir(work, config, overwrite)
    keras.utils.set_random_seed(config.seed)
    if config.data.deterministic:
        tf.config.experimental.enable_op_determinism()
    policy = set_precision(config.mixed_precision)
    multiworker = isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
    run_data = make_training_data(config, records, strategy.num_replicas_in_sync, multiworker)
    num_classes = records.manifest.num_classes
    # Multi-worker logs average AUC/precision/recall over workers; loss is exact.
    requested = "val_loss" if multiworker and config.monitor == "auto" else config.monitor
    monitor = monitor_for(num_classes, requested)
    write_json(
        work.run,
        _run_record(config, records, strategy, policy, run_data, monitor[0], command),
    )
    state = work.read_state()
    if state.get("done"):
        log.info("%s: training already complete; --overwrite to retrain", work.root)
        return work.read_result()
    model, sample = _model_for(config, run_data, strategy, multiworker, num_classes)
    n1, n2 = config.n_epo_phase1, config.n_epo_phase2
    start_time = time.monotonic()
    if state.get("phase1_done"):
        model.load_weights(work.phase1_weights)
    first = n1 if state.get("phase1_done") else 0
    for phase, start, end in phase_segments(n1, first, n1 + n2):
        phase_model, phase_data, phase_sample = model, run_data, sample
        phase_config = config_for_phase(config, phase)
        if phase_config is not config:  # progressive resizing: a smaller model
            phase_data = make_training_data(
                phase_config, records, strategy.num_replicas_in_sync, multiworker
            )
            phase_model, phase_sample = _model_for(
                phase_config, phase_data, strategy, multiworker, num_classes
            )
        with strategy.scope():
            note = compile_phase(phase_model, config, phase, num_classes, phase_data.steps)
        log.info("%s", note)
        callbacks = _callbacks(
            config, work, phase, monitor, work.read_state(), phase_data.counter, phase_sample
        )
        _fit_phase(phase_model, phase_data, phase, start, end, callbacks)
        if phase == 1:
            phase_model.save_weights(work.phase1_weights)
            if phase_model is not model:  # the same weights, at the model's input size
                model.load_weights(work.phase1_weights)
            work.write_state({**work.read_state(), "phase1_done": True})
    summary = _finish(
        model, config, work, records, monitor[0], time.monotonic() - start_time, run_data
    )
    work.write_state({**work.read_state(), "done": True})
    return summary


def _fit_phase(
    model: keras.Model,
    data: TrainingData,
    phase: int,
    start: int,
    end: int,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Train epochs [start, end) of one phase."""
    log.info(
        "phase %d: epochs %d..%d, %d steps/epoch, %d px",
        phase,
        start,
        end - 1,
        data.steps,
        model.input_shape[1],
    )
    model._initial_epoch = None  # Keras keeps a resumed fit's start; each phase starts anew
    model.fit(epochs=end, initial_epoch=start, callbacks=callbacks, verbose=2, **data.fit_kwargs())


def _model_for(
    config: TrainConfig,
    data: TrainingData,
    strategy: tf.distribute.Strategy,
    multiworker: bool,
    num_classes: int,
) -> tuple[keras.Model, tf.Tensor]:
    """The classifier for `config` under `strategy`, and sample images for TensorBoard."""
    with strategy.scope():
        model = build_model(config, num_classes)
    first_batch = next(iter(data.train.take(1)))
    if multiworker:
        build_from_local_batch(model, strategy, first_batch)
    return model, first_batch[0][: config.tensorboard_images]


def _calibrate_on_val(model: keras.Model, data: TrainingData) -> tuple[Calibration, dict]:
    """Temperature and class bias fitted on the validation split (see `calibration`).

    Returns the calibration and its record for the run summary (split, NLL before and after).
    """
    probs, labels = [], []
    for images, onehot in data.val.take(data.val_steps):
        probs.append(np.asarray(model(images, training=False), np.float64))
        labels.append(np.argmax(np.asarray(onehot), axis=1))
    p, y = np.concatenate(probs), np.concatenate(labels)
    fitted = fit_calibration(p, y)
    record = {
        **fitted.to_dict(),
        "split": data.val_split,
        "val_nll_before": round(nll(p, y), 5),
        "val_nll_after": round(nll(fitted.apply(p), y), 5),
    }
    log.info("calibration: %s", record)
    return fitted, record


def _finish(
    model: keras.Model,
    config: TrainConfig,
    work: Workdir,
    records: Records,
    monitor: str,
    elapsed: float,
    data: TrainingData,
) -> TrainResult:
    class_names = list(records.manifest.class_names)
    model.save(work.model)
    write_json(work.root / "class_names.json", class_names)  # read next to .keras
    fitted, record = _calibrate_on_val(model, data) if config.calibrate else (Calibration(), {})
    export_root = Path(config.export_dir) if config.export_dir else work.export
    export_dir = (
        write_saved_model(
            model, export_root, class_names, calibration=fitted, tta=config.export_tta
        )
        if config.export
        else None
    )
    state = work.read_state()
    result = TrainResult(
        monitor=monitor,
        best=state.get("best"),
        best_epoch=state.get("best_epoch"),
        epochs_run=tuple(state.get("epochs_run", [])),
        elapsed_s=round(elapsed, 1),
        model=str(work.model),
        best_checkpoint=str(work.best),
        export=str(export_dir) if export_dir else None,
        calibration=record or fitted.to_dict(),
        tensorboard=f"tensorboard --logdir {work.logs}",
    )
    work.write_result(result)
    return result
