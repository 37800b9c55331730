"""GenerateQA: backtranslation over text and code tables, allocation, prompts, topic filter (fake server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import lancedb
import pytest

from synthrun.ingest import store
from synthrun.io import read_jsonl
from synthrun.records import Chunk
from synthrun.stages.generation import allocate
from synthrun.stages.load_chunks import LoadChunks
from synthrun.stages.qa_generate import GenerateQA
from tests.fixtures import make_ctx
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


def load(db: Path, tmp_path: Path, server) -> list[Chunk]:
    return LoadChunks(db=str(db), tables=["text_chunks", "code_chunks"]).run([], make_ctx(tmp_path, "load"))


def test_text_and_code_tables_in_one_run(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    assert [c.kind for c in chunks] == ["text", "text", "text", "code"]
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url))
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
    pairs = GenerateQA(target_pairs=5, max_chunks=3).run(chunks, make_ctx(tmp_path, "generate", provider=provider_for(server.base_url)))
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
        chunks, make_ctx(tmp_path, "generate", provider=provider_for(server.base_url)))
    [request] = server.requests
    assert [m["role"] for m in request["messages"]] == ["user"]
    assert user_text(request).startswith("MY PROMPT (factual)") and "Answer in one sentence." in user_text(request)
    assert pairs[0].provenance.prompt == str(prompt)


def test_topic_filter_drops_off_topic_pairs_with_reason(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url))
    pairs = GenerateQA(topic="HDF5").run(chunks, ctx)
    assert sorted(p.provenance.chunk_id for p in pairs) == ["code-0", "text-0", "text-1"]
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(d["record"]["provenance"]["chunk_id"], d["stage"], d["reason"]) for d in dropped] == [
        ("text-2", "generate", "off_topic")]
    assert dropped[0]["detail"] == "off topic: about cooking"
    assert ctx.failures == {"off_topic": 1} and ctx.summary["off_topic_dropped"] == 1
    topic_requests = [r for r in server.requests if schema_name(r) == "TopicVerdict"]
    assert len(topic_requests) == 4 and all("Topic: HDF5" in user_text(r) for r in topic_requests)


def test_pairs_naming_the_topic_skip_the_topic_check(db, tmp_path, server):
    chunks = load(db, tmp_path, server)
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url))
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
    ctx = make_ctx(tmp_path, "generate", provider=provider_for(server.base_url, json_retries=0))
    chunks = load(db, tmp_path, server)[:2]
    pairs = GenerateQA().run(chunks, ctx)
    assert len(pairs) == 1 and ctx.stats.failures == {"invalid_json": 1} and ctx.failures == {"llm_invalid_json": 1}
    [dropped] = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert (dropped["id"], dropped["reason"]) == (chunks[0].id, "llm_invalid_json")


def test_hdf5_qa_recipe_on_fake_server(db, tmp_path):
    """hdf5_qa: text + code tables, topic HDF5 in generate and curate, gates, export ChatML with a system prompt."""
    from synthrun.api import run_recipe

    def full(request: dict) -> str:
        name = schema_name(request)
        text = user_text(request)
        if name == "EnrichOut":
            old = re.search(r'Original answer:\n"""\n(.*?)\n"""', text, re.S).group(1)
            return json.dumps({"answer": old, "changes": "none"})
        if name == "QAOutForm":
            body = re.search(r'(?:"""|```)\n(.*?)\n(?:"""|```)', text, re.S).group(1)
            words = re.findall(r"[a-z]{4,}", body.lower())
            return json.dumps({"question": f"How does {words[0]} relate to {words[1]}?",
                               "answer": body.split("\n")[0]})
        if request.get("max_tokens") == 1:  # the probability judge: yes, except the code pair is off topic
            return "No" if "about HDF5?" in text and "import" in text else "Yes"
        return responder(request)

    with FakeOpenAIServer(responder=full) as srv:
        run_dir = run_recipe("hdf5_qa", [
            f"load.db={db}", "generate.target_pairs=4", "provider=vllm", "provider.model=hosted_vllm/test",
            f"provider.api_base={srv.base_url}", "provider.max_retries=1", "progress=false", "run_name=t",
        ], output_root=tmp_path / "out")
        names = [schema_name(r) for r in srv.requests]
        judge_requests = [r for r in srv.requests if r.get("max_tokens") == 1]
    assert names.count("QAOutForm") == 4 and names.count("TopicVerdict") == 4
    assert all(r["logprobs"] is True for r in judge_requests)
    generated = read_jsonl(run_dir / "02_generate" / "data.jsonl")
    assert len(generated) == 3 and {g["provenance"]["table"] for g in generated} == {"text_chunks", "code_chunks"}
    assert all(g["question"].endswith("?") for g in generated)
    assert len(read_jsonl(run_dir / "04_filter" / "data.jsonl")) == 3  # grounded pairs pass the gates
    dropped = read_jsonl(run_dir / "05_curate" / "dropped.jsonl")
    assert [d["reason"] for d in dropped] == ["off_topic"]  # the code pair, judged off topic
    assert dropped[0]["record"]["provenance"]["table"] == "code_chunks"
    rows = read_jsonl(run_dir / "06_export" / "dataset" / "train.chatml.jsonl")
    assert len(rows) == 2
    assert all(r["messages"][0] == {"role": "system", "content": "You are an expert on HDF5 and h5py."} for r in rows)


def test_question_form_pattern_is_enforced_and_sent_without_length_bounds(db, tmp_path):
    from synthrun.stages.qa_generate import QUESTION_PATTERN, QAOutForm

    props = QAOutForm.model_json_schema()["properties"]["question"]
    assert props["pattern"] == QUESTION_PATTERN and "minLength" not in props and "maxLength" not in props
    statement = json.dumps({"question": "This passage is about groups.", "answer": "Groups hold datasets."})
    question = json.dumps({"question": "What do groups hold?", "answer": "Groups hold datasets."})
    with FakeOpenAIServer(responder=iter_responder([statement, question])) as srv:
        chunks = LoadChunks(db=str(db), tables=["text_chunks"], max_chunks=1).run([], make_ctx(tmp_path, "load"))
        pairs = GenerateQA(n_pairs=1, question_form=True, max_chunks=1).run(chunks, make_ctx(tmp_path, "generate", provider=provider_for(srv.base_url)))
        sent = srv.requests[0]["response_format"]["json_schema"]["schema"]["properties"]["question"]
    assert sent["pattern"] == QUESTION_PATTERN
    assert [p.question for p in pairs] == ["What do groups hold?"]  # the statement was re-asked


def iter_responder(answers):
    it = iter(answers)
    return lambda body: next(it)


def test_answer_first_uses_passage_sentences_as_answers(db, tmp_path):
    def ask(body):
        assert body["response_format"]["json_schema"]["name"] == "QuestionOut"
        sentence = re.search(r"Answer sentence: (.*)", user_text(body)).group(1)
        return json.dumps({"question": f"Which statement says: {sentence[:30]}?"})

    with FakeOpenAIServer(responder=ask) as srv:
        chunks = LoadChunks(db=str(db), tables=["text_chunks"]).run([], make_ctx(tmp_path, "load"))
        pairs = GenerateQA(n_pairs=2, answer_first=True).run(chunks, make_ctx(tmp_path, "generate", provider=provider_for(srv.base_url)))
    assert pairs
    for p in pairs:
        assert p.answer in " ".join(p.provenance.source_text.split())  # a sentence of the chunk, verbatim
        assert p.question.startswith("Which statement says: " + p.answer[:10])
        assert p.provenance.prompt == "qa_answer_first"


def test_near_duplicate_questions_of_a_chunk_are_dropped_with_reason(db, tmp_path):
    answers = iter([{"question": "What is the default chunk cache size?", "answer": "1 MiB."},
                    {"question": "What is the chunk cache size by default?", "answer": "It is 1 MiB."},
                    {"question": "How do you resize a dataset?", "answer": "Call resize."}])
    with FakeOpenAIServer(responder=lambda body: json.dumps(next(answers))) as srv:
        chunks = LoadChunks(db=str(db), tables=["text_chunks"], max_chunks=1).run([], make_ctx(tmp_path, "load"))
        ctx = make_ctx(tmp_path, "generate", provider=provider_for(srv.base_url))
        ctx.provider["concurrency"] = 1
        pairs = GenerateQA(n_pairs=3, dedup_threshold=0.7).run(chunks, ctx)
    assert [p.question for p in pairs] == ["What is the default chunk cache size?", "How do you resize a dataset?"]
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert len(dropped) == 1 and dropped[0]["reason"] == "near_duplicate"
    assert dropped[0]["detail"].startswith("near duplicate of ")
    assert ctx.failures["near_duplicate"] == 1


def test_empty_chunks_and_failed_topic_checks_are_dropped_with_reasons(tmp_path):
    from synthrun.stages.qa_generate import QAOut, TopicVerdict
    from tests.fixtures import FakeLLM

    chunks = [Chunk(id="empty", text="  \n", source="e.rst"),
              Chunk(id="groups", text="Groups are folder-like containers. They hold datasets and other groups.",
                    source="g.rst")]
    llm = FakeLLM()  # in memory: the loopback server's deterministic answers, no HTTP
    llm.fail_next("", "timeout")  # the pair is generated; its topic check times out
    ctx = make_ctx(tmp_path, "generate", llm=llm, seed=3)
    assert GenerateQA(topic="astronomy").run(chunks, ctx) == []
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(d["id"], d["reason"]) for d in dropped] == [("empty", "empty_chunk"), (dropped[1]["id"], "llm_timeout")]
    assert dropped[1]["record"]["provenance"]["chunk_id"] == "groups"
    assert ctx.failures == {"empty_chunk": 1, "llm_timeout": 1}
    assert [r.schema for r in llm.requests] == [QAOut, TopicVerdict]
    assert llm.requests[0].params == {"max_tokens": 320, "seed": 3027}
    assert llm.requests[1].params == {"max_tokens": 120, "temperature": 0.0}
    assert ctx.summary["requested_pairs"] == 1 and ctx.summary["kept"] == 0 and ctx.summary["dropped"] == 2
