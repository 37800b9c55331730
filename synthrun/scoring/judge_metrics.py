"""How well a judge's scores separate good pairs from bad ones: ROC-AUC, precision/recall/F1, per kind."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """ROC-AUC (sklearn); raises ValueError when only one class is present."""
    if len(set(labels)) < 2:
        raise ValueError("ROC-AUC needs both labels (1 and 0) among the rows")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(list(labels), list(scores)))


def prf_at(labels: Sequence[int], scores: Sequence[float], threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of "good" when score >= threshold counts as predicted good."""
    tp = sum(1 for y, s in zip(labels, scores, strict=True) if y == 1 and s >= threshold)
    fp = sum(1 for y, s in zip(labels, scores, strict=True) if y == 0 and s >= threshold)
    fn = sum(1 for y, s in zip(labels, scores, strict=True) if y == 1 and s < threshold)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"threshold": threshold, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "kept": tp + fp}


def best_f1(labels: Sequence[int], scores: Sequence[float]) -> dict[str, float]:
    """The threshold (one of the scores) with the highest F1; ties go to the higher threshold."""
    best: dict[str, float] | None = None
    for t in sorted(set(scores)):
        cur = prf_at(labels, scores, t)
        if best is None or cur["f1"] >= best["f1"]:
            best = cur
    return best or prf_at(labels, scores, 0.0)


def evaluate(rows: list[dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Metrics of ``rows`` (each with ``label`` 0/1, ``score`` 0-10 and ``kind``).

    Returns ``roc_auc``, ``at_threshold`` and ``best_f1`` (precision/recall/F1), ``per_kind``
    (count, mean score and, for bad kinds, the AUC of good pairs against that kind alone).
    """
    labels = [int(r["label"]) for r in rows]
    scores = [float(r["score"]) for r in rows]
    out: dict[str, Any] = {"rows": len(rows), "good": sum(labels), "bad": len(labels) - sum(labels),
                           "roc_auc": round(roc_auc(labels, scores), 4),
                           "at_threshold": prf_at(labels, scores, threshold), "best_f1": best_f1(labels, scores)}
    good_scores = [s for y, s in zip(labels, scores, strict=True) if y == 1]
    per_kind: dict[str, dict[str, Any]] = {}
    for kind in sorted({str(r.get("kind") or ("good" if r["label"] else "bad")) for r in rows}):
        mine = [r for r in rows if str(r.get("kind") or ("good" if r["label"] else "bad")) == kind]
        ks = [float(r["score"]) for r in mine]
        entry: dict[str, Any] = {"rows": len(mine), "mean_score": round(statistics.fmean(ks), 3)}
        bad = [s for r, s in zip(mine, ks, strict=True) if int(r["label"]) == 0]
        if bad and good_scores:
            entry["auc_vs_good"] = round(roc_auc([1] * len(good_scores) + [0] * len(bad), good_scores + bad), 4)
        per_kind[kind] = entry
    out["per_kind"] = per_kind
    return out
