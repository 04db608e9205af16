"""Hyperparameter search: a Keras Tuner HyperModel over the training core, and a Hyperband driver.

The search space is the predecessor's (dense size, activation, dropout, optimizer, the two
learning rates, phase-1 epochs, and a per-backbone freeze cut-off under a conditional scope).
`SatxHyperModel.build` builds the same classifier as `satx.train`; its `fit` runs the same two
phases, decided by the epoch range Hyperband asks for: a trial promoted to a later bracket
(`initial_epoch > 0`, weights reloaded) only runs phase 1 for epochs before `n_epo_phase1`, and
phase 2 (backbone unfrozen from the cut-off) from there on.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import keras_tuner as kt
import tensorflow as tf

from satx import backbones, data, failpoints, models
from satx.callbacks import EpochHook
from satx.errors import InputError
from satx.hyperband import SatxTuner
from satx.train import (
    compile_phase,
    epoch_log_callbacks,
    make_training_data,
    monitor_for,
    phase_segments,
    train,
)
from satx.train_config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchSpace:
    """The hyperparameters and their ranges (defaults: the predecessor's)."""

    dense_units: tuple[int, ...] = (128, 256, 512)
    dense_activation: tuple[str, ...] = ("relu", "elu")
    dropout: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5)
    optimizer: tuple[str, ...] = ("adam", "rmsprop")
    lr_phase1: tuple[float, float] = (1e-4, 1e-3)  # log-uniform
    lr_phase2: tuple[float, float] = (1e-5, 1e-4)  # log-uniform
    n_epo_phase1: tuple[int, ...] = (1, 2)
    freeze_cutoffs: dict[str, tuple[str, ...]] = field(default_factory=dict)  # backbone -> cuts

    def cutoffs(self, backbone: str) -> tuple[str, ...]:
        """Cut-off choices for a backbone: configured, else the spec's named cut points."""
        if backbone in self.freeze_cutoffs:
            return tuple(str(c) for c in self.freeze_cutoffs[backbone])
        spec = backbones.get_spec(backbone)
        return tuple(spec.cutoffs) or (str(spec.default_cutoff),)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SearchSpace:
        """From JSON (lists become tuples)."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def define_hparams(hp: kt.HyperParameters, space: SearchSpace, names: Sequence[str]) -> dict:
    """Declare the search space on `hp`; return flat TrainConfig overrides for this trial."""
    if len(names) > 1:
        backbone = hp.Choice("backbone", list(names))
    else:
        backbone = hp.Fixed("backbone", names[0])
    cutoff = None
    for name in names:
        with hp.conditional_scope("backbone", [name]):
            choice = hp.Choice(f"freeze_cutoff_{name}", list(space.cutoffs(name)))
        if name == backbone:
            cutoff = choice
    return {
        "backbone": backbone,
        "freeze_cutoff": cutoff,
        "dense_units": hp.Choice("dense_units", list(space.dense_units)),
        "dense_activation": hp.Choice("dense_activation", list(space.dense_activation)),
        "dropout": hp.Choice("dropout", list(space.dropout)),
        "optimizer": hp.Choice("optimizer", list(space.optimizer)),
        "lr_phase1": hp.Float("lr_phase1", *space.lr_phase1, sampling="log"),
        "lr_phase2": hp.Float("lr_phase2", *space.lr_phase2, sampling="log"),
        "n_epo_phase1": hp.Choice("n_epo_phase1", list(space.n_epo_phase1)),
    }


class SatxHyperModel(kt.HyperModel):
    """Builds and trains satx classifiers for Keras Tuner, reusing the training core."""

    def __init__(
        self,
        base: TrainConfig,
        space: SearchSpace,
        names: Sequence[str],
        strategy: tf.distribute.Strategy | None = None,
    ):
        super().__init__(name="satx")
        self.base, self.space, self.names = base, space, list(names)
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync  # global batch = batch x replicas
        self.info = data.load_records(base.records)
        self.phase_log: list[dict[str, int]] = []  # (phase, first epoch, end epoch) per fit

    def config_for(self, hp: kt.HyperParameters) -> TrainConfig:
        """The full training config of a trial."""
        return self.base.with_overrides(define_hparams(hp, self.space, self.names))

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The trial's classifier, compiled for phase 1 (or phase 2 when phase 1 has 0 epochs)."""
        config = self.config_for(hp)
        model = models.build_classifier(config.model, self.info.num_classes)
        compile_phase(model, config, 1 if config.n_epo_phase1 else 2, self.info.num_classes)
        return model

    def fit(
        self,
        hp: kt.HyperParameters,
        model: keras.Model,
        *args: Any,
        epochs: int = 1,
        initial_epoch: int = 0,
        callbacks: list | None = None,
        **kwargs: Any,
    ) -> keras.callbacks.History:
        """Run the part of the two-phase schedule in [initial_epoch, epochs).

        Returns one History over every epoch run (both phases), so the trial's score is its best
        epoch whichever phase it fell in, plus `trial_seconds`, the wall time of this fit.
        """
        started = time.monotonic()
        config = self.config_for(hp)
        run_data = make_training_data(config, self.info, self.replicas)
        ours = [  # before Keras Tuner's callbacks (TensorBoard writes the epoch logs)
            *epoch_log_callbacks(config, run_data.counter),
            EpochHook(lambda: failpoints.hit("tune.epoch_end")),
        ]
        callbacks = ours + list(callbacks or [])
        merged = keras.callbacks.History()
        merged.epoch = []
        for phase, start, end in phase_segments(config.n_epo_phase1, initial_epoch, epochs):
            if phase == 2:  # build() compiled phase 1; a promoted trial may start right here
                with self.strategy.scope():  # new optimizer variables are mirrored too
                    compile_phase(model, config, 2, self.info.num_classes)
            self.phase_log.append({"phase": phase, "first": start, "end": end})
            history = model.fit(
                epochs=end,
                initial_epoch=start,
                callbacks=callbacks,
                verbose=kwargs.get("verbose", 0),
                **run_data.fit_kwargs(),
            )
            # TensorBoard's HParams callback writes the trial's hyperparameters once and refuses
            # a second `fit`; keep it for the first phase only.
            callbacks = [c for c in callbacks if not _is_hparams_callback(c)]
            merged.epoch.extend(history.epoch)
            for key, values in history.history.items():
                merged.history.setdefault(key, []).extend(values)
        seconds = round(time.monotonic() - started, 2)
        merged.history["trial_seconds"] = [seconds] * len(merged.epoch)
        return merged


def _is_hparams_callback(callback: keras.callbacks.Callback) -> bool:
    from tensorboard.plugins.hparams import api as hparams_api

    return isinstance(callback, hparams_api.KerasCallback)


def backbone_names(choice: str) -> list[str]:
    """`all` -> the real backbones; otherwise the one named (validated)."""
    if choice == "all":
        return ["mobilenetv2", "xception"]
    backbones.get_spec(choice)
    return [choice]


def make_tuner(
    hypermodel: SatxHyperModel,
    directory: str,
    project_name: str,
    objective: str = "auto",
    **kwargs: Any,
) -> SatxTuner:
    """A Hyperband tuner over the hypermodel (objective: val AUC binary, val accuracy else).

    Keyword arguments go to `SatxTuner` (`max_epochs`, `factor`, `hyperband_iterations`, `seed`,
    `max_trials`, `time_budget_s`, `recycle_rss_mb`) and on to Keras Tuner (`overwrite`,
    `distribution_strategy`, ...).
    """
    name, mode = monitor_for(hypermodel.info.num_classes, objective)
    return SatxTuner(
        hypermodel,
        objective=kt.Objective(name, mode),
        directory=directory,
        project_name=project_name,
        **kwargs,
    )


def leaderboard(tuner: kt.Tuner) -> list[dict[str, Any]]:
    """Every completed trial, best first: id, backbone, hyperparameters, score, epochs."""
    rows = []
    trials = tuner.oracle.get_best_trials(num_trials=len(tuner.oracle.trials))
    for rank, trial in enumerate(trials, start=1):
        values = {
            k: v for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
        }
        rows.append(
            {
                "rank": rank,
                "trial": trial.trial_id,
                "backbone": values.get("backbone"),
                "score": trial.score,
                "epochs": trial.hyperparameters.values.get("tuner/epochs"),
                "best_step": trial.best_step,
                "seconds": _metric(trial, "trial_seconds"),
                "status": str(trial.status),
                "hyperparameters": values,
            }
        )
    return rows


def _metric(trial: kt.engine.trial.Trial, name: str) -> float | None:
    tracker = trial.metrics
    return tracker.get_last_value(name) if tracker.exists(name) else None


def best_hparams(tuner: kt.Tuner, hypermodel: SatxHyperModel) -> dict[str, Any]:
    """Flat overrides of the best trial, as `python -m satx.train --hparams=FILE` accepts."""
    hp = tuner.get_best_hyperparameters(1)[0]
    overrides = define_hparams(hp.copy(), hypermodel.space, hypermodel.names)
    return json.loads(json.dumps(overrides))


def best_epochs(tuner: kt.Tuner) -> int:
    """Epochs the best trial trained in all (its lineage included), as Hyperband counted them."""
    best = tuner.oracle.get_best_trials(1)[0]
    return int(best.hyperparameters.values.get("tuner/epochs", 1))


def retrain_best(
    hypermodel: SatxHyperModel,
    best: dict[str, Any],
    epochs: int,
    workdir: Path,
    on: str = "train",
    command: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Retrain the best configuration for the best trial's epochs; export to WORKDIR/export/.

    The run folder is WORKDIR/best (a normal `satx.train` run, resumable). With `on="train+val"`
    the model also learns from the validation split and trains the full epoch count (no early
    stopping); its validation numbers are then not held-out figures.
    """
    if on not in ("train", "train+val"):
        raise InputError(f"--export_best_on={on!r}: expected train or train+val")
    config = hypermodel.base.with_overrides(best)
    phase2 = max(0, epochs - config.n_epo_phase1)
    overrides: dict[str, Any] = {
        "workdir": str(workdir / "best"),
        "n_epo_phase2": phase2,
        "export": True,
        "export_dir": str(workdir / "export"),
    }
    if on == "train+val":
        overrides.update(train_split="train+val", patience=phase2 + 1)
    return train(config.with_overrides(overrides), command=command, overwrite=overwrite)


def write_hparams_config(logdir: Path, tuner: kt.Tuner) -> None:
    """The HParams dashboard's experiment: every hyperparameter and the objective per trial run."""
    from tensorboard.plugins.hparams import api as hparams_api

    hparams = [_hparam(hp, hparams_api) for hp in tuner.oracle.get_space().space]
    name = tuner.oracle.objective.name
    metric = name.removeprefix("val_")
    metrics = [
        hparams_api.Metric(f"epoch_{metric}", group="validation", display_name=name),
        hparams_api.Metric(f"epoch_{metric}", group="train", display_name=metric),
        hparams_api.Metric("epoch_loss", group="validation", display_name="val_loss"),
    ]
    writer = tf.summary.create_file_writer(str(logdir))
    with writer.as_default():
        hparams_api.hparams_config(hparams=hparams, metrics=metrics)
    writer.flush()


def _hparam(hp: Any, api: Any) -> Any:
    """A Keras Tuner hyperparameter as a TensorBoard HParam with its domain."""
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return api.HParam(hp.name, api.Discrete(list(hp.values)))
    if isinstance(hp, kt.engine.hyperparameters.Float):
        return api.HParam(hp.name, api.RealInterval(float(hp.min_value), float(hp.max_value)))
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return api.HParam(hp.name, api.IntInterval(int(hp.min_value), int(hp.max_value)))
    return api.HParam(hp.name)


if __name__ == "__main__":
    from satx.cli.tune import entry

    entry()
