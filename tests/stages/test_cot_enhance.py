"""EnhanceCoT: reasoning added to existing QA pairs; the answer is copied, never regenerated."""

from __future__ import annotations

import json
import re

import pytest

from synthrun.io import read_jsonl, write_jsonl
from synthrun.records import CoTExample, Provenance, QAPair, Rating
from synthrun.stages.cot_enhance import EnhanceCoT
from tests.fixtures import make_ctx
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for


def schema_name(request: dict) -> str:
    return ((request.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def user_text(request: dict) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def responder(request: dict) -> str:
    """Steps quote the question and the fixed answer; it also tries to slip in a different answer."""
    text = user_text(request)
    question = re.search(r"Question: (.*)", text).group(1)
    answer = re.search(r"Final answer \(fixed\): (.*)", text).group(1)
    if "unanswerable" in question:
        return json.dumps({"reasoning": ["only one step"]})
    return json.dumps({"reasoning": [f"The question asks: {question}", f"The passage says: {answer}"],
                       "answer": "A DIFFERENT ANSWER"})


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=responder) as srv:
        yield srv


def pair(i: int, question: str, answer: str) -> QAPair:
    return QAPair(id=f"qa{i}", question=question, answer=answer, question_type="analytical",
                  rating=Rating(clarity=3, accuracy=3, usefulness=2, difficulty=2, total=10),
                  original_answer="older answer",
                  provenance=Provenance(chunk_id=f"c{i}", source="docs/x.rst", source_text="Chunks are blocks.",
                                        model="gen-model"))


def test_adds_reasoning_and_copies_the_answer(tmp_path, server):
    ctx = make_ctx(tmp_path, "enhance", provider=provider_for(server.base_url))
    out = EnhanceCoT().run([pair(1, "Why chunk?", "Because compression needs chunks."),
                            pair(2, "What are chunks?", "Blocks.")], ctx)
    assert [type(e) for e in out] == [CoTExample, CoTExample]
    first = out[0]
    assert first.answer == "Because compression needs chunks."  # not "A DIFFERENT ANSWER"
    assert first.reasoning == ["The question asks: Why chunk?",
                               "The passage says: Because compression needs chunks."]
    assert (first.id, first.question, first.question_type) == ("qa1", "Why chunk?", "analytical")
    assert first.original_answer == "older answer" and first.rating is None
    assert first.provenance.chunk_id == "c1" and first.provenance.model == "gen-model"
    assert first.provenance.cot_model == "openai/fake-model"
    assert ctx.summary == {"enhanced": 2, "failed": 0, "steps_histogram": {"2": 2}, "kept": 2, "dropped": 0}

    request = server.requests[0]
    assert schema_name(request) == "ReasoningOut2to5"
    assert set(request["response_format"]["json_schema"]["schema"]["properties"]) == {"reasoning"}
    assert "Chunks are blocks." in user_text(request)


def test_unusable_reasoning_drops_the_pair(tmp_path, server):
    ctx = make_ctx(tmp_path, "enhance", provider=provider_for(server.base_url, json_retries=0))
    out = EnhanceCoT(show_source=False).run([pair(1, "unanswerable?", "x"), pair(2, "Why?", "y")], ctx)
    assert [e.id for e in out] == ["qa2"]
    assert ctx.failures == {"llm_schema_mismatch": 1} and ctx.summary["failed"] == 1
    [dropped] = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert (dropped["id"], dropped["stage"], dropped["reason"]) == ("qa1", "enhance", "llm_schema_mismatch")
    assert all("Chunks are blocks." not in user_text(r) for r in server.requests)


def test_cot_enhance_recipe_from_a_qa_file(tmp_path):
    """load an existing QA dataset -> enhance -> curate -> export, on the fake server."""
    from synthrun.api import run_recipe

    def full(request: dict) -> str:
        if request.get("max_tokens") == 1:  # a yes/no check of the probability judge
            return "Yes"
        if schema_name(request) == "JudgeOut":
            steps = "Reasoning steps:\n1. The question asks" in user_text(request)
            return json.dumps({"reasoning": "has steps" if steps else "no steps", "clarity": 3, "accuracy": 3,
                               "usefulness": 2 if steps else 0, "difficulty": 1})
        return responder(request)

    qa_file = tmp_path / "qa.jsonl"
    write_jsonl(qa_file, [pair(i, f"Question {i}?", f"Answer {i}.") for i in range(3)])
    with FakeOpenAIServer(responder=full) as srv:
        run_dir = run_recipe("cot_enhance", [
            f"load.path={qa_file}", "provider=vllm", "provider.model=hosted_vllm/test",
            f"provider.api_base={srv.base_url}", "provider.max_retries=1", "progress=false", "run_name=t",
            "export.cot_style=think_tags", "filter.enabled=false",
        ], output_root=tmp_path / "out")
        judged = [r for r in srv.requests if r.get("max_tokens") == 1]  # the probability judge's checks
        assert len(judged) >= 3
    rows = read_jsonl(run_dir / "05_export" / "dataset" / "train.chatml.jsonl")
    assert [r["messages"][-1]["content"] for r in rows] == [
        f"<think>\nThe question asks: Question {i}?\nThe passage says: Answer {i}.\n</think>\n\nAnswer {i}."
        for i in range(3)]
    curated = read_jsonl(run_dir / "04_curate" / "data.jsonl")
    assert len(curated) == 3 and all(c["rating"]["total"] >= 5 for c in curated)
