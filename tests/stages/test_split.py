"""split: seeded train/eval split, whole source chunks on one side."""

from __future__ import annotations

from synthrun.context import StageContext
from synthrun.records import Record
from synthrun.stages.split import Split


def _records(n_chunks=10, per_chunk=3):
    out = []
    for c in range(n_chunks):
        for q in range(per_chunk):
            out.append(Record.model_validate({
                "id": f"c{c}q{q}", "provenance": {"chunk_id": f"chunk-{c}"},
                "messages": [{"role": "user", "content": f"question {c}.{q}"},
                             {"role": "assistant", "content": f"answer {c}.{q}"}]}))
    return out


def _run(stage, records, tmp_path):
    ctx = StageContext(name="split", run_id="t/1", run_dir=tmp_path, stage_dir=tmp_path / "02_split",
                       show_progress=False)
    return stage.run(records, ctx), ctx


def test_groups_never_straddle_and_split_is_seeded(tmp_path):
    out, ctx = _run(Split(eval_fraction=0.2, seed=1), _records(), tmp_path)
    sides: dict[str, set[str]] = {}
    for r in out:
        sides.setdefault(r.group, set()).add(r.split)
    assert all(len(s) == 1 for s in sides.values())
    n_eval = sum(r.split == "eval" for r in out)
    assert n_eval == 6 and ctx.summary["eval_groups"] == 2 and ctx.summary["train"] == 24
    again, _ = _run(Split(eval_fraction=0.2, seed=1), _records(), tmp_path)
    assert [r.split for r in again] == [r.split for r in out]
    other, _ = _run(Split(eval_fraction=0.2, seed=2), _records(), tmp_path)
    assert {r.group for r in other if r.split == "eval"} != {r.group for r in out if r.split == "eval"}


def test_without_chunk_ids_the_question_is_the_group(tmp_path):
    recs = [Record.model_validate({"id": f"r{i}", "messages": [
        {"role": "user", "content": "Same question?" if i < 2 else f"Q{i}"},
        {"role": "assistant", "content": f"A{i}"}]}) for i in range(6)]
    out, _ = _run(Split(eval_fraction=0.5, seed=0), recs, tmp_path)
    assert out[0].split == out[1].split
    assert any(r.split == "train" for r in out) and any(r.split == "eval" for r in out)


def test_one_group_stays_in_train(tmp_path):
    out, ctx = _run(Split(eval_fraction=0.5), _records(n_chunks=1), tmp_path)
    assert all(r.split == "train" for r in out) and ctx.summary["eval"] == 0
