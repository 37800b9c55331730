"""AUC, precision/recall/F1 and the per-kind breakdown against hand-computed values."""

from __future__ import annotations

import pytest

from synthrun.scoring.judge_metrics import best_f1, evaluate, prf_at, roc_auc


def test_auc_matches_a_hand_computed_case():
    # good scores 9, 6, 4; bad scores 5, 2. Pairs (good > bad): 9>5, 9>2, 6>5, 6>2, 4>2 = 5 of 6.
    assert roc_auc([1, 1, 1, 0, 0], [9, 6, 4, 5, 2]) == pytest.approx(5 / 6)
    # a tie counts one half: good 5 vs bad 5 -> (1 + 0.5) / 2
    assert roc_auc([1, 1, 0], [5, 7, 5]) == pytest.approx(0.75)


def test_auc_needs_both_classes():
    with pytest.raises(ValueError, match="both labels"):
        roc_auc([1, 1], [3, 4])


def test_precision_recall_f1_at_a_threshold_and_best_f1():
    labels, scores = [1, 1, 1, 0, 0], [9, 6, 4, 5, 2]
    at5 = prf_at(labels, scores, 5)  # kept 9, 6, 5: tp 2, fp 1, fn 1
    assert (at5["precision"], at5["recall"], at5["kept"]) == (pytest.approx(2 / 3, abs=1e-4),
                                                               pytest.approx(2 / 3, abs=1e-4), 3)
    assert at5["f1"] == pytest.approx(2 / 3, abs=1e-4)
    best = best_f1(labels, scores)  # threshold 4 keeps 9, 6, 5, 4: p 3/4, r 1 -> F1 6/7
    assert best["threshold"] == 4 and best["f1"] == pytest.approx(6 / 7, abs=1e-4)


def test_evaluate_breaks_scores_down_per_kind():
    rows = [{"label": 1, "score": 9, "kind": "good"}, {"label": 1, "score": 7, "kind": "good"},
            {"label": 0, "score": 8, "kind": "echo"}, {"label": 0, "score": 1, "kind": "vague"}]
    ev = evaluate(rows, threshold=5)
    assert ev["roc_auc"] == pytest.approx(0.75)
    assert ev["per_kind"]["echo"] == {"rows": 1, "mean_score": 8.0, "auc_vs_good": 0.5}
    assert ev["per_kind"]["vague"]["auc_vs_good"] == 1.0
    assert "auc_vs_good" not in ev["per_kind"]["good"]
