"""The two training phases, shared by `satx.train` and every tuning trial.

Phase 1 trains the head with a pretrained backbone frozen for `n_epo_phase1` epochs at
`lr_phase1`; phase 2 unfreezes the backbone from `freeze_cutoff` and fine-tunes at `lr_phase2`.
Epochs are numbered across both phases (phase 2 starts at epoch `n_epo_phase1`).
"""

from __future__ import annotations

import dataclasses
import logging

import keras

from satx.config import TrainConfig
from satx.models import backbones
from satx.models.classifier import build_classifier, freeze_backbone, unfreeze_from
from satx.models.metrics import PositiveClassAUC
from satx.train.schedule import WarmupCosine, make_optimizer

log = logging.getLogger(__name__)


def build_model(config: TrainConfig, num_classes: int) -> keras.Model:
    """The run's classifier, its augmentation seeded with the run's seed."""
    return build_classifier(config.model, num_classes, seed=config.seed)


def config_for_phase(config: TrainConfig, phase: int) -> TrainConfig:
    """The config a phase trains with: phase 1 at `phase1_image_size` when that is set.

    Progressive resizing: the convolutions and the pooled head have no size of their own, so
    weights learned on small inputs carry over to the model's size, where phase 2 goes on.
    """
    if phase == 1 and config.phase1_image_size:
        model = dataclasses.replace(config.model, image_size=config.phase1_image_size)
        return dataclasses.replace(config, model=model)
    return config


def monitor_for(num_classes: int, requested: str = "auto") -> tuple[str, str]:
    """The validation metric that picks the best model, and its mode."""
    if requested != "auto":
        return requested, "min" if "loss" in requested else "max"
    return ("val_auc", "max") if num_classes == 2 else ("val_accuracy", "max")


def _make_metrics(num_classes: int) -> list[keras.metrics.Metric]:
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


def phase_learning_rate(
    config: TrainConfig, phase: int, lr: float, steps_per_epoch: int
) -> float | WarmupCosine:
    """The phase's learning rate: a number (`plateau`), or warm-up + cosine over its steps."""
    if config.lr_schedule != "cosine":
        return lr
    epochs = config.n_epo_phase1 if phase == 1 else config.n_epo_phase2
    steps = max(1, steps_per_epoch)
    return WarmupCosine(lr, epochs * steps, round(config.warmup_epochs * steps))


def compile_phase(
    model: keras.Model,
    config: TrainConfig,
    phase: int,
    num_classes: int,
    steps_per_epoch: int = 0,
) -> str:
    """Freeze/unfreeze for `phase` and compile with that phase's learning rate (or schedule).

    From scratch (no pretrained weights) there is nothing to transfer: a frozen random backbone
    only yields noise features, so the whole network trains in both phases and phase 2 differs
    only by its learning rate (the freeze cut-off has no effect, and tuning does not search it).
    Returns what the phase trains, for the log of the fit that runs it.
    """
    start = 0
    if not config.model.pretrained:
        unfreeze_from(model, 0, config.model.backbone, freeze_batchnorm=False)
    elif phase == 1:
        freeze_backbone(model)
    else:
        start = unfreeze_from(model, _cutoff(config), config.model.backbone, True)
    lr = config.lr_phase1 if phase == 1 else config.lr_phase2
    rate = phase_learning_rate(config, phase, lr, steps_per_epoch)
    model.compile(
        optimizer=make_optimizer(config.optimizer, rate, config.weight_decay, config.ema_momentum),
        loss=make_loss(config),
        metrics=_make_metrics(num_classes),
    )
    return phase_note(config, phase, start)


def phase_note(config: TrainConfig, phase: int, unfrozen_from: int = 0) -> str:
    """What a phase trains, in a line (`unfrozen_from`: phase 2's first trained layer)."""
    lr = config.lr_phase1 if phase == 1 else config.lr_phase2
    if not config.model.pretrained:
        what = "from scratch, every layer trains (no pretrained backbone to freeze)"
    elif phase == 1:
        what = "the head trains, the pretrained backbone is frozen"
    else:
        what = f"fine-tuning backbone layers from index {unfrozen_from} ({_cutoff(config)})"
    return f"phase {phase}: {what}, learning rate {lr:g}"


def _cutoff(config: TrainConfig) -> str:
    return config.freeze_cutoff or backbones.get_spec(config.model.backbone).default_cutoff


def make_loss(config: TrainConfig) -> keras.losses.Loss:
    """Cross-entropy, or focal loss (Lin et al. 2017) with `focal_gamma > 0`.

    alpha is 1: class balance is `class_weight`'s job, so gamma changes only how much the easy
    tiles count.
    """
    smoothing = config.label_smoothing
    if config.focal_gamma > 0:
        return keras.losses.CategoricalFocalCrossentropy(
            alpha=1.0, gamma=config.focal_gamma, label_smoothing=smoothing
        )
    return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)


def phase_segments(n_epo_phase1: int, first: int, end: int) -> list[tuple[int, int, int]]:
    """Split epochs [first, end) into `(phase, first, end)` runs: phase 1 below n_epo_phase1."""
    segments = []
    if first < min(n_epo_phase1, end):
        segments.append((1, first, min(n_epo_phase1, end)))
        first = min(n_epo_phase1, end)
    if end > first:
        segments.append((2, first, end))
    return segments
