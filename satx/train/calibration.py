"""Temperature scaling: one number that makes a classifier's probabilities mean what they say.

Fit on the validation split: the temperature T that minimises the negative log-likelihood of
`softmax(log(p) / T)` (log p equals the logits up to a per-row constant, which the softmax
ignores, so probabilities are enough). T > 1 softens an overconfident model; the argmax, and
for a binary model the ranking of scores (ROC/PR AUC), are unchanged.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12
LOG_T_RANGE = (-4.0, 4.0)  # T in [e^-4, e^4]


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """`softmax(log(probs) / T)` row by row."""
    logits = np.log(np.clip(probs, EPS, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0))))


def fit_temperature(probs: np.ndarray, labels: np.ndarray, iterations: int = 80) -> float:
    """The T minimising the NLL of `apply_temperature(probs, T)` (golden-section on log T).

    The NLL of temperature-scaled logits is convex in 1/T, so it has one minimum on the range.
    """
    labels = np.asarray(labels, int)

    def loss(log_t: float) -> float:
        return nll(apply_temperature(probs, float(np.exp(log_t))), labels)

    lo, hi = LOG_T_RANGE
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(iterations):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return float(np.exp((lo + hi) / 2.0))
