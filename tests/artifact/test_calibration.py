"""Temperature scaling on synthetic models with a known miscalibration."""

import numpy as np
import pytest

from satx.artifact.calibration import Calibration, fit_calibration, nll
from satx.evaluate.scores import reliability, roc_auc


def _model(temperature: float, n: int = 4000, k: int = 2, seed: int = 0):
    """Labels drawn from softmax(logits); the model reports softmax(logits * temperature)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 1.5, (n, k))
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = np.array([rng.choice(k, p=p) for p in true])
    reported = np.exp(logits * temperature)
    return reported / reported.sum(1, keepdims=True), labels


def test_temperature_fixes_an_overconfident_binary_model_and_keeps_its_ranking():
    probs, labels = _model(temperature=3.0)
    t = fit_calibration(probs, labels, bias=False).temperature
    assert t == pytest.approx(3.0, rel=0.1)
    fixed = Calibration(t).apply(probs)
    assert nll(fixed, labels) < nll(probs, labels) - 0.05
    assert roc_auc(labels, fixed[:, 1]) == pytest.approx(roc_auc(labels, probs[:, 1]), abs=1e-12)
    before = reliability(labels, probs[:, 1]).ece
    after = reliability(labels, fixed[:, 1]).ece
    assert after < before / 2


def test_a_calibrated_model_keeps_temperature_one_and_argmax_never_moves():
    probs, labels = _model(temperature=1.0, k=4, seed=1)
    assert fit_calibration(probs, labels, bias=False).temperature == pytest.approx(1.0, abs=0.1)
    underconfident, _ = _model(temperature=0.5, k=4, seed=1)
    fixed = Calibration(fit_calibration(underconfident, labels, bias=False).temperature).apply(
        underconfident
    )
    assert (fixed.argmax(1) == underconfident.argmax(1)).all()
    np.testing.assert_allclose(fixed.sum(1), 1.0)


def test_the_class_bias_undoes_a_prior_shift_that_temperature_cannot():
    """A model trained with the positive class weighted 9x: scores ~9x too often positive."""
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 1.5, (6000, 2))
    logits[:, 1] -= 2.0  # a rare positive class
    true = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = (rng.random(6000) < true[:, 1]).astype(int)
    shifted = np.exp(logits * 2.0 + [0.0, np.log(9.0)])  # overconfident and prior-shifted
    probs = shifted / shifted.sum(1, keepdims=True)
    fitted = fit_calibration(probs, labels)
    assert fitted.temperature == pytest.approx(2.0, rel=0.1)
    assert fitted.bias[1] - fitted.bias[0] == pytest.approx(-np.log(9.0) / 2.0, abs=0.15)
    with_bias = reliability(labels, fitted.apply(probs)[:, 1]).ece
    alone = fit_calibration(probs, labels, bias=False)  # a temperature, no bias
    temperature_only = reliability(labels, alone.apply(probs)[:, 1]).ece
    assert with_bias < 0.02 < temperature_only
    assert nll(fitted.apply(probs), labels) < nll(
        Calibration(fitted.temperature).apply(probs), labels
    )
    ranked = fitted.apply(probs)[:, 1]
    assert roc_auc(labels, ranked) == pytest.approx(roc_auc(labels, probs[:, 1]), abs=1e-12)
    np.testing.assert_allclose(fitted.undo(fitted.apply(probs)), probs, atol=1e-9)
    again = Calibration.from_dict(fitted.to_dict())
    assert again == fitted and Calibration.from_dict({"temperature": 2.0}).bias == ()


def test_a_perfectly_separated_tiny_split_gives_a_finite_fit():
    probs = np.array([[0.9, 0.1]] * 20 + [[0.4, 0.6]] * 8)
    labels = np.array([0] * 20 + [1] * 8)
    fitted = fit_calibration(probs, labels)
    assert 0.1 < fitted.temperature < 10 and all(abs(b) < 10 for b in fitted.bias)
    assert (fitted.apply(probs).argmax(1) == labels).all()
