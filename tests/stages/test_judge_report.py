"""Judge evaluation: report metrics, one-line errors for unlabelled rows and one-class sets."""

from __future__ import annotations

import json

import pytest

from synthrun.records import Record
from synthrun.stage import StageError
from synthrun.stages.judge_report import JudgeReport
from synthrun.stages.load_records import LoadRecords
from tests.fixtures import make_ctx


def rated(pid: str, label, total, kind: str, method: str = "logprob") -> Record:
    rating = None if total is None else {"clarity": 0, "accuracy": 0, "usefulness": 0, "difficulty": 0,
                                         "total": total, "method": method, "judge_model": "openai/x"}
    return Record.model_validate({"id": pid, "question": "q?", "answer": "a.", "label": label, "kind": kind,
                                  "rating": rating})


def test_report_metrics_and_files(tmp_path):
    earlier = tmp_path / "run" / "03_curate"
    earlier.mkdir(parents=True)
    (earlier / "summary.json").write_text(json.dumps({"metrics": {
        "llm_calls": 10, "tokens_in": 500, "tokens_out": 10, "wall_time_s": 2.5}}))
    records = [rated("g1", 1, 9, "good"), rated("g2", 1, 6, "good"), rated("g3", "1", 4, "good"),
               rated("b1", 0, 5, "echo"), rated("b2", False, None, "vague")]
    ctx = make_ctx(tmp_path, "report", folder="04_report")
    out = JudgeReport(threshold=5).run(records, ctx)
    assert out == records
    ev = json.loads((ctx.stage_dir / "report.json").read_text())
    assert ev["roc_auc"] == pytest.approx(5 / 6, abs=1e-4)  # the unrated bad row counts as score 0
    assert ev["best_f1"]["threshold"] == 4 and ev["at_threshold"]["kept"] == 3
    assert ev["unrated"] == 1 and ev["methods"] == {"logprob": 4, "none": 1} and ev["method"] == "logprob+none"
    assert (ev["llm_calls"], ev["tokens_in"], ev["wall_time_s"]) == (10, 500, 2.5)
    assert ev["per_kind"]["echo"]["auc_vs_good"] == pytest.approx(2 / 3, abs=1e-4)
    md = (ctx.stage_dir / "report.md").read_text()
    assert "ROC-AUC: 0.833" in md and "| echo | 1 | 5.00 | 0.667 |" in md
    assert ctx.summary["evaluation"]["roc_auc"] == ev["roc_auc"]


def test_one_class_only_is_one_line_error(tmp_path):
    with pytest.raises(StageError, match=r"all 2 labelled rows have label 1; ROC-AUC needs"):
        JudgeReport().run([rated("a", 1, 5, "good"), rated("b", 1, 7, "good")], make_ctx(tmp_path, "report", folder="04_report"))


def test_record_without_label_is_named(tmp_path):
    rec = Record.model_validate({"id": "row-7", "question": "q?", "answer": "a."})
    with pytest.raises(StageError, match="record row-7 .* has no 'label'"):
        JudgeReport().run([rec], make_ctx(tmp_path, "report", folder="04_report"))


def test_loading_a_row_without_label_names_file_and_line(tmp_path):
    path = tmp_path / "dev.jsonl"
    path.write_text('{"id": "a", "question": "q?", "answer": "a.", "label": 1}\n'
                    '{"id": "b", "question": "q?", "answer": "a."}\n')
    with pytest.raises(StageError) as err:
        LoadRecords(path=str(path), required=["label"]).run([], make_ctx(tmp_path, "load", folder="01_load"))
    assert str(err.value) == f"{path}:2: row b has no 'label' field (required: label)"
