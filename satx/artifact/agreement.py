"""How closely a converted model agrees with TensorFlow's on the same tiles.

Binary models: ROC AUC of the positive (second) class and decisions at the chosen threshold.
Multi-class: the mean one-vs-rest ROC AUC over classes present, and the top class as decision.
"""

from __future__ import annotations

import numpy as np

from satx.metrics import roc_auc


def mean_auc(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """ROC AUC of the positive class (binary), else the mean one-vs-rest AUC; None untestable."""
    if probs.shape[1] == 2:
        y = labels == 1
        return float(roc_auc(y, probs[:, 1])) if 0 < y.sum() < len(y) else None
    aucs = [
        roc_auc(labels == k, probs[:, k])
        for k in range(probs.shape[1])
        if 0 < (labels == k).sum() < len(labels)
    ]
    return float(np.mean(aucs)) if aucs else None


def decisions(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Binary: positive score at or above `threshold`; multi-class: the top class."""
    if probs.shape[1] == 2:
        return (probs[:, 1] >= threshold).astype(np.int64)
    return probs.argmax(axis=1)


def agreement(
    reference: np.ndarray, probs: np.ndarray, labels: np.ndarray | None, threshold: float
) -> dict[str, float | int | None]:
    """Max |score difference|, decisions flipped, and ROC AUC before and after (with labels)."""
    flips = decisions(reference, threshold) != decisions(probs, threshold)
    result: dict[str, float | int | None] = {
        "tiles": len(probs),
        "max_abs_diff": float(np.abs(probs - reference).max()) if len(probs) else 0.0,
        "mean_abs_diff": float(np.abs(probs - reference).mean()) if len(probs) else 0.0,
        "flipped": int(flips.sum()),
        "flipped_share": float(flips.mean()) if len(probs) else 0.0,
        "threshold": threshold if probs.shape[1] == 2 else None,
        "roc_auc_tf": None,
        "roc_auc": None,
        "auc_drop": None,
    }
    if labels is not None:
        before, after = mean_auc(labels, reference), mean_auc(labels, probs)
        result.update(roc_auc_tf=before, roc_auc=after)
        if before is not None and after is not None:
            result["auc_drop"] = before - after
    return result
