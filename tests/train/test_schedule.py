"""The training recipe's pieces: the warm-up + cosine schedule, AdamW's decay, label smoothing."""

import math

import keras
import numpy as np
import pytest

from satx.config import TrainConfig
from satx.train.phases import build_model, compile_phase, phase_learning_rate
from satx.train.schedule import WarmupCosine, make_optimizer


def test_warmup_then_cosine_values_at_given_steps():
    s = WarmupCosine(1e-3, total_steps=110, warmup_steps=10, final_fraction=0.1)
    lr = {step: float(s(step)) for step in (0, 4, 9, 10, 60, 110, 500)}
    assert lr[0] == pytest.approx(1e-4) and lr[4] == pytest.approx(5e-4)
    assert lr[9] == pytest.approx(1e-3)  # the last warm-up step reaches the peak
    assert lr[10] == pytest.approx(1e-3)  # decay starts at the peak
    assert lr[60] == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
    assert lr[110] == pytest.approx(1e-4) and lr[500] == pytest.approx(1e-4)
    again = WarmupCosine.from_config(s.get_config())
    assert float(again(60)) == pytest.approx(lr[60])


def test_phase_learning_rate_spans_the_phase():
    config = TrainConfig(lr_schedule="cosine", warmup_epochs=0.5, n_epo_phase2=4)
    rate = phase_learning_rate(config, 2, 2e-3, steps_per_epoch=10)
    assert (rate.total_steps, rate.warmup_steps, rate.learning_rate) == (40, 5, 2e-3)
    assert phase_learning_rate(TrainConfig(), 2, 2e-3, 10) == 2e-3  # plateau: a number


def test_adamw_decays_kernels_not_biases_or_batchnorm():
    inputs = keras.Input((4,))
    x = keras.layers.Dense(3, bias_initializer="ones")(inputs)
    outputs = keras.layers.BatchNormalization(gamma_initializer="ones", beta_initializer="ones")(x)
    model = keras.Model(inputs, outputs)
    optimizer = make_optimizer("adamw", 0.1, weight_decay=0.5)
    before = {v.path: keras.ops.convert_to_numpy(v) for v in model.trainable_variables}
    # zero gradients: whatever changes, changed by the decay alone
    optimizer.apply_gradients(
        [(np.zeros(v.shape, "float32"), v) for v in model.trainable_variables]
    )
    for v in model.trainable_variables:
        changed = not np.allclose(keras.ops.convert_to_numpy(v), before[v.path])
        assert changed == v.path.endswith("kernel"), v.path
    kernel = next(v for v in model.trainable_variables if v.path.endswith("kernel"))
    after = keras.ops.convert_to_numpy(kernel)
    np.testing.assert_allclose(after, before[kernel.path] * (1 - 0.1 * 0.5), rtol=1e-5)


def test_compile_uses_the_recipe():
    config = TrainConfig(
        optimizer="adamw", weight_decay=0.05, lr_schedule="cosine", label_smoothing=0.1
    )
    config = config.with_overrides({"weights": "none", "backbone": "tiny", "image_size": 32})
    model = build_model(config, 2)
    compile_phase(model, config, 2, 2, steps_per_epoch=7)
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.optimizer.weight_decay == pytest.approx(0.05)
    assert model.loss.label_smoothing == pytest.approx(0.1)
    schedule = model.optimizer._learning_rate
    assert isinstance(schedule, WarmupCosine) and schedule.total_steps == 7 * config.n_epo_phase2


def test_a_recipe_trains_with_its_schedule(sample_records, tmp_path):
    from satx.train.fit import train
    from tests.support.helpers import tiny_train_config

    config = tiny_train_config(
        sample_records,
        tmp_path / "run",
        optimizer="adamw",
        weight_decay=1e-4,
        lr_schedule="cosine",
        warmup_epochs=1,
        label_smoothing=0.1,
        n_epo_phase1=0,
        n_epo_phase2=3,
        export=False,
    )
    train(config)
    rows = (tmp_path / "run" / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    rates = [float(r.split(",")[header.index("learning_rate")]) for r in rows[1:]]
    schedule = WarmupCosine(1e-3, total_steps=12, warmup_steps=4)
    # the rate logged after each epoch is the schedule's at that epoch's last step + 1
    assert rates == pytest.approx([float(schedule(4 * (e + 1))) for e in range(3)], rel=1e-4)


class _RawWeights(keras.callbacks.Callback):
    """The trainable weights after every step (the swap only happens at epoch boundaries)."""

    def __init__(self):
        super().__init__()
        self.steps = []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append([keras.ops.convert_to_numpy(v) for v in self.model.trainable_weights])


def test_ema_is_what_validation_sees_and_the_model_ends_with():
    from satx.train.callbacks import ema_callbacks

    keras.utils.set_random_seed(0)
    momentum = 0.8
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer=make_optimizer("adam", 0.05, ema_momentum=momentum), loss="mse")
    x, y = np.random.rand(32, 4).astype("float32"), np.random.rand(32, 2).astype("float32")
    raw = _RawWeights()
    swap = ema_callbacks(TrainConfig(ema_momentum=momentum))
    history = model.fit(
        x, y, batch_size=8, epochs=2, verbose=0, callbacks=[raw, *swap], validation_data=(x, y)
    )
    expected = raw.steps[0]  # the average starts at the first step's weights
    for weights in raw.steps[1:]:
        expected = [
            momentum * e + (1 - momentum) * w for e, w in zip(expected, weights, strict=True)
        ]
    final = [keras.ops.convert_to_numpy(v) for v in model.trainable_weights]
    for got, want, last in zip(final, expected, raw.steps[-1], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, last)  # the average, not the last step's weights
    # validation saw the averaged weights, which the model now holds
    assert history.history["val_loss"][-1] == pytest.approx(model.evaluate(x, y, verbose=0))
    assert ema_callbacks(TrainConfig()) == []
