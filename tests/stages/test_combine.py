"""combine: several training datasets (files, globs, run folders) merged, de-duplicated, counted."""

from __future__ import annotations

import json

import pytest

from synthrun.context import StageContext
from synthrun.stage import StageError
from synthrun.stages.combine import Combine


def _ctx(tmp_path, name="combine"):
    return StageContext(name=name, run_id="t/1", run_dir=tmp_path, stage_dir=tmp_path / "01_combine",
                        show_progress=False)


def _jsonl(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_every_format_becomes_messages_and_duplicates_are_dropped(tmp_path):
    chatml = _jsonl(tmp_path / "a.chatml.jsonl", [
        {"messages": [{"role": "user", "content": "What is a group?"}, {"role": "assistant", "content": "A folder."}]},
        {"messages": [{"role": "user", "content": "What is a dataset?"}, {"role": "assistant", "content": "An array."}]},
    ])
    alpaca = _jsonl(tmp_path / "b.alpaca.jsonl", [
        {"instruction": "What is a group?", "input": "", "output": "A folder."},   # same text as in a.chatml
        {"instruction": "Name a filter.", "input": "", "output": "gzip", "system": "Be brief."},
    ])
    sharegpt = _jsonl(tmp_path / "c.sharegpt.jsonl", [
        {"conversations": [{"from": "human", "value": "What is SWMR?"}, {"from": "gpt", "value": "One writer."}]},
    ])
    tools = _jsonl(tmp_path / "d.trl.jsonl", [
        {"messages": [{"role": "user", "content": "Size of /x?"},
                      {"role": "assistant", "content": "", "tool_calls": [
                          {"type": "function", "function": {"name": "size", "arguments": {"path": "/x"}}}]},
                      {"role": "tool", "name": "size", "content": "10"},
                      {"role": "assistant", "content": "It has 10 elements."}],
         "tools": [{"type": "function", "function": {"name": "size", "parameters": {}}}]},
    ])
    records = _jsonl(tmp_path / "e.data.jsonl", [
        {"id": "qa-1", "question": "Is h5py thread-safe?", "answer": "Yes, with a global lock.",
         "provenance": {"chunk_id": "threads"}},
        {"id": "qa-1", "question": "Another question", "answer": "Same id: dropped."},
    ])
    stage = Combine(path=[str(chatml), str(alpaca), str(sharegpt), str(tools), str(records)])
    ctx = _ctx(tmp_path)
    out = stage.run([], ctx)

    assert len(out) == 6
    by_q = {r.messages[-2 if r.messages[-1]["role"] == "assistant" else -1]["content"]: r for r in out}
    assert by_q["Name a filter."].messages[0] == {"role": "system", "content": "Be brief."}
    assert by_q["What is SWMR?"].messages[-1] == {"role": "assistant", "content": "One writer."}
    tool_row = next(r for r in out if getattr(r, "tools", None))
    assert '"name": "size"' in tool_row.messages[1]["content"] and tool_row.messages[2]["role"] == "tool"
    qa = next(r for r in out if r.id == "qa-1")
    assert qa.group == "chunk:threads"
    assert qa.messages == [{"role": "user", "content": "Is h5py thread-safe?"},
                           {"role": "assistant", "content": "Yes, with a global lock."}]
    sources = ctx.summary["sources"]
    assert sources[str(alpaca)] == {"duplicate": 1, "kept": 1}
    assert sources[str(records)] == {"kept": 1, "duplicate": 1}
    assert sources[str(chatml)] == {"kept": 2}
    assert ctx.summary["duplicates"] == 2 and ctx.failures == {"duplicate": 2}
    written = (ctx.stage_dir / "dataset" / "train.chatml.jsonl").read_text().splitlines()
    assert len(written) == 6 and "messages" in json.loads(written[0])


def test_globs_and_run_folders(tmp_path):
    _jsonl(tmp_path / "parts" / "p1.jsonl", [{"instruction": "q1", "output": "a1"}])
    _jsonl(tmp_path / "parts" / "p2.jsonl", [{"instruction": "q2", "output": "a2"}])
    run = tmp_path / "outputs" / "qa" / "default"
    _jsonl(run / "04_curate" / "data.jsonl", [{"id": "x", "question": "ignored", "answer": "not last"}])
    (run / "04_curate" / "_SUCCESS").write_text("fp\n")
    _jsonl(run / "05_export" / "dataset" / "train.chatml.jsonl",
           [{"messages": [{"role": "user", "content": "q3"}, {"role": "assistant", "content": "a3"}]}])
    ctx = _ctx(tmp_path)
    out = Combine(path=[str(tmp_path / "parts" / "*.jsonl"), str(run)]).run([], ctx)
    assert [r.messages[0]["content"] for r in out] == ["q1", "q2", "q3"]
    assert str(run / "05_export" / "dataset" / "train.chatml.jsonl") in ctx.summary["sources"]


@pytest.mark.parametrize("content, problem", [
    ("", "no training examples"),
    ('{"messages": [{"role": "user", "content": "hi"}]}\n', "no assistant turn with text"),
    ('{"messages": [}\n', "not valid JSON"),
    ('{"title": "no qa here"}\n', "no training fields"),
])
def test_bad_training_files_fail_with_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(StageError) as err:
        Combine(path=str(path)).run([], _ctx(tmp_path))
    assert problem in str(err.value) and "\n" not in str(err.value)
    assert str(path) in str(err.value)


def test_missing_source_is_named(tmp_path):
    with pytest.raises(StageError, match="nope.jsonl: file not found"):
        Combine(path=str(tmp_path / "nope.jsonl")).run([], _ctx(tmp_path))
    with pytest.raises(StageError, match="no file matches"):
        Combine(path=str(tmp_path / "*.parquet")).run([], _ctx(tmp_path))


def test_skip_bad_rows_counts_them(tmp_path):
    path = _jsonl(tmp_path / "mixed.jsonl", [{"instruction": "q", "output": "a"}, {"title": "x"}])
    ctx = _ctx(tmp_path)
    out = Combine(path=str(path), skip_bad_rows=True).run([], ctx)
    assert len(out) == 1 and ctx.failures == {"bad_row": 1}
