"""GenerateQA: backtranslation over text and code tables, allocation, prompts, topic filter (fake server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lancedb
import pytest

from synthrun.context import StageContext
from synthrun.ingest import store
from synthrun.io import read_jsonl
from synthrun.records import Chunk
from synthrun.stages.load_chunks import LoadChunks
from synthrun.stages.qa_generate import GenerateQA, allocate
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

TEXT = [("Groups", "Groups are folder-like containers. They hold datasets and other groups."),
        ("Datasets", "Datasets are array-like collections. They have a shape and a datatype."),
        ("Cooking", "Pasta should be boiled in salted water. It takes about ten minutes.")]
CODE = [("write.py", "import h5py\nwith h5py.File('a.h5', 'w') as f:\n    f.create_dataset('x', data=[1, 2])")]


def schema_name(request: dict) -> str:
    return ((request.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def user_text(request: dict) -> str:
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def responder(request: dict) -> str:
    """QA: question names the question type and quotes the text; topic: on topic unless about pasta."""
    text = user_text(request)
    if schema_name(request) == "TopicVerdict":
        off = "pasta" in text.lower()
        return json.dumps({"on_topic": not off, "reason": "about cooking" if off else "about HDF5"})
    qtype = re.search(r"Write one (\w+) question", text).group(1)
    body = re.search(r'(?:"""|```)\n(.*?)\n(?:"""|```)', text, re.S).group(1)
    return json.dumps({"question": f"[{qtype}] What does this say: {body[:40]}?", "answer": body.split("\n")[0]})


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=responder) as srv:
        yield srv


@pytest.fixture
def db(tmp_path: Path) -> Path:
    def row(i, title, text, kind, table_lang=""):
        return {"id": f"{kind}-{i}", "text": text, "source": f"{'code' if kind == 'code' else 'docs'}/{title}",
                "kind": kind, "title": title, "section": title, "start": 0, "end": len(text),
                "language": table_lang, "file_hash": "h", "chunker": "t"}

    path = tmp_path / "docs.lancedb"
    conn = lancedb.connect(str(path))
    conn.create_table("text_chunks", data=[row(i, t, x, "text") for i, (t, x) in enumerate(TEXT)],
                      schema=store.schema())
    conn.create_table("code_chunks", data=[row(i, t, x, "code", "python") for i, (t, x) in enumerate(CODE)],
                      schema=store.schema())
    return path


def make_ctx(tmp_path: Path, server, name: str = "generate", **provider) -> StageContext:
    stage_dir = tmp_path / "run" / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(name=name, run_id="run1", run_dir=tmp_path / "run", stage_dir=stage_dir,
                        provider=provider_for(server.base_url, **provider), show_progress=False)


def load(db: Path, tmp_path: Path, server) -> list[Chunk]:
    return LoadChunks(db=str(db), tables=["text_chunks", "code_chunks"]).run([], make_ctx(tmp_path, server, "load"))


def test_text_and_code_tables_in_one_run(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    assert [c.kind for c in chunks] == ["text", "text", "text", "code"]
    ctx = make_ctx(tmp_path, server)
    pairs = GenerateQA(n_pairs=2, question_types=["factual", "analytical"]).run(chunks, ctx)

    assert len(pairs) == 8 and len({p.id for p in pairs}) == 8
    by_chunk = {}
    for p in pairs:
        by_chunk.setdefault(p.provenance.chunk_id, []).append(p)
    code = by_chunk["code-0"]
    assert [p.answer for p in code] == ["import h5py", "import h5py"]
    assert {p.provenance.table for p in code} == {"code_chunks"}
    assert {p.provenance.prompt for p in code} == {"qa_generate_code"}
    assert {p.provenance.prompt for p in by_chunk["text-0"]} == {"qa_generate"}
    # question types rotate across chunks and pairs
    assert [p.question_type for p in by_chunk["text-0"]] == ["factual", "analytical"]
    assert [p.question_type for p in by_chunk["text-1"]] == ["analytical", "factual"]
    for p in pairs:
        assert p.question.startswith(f"[{p.question_type}]")
        assert p.provenance.source_text and p.answer in p.provenance.source_text
        assert p.provenance.run_id == "run1" and p.provenance.model == "openai/fake-model"
    assert ctx.summary["question_types"] == {"factual": 4, "analytical": 4}

    systems = {r["messages"][0]["content"].split(".")[0] for r in server.requests}
    assert systems == {"You write training data for a question-answering assistant",
                       "You write training data for a programming assistant"}
    code_req = next(r for r in server.requests if "programming" in r["messages"][0]["content"])
    assert "Code from code/write.py (python)" in user_text(code_req)


def test_target_pairs_spread_and_max_chunks(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    pairs = GenerateQA(target_pairs=5, max_chunks=3).run(chunks, make_ctx(tmp_path, server))
    per_chunk = [sum(p.provenance.chunk_id == c.id for p in pairs) for c in chunks]
    assert per_chunk == [2, 2, 1, 0]
    assert len(server.requests) == 5


def test_allocate():
    assert allocate(3, None, None) == [1, 1, 1]
    assert allocate(3, 4, None) == [4, 4, 4]
    assert allocate(4, None, 10) == [3, 3, 2, 2]
    assert allocate(5, None, 2) == [1, 0, 1, 0, 0]
    assert allocate(0, None, 5) == []


def test_both_counts_is_an_error():
    with pytest.raises(ValueError, match="either n_pairs"):
        GenerateQA(n_pairs=1, target_pairs=3)


def test_prompt_file_and_extra_instructions(db, tmp_path, server):
    prompt = tmp_path / "my_prompt.yaml"
    prompt.write_text('user: |\n  MY PROMPT ({{ question_type }}): Write one {{ question_type }} question.\n'
                      '  """\n  {{ text }}\n  """\n  {{ extra_instructions }}\n', encoding="utf-8")
    chunks = load(db, tmp_path, server)[:1]
    pairs = GenerateQA(prompt_file=str(prompt), extra_instructions="Answer in one sentence.").run(
        chunks, make_ctx(tmp_path, server))
    [request] = server.requests
    assert [m["role"] for m in request["messages"]] == ["user"]
    assert user_text(request).startswith("MY PROMPT (factual)") and "Answer in one sentence." in user_text(request)
    assert pairs[0].provenance.prompt == str(prompt)


def test_topic_filter_drops_off_topic_pairs_with_reason(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    ctx = make_ctx(tmp_path, server)
    pairs = GenerateQA(topic="HDF5").run(chunks, ctx)
    assert sorted(p.provenance.chunk_id for p in pairs) == ["code-0", "text-0", "text-1"]
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [d["provenance"]["chunk_id"] for d in dropped] == ["text-2"]
    assert dropped[0]["dropped_reason"] == "off topic: about cooking"
    assert ctx.failures == {"off_topic": 1} and ctx.summary["off_topic_dropped"] == 1
    topic_requests = [r for r in server.requests if schema_name(r) == "TopicVerdict"]
    assert len(topic_requests) == 4 and all("Topic: HDF5" in user_text(r) for r in topic_requests)


def test_pairs_naming_the_topic_skip_the_topic_check(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    ctx = make_ctx(tmp_path, server)
    pairs = GenerateQA(topic="groups").run(chunks, ctx)
    everything = read_jsonl(ctx.stage_dir / "dropped.jsonl") + [p.model_dump(mode="json") for p in pairs]
    assert sorted(p.provenance.chunk_id for p in pairs) == ["code-0", "text-0", "text-1"]
    order = [c.id for c in chunks]
    assert [p.provenance.chunk_id for p in pairs] == [c for c in order if c != "text-2"], "generation order kept"
    assert len(everything) == 4
    topic_requests = [r for r in server.requests if schema_name(r) == "TopicVerdict"]
    assert len(topic_requests) == 3 and not any("Groups are folder-like" in user_text(r) for r in topic_requests)
    assert ctx.summary["topic_named"] == 1 and ctx.failures == {"off_topic": 1}


def test_unusable_answers_are_counted_not_kept(db, tmp_path, server):
    server.fail_next("garbage")
    ctx = make_ctx(tmp_path, server, json_retries=0)
    pairs = GenerateQA().run(load(db, tmp_path, server)[:2], ctx)
    assert len(pairs) == 1 and ctx.stats.failures == {"invalid_json": 1}


def test_hdf5_qa_recipe_on_fake_server(db, tmp_path):
    """hdf5_qa: text + code tables, topic HDF5 in generate and curate, export ChatML with a system prompt."""
    from synthrun.api import run_recipe

    def full(request: dict) -> str:
        name = schema_name(request)
        if name == "EnrichOut":
            old = re.search(r'Original answer:\n"""\n(.*?)\n"""', user_text(request), re.S).group(1)
            return json.dumps({"answer": old, "changes": "none"})
        if name == "JudgeTopicOut":
            return json.dumps({"reasoning": "ok", "clarity": 3, "accuracy": 3, "usefulness": 2, "difficulty": 1,
                               "topic_relevant": "import" not in user_text(request)})
        return responder(request)

    with FakeOpenAIServer(responder=full) as srv:
        run_dir = run_recipe("hdf5_qa", [
            f"load.db={db}", "generate.target_pairs=4", "provider=vllm", "provider.model=hosted_vllm/test",
            f"provider.api_base={srv.base_url}", "provider.max_retries=1", "progress=false", "run_name=t",
        ], output_root=tmp_path / "out")
        names = [schema_name(r) for r in srv.requests]
    assert names.count("QAOut") == 4 and names.count("TopicVerdict") == 4
    generated = read_jsonl(run_dir / "02_generate" / "data.jsonl")
    assert len(generated) == 3 and {g["provenance"]["table"] for g in generated} == {"text_chunks", "code_chunks"}
    rejected = read_jsonl(run_dir / "04_curate" / "rejected.jsonl")
    assert [r["rejected_reason"] for r in rejected] == ["off topic"]  # the code pair, judged off topic
    rows = read_jsonl(run_dir / "05_export" / "dataset" / "train.chatml.jsonl")
    assert len(rows) == 2
    assert all(r["messages"][0] == {"role": "system", "content": "You are an expert on HDF5 and h5py."} for r in rows)
