"""Metrics that Keras lacks in a save/load-safe form."""

from __future__ import annotations

from typing import Any

import keras


@keras.saving.register_keras_serializable(package="satx")
class PositiveClassAUC(keras.metrics.AUC):
    """ROC (or PR) AUC of one class of a softmax output (binary: the positive class, index 1).

    Keras' `AUC(multi_label=True, label_weights=[0, 1])` computes the same number but a model
    compiled with it cannot be reloaded (label_weights does not deserialize).
    """

    def __init__(self, class_index: int = 1, **kwargs: Any):
        super().__init__(**kwargs)
        self.class_index = class_index

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """Score only the chosen class's column."""
        k = self.class_index
        return super().update_state(y_true[:, k], y_pred[:, k], sample_weight)

    def get_config(self) -> dict[str, Any]:
        """Serializable config."""
        return {**super().get_config(), "class_index": self.class_index}
