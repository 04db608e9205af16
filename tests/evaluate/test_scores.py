"""Evaluation arithmetic against reference values computed here from the definitions."""

import itertools

import numpy as np
import pytest

from satx.errors import InputError
from satx.evaluate import scores

# A fixed score vector with ties (0.8 twice, 0.4 three times) and 6 positives of 14.
Y = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0])
S = np.array([0.95, 0.9, 0.8, 0.8, 0.7, 0.6, 0.55, 0.4, 0.4, 0.4, 0.3, 0.2, 0.15, 0.05])


def _auc_by_pairs(y, s):
    """Mann-Whitney: P(score of a positive > score of a negative), ties count half."""
    pos, neg = s[y == 1], s[y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def _confusion_at(y, s, t):
    pred = s >= t
    return (
        int(np.sum(pred & (y == 1))),
        int(np.sum(pred & (y == 0))),
        int(np.sum(~pred & (y == 1))),
        int(np.sum(~pred & (y == 0))),
    )


def test_roc_auc_equals_the_mann_whitney_statistic():
    assert scores.roc_auc(Y, S) == pytest.approx(_auc_by_pairs(Y, S))
    rng = np.random.default_rng(3)
    for _ in range(5):
        y = rng.integers(0, 2, 200)
        s = np.round(rng.random(200) * 0.5 + 0.3 * y, 2)  # rounded: many ties
        assert scores.roc_auc(y, s) == pytest.approx(_auc_by_pairs(y, s))
    assert scores.roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0


def test_roc_points_are_the_rates_at_each_distinct_threshold():
    fpr, tpr, thresholds = scores.roc_curve(Y, S)
    assert (fpr[0], tpr[0], thresholds[0]) == (0.0, 0.0, np.inf)
    assert list(thresholds[1:]) == sorted(set(S), reverse=True)
    for f, t, th in zip(fpr[1:], tpr[1:], thresholds[1:], strict=True):
        tp, fp, fn, tn = _confusion_at(Y, S, th)
        assert (f, t) == pytest.approx((fp / (fp + tn), tp / (tp + fn)))


def test_average_precision_follows_its_definition():
    # no ties: AP = mean over positives of the precision at that positive's rank
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 60)
    s = rng.permutation(60) / 60.0
    ranked = y[np.argsort(-s)]
    hits = np.cumsum(ranked)
    reference = np.mean([hits[i] / (i + 1) for i in np.flatnonzero(ranked)])
    assert scores.average_precision(y, s) == pytest.approx(reference)
    # with ties, each distinct threshold adds (recall step) x precision at that threshold
    total, previous_recall = 0.0, 0.0
    for th in sorted(set(S), reverse=True):
        tp, fp, fn, _ = _confusion_at(Y, S, th)
        recall = tp / (tp + fn)
        total += (recall - previous_recall) * tp / (tp + fp)
        previous_recall = recall
    assert scores.average_precision(Y, S) == pytest.approx(total)


def test_every_threshold_mode_picks_the_right_point():
    candidates = sorted(set(S))
    rates = {t: _confusion_at(Y, S, t) for t in candidates}

    def tpr_fpr(t):
        tp, fp, fn, tn = rates[t]
        return tp / (tp + fn), fp / (fp + tn)

    assert scores.choose_threshold(Y, S, "0.5") == 0.5
    youden = scores.choose_threshold(Y, S, "youden")
    assert tpr_fpr(youden)[0] - tpr_fpr(youden)[1] == pytest.approx(
        max(a - b for a, b in map(tpr_fpr, candidates))
    )
    topleft = scores.choose_threshold(Y, S, "topleft")
    assert np.hypot(tpr_fpr(topleft)[1], 1 - tpr_fpr(topleft)[0]) == pytest.approx(
        min(np.hypot(b, 1 - a) for a, b in map(tpr_fpr, candidates))
    )
    precise = scores.choose_threshold(Y, S, "precision@0.75")
    ok = [t for t in candidates if rates[t][0] / (rates[t][0] + rates[t][1]) >= 0.75]
    assert precise == min(ok)  # most recall among thresholds with precision >= 0.75
    recall = scores.choose_threshold(Y, S, "recall@0.8")
    assert recall == max(t for t in candidates if tpr_fpr(t)[0] >= 0.8)
    with pytest.raises(InputError, match="no threshold reaches precision"):
        scores.choose_threshold(Y, S, "precision@1.01")
    with pytest.raises(InputError, match="choose one of"):
        scores.choose_threshold(Y, S, "best")


def test_confusion_matrix_and_per_class_report_multiclass():
    true = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 1, 1, 1, 2, 2, 2, 0, 2])
    matrix = scores.confusion_matrix(true, pred, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 1], [1, 0, 3]]
    reports = scores.class_reports(matrix)
    assert [r.support for r in reports] == [2, 3, 4]
    assert (reports[1].precision, reports[1].recall) == pytest.approx((2 / 3, 2 / 3))
    p, r = 3 / 4, 3 / 4
    assert reports[2].f1 == pytest.approx(2 * p * r / (p + r))
    empty = scores.class_reports(np.array([[2, 0], [0, 0]]))[1]
    assert (empty.precision, empty.recall, empty.f1, empty.support) == (0.0, 0.0, 0.0, 0)


def test_calibration_bins_and_expected_calibration_error():
    y = np.array([0, 1, 1, 1, 0, 1])
    s = np.array([0.05, 0.15, 0.95, 1.0, 0.88, 0.92])
    cal = scores.reliability(y, s, bins=10)
    assert cal.counts.tolist() == [1, 1, 0, 0, 0, 0, 0, 0, 1, 3]  # 1.0 lands in the last bin
    assert cal.confidence[9] == pytest.approx((0.95 + 1.0 + 0.92) / 3)
    assert cal.frequency[9] == 1.0 and cal.frequency[8] == 0.0
    # sum over bins of count/n x |fraction positive - mean score|
    reference = (0.05 + (1 - 0.15) + 0.88 + 3 * (1 - (0.95 + 1.0 + 0.92) / 3)) / 6
    assert cal.ece == pytest.approx(reference)
    assert np.isnan(cal.confidence[5])
    perfect = scores.reliability(np.array([1, 0]), np.array([1.0, 0.0]), bins=4)
    assert perfect.ece == 0.0


def test_bad_inputs_are_refused():
    with pytest.raises(InputError, match="both classes"):
        scores.roc_auc(np.array([1, 1]), np.array([0.2, 0.3]))
    with pytest.raises(InputError, match="equal 1-d"):
        scores.roc_auc(np.array([1, 0]), np.array([0.2, 0.3, 0.4]))


def test_binary_report_collects_the_numbers():
    probs = np.stack([1 - S, S], axis=1)
    out = scores.report(Y, probs, ["not_school", "school"], threshold="youden")
    t = scores.choose_threshold(Y, S, "youden")
    tp, fp, fn, tn = _confusion_at(Y, S, t)
    assert out["threshold"] == t and out["confusion_matrix"] == [[tn, fp], [fn, tp]]
    assert out["accuracy"] == pytest.approx((tp + tn) / len(Y))
    assert out["roc_auc"] == pytest.approx(_auc_by_pairs(Y, S))
    assert out["pr_auc"] == scores.average_precision(Y, S)
    assert out["per_class"]["school"]["recall"] == pytest.approx(tp / (tp + fn))
    assert out["per_class"]["school"]["support"] == 6


def test_multiclass_report_is_one_vs_rest():
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 3, 90)
    logits = rng.normal(size=(90, 3)) + 1.5 * np.eye(3)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    out = scores.report(labels, probs, ["a", "b", "c"])
    per_class = [_auc_by_pairs((labels == k).astype(int), probs[:, k]) for k in range(3)]
    assert out["roc_auc"] == pytest.approx(np.mean(per_class))
    assert out["per_class"]["b"]["roc_auc"] == pytest.approx(per_class[1])
    assert out["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    assert out["threshold"] is None and np.sum(out["confusion_matrix"]) == 90


def _scored_set(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.1).astype(int)  # imbalanced, as schools are
    score = rng.normal(0.3 + 0.4 * y, 0.15)  # continuous: no ties
    return y, score


def test_precision_target_chosen_on_validation_is_met_there():
    y, score = _scored_set(5000, seed=1)
    for target in (0.7, 0.8, 0.9):
        t = scores.choose_threshold(y, score, f"precision@{target}")
        got = scores.at_threshold(y, score, t)
        assert got["precision"] >= target
        # the lowest such threshold: one step lower and the precision falls below the target
        lower = score[score < t].max()
        assert scores.at_threshold(y, score, lower)["precision"] < target or lower < t


def test_budget_threshold_keeps_hits_within_the_budget():
    y, score = _scored_set(20000, seed=2)
    for budget in (10, 500, 20000, 1_000_000):
        t = scores.choose_threshold(y, score, f"budget@{budget}")
        hits = scores.at_threshold(y, score, t)["hits_per_million"]
        assert hits <= budget
        assert hits >= min(budget, 1e6) - 1e6 / 20000  # as many as the budget allows
    tied = np.array([0.5] * 10 + [0.1] * 90)
    t = scores.budget_threshold(tied, 50_000)  # 5 allowed, 10 tied at the top: none
    assert np.count_nonzero(tied >= t) == 0
    assert scores.budget_threshold(np.array([0.2, 0.9, 0.4]), 0) > 0.9


def test_f2_is_the_threshold_of_the_best_recall_weighted_f_score():
    candidates = sorted(set(S.tolist()))

    def f_beta(t, beta):
        tp, fp, fn, _ = _confusion_at(Y, S, t)
        p, r = tp / (tp + fp), tp / (tp + fn)
        return (1 + beta**2) * p * r / (beta**2 * p + r) if p + r else 0.0

    f2 = scores.choose_threshold(Y, S, "f2")
    assert f_beta(f2, 2) == pytest.approx(max(f_beta(t, 2) for t in candidates))
    f1 = scores.choose_threshold(Y, S, "f1")
    assert f_beta(f1, 1) == pytest.approx(max(f_beta(t, 1) for t in candidates))
    assert f2 <= f1  # recall weighs more: a threshold no higher


def test_budget_in_sites_per_million_and_the_positives_recovered():
    from satx.evaluate.sites import sites_at, split_graph

    # 14 tiles in a row at zoom 18, one tile apart: every hit is a site of its own (~148 m wide)
    tiles = np.array([[18, 70_000 + 2 * i, 120_000] for i in range(14)])
    graph = split_graph(tiles)
    t = scores.choose_threshold(Y, S, "budget@150000sites", graph)  # at most 2 sites of 14
    assert t == 0.9 and graph.components(S >= 0.8)[0] == 4
    # a prefix of a row touching itself is one site, whatever the budget
    row = split_graph(np.array([[18, 70_000 + i, 120_000] for i in range(14)]))
    assert scores.choose_threshold(Y, S, "budget@150000sites", row) == 0.05
    at = sites_at(graph, Y, S, 0.75)  # hits: tiles 0-3
    assert (at["sites"], at["sites_per_million"]) == (4, pytest.approx(4e6 / 14, abs=1e-3))
    # positives 0, 2, 3 are hits; 6 is ~890 m from hit 3, 9 and 12 farther
    assert at["recovered"] == pytest.approx(3 / 6)
    wider = sites_at(graph, Y, S, 0.75, radius_m=1000)
    assert wider["recovered"] == pytest.approx(4 / 6)
    # 2x2 window records are named by their top-left tile: their centres are a tile in
    windows = split_graph(tiles, window=2)
    assert windows.side == 2 and sites_at(windows, Y, S, 0.75) == at
    with pytest.raises(InputError, match="budget@Nsites needs every tile"):
        scores.choose_threshold(Y, S, "budget@10sites", split_graph(np.array([[-1, -1, -1]])))
