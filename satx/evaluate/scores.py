"""Metrics on score vectors (pure numpy): ROC, PR, thresholds, confusion matrix, calibration.

The evaluation stage's arithmetic, kept apart from files and plots so it can be checked against
reference values. Binary functions take `y` (1 = positive, 0 = negative) and `score` (the
positive class's probability); multi-class metrics are one-vs-rest over these. Curves follow
scikit-learn's conventions: one point per distinct score, thresholds in decreasing order, a
sample counts as positive when `score >= threshold`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from satx.errors import InputError
from satx.evaluate.sites import budget_in_sites, sites_at
from satx.metrics import average_precision, precision_recall_curve, roc_auc, roc_curve
from satx.sites.grid import TileGraph

THRESHOLD_MODES = (
    "youden",
    "topleft",
    "f2",
    "precision@P",
    "recall@R",
    "budget@N",
    "budget@Nsites",
    "a number such as 0.5",
)


PER_MILLION = 1_000_000


def budget_threshold(score: np.ndarray, hits_per_million: float) -> float:
    """The lowest threshold giving at most `hits_per_million` hits (score >= t) per million.

    The mappers' capacity: a country of 50 million tiles at budget@100 hands them at most 5,000
    hits. Ties at the boundary are all left out rather than exceed the budget.
    """
    score = np.sort(np.asarray(score, np.float64))[::-1]
    allowed = int(np.floor(hits_per_million * score.size / PER_MILLION))
    if allowed <= 0:
        return float(np.nextafter(score[0], np.inf))
    t = score[allowed - 1]
    if np.count_nonzero(score >= t) > allowed:
        t = np.nextafter(t, np.inf)
    return float(t)


def f_beta_threshold(y: np.ndarray, score: np.ndarray, beta: float) -> float:
    """The threshold of the highest F-beta (recall counts beta times as much as precision)."""
    precision, recall, thresholds = precision_recall_curve(y, score)
    b2 = beta * beta
    with np.errstate(invalid="ignore", divide="ignore"):
        f = (1 + b2) * precision * recall / (b2 * precision + recall)
    return float(thresholds[int(np.nanargmax(f))])


def at_threshold(y: np.ndarray, score: np.ndarray, t: float) -> dict[str, float | None]:
    """Precision, recall and hits per million of `score >= t` on a labelled set."""
    y, hit = np.asarray(y), np.asarray(score) >= t
    hits, positives = int(hit.sum()), int((y == 1).sum())
    true = int((hit & (y == 1)).sum())
    return {
        "precision": true / hits if hits else None,
        "recall": true / positives if positives else None,
        "hits_per_million": PER_MILLION * hits / max(1, y.size),
    }


def choose_threshold(
    y: np.ndarray, score: np.ndarray, mode: str, graph: TileGraph | None = None
) -> float:
    """The decision threshold for `mode`.

    Modes: a number (`0.5`); `youden` (max TPR - FPR); `topleft` (the ROC point nearest (0, 1),
    the predecessor's choice); `f2` (max F2: recall weighted twice precision, the field's
    choice for mapping schools; `fB` for any beta); `precision@P` (the lowest threshold whose
    precision is >= P, i.e. the most recall at that precision); `recall@R` (the highest
    threshold whose recall is >= R); `budget@N` (at most N hits per million tiles: the mappers'
    capacity); `budget@Nsites` (at most N sites per million tiles: hits grouped as satx.sites
    groups them, which needs the tiles' neighbour `graph`).

    Raises:
        InputError: unknown mode, or no threshold reaches the asked precision.
    """
    mode = mode.strip().lower()
    try:
        return float(mode)
    except ValueError:
        pass
    if (beta := re.fullmatch(r"f(\d+(?:\.\d+)?)", mode)) is not None:
        return f_beta_threshold(y, score, float(beta.group(1)))
    if mode in ("youden", "topleft"):
        fpr, tpr, thresholds = roc_curve(y, score)
        keep = np.isfinite(thresholds)
        if mode == "youden":
            best = np.argmax(np.where(keep, tpr - fpr, -np.inf))
        else:
            best = np.argmin(np.where(keep, np.hypot(fpr, 1.0 - tpr), np.inf))
        return float(thresholds[best])
    kind, _, target_text = mode.partition("@")
    if kind not in ("precision", "recall", "budget") or not target_text:
        raise InputError(f"--threshold={mode!r}: choose one of {THRESHOLD_MODES}")
    if kind == "budget" and target_text.endswith("sites"):
        return budget_in_sites(graph, score, float(target_text[: -len("sites")]))
    target = float(target_text)
    if kind == "budget":
        return budget_threshold(score, target)
    precision, recall, thresholds = precision_recall_curve(y, score)
    if kind == "recall":
        return float(thresholds[np.flatnonzero(recall >= target)[0]])
    reached = np.flatnonzero(precision >= target)
    if reached.size == 0:
        raise InputError(
            f"--threshold={mode}: no threshold reaches precision {target} "
            f"(best {precision.max():.3f}); pick a lower target"
        )
    return float(thresholds[reached[-1]])


def confusion_matrix(true: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts [true class, predicted class]."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(true), np.asarray(pred)), 1)
    return matrix


@dataclass(frozen=True)
class ClassReport:
    """Precision, recall, F1 and support of one class (one-vs-rest)."""

    precision: float
    recall: float
    f1: float
    support: int


def class_reports(matrix: np.ndarray) -> list[ClassReport]:
    """Per-class precision, recall and F1 from a confusion matrix (0 where undefined)."""
    reports = []
    for k in range(matrix.shape[0]):
        tp = matrix[k, k]
        predicted, actual = matrix[:, k].sum(), matrix[k, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        reports.append(ClassReport(float(precision), float(recall), float(f1), int(actual)))
    return reports


@dataclass(frozen=True)
class Reliability:
    """A reliability diagram's bins and the expected calibration error."""

    edges: np.ndarray  # bins + 1 edges over [0, 1]
    confidence: np.ndarray  # mean score per bin (NaN when empty)
    frequency: np.ndarray  # fraction of positives per bin (NaN when empty)
    counts: np.ndarray
    ece: float  # sum over bins of (count / n) x |frequency - confidence|


def reliability(y: np.ndarray, score: np.ndarray, bins: int = 10) -> Reliability:
    """Equal-width reliability bins of the positive score (the last bin includes 1.0)."""
    y, score = np.asarray(y, dtype=np.float64), np.asarray(score, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(index, weights=score, minlength=bins) / counts
        frequency = np.bincount(index, weights=y, minlength=bins) / counts
    gaps = np.where(counts > 0, np.abs(frequency - confidence), 0.0)
    ece = float(np.sum(counts / max(1, y.size) * gaps))
    return Reliability(edges, confidence, frequency, counts, ece if not math.isnan(ece) else 0.0)


def report(
    labels: np.ndarray,
    probs: np.ndarray,
    class_names: list[str],
    threshold: str = "0.5",
    threshold_value: float | None = None,
    graph: TileGraph | None = None,
) -> dict:
    """Every number of an evaluation, JSON-ready.

    Binary (two classes): class 1 is positive; its score is thresholded with `threshold` (see
    `choose_threshold`), or by `threshold_value` when it was chosen elsewhere (on validation).
    Multi-class: prediction by argmax; ROC AUC and PR AUC are the macro
    means of one-vs-rest per class, also listed per class. With the tiles' neighbour `graph`
    (binary), the numbers at the threshold include sites and the positives they recover.
    """
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    num_classes = len(class_names)
    if probs.shape != (labels.size, num_classes):
        raise InputError(f"scores {probs.shape} do not match {labels.size} labels x {num_classes}")
    per_class_auc = {}
    for k, name in enumerate(class_names):
        is_k = (labels == k).astype(np.int64)
        if 0 < is_k.sum() < is_k.size:
            per_class_auc[name] = {
                "roc_auc": roc_auc(is_k, probs[:, k]),
                "pr_auc": average_precision(is_k, probs[:, k]),
            }
    if num_classes == 2:
        t = threshold_value
        if t is None:
            t = choose_threshold(labels, probs[:, 1], threshold, graph)
        predicted = (probs[:, 1] >= t).astype(np.int64)
        auc_of = per_class_auc.get(class_names[1], {"roc_auc": None, "pr_auc": None})
        roc, pr = auc_of["roc_auc"], auc_of["pr_auc"]
        ece = reliability(labels, probs[:, 1]).ece
    else:
        t = None
        predicted = np.argmax(probs, axis=1)
        values = list(per_class_auc.values())
        roc = float(np.mean([v["roc_auc"] for v in values])) if values else None
        pr = float(np.mean([v["pr_auc"] for v in values])) if values else None
        ece = reliability((predicted == labels), probs.max(axis=1)).ece  # top-label calibration
    matrix = confusion_matrix(labels, predicted, num_classes)
    reports = class_reports(matrix)
    return {
        "count": int(labels.size),
        "accuracy": float(np.mean(predicted == labels)),
        "roc_auc": roc,
        "pr_auc": pr,
        "threshold": t,
        "threshold_mode": threshold if num_classes == 2 else "argmax",
        "at_threshold": binary_at(labels, probs[:, 1], t, graph) if num_classes == 2 else None,
        "confusion_matrix": matrix.tolist(),
        "expected_calibration_error": ece,
        "per_class": {
            name: {**r.__dict__, **per_class_auc.get(name, {})}
            for name, r in zip(class_names, reports, strict=True)
        },
    }


def binary_at(y: np.ndarray, score: np.ndarray, t: float, graph: TileGraph | None) -> dict:
    """`at_threshold`, with the sites and recovered positives when the tiles have a `graph`."""
    at = at_threshold(y, score, t)
    return {**at, **sites_at(graph, y, score, t)} if graph is not None else at
