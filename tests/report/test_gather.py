"""Reading a run folder into report data: recounted from the files the fake run wrote."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from sklearn.metrics import roc_auc_score

from synthrun.report.gather import (
    bins_of,
    label_value,
    reason_of,
    roc_from_summary,
    roc_points,
    rows,
    sample_lines,
    thresholds,
)
from synthrun.report.run import gather_run
from tests.report.fake_runs import write_fake_run


@pytest.fixture
def fake_run(tmp_path):
    return write_fake_run(tmp_path / "run", n=300, threshold=7, labels=True)


def test_funnel_equals_metrics(fake_run):
    data = gather_run(fake_run)
    metrics = json.loads((fake_run / "metrics.json").read_text())
    assert [(s["name"], s["rows_in"], s["rows_out"]) for s in data["funnel"]] == [
        (s["name"], s["rows_in"], s["rows_out"]) for s in metrics["stages"]]
    curate = next(s for s in data["funnel"] if s["name"] == "curate")
    assert dict(curate["failures"]) == metrics["stages"][2]["failures"]


def test_score_histograms_count_kept_and_rejected_rows_once(fake_run):
    data = gather_run(fake_run)
    totals = Counter(r["rating"]["total"] for f in ("data.jsonl", "rejected.jsonl")
                     for r in rows(fake_run / "03_curate" / f))
    by_field = {(s["stage"], s["field"]): s for s in data["scores"]}
    # ratings appear first in curate; export repeats them and must not get its own histograms
    assert {stage for stage, _ in by_field} == {"curate"}
    total = by_field[("curate", "rating.total")]
    assert total["n"] == 300 == sum(totals.values())
    assert {(lo + hi) / 2: c for lo, hi, c in total["bins"] if c} == dict(totals)
    assert total["threshold"] == 7.0
    assert total["bands"]["PASS"][0] == 7.0 and total["bands"]["NEEDS_REVIEW"] == (5.0, 7.0)
    assert data["scores"][0]["field"] == "rating.total"  # the judge total comes first
    assert {"rating.clarity", "rating.accuracy", "rating.usefulness", "rating.difficulty"} <= {
        f for _, f in by_field}


def test_roc_from_labelled_rows_matches_sklearn(fake_run):
    data = gather_run(fake_run)
    labelled = [(r["label"], r["rating"]["total"]) for f in ("data.jsonl", "rejected.jsonl")
                for r in rows(fake_run / "03_curate" / f)]
    expected = roc_auc_score([y for y, _ in labelled], [s for _, s in labelled])
    assert len(data["roc"]) == 1
    assert data["roc"][0]["auc"] == pytest.approx(expected, abs=1e-4)
    assert data["auc"] == data["roc"][0]["auc"]
    fpr, tpr = data["roc"][0]["fpr"], data["roc"][0]["tpr"]
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and fpr == sorted(fpr)


def test_roc_points_need_both_classes():
    assert roc_points(Counter({(1, 0.5): 3})) is None
    perfect = roc_points(Counter({(1, 0.9): 2, (0, 0.1): 2}))
    assert perfect["auc"] == 1.0


@pytest.mark.parametrize("summary", [
    {"roc": {"fpr": [0, 0.5, 1], "tpr": [0, 0.8, 1]}, "auc": 0.7},
    {"eval": {"roc": [[0, 0], [0.5, 0.8], [1, 1]], "roc_auc": 0.7}},
    {"roc_curve": [{"fpr": 0, "tpr": 0}, {"fpr": 0.5, "tpr": 0.8}, {"fpr": 1, "tpr": 1}], "auc": 0.7},
])
def test_roc_points_written_by_a_stage_are_read(summary):
    roc = roc_from_summary(summary)
    assert roc == {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.8, 1.0], "auc": 0.7}


def test_samples_are_bounded_and_come_from_the_files(fake_run):
    data = gather_run(fake_run, sample_rows=5)
    kept_ids = {r["id"] for r in rows(fake_run / "04_export" / "data.jsonl")}
    assert data["kept"]["total"] == len(kept_ids) and len(data["kept"]["rows"]) == 5
    assert {r["id"] for r in data["kept"]["rows"]} <= kept_ids
    (dropped,) = data["dropped"]
    assert dropped["file"] == "03_curate/rejected.jsonl" and dropped["total"] == 300 - len(kept_ids)
    assert all(r["reason"].startswith("rating ") and r["reason"].endswith("< 7") for r in dropped["rows"])
    assert all(r["ask"] and r["answer"] for r in dropped["rows"])


def test_sample_lines_is_uniform_and_skips_a_torn_tail(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(1000)) + '{"i": 10', encoding="utf-8")
    seen = Counter()
    for seed in range(200):
        n, sample = sample_lines(path, 10, seed)
        assert n == 1001 and len(sample) <= 10
        seen.update(r["i"] // 100 for r in sample)
    # every tenth of the file is sampled about equally often (2000 picks, 200 expected per decile)
    assert all(150 < seen[d] < 250 for d in range(10)), seen


def test_integer_scores_get_one_bin_per_value_and_floats_twenty():
    assert [b[2] for b in bins_of(Counter({1.0: 2, 3.0: 1}), "rating.clarity")] == [0, 2, 0, 1]
    b = bins_of(Counter({0.25: 1, 9.75: 1, 5.1: 3}), "multi_score.combined")
    assert len(b) == 20 and sum(c for *_, c in b) == 5 and b[0][0] == 0 and b[-1][1] == 10


def test_thresholds_and_bands():
    assert thresholds({"pass_threshold": 8, "review_threshold": 6}, "rating.total")[1]["NEEDS_REVIEW"] == (6.0, 8.0)
    assert thresholds({"threshold": 3}, "rating.total")[1]["NEEDS_REVIEW"] == (3.0, 3.0)
    assert thresholds({"threshold": 4, "strategy": "top_k"}, "multi_score.combined") == (None, {})
    assert thresholds({"threshold": 4}, "multi_score.combined") == (4.0, {})
    assert thresholds({}, "rating.total") == (None, {})


def test_reasons_and_labels():
    assert reason_of({"rejected_reason": "rating 3 < 7"}) == "rating 3 < 7"
    assert reason_of({"metadata": {"curation": {"reason": "step 2 failed"}}}) == "step 2 failed"
    assert reason_of({"metadata": {"execution_ok": False},
                      "reasoning_path": [{"step": 1, "ok": True}, {"step": 2, "ok": False, "error": "KeyError"}]}
                     ) == "step 2: KeyError"
    assert [label_value(v) for v in (True, 0, "good", "FAIL", "maybe", 2)] == [1, 0, 1, 0, None, None]


def test_dropped_rows_count_with_the_record_they_wrap(tmp_path):
    from synthrun.report.run import _score_stage

    stage = tmp_path / "05_curate"
    stage.mkdir()
    kept = {"id": "a", "label": 1, "rating": {"total": 8.0}}
    dropped = {"id": "b", "stage": "curate", "reason": "below_threshold", "detail": "rating 2 < 5",
               "record": {"id": "b", "label": 0, "rating": {"total": 2.0}}}
    (stage / "data.jsonl").write_text(json.dumps(kept) + "\n")
    (stage / "dropped.jsonl").write_text(json.dumps(dropped) + "\n")
    counts, labelled = _score_stage(stage, ["rating.total"])
    assert counts["rating.total"] == Counter({8.0: 1, 2.0: 1})
    assert labelled == Counter({(1, 8.0): 1, (0, 2.0): 1})


def test_a_stage_that_dropped_every_rated_row_still_gets_its_histogram(fake_run):
    # the quick start on a 135M model: the judge rates the one pair left and drops it
    stage = fake_run / "03_curate"
    dropped = [{"id": r["id"], "stage": "curate", "reason": "below_threshold", "detail": "low",
                "record": {k: v for k, v in r.items() if k != "rejected_reason"}}
               for r in map(json.loads, (stage / "rejected.jsonl").read_text().splitlines())]
    dropped += [{"id": r["id"], "stage": "curate", "reason": "below_threshold", "detail": "low", "record": r}
                for r in map(json.loads, (stage / "data.jsonl").read_text().splitlines())]
    (stage / "rejected.jsonl").unlink()
    (stage / "data.jsonl").write_text("")
    (stage / "dropped.jsonl").write_text("".join(json.dumps(d) + "\n" for d in dropped))
    data = gather_run(fake_run)
    totals = [s for s in data["scores"] if s["stage"] == "curate" and s["field"] == "rating.total"]
    assert totals and totals[0]["n"] == len(dropped) > 0
