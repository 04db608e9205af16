"""Training callbacks on a real Keras model, epoch by epoch."""

import keras
import numpy as np
import pytest

from satx.train.callbacks import BestEpochStopping

# val_auc per epoch of a real binary run (rounded): Keras' EarlyStopping with min_delta 0.01 kept
# epoch 1's weights, since no later epoch beat 0.994 by 0.01.
AUCS = [0.979, 0.994, 0.9969, 0.9988, 0.9972, 0.9995, 0.9991]


def _run(callback: keras.callbacks.EarlyStopping, values: list[float]) -> keras.Model:
    """Feed `values` as epoch ends; before each, the weights are set to the epoch number."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    callback.set_model(model)
    callback.on_train_begin()
    for epoch, value in enumerate(values):
        model.set_weights([np.full(w.shape, float(epoch)) for w in model.get_weights()])
        callback.on_epoch_end(epoch, {"val_auc": value})
        if getattr(model, "stop_training", False):
            break
    callback.on_train_end()
    return model


def _epoch_of_weights(model: keras.Model) -> float:
    return float(model.get_weights()[0].flat[0])


def test_the_restored_weights_are_the_best_epoch_by_any_margin():
    kw = {"monitor": "val_auc", "mode": "max", "patience": 100, "restore_best_weights": True}
    keras_way = _run(keras.callbacks.EarlyStopping(min_delta=0.01, **kw), AUCS)
    assert _epoch_of_weights(keras_way) == 1  # what training exported before

    stopping = BestEpochStopping(min_delta=0.01, **kw)
    model = _run(stopping, AUCS)
    assert _epoch_of_weights(model) == 5
    assert stopping.best_epoch == 5 and stopping.best_any == pytest.approx(0.9995)


def test_min_delta_still_decides_patience():
    stopping = BestEpochStopping(
        monitor="val_auc", mode="max", patience=2, min_delta=0.01, restore_best_weights=True
    )
    model = _run(stopping, AUCS)
    # epochs 2 and 3 do not beat 0.994 by 0.01: patience 2 runs out at epoch 3
    assert stopping.stopped_epoch == 3
    assert _epoch_of_weights(model) == 3  # the best of the epochs run (0.9988)


def test_a_lower_is_better_monitor():
    stopping = BestEpochStopping(
        monitor="val_auc", mode="min", patience=100, min_delta=0.5, restore_best_weights=True
    )
    model = _run(stopping, [0.9, 0.5, 0.4, 0.6])
    assert _epoch_of_weights(model) == 2
