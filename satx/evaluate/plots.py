"""Evaluation plots as PNG files (matplotlib, headless).

ROC, PR, score histograms, confusion matrix, reliability diagram: each function draws one figure
and writes it atomically.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np

from satx.evaluate import scores
from satx.io.storage import atomic_write_local


def _save(fig: plt.Figure, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_local(path, buffer.getvalue())
    return path


def roc_plot(y: np.ndarray, score: np.ndarray, threshold: float | None, path: Path) -> Path:
    """ROC curve with its AUC and the chosen operating point."""
    fpr, tpr, thresholds = scores.roc_curve(y, score)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"ROC AUC {scores.roc_auc(y, score):.4f}")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    if threshold is not None:
        i = int(np.argmin(np.abs(np.where(np.isfinite(thresholds), thresholds, 9) - threshold)))
        ax.plot(fpr[i], tpr[i], "o", c="red", label=f"threshold {threshold:.3f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return _save(fig, path)


def pr_plot(y: np.ndarray, score: np.ndarray, path: Path) -> Path:
    """Precision-recall curve with its average precision."""
    precision, recall, _ = scores.precision_recall_curve(y, score)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.step(np.r_[0.0, recall], np.r_[precision[0], precision], where="pre")
    ax.axhline(np.mean(y), ls=":", c="grey", label=f"base rate {np.mean(y):.3f}")
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02), xlim=(0, 1))
    ax.set_title(f"PR (average precision {scores.average_precision(y, score):.4f})")
    ax.legend(loc="lower left")
    return _save(fig, path)


def histogram_plot(
    labels: np.ndarray, score: np.ndarray, class_names: list[str], title: str, path: Path
) -> Path:
    """Histograms of one score, one per true class."""
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 26)
    for k, name in enumerate(class_names):
        if np.any(labels == k):
            ax.hist(score[labels == k], bins=bins, alpha=0.55, label=f"true {name}")
    ax.set(xlabel=title, ylabel="tiles")
    ax.legend()
    return _save(fig, path)


def confusion_plot(matrix: np.ndarray, class_names: list[str], path: Path) -> Path:
    """The confusion matrix with counts in the cells."""
    size = max(4.0, 0.6 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ticks = range(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center")
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix")
    return _save(fig, path)


def reliability_plot(cal: scores.Reliability, path: Path) -> Path:
    """Reliability diagram: fraction positive vs mean score per bin, and the ECE."""
    fig, ax = plt.subplots(figsize=(5, 5))
    centers = (cal.edges[:-1] + cal.edges[1:]) / 2
    filled = cal.counts > 0
    ax.bar(centers[filled], cal.frequency[filled], width=np.diff(cal.edges)[filled], alpha=0.6)
    ax.plot(cal.confidence[filled], cal.frequency[filled], "o-", c="black", label="bins")
    ax.plot([0, 1], [0, 1], ls=":", c="grey")
    ax.set(xlabel="mean score", ylabel="fraction positive", xlim=(0, 1), ylim=(0, 1))
    ax.set_title(f"reliability (ECE {cal.ece:.4f})")
    return _save(fig, path)
