"""Calibration: make a classifier's probabilities mean what they say.

Fit on the validation split: a temperature T and a per-class bias b that minimise the negative
log-likelihood of `softmax(log(p) / T + b)` (log p equals the logits up to a per-row constant,
which the softmax ignores, so probabilities are enough).

- T > 1 softens an overconfident model, T < 1 sharpens an underconfident one (label smoothing
  makes one). T alone never moves the argmax.
- b undoes a shift of the class prior. Training with class weights or balanced resampling
  deliberately learns `p(k | x) * w_k` instead of `p(k | x)`: a positive class weighted 9x
  scores ~9x too often, which no temperature can fix (docs/benchmarks.md, the imbalanced binary
  task). For a binary model T and b map the logit monotonically, so the
  ranking of scores (ROC/PR AUC) is unchanged.

The NLL is convex in (1/T, b) (a multinomial logistic regression on the log-probabilities),
so Newton's method with a backtracking line search finds the one minimum in a few steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

EPS = 1e-12


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def _log(probs: np.ndarray) -> np.ndarray:
    return np.log(np.clip(np.asarray(probs, np.float64), EPS, 1.0))


@dataclass(frozen=True)
class Calibration:
    """`softmax(log(p) / temperature + bias)`; the defaults change nothing."""

    temperature: float = 1.0
    bias: tuple[float, ...] = ()  # per class; () = none

    def apply(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, row by row."""
        return _softmax(_log(probs) / self.temperature + self._bias(probs))

    def undo(self, probs: np.ndarray) -> np.ndarray:
        """The uncalibrated probabilities back from calibrated ones."""
        return _softmax((_log(probs) - self._bias(probs)) * self.temperature)

    def _bias(self, probs: np.ndarray) -> np.ndarray:
        return np.asarray(self.bias, np.float64) if self.bias else np.zeros(probs.shape[1])

    @property
    def is_identity(self) -> bool:
        """Whether applying it changes nothing."""
        return self.temperature == 1.0 and not any(self.bias)

    def to_dict(self) -> dict[str, Any]:
        """What `calibration.json` holds."""
        return {"temperature": self.temperature, "bias": list(self.bias)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """From `calibration.json` (files written before the bias have a temperature only)."""
        return cls(
            float(data.get("temperature", 1.0)), tuple(float(b) for b in data.get("bias", ()))
        )


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes."""
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], EPS, 1.0))))


def fit_calibration(
    probs: np.ndarray, labels: np.ndarray, bias: bool = True, iterations: int = 50
) -> Calibration:
    """The temperature (and, with `bias`, per-class bias) minimising the NLL on `(probs, labels)`.

    Parameters theta = (1/T, b_1 .. b_{K-1}); b_0 = 0 fixes the softmax's free offset. A weak
    pull towards "no change" (an L2 term worth one tile: 1/N) keeps the fit finite when the
    validation tiles are perfectly separated (a tiny split, as in the demo), where the NLL
    alone keeps falling as T -> 0; on a real validation split it is negligible.
    """
    z = _log(probs)
    n, k = z.shape
    labels = np.asarray(labels, int)
    onehot = np.eye(k)[labels]
    # features[n, k, :] = d logits[n, k] / d theta
    dims = 1 + (k - 1 if bias else 0)
    features = np.zeros((n, k, dims))
    features[:, :, 0] = z
    if bias:
        features[:, 1:, 1:] = np.eye(k - 1)

    start = np.zeros(dims)
    start[0] = 1.0
    pull = 1.0 / n

    def loss(theta: np.ndarray) -> float:
        fit = nll(_softmax(features @ theta), labels)
        return fit + 0.5 * pull * float(np.sum((theta - start) ** 2))

    theta = start.copy()
    for _ in range(iterations):
        q = _softmax(features @ theta)
        grad = np.einsum("nk,nkd->d", q - onehot, features) / n + pull * (theta - start)
        mean_feature = np.einsum("nk,nkd->nd", q, features)
        hessian = (
            np.einsum("nk,nkd,nke->de", q, features, features)
            - np.einsum("nd,ne->de", mean_feature, mean_feature)
        ) / n + pull * np.eye(dims)
        step = np.linalg.solve(hessian, grad)
        current, t = loss(theta), 1.0
        while t > 1e-8 and loss(theta - t * step) > current - 1e-4 * t * float(grad @ step):
            t /= 2.0
        theta = theta - t * step
        if float(np.abs(grad).max()) < 1e-10 or t <= 1e-8:
            break
    scale = max(float(theta[0]), 1e-6)  # a model anti-correlated with its labels: keep T > 0
    offsets = (0.0, *(float(b) for b in theta[1:])) if bias else ()
    return Calibration(temperature=1.0 / scale, bias=offsets)
