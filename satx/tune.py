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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import keras
import keras_tuner as kt

from satx import backbones, data, models
from satx.train import compile_phase, make_training_data, monitor_for, phase_segments
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

    def __init__(self, base: TrainConfig, space: SearchSpace, names: Sequence[str]):
        super().__init__(name="satx")
        self.base, self.space, self.names = base, space, list(names)
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
    ) -> keras.callbacks.History | None:
        """Run the part of the two-phase schedule in [initial_epoch, epochs)."""
        config = self.config_for(hp)
        fit_args = make_training_data(config, self.info, 1).fit_kwargs()
        history = None
        for phase, start, end in phase_segments(config.n_epo_phase1, initial_epoch, epochs):
            if phase == 2:  # build() compiled phase 1; a promoted trial may start right here
                compile_phase(model, config, 2, self.info.num_classes)
            self.phase_log.append({"phase": phase, "first": start, "end": end})
            history = model.fit(
                epochs=end,
                initial_epoch=start,
                callbacks=callbacks,
                verbose=kwargs.get("verbose", 0),
                **fit_args,
            )
        return history


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
    max_epochs: int,
    factor: int = 3,
    hyperband_iterations: int = 1,
    seed: int = 42,
    overwrite: bool = False,
    objective: str = "auto",
    **kwargs: Any,
) -> kt.Hyperband:
    """A Hyperband tuner over the hypermodel (objective: val AUC binary, val accuracy else)."""
    name, mode = monitor_for(hypermodel.info.num_classes, objective)
    return kt.Hyperband(
        hypermodel,
        objective=kt.Objective(name, mode),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=hyperband_iterations,
        seed=seed,
        directory=directory,
        project_name=project_name,
        overwrite=overwrite,
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
                "status": str(trial.status),
                "hyperparameters": values,
            }
        )
    return rows


def best_hparams(tuner: kt.Tuner, hypermodel: SatxHyperModel) -> dict[str, Any]:
    """Flat overrides of the best trial, as `python -m satx.train --hparams=FILE` accepts."""
    hp = tuner.get_best_hyperparameters(1)[0]
    overrides = define_hparams(hp.copy(), hypermodel.space, hypermodel.names)
    return json.loads(json.dumps(overrides))


if __name__ == "__main__":
    from satx.cli.tune import entry

    entry()
