"""Ranking metrics on score vectors (pure numpy): ROC and PR curves and their areas.

Shared by evaluation (`satx.evaluate.scores`) and the runtime agreement check of an artifact.
Binary: `y` (1 = positive, 0 = negative) and `score` (the positive class's probability). Curves
follow scikit-learn's conventions: one point per distinct score, thresholds in decreasing order,
a sample counts as positive when `score >= threshold`.
"""

from __future__ import annotations

import numpy as np

from satx.errors import InputError


def _counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives at each distinct score taken as the threshold (decreasing)."""
    y, score = np.asarray(y, dtype=np.int64), np.asarray(score, dtype=np.float64)
    if y.shape != score.shape or y.ndim != 1:
        raise InputError(f"labels {y.shape} and scores {score.shape} must be equal 1-d vectors")
    order = np.argsort(-score, kind="mergesort")
    y, score = y[order], score[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(score)), y.size - 1]
    tps = np.cumsum(y)[last_of_each]
    fps = (last_of_each + 1) - tps
    return tps, fps, score[last_of_each]


def roc_curve(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds), starting at (0, 0) with threshold +inf."""
    tps, fps, thresholds = _counts(y, score)
    positives, negatives = tps[-1], fps[-1]
    if positives == 0 or negatives == 0:
        raise InputError("ROC needs both classes among the labels")
    fpr = np.r_[0.0, fps / negatives]
    tpr = np.r_[0.0, tps / positives]
    return fpr, tpr, np.r_[np.inf, thresholds]


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve (trapezoids; ties count half, as in the Mann-Whitney U)."""
    fpr, tpr, _ = roc_curve(y, score)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))  # numpy 1.x has no trapezoid


def precision_recall_curve(
    y: np.ndarray, score: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) at each distinct score, in decreasing threshold order."""
    tps, fps, thresholds = _counts(y, score)
    if tps[-1] == 0:
        raise InputError("precision/recall need at least one positive label")
    return tps / (tps + fps), tps / tps[-1], thresholds


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """PR AUC as average precision: sum over thresholds of (recall step) x precision."""
    precision, recall, _ = precision_recall_curve(y, score)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
