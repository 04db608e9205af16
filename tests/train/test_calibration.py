"""Temperature scaling on synthetic models with a known miscalibration."""

import numpy as np
import pytest

from satx.evaluate.scores import calibration, roc_auc
from satx.train.calibration import apply_temperature, fit_temperature, nll


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
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(3.0, rel=0.1)
    fixed = apply_temperature(probs, t)
    assert nll(fixed, labels) < nll(probs, labels) - 0.05
    assert roc_auc(labels, fixed[:, 1]) == pytest.approx(roc_auc(labels, probs[:, 1]), abs=1e-12)
    before = calibration(labels, probs[:, 1]).ece
    after = calibration(labels, fixed[:, 1]).ece
    assert after < before / 2


def test_a_calibrated_model_keeps_temperature_one_and_argmax_never_moves():
    probs, labels = _model(temperature=1.0, k=4, seed=1)
    assert fit_temperature(probs, labels) == pytest.approx(1.0, abs=0.1)
    underconfident, _ = _model(temperature=0.5, k=4, seed=1)
    fixed = apply_temperature(underconfident, fit_temperature(underconfident, labels))
    assert (fixed.argmax(1) == underconfident.argmax(1)).all()
    np.testing.assert_allclose(fixed.sum(1), 1.0)
