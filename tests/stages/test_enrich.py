"""Enrich: answers rewritten through a real OpenAI-compatible server; facts guarded, originals kept."""

from __future__ import annotations

import json
import re

import pytest

from synthrun.io import read_jsonl
from synthrun.records import Provenance, QAPair, Rating
from synthrun.stages.enrich import Enrich, diff_stats, novel_words
from tests.conftest import write_chunk_db
from tests.fixtures import make_ctx
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

SOURCE = ("Chunked storage splits a dataset into regular blocks called chunks that are stored separately "
          "in the file. Chunking is required for compression and for resizable datasets.")


def schema_name(request: dict) -> str:
    return ((request.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def user_text(request: dict) -> str:
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def original_answer(request: dict) -> str:
    return re.search(r'Original answer:\n"""\n(.*?)\n"""', user_text(request), re.S).group(1)


def rewriter(request: dict) -> str:
    """Rewrites by restructuring the original answer's own words; special answers test the guards."""
    old = original_answer(request)
    if old.startswith("INVENT"):
        return json.dumps({"answer": "Microsoft invented quantum teleportation in 1987 using 42 gigabytes.",
                           "changes": "added history"})
    if old.startswith("Already clear"):
        return json.dumps({"answer": old, "changes": "none"})
    sentences = [s.strip().rstrip(".") for s in old.split(". ") if s.strip()]
    return json.dumps({"answer": "In short: " + sentences[0] + ".\n\n" + "\n".join(f"- {s}." for s in sentences[1:]),
                       "changes": "lead with the direct answer, list the details"})


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=rewriter) as srv:
        yield srv


def pair(i: int, answer: str, rating: Rating | None = None) -> QAPair:
    return QAPair(id=f"qa{i}", question="Why does HDF5 use chunked storage?", answer=answer,
                  question_type="explanatory", rating=rating,
                  provenance=Provenance(chunk_id="c1", source="docs/chunking.rst", source_text=SOURCE))


def test_rewrites_answers_and_records_what_changed(tmp_path, server):
    old = ("Chunked storage splits a dataset into regular blocks called chunks. "
           "Chunking is required for compression. It is also required for resizable datasets.")
    rated = Rating(clarity=2, accuracy=2, usefulness=1, difficulty=1, total=6)
    ctx = make_ctx(tmp_path, "enrich", provider=provider_for(server.base_url))
    [out] = Enrich().run([pair(1, old, rated)], ctx)

    assert out.answer == ("In short: Chunked storage splits a dataset into regular blocks called chunks.\n\n"
                          "- Chunking is required for compression.\n- It is also required for resizable datasets.")
    assert out.original_answer == old
    assert out.rating is None  # it rated the old answer
    assert (out.id, out.question, out.question_type) == ("qa1", "Why does HDF5 use chunked storage?", "explanatory")
    assert out.provenance.chunk_id == "c1"
    e = out.enrichment
    assert e["changed"] is True and e["summary"] == "lead with the direct answer, list the details"
    assert e["words_added"] == 4 and e["words_removed"] == 0  # "In", "short:", "-", "-"
    assert e["chars_before"] == len(old) and e["chars_after"] == len(out.answer)
    assert 0.5 < e["similarity"] < 1 and e["model"] == "openai/fake-model"
    assert ctx.summary == {"changed": 1, "unchanged": 0, "rejected": 0, "kept": 1, "dropped": 0}

    [request] = server.requests
    assert schema_name(request) == "EnrichOut"
    assert SOURCE in user_text(request) and old in user_text(request)
    assert "do NOT add facts" in request["messages"][0]["content"]


def test_keep_original_false_and_no_source(tmp_path, server):
    old = "Chunks are blocks. They allow compression."
    [out] = Enrich(keep_original=False, show_source=False).run([pair(1, old)], make_ctx(tmp_path, "enrich", provider=provider_for(server.base_url)))
    assert out.answer == "In short: Chunks are blocks.\n\n- They allow compression."
    assert out.original_answer is None and out.enrichment["changed"] is True
    assert SOURCE not in user_text(server.requests[0])


def test_unchanged_answer_is_marked_unchanged(tmp_path, server):
    old = "Already clear: chunks are blocks stored separately."
    ctx = make_ctx(tmp_path, "enrich", provider=provider_for(server.base_url))
    [out] = Enrich().run([pair(1, old)], ctx)
    assert out.answer == old and out.original_answer is None
    assert out.enrichment["changed"] is False and out.enrichment["similarity"] == 1.0
    assert ctx.summary["unchanged"] == 1


def test_rewrite_that_adds_facts_is_rejected_and_answer_kept(tmp_path, server):
    old = "INVENT: chunks are blocks."
    ctx = make_ctx(tmp_path, "enrich", provider=provider_for(server.base_url))
    [out] = Enrich().run([pair(1, old)], ctx)
    assert out.answer == old and out.original_answer is None
    assert out.enrichment["changed"] is False and out.enrichment["rejected"] == "added_facts"
    assert ctx.failures == {"enrich_added_facts": 1} and ctx.summary["rejected"] == 1
    # with the guard off the same rewrite goes through
    [free] = Enrich(max_novel_ratio=None).run([pair(1, old)], make_ctx(tmp_path, "enrich", provider=provider_for(server.base_url)))
    assert free.answer.startswith("Microsoft") and free.original_answer == old


def test_failed_request_keeps_the_pair_with_the_reason(tmp_path, server):
    server.fail_next("400")
    ctx = make_ctx(tmp_path, "enrich", provider=provider_for(server.base_url, max_retries=0))
    good = "Chunks are blocks. They allow compression."
    out = Enrich().run([pair(1, "Chunks are stored separately. They can be compressed."), pair(2, good)], ctx)
    assert len(out) == 2
    failed = next(p for p in out if p.enrichment.get("rejected"))
    assert failed.enrichment["rejected"] == "llm_error:http_4xx" and failed.original_answer is None
    assert ctx.failures == {"enrich_http_4xx": 1}


def test_novel_words_and_diff_stats():
    assert novel_words("The chunks are compressed by Microsoft in 1987", "chunks are compressed") == [
        "microsoft", "1987"]
    stats = diff_stats("a b c", "a x c d")
    assert stats == {"similarity": round(2 * 2 / 7, 4), "words_added": 2, "words_removed": 1,
                     "chars_before": 5, "chars_after": 7}


def test_qa_recipe_generate_enrich_curate_export(tmp_path):
    """The qa recipe end to end on the fake server: enrich rewrites what curate rates and export writes."""

    def responder(request: dict) -> str:
        name = schema_name(request)
        if name == "QAOutForm":
            passage = re.search(r'"""\n(.*?)\n"""', user_text(request), re.S).group(1)
            first, rest = passage.split(". ", 1)
            words = re.findall(r"[a-z]{5,}", passage.lower())
            return json.dumps({"question": f"How does {words[0]} relate to {words[1]}?", "answer": f"{first}. {rest}"})
        if request.get("max_tokens") == 1:  # the probability judge's yes/no checks
            return "Yes"
        if name == "EnrichOut":
            return rewriter(request)
        if name == "JudgeOut":
            return json.dumps({"reasoning": "clear", "clarity": 3, "accuracy": 3, "usefulness": 1, "difficulty": 1})
        raise AssertionError(name)

    from synthrun.api import run_recipe

    db = write_chunk_db(tmp_path / "docs.lancedb")
    with FakeOpenAIServer(responder=responder) as srv:
        common = [f"load.db={db}", "load.max_chunks=2", "provider=vllm", "provider.model=hosted_vllm/test",
                  f"provider.api_base={srv.base_url}", "provider.max_retries=1", "progress=false"]
        run_dir = run_recipe("qa", [*common, "run_name=on"], output_root=tmp_path / "out")
        assert len(srv.requests) == 8  # 2 generate + 2 enrich + 2 x 2 judge checks
        skipped = run_recipe("qa", [*common, "enrich.enabled=false", "run_name=off"], output_root=tmp_path / "out")

    enriched = read_jsonl(run_dir / "03_enrich" / "data.jsonl")
    assert [e["enrichment"]["changed"] for e in enriched] == [True, True]
    exported = read_jsonl(run_dir / "06_export" / "dataset" / "train.chatml.jsonl")
    assert [row["messages"][-1]["content"] for row in exported] == [e["answer"] for e in enriched]
    assert all(row["messages"][-1]["content"].startswith("In short: ") for row in exported)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [s["name"] for s in metrics["stages"]] == ["load", "generate", "enrich", "filter", "curate", "export"]
    assert metrics["rows_final"] == 2 and metrics["mean_rating"] > 5

    plain = read_jsonl(skipped / "06_export" / "dataset" / "train.chatml.jsonl")
    assert len(plain) == 2
    assert not any(row["messages"][-1]["content"].startswith("In short") for row in plain)
    stages = {s["name"]: s for s in json.loads((skipped / "metrics.json").read_text())["stages"]}
    assert stages["enrich"]["enabled"] is False and stages["enrich"]["llm_calls"] == 0
