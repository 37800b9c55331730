"""The filter stage: real gates, the packaged MiniLM for answer support, named reasons in dropped.jsonl."""

from __future__ import annotations

import pytest

from synthrun.io import read_jsonl
from synthrun.records import CoTExample, Provenance, QAPair, Record
from synthrun.stages.filter import Filter, source_windows
from tests.fixtures import make_ctx

SOURCE = ("Chunk cache\n\nEach open dataset keeps recently used chunks in a cache, 1 MiB by default. When the "
          "chunks a program touches do not fit, the same chunk is read and decompressed again and again. The cache "
          "size can be raised with the rdcc_nbytes argument of File.")


def rec(pid: str, question: str, answer: str) -> Record:
    return Record.model_validate(QAPair(id=pid, question=question, answer=answer,
                                        provenance=Provenance(source_text=SOURCE)).model_dump())


PAIRS = [
    rec("good", "How large is the chunk cache of an open dataset by default?", "It is 1 MiB by default."),
    rec("paraphrase", "What happens when the chunks a program touches do not fit in the cache?",
        "Identical chunks are repeatedly re-read and re-decompressed."),
    rec("statement", "The chunk cache is 1 MiB by default.", "Yes."),
    rec("vague", "What does the passage say?", "It talks about the chunk cache."),
    rec("echo", "Which argument raises the chunk cache size?", "Which argument raises the chunk cache size."),
    rec("swapped", "How large is the chunk cache of an open dataset by default?", "It is 64 KiB by default."),
    rec("elsewhere", "Which argument raises the chunk cache size?", "Virtual datasets map several real datasets."),
]


def test_filter_drops_each_bad_pair_with_its_reason(tmp_path):
    ctx = make_ctx(tmp_path, "filter", cache_path=tmp_path / "cache" / "llm.sqlite")
    kept = Filter().run(PAIRS, ctx)
    assert [r.id for r in kept] == ["good", "paraphrase"]
    assert all(0 < r.gate_support <= 1 for r in kept)
    dropped = {d["id"]: d for d in read_jsonl(ctx.stage_dir / "dropped.jsonl")}
    assert {k: d["reason"] for k, d in dropped.items()} == {
        "statement": "not_a_question", "vague": "vague_question", "echo": "echo",
        "swapped": "unsupported_number", "elsewhere": "unsupported_answer"}
    assert all(d["stage"] == "filter" and d["record"]["id"] == k for k, d in dropped.items())
    assert "similarity" in dropped["elsewhere"]["detail"]
    assert ctx.failures["echo"] == 1 and sum(ctx.failures.values()) == 5
    assert ctx.summary["embeddings"]["embedded"] > 0  # MiniLM ran for the low-overlap answers


def test_without_embeddings_the_paraphrase_is_dropped(tmp_path):
    kept = Filter(use_embeddings=False).run(PAIRS[:2], make_ctx(tmp_path, "filter", cache_path=tmp_path / "cache" / "llm.sqlite"))
    assert [r.id for r in kept] == ["good"]


def test_mark_mode_keeps_everything_and_names_the_failure(tmp_path):
    ctx = make_ctx(tmp_path, "filter", cache_path=tmp_path / "cache" / "llm.sqlite")
    out = Filter(mode="mark", gates=["interrogative", "vague"]).run(PAIRS, ctx)
    assert len(out) == len(PAIRS)
    marks = {r.id: getattr(r, "gate_failed", None) for r in out}
    assert marks["statement"] == "not_a_question" and marks["vague"] == "vague_question"
    assert marks["good"] is None and marks["swapped"] is None  # answer_support was not asked for
    assert read_jsonl(ctx.stage_dir / "dropped.jsonl") == []


def test_cot_records_are_filtered_on_question_and_answer(tmp_path):
    cot = Record.model_validate(CoTExample(id="c", question="How large is the chunk cache by default?",
                                           reasoning=["The passage gives the size."], answer="1 MiB",
                                           provenance=Provenance(source_text=SOURCE)).model_dump())
    out = Filter().run([cot], make_ctx(tmp_path, "filter", cache_path=tmp_path / "cache" / "llm.sqlite"))
    assert [r.id for r in out] == ["c"] and out[0].reasoning == ["The passage gives the size."]


def test_unknown_gate_name_is_refused():
    with pytest.raises(ValueError, match="unknown gate"):
        Filter(gates=["interrogative", "spelling"])


def test_source_windows_overlap():
    assert source_windows("A b. C d. E f. G h.", size=2) == ["A b. C d.", "C d. E f.", "E f. G h."]
    assert source_windows("") == []
