"""GenerateCoT: questions with 2-5 reasoning steps from chunks; the step range is enforced by the schema."""

from __future__ import annotations

import json
import re

import pytest

from synthrun.records import Chunk, CoTExample, Provenance
from synthrun.stages.cot_generate import GenerateCoT
from synthrun.stages.reasoning import reasoning_schema
from tests.conftest import HDF5_PASSAGES
from tests.fixtures import make_ctx
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for


def user_text(request: dict) -> str:
    """The stage's own user message (a re-ask after a bad answer comes later in the list)."""
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


def responder(request: dict) -> str:
    """One step per sentence of the passage; the answer is the last sentence."""
    text = user_text(request)
    body = re.search(r'(?:"""|```)\n(.*?)\n(?:"""|```)', text, re.S).group(1)
    sentences = [s.strip() for s in re.split(r"(?<=\.) ", body) if s.strip()]
    index = re.search(r"This is question (\d+)", text)
    return json.dumps({"question": f"Question {index.group(1) if index else 1} about: {body[:30]}?",
                       "reasoning": sentences, "answer": sentences[-1]})


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=responder) as srv:
        yield srv


def chunk(i: int, text: str, kind: str = "text") -> Chunk:
    return Chunk(id=f"c{i}", text=text, source=f"docs/{i}.rst", kind=kind, title=f"T{i}",
                 provenance=Provenance(chunk_id=f"c{i}"))


TWO = "Chunks are blocks. Compression needs chunks."
THREE = "Groups hold datasets. Datasets hold arrays. Arrays have a dtype."


def test_generates_question_steps_answer_with_provenance(tmp_path, server):
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url))
    examples = GenerateCoT().run([chunk(0, TWO), chunk(1, THREE)], ctx)
    assert [type(e) for e in examples] == [CoTExample, CoTExample]
    a, b = examples
    assert a.reasoning == ["Chunks are blocks.", "Compression needs chunks."] and a.answer == "Compression needs chunks."
    assert b.reasoning == ["Groups hold datasets.", "Datasets hold arrays.", "Arrays have a dtype."]
    assert a.question == "Question 1 about: Chunks are blocks. Compression?"
    assert (a.provenance.chunk_id, a.provenance.source_text, a.provenance.prompt) == ("c0", TWO, "cot_generate")
    assert a.provenance.model == "openai/fake-model" and a.id != b.id
    assert ctx.summary == {"requested_examples": 2, "steps_histogram": {"2": 1, "3": 1}, "kept": 2, "dropped": 0}
    schema = server.requests[0]["response_format"]["json_schema"]["schema"]
    assert (schema["properties"]["reasoning"]["minItems"], schema["properties"]["reasoning"]["maxItems"]) == (2, 5)
    assert "2 to 5 reasoning steps" in server.requests[0]["messages"][0]["content"]


def test_step_range_is_enforced(tmp_path, server):
    one = "Only one sentence here."
    six = " ".join(f"Fact number {i} holds." for i in range(6))
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url, json_retries=1))
    examples = GenerateCoT().run([chunk(0, one), chunk(1, six), chunk(2, TWO)], ctx)
    assert [e.provenance.chunk_id for e in examples] == ["c2"]
    assert ctx.stats.failures == {"schema_mismatch": 2}
    assert len(server.requests) == 5  # the two bad answers were asked again once each
    narrow = GenerateCoT(min_steps=3, max_steps=3).run([chunk(1, THREE), chunk(2, TWO)], make_ctx(tmp_path, "generate", provider=provider_for(server.base_url)))
    assert [len(e.reasoning) for e in narrow] == [3]


def test_counts_code_prompt_and_max_chunks(tmp_path, server):
    chunks = [chunk(i, f"{title} is described here. {text}") for i, (title, text) in enumerate(HDF5_PASSAGES)]
    chunks.append(chunk(9, "import h5py. f = h5py.File('x.h5').", kind="code"))
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url))
    examples = GenerateCoT(target_examples=5, max_chunks=3).run(chunks, ctx)
    assert [e.provenance.chunk_id for e in examples] == ["c0", "c0", "c1", "c1", "c2"]
    assert [e.question.split(" about")[0] for e in examples[:2]] == ["Question 1", "Question 2"]
    prompts = [user_text(r) for r in server.requests]
    assert sum("This is question 2 of 2" in p for p in prompts) == 2
    code = GenerateCoT(n_examples=1).run([chunks[-1]], make_ctx(tmp_path, "generate", provider=provider_for(server.base_url)))
    assert code and "Code from docs/9.rst" in user_text(server.requests[-1])
    assert "source code" in server.requests[-1]["messages"][0]["content"]


def test_bad_parameters():
    with pytest.raises(ValueError, match="min_steps"):
        GenerateCoT(min_steps=4, max_steps=2)
    with pytest.raises(ValueError, match="either n_examples"):
        GenerateCoT(n_examples=1, target_examples=2)
    assert reasoning_schema(2, 5) is reasoning_schema(2, 5)


def local_provider(**overrides) -> dict:
    import yaml

    from synthrun.paths import conf_dir

    provider = yaml.safe_load((conf_dir() / "provider" / "local.yaml").read_text(encoding="utf-8"))
    return {**provider, **overrides}


@pytest.mark.slow
def test_embedded_model_writes_cot_examples(tmp_path):
    """The real embedded model, decoding constrained to the schema: 2-5 non-empty steps and an answer."""
    ctx = make_ctx(tmp_path, "generate", provider=local_provider())
    title, text = HDF5_PASSAGES[2]
    examples = GenerateCoT(max_tokens=200).run([chunk(0, text)], ctx)
    assert ctx.stats.calls == 1 and ctx.stats.completion_tokens > 0
    assert len(examples) == 1, ctx.stats.failures
    e = examples[0]
    assert 2 <= len(e.reasoning) <= 5 and all(len(s) >= 3 for s in e.reasoning)
    assert e.question.strip() and e.answer.strip()
    assert e.provenance.model.startswith("local/") and e.provenance.source_text == text


def test_cot_recipe_on_fake_server(tmp_path):
    """cot: load -> generate CoT -> curate (the judge sees the steps) -> export ChatML with steps."""
    from synthrun.api import run_recipe
    from synthrun.io import read_jsonl
    from tests.conftest import write_chunk_db

    def full(request: dict) -> str:
        if request.get("max_tokens") == 1:  # a yes/no check of the probability judge
            return "Yes"
        if request["response_format"]["json_schema"]["name"] == "JudgeOut":
            has_steps = "Reasoning steps:\n1. " in user_text(request)
            return json.dumps({"reasoning": "ok", "clarity": 3, "accuracy": 3, "usefulness": 1,
                               "difficulty": 2 if has_steps else 0})
        return responder(request)

    db = write_chunk_db(tmp_path / "docs.lancedb")
    with FakeOpenAIServer(responder=full) as srv:
        run_dir = run_recipe("cot", [
            f"load.db={db}", "load.max_chunks=2", "provider=vllm", "provider.model=hosted_vllm/test",
            f"provider.api_base={srv.base_url}", "provider.max_retries=1", "progress=false", "run_name=t",
            "filter.enabled=false",  # the fake model's answers are random words: the gates are tested on their own
        ], output_root=tmp_path / "out")
    generated = read_jsonl(run_dir / "02_generate" / "data.jsonl")
    rows = read_jsonl(run_dir / "05_export" / "dataset" / "train.chatml.jsonl")
    assert len(generated) == len(rows) == 2
    for g, row in zip(generated, rows, strict=True):
        assert 2 <= len(g["reasoning"]) <= 5 and g["rating"] is None
        steps = "\n".join(f"Step {i}: {s}" for i, s in enumerate(g["reasoning"], 1))
        assert row["messages"][-1]["content"] == f"{steps}\n\nAnswer: {g['answer']}"
    curated = read_jsonl(run_dir / "04_curate" / "data.jsonl")  # the probability judge, after the gates
    assert len(curated) == 2 and all(c["rating"]["total"] >= 5 for c in curated)
