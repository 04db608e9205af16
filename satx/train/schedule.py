"""Learning-rate schedules by step, and the optimizers that use them.

`WarmupCosine`: linear warm-up from 0 to the phase's learning rate over `warmup_steps`, then a
cosine decay to `final_fraction` of it at `total_steps` (held there after). A function of the
optimizer's step counter, which BackupAndRestore saves with the optimizer: a resumed run
continues the same curve.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

# AdamW's decay applies to kernels; not to biases or BatchNorm's scale and offset (decaying
# those only shifts activations and fights BatchNorm's own normalisation).
NO_DECAY = ("bias", "gamma", "beta")


@keras.saving.register_keras_serializable(package="satx")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay, by optimizer step."""

    def __init__(
        self,
        learning_rate: float,
        total_steps: int,
        warmup_steps: int = 0,
        final_fraction: float = 0.0,
    ):
        self.learning_rate = float(learning_rate)
        self.total_steps = max(1, int(total_steps))
        self.warmup_steps = max(0, min(int(warmup_steps), self.total_steps))
        self.final_fraction = float(final_fraction)

    def __call__(self, step: Any) -> Any:
        """The learning rate at optimizer step `step` (0-based)."""
        step = ops.cast(step, "float32")
        peak, warm = self.learning_rate, float(self.warmup_steps)
        rising = peak * (step + 1.0) / max(warm, 1.0)
        span = max(1.0, float(self.total_steps - self.warmup_steps))
        progress = ops.clip((step - warm) / span, 0.0, 1.0)
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        falling = peak * (self.final_fraction + (1.0 - self.final_fraction) * cosine)
        return ops.where(step < warm, rising, falling)

    def get_config(self) -> dict[str, Any]:
        """What `keras.saving` needs to rebuild it."""
        return {
            "learning_rate": self.learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "final_fraction": self.final_fraction,
        }


def make_optimizer(
    name: str,
    learning_rate: float | WarmupCosine,
    weight_decay: float = 0.0,
    ema_momentum: float = 0.0,
) -> keras.optimizers.Optimizer:
    """`adam`, `rmsprop` (the predecessor's) or `adamw` (decoupled weight decay, kernels only).

    `ema_momentum > 0` keeps an exponential moving average of the trainable weights in the
    optimizer (updated in the training step); `satx.train.callbacks.ema_callbacks` puts it
    into the model for validation, checkpoints and the export.
    """
    ema = {"use_ema": ema_momentum > 0, "ema_momentum": ema_momentum or 0.99}
    if name == "adamw":
        optimizer = keras.optimizers.AdamW(
            learning_rate=learning_rate, weight_decay=weight_decay, **ema
        )
        optimizer.exclude_from_weight_decay(var_names=list(NO_DECAY))
        return optimizer
    optimizers = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}
    return optimizers[name](learning_rate=learning_rate, **ema)
