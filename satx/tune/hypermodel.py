"""The search space and the HyperModel: each trial builds and trains like `satx.train`.

The search space is the predecessor's (dense size, activation, dropout, optimizer, the two
learning rates, phase-1 epochs, and a per-backbone freeze cut-off under a conditional scope),
plus the recipe's knobs: AdamW's weight decay (conditional on `adamw`), the learning-rate
schedule and label smoothing. A cosine trial's schedule spans the search's `max_epochs`, so
Hyperband's short rounds see the same curve as the trial's full length.
`SatxHyperModel.build` builds the same classifier as `satx.train`; its `fit` runs the same two
phases, decided by the epoch range Hyperband asks for: a trial promoted to a later bracket
(`initial_epoch > 0`, weights reloaded) only runs phase 1 for epochs before `n_epo_phase1`, and
phase 2 (backbone unfrozen from the cut-off) from there on.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

import keras
import keras_tuner as kt
import tensorflow as tf

from satx.config import SearchSpace, TrainConfig, default_of
from satx.io import failpoints
from satx.models import backbones
from satx.records.manifest import load_records
from satx.train.callbacks import EpochHook, ema_callbacks, epoch_log_callbacks
from satx.train.inputs import make_training_data
from satx.train.phases import build_model, compile_phase, phase_note, phase_segments

log = logging.getLogger(__name__)


def _cutoff_choices(space: SearchSpace, backbone: str) -> tuple[str, ...]:
    """Cut-off choices for a backbone: configured, else the spec's named cut points."""
    if backbone in space.freeze_cutoffs:
        return tuple(str(c) for c in space.freeze_cutoffs[backbone])
    spec = backbones.get_spec(backbone)
    return tuple(spec.cutoffs) or (str(spec.default_cutoff),)


def searched_knobs() -> list[dataclasses.Field]:
    """The search space's entries in declaration order (the per-backbone cut-offs apart)."""
    return [f for f in dataclasses.fields(SearchSpace) if f.name != "freeze_cutoffs"]


def _declare(hp: kt.HyperParameters, knob: dataclasses.Field, values: Any) -> Any:
    if knob.metadata["log"]:
        return hp.Float(knob.name, *values, sampling="log")
    return hp.Choice(knob.name, list(values))


def define_hparams(
    hp: kt.HyperParameters, space: SearchSpace, names: Sequence[str], pretrained: bool = True
) -> dict:
    """Declare the search space on `hp`; return flat TrainConfig overrides for this trial.

    The backbone (when several) and its cut-off come first (the cut-off only for `pretrained`
    backbones: from scratch every layer trains, and it has no effect), then every `SearchSpace`
    entry in its order; an entry with `when=(other, value)` is searched under that condition
    and takes the TrainConfig default otherwise.
    """
    if len(names) > 1:
        backbone = hp.Choice("backbone", list(names))
    else:
        backbone = hp.Fixed("backbone", names[0])
    overrides: dict[str, Any] = {"backbone": backbone}
    for name in names if pretrained else ():
        with hp.conditional_scope("backbone", [name]):
            choice = hp.Choice(f"freeze_cutoff_{name}", list(_cutoff_choices(space, name)))
        if name == backbone:
            overrides["freeze_cutoff"] = choice
    for knob in searched_knobs():
        values, when = getattr(space, knob.name), knob.metadata["when"]
        if when is None:
            overrides[knob.name] = _declare(hp, knob, values)
            continue
        other, value = when
        overrides[knob.name] = default_of(TrainConfig, knob.name)
        if value in getattr(space, other):
            with hp.conditional_scope(other, [value]):
                drawn = _declare(hp, knob, values)
            if overrides[other] == value:
                overrides[knob.name] = drawn
    return overrides


class SatxHyperModel(kt.HyperModel):
    """Builds and trains satx classifiers for Keras Tuner, reusing the training core."""

    def __init__(
        self,
        base: TrainConfig,
        space: SearchSpace,
        names: Sequence[str],
        strategy: tf.distribute.Strategy | None = None,
        max_epochs: int = 0,
    ):
        super().__init__(name="satx")
        self.base, self.space, self.names = base, space, list(names)
        self.max_epochs = max_epochs  # the search's; 0: the base config's epochs
        self.strategy = strategy or tf.distribute.get_strategy()
        self.replicas = self.strategy.num_replicas_in_sync  # global batch = batch x replicas
        self.records = load_records(base.data.records)
        self.num_classes = self.records.manifest.num_classes
        self.phase_log: list[dict[str, int]] = []  # (phase, first epoch, end epoch) per fit

    def config_for(self, hp: kt.HyperParameters) -> TrainConfig:
        """The full training config of a trial."""
        config = self.base.with_overrides(self.hparams(hp))
        if self.max_epochs and config.lr_schedule == "cosine":
            phase2 = max(1, self.max_epochs - config.n_epo_phase1)
            config = config.with_overrides({"n_epo_phase2": phase2})
        return config

    def hparams(self, hp: kt.HyperParameters) -> dict[str, Any]:
        """The trial's flat TrainConfig overrides, declared on `hp`."""
        return define_hparams(hp, self.space, self.names, self.base.model.pretrained)

    def build(self, hp: kt.HyperParameters) -> keras.Model:
        """The trial's classifier, compiled for phase 1 (or phase 2 when phase 1 has 0 epochs)."""
        config = self.config_for(hp)
        model = build_model(config, self.num_classes)
        compile_phase(model, config, 1 if config.n_epo_phase1 else 2, self.num_classes)
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
        run_data = make_training_data(config, self.records, self.replicas)
        ours = [  # before Keras Tuner's callbacks (TensorBoard writes the epoch logs)
            *epoch_log_callbacks(config, run_data.counter),
            *ema_callbacks(config),
            EpochHook(lambda: failpoints.hit("tune.epoch_end")),
        ]
        callbacks = ours + list(callbacks or [])
        merged = keras.callbacks.History()
        merged.epoch = []
        segments = phase_segments(config.n_epo_phase1, initial_epoch, epochs)
        for i, (phase, start, end) in enumerate(segments):
            # build() compiled phase 1 (a promoted trial may start in phase 2), and without the
            # steps per epoch that a cosine schedule needs
            note = phase_note(config, phase)
            if phase == 2 or (i == 0 and config.lr_schedule == "cosine"):
                with self.strategy.scope():  # new optimizer variables are mirrored too
                    note = compile_phase(model, config, phase, self.num_classes, run_data.steps)
            log.info("epochs %d..%d, %s", start, end - 1, note)
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
