"""Curate: LLM-judge ratings of QA and CoT records, shape kept, topic check, threshold filter (fake server)."""

from __future__ import annotations

import json
import re

import pytest

from synthrun.io import read_jsonl
from synthrun.records import CoTExample, Provenance, QAPair, Record, as_rated
from synthrun.stage import StageError
from synthrun.stages.curate import Curate
from tests.fixtures import FakeLLM, from_server_responder, make_ctx
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

# question -> (clarity, accuracy, usefulness, difficulty)
SCORES = {"Q-high": (3, 3, 2, 2), "Q-mid": (2, 2, 1, 1), "Q-low": (1, 1, 0, 0), "Q-cot": (3, 2, 2, 1),
          "Q-offtopic": (3, 3, 2, 2)}


def schema_name(request: dict) -> str:
    return ((request.get("response_format") or {}).get("json_schema") or {}).get("name", "")


def user_text(request: dict) -> str:
    return next(m["content"] for m in reversed(request["messages"]) if m["role"] == "user")


def judge(request: dict) -> str:
    text = user_text(request)
    question = re.search(r"Question: (\S+)", text).group(1)
    c, a, u, d = SCORES[question]
    out = {"reasoning": f"judged {question}", "clarity": c, "accuracy": a, "usefulness": u, "difficulty": d}
    if schema_name(request) == "JudgeTopicOut":
        out["topic_relevant"] = question != "Q-offtopic"
    return json.dumps(out)


@pytest.fixture
def server():
    with FakeOpenAIServer(responder=judge) as srv:
        yield srv


def as_runner_gives(*records) -> list[Record]:
    """Curate's input type is Record: the runner hands it plain records with extra fields."""
    return [Record.model_validate(r.model_dump()) for r in records]


def qa(q: str, **extra) -> QAPair:
    return QAPair(id=q, question=q, answer=f"answer to {q}", question_type="factual",
                  provenance=Provenance(chunk_id="c", source_text="the source passage"), **extra)


def cot() -> CoTExample:
    return CoTExample(id="Q-cot", question="Q-cot", reasoning=["first step", "second step"], answer="42")


def test_rates_qa_and_cot_and_keeps_their_shape(tmp_path, server):
    ctx = make_ctx(tmp_path, "curate", provider=provider_for(server.base_url))
    kept = Curate(threshold=6).run(as_runner_gives(qa("Q-high", enrichment={"changed": True}), cot(),
                                                   qa("Q-mid"), qa("Q-low")), ctx)
    assert [r.id for r in kept] == ["Q-high", "Q-cot", "Q-mid"]
    high, c, mid = kept
    assert isinstance(high, QAPair) and isinstance(c, CoTExample) and isinstance(mid, QAPair)
    assert c.reasoning == ["first step", "second step"] and c.answer == "42"
    assert high.enrichment == {"changed": True} and high.question_type == "factual"  # extra fields survive
    assert (high.rating.clarity, high.rating.accuracy, high.rating.usefulness, high.rating.difficulty) == (3, 3, 2, 2)
    assert high.rating.total == 10 and c.rating.total == 8 and mid.rating.total == 6
    assert high.rating.reasoning == "judged Q-high" and high.rating.judge_model == "openai/fake-model"
    assert high.rating.topic_relevant is None

    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(r["id"], r["stage"], r["reason"], r["detail"], r["record"]["rating"]["total"]) for r in dropped] == [
        ("Q-low", "curate", "below_threshold", "rating 2 < 6", 2)]
    assert ctx.failures == {"below_threshold": 1}
    assert ctx.summary == {"threshold": 6, "kept": 3, "dropped": 1}

    texts = {re.search(r"Question: (\S+)", user_text(r)).group(1): user_text(r) for r in server.requests}
    assert "Reasoning steps:\n1. first step\n2. second step" in texts["Q-cot"]
    assert "the source passage" in texts["Q-high"] and "Reasoning steps" not in texts["Q-high"]
    assert all(schema_name(r) == "JudgeOut" and r["temperature"] == 0.0 for r in server.requests)


def test_topic_relevance_drops_off_topic(tmp_path, server):
    ctx = make_ctx(tmp_path, "curate", provider=provider_for(server.base_url))
    kept = Curate(threshold=0, topic="HDF5", show_source=False).run(as_runner_gives(qa("Q-high"), qa("Q-offtopic")),
                                                                    ctx)
    assert [(r.id, r.rating.topic_relevant) for r in kept] == [("Q-high", True)]
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(r["id"], r["reason"]) for r in dropped] == [("Q-offtopic", "off_topic")]
    assert ctx.failures == {"off_topic": 1}
    assert all('about the topic "HDF5"' in user_text(r) and "the source passage" not in user_text(r)
               for r in server.requests)
    assert {schema_name(r) for r in server.requests} == {"JudgeTopicOut"}


def test_a_record_naming_the_topic_is_on_topic_whatever_the_judge_says(tmp_path, server):
    ctx = make_ctx(tmp_path, "curate", provider=provider_for(server.base_url))
    named = qa("Q-offtopic").model_copy(update={"id": "named", "answer": "It is stored in an hdf5 file."})
    near_miss = qa("Q-offtopic").model_copy(update={"id": "near", "answer": "See the HDF50 archive."})
    kept = Curate(threshold=0, topic="HDF5").run(as_runner_gives(named, near_miss), ctx)
    assert [(r.id, r.rating.topic_relevant) for r in kept] == [("named", True)]
    assert ctx.failures == {"off_topic": 1} and len(server.requests) == 2  # both still rated


def test_failed_rating_is_dropped_as_llm_error(tmp_path, server):
    server.fail_next("400")
    ctx = make_ctx(tmp_path, "curate", provider=provider_for(server.base_url, max_retries=0, concurrency=1))
    kept = Curate(threshold=0).run(as_runner_gives(qa("Q-high"), qa("Q-mid")), ctx)
    assert [r.id for r in kept] == ["Q-mid"]
    assert ctx.failures == {"llm_http_4xx": 1}
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(r["id"], r["reason"], r["record"]["rating"]) for r in dropped] == [("Q-high", "llm_http_4xx", None)]
    assert not (ctx.stage_dir / "rejected.jsonl").exists()


def test_in_memory_judge_rates_without_a_server(tmp_path):
    llm = FakeLLM(from_server_responder(judge))
    llm.fail_next("timeout")
    ctx = make_ctx(tmp_path, "curate", llm=llm)
    kept = Curate(threshold=5).run(as_runner_gives(qa("Q-mid"), qa("Q-high"), qa("Q-low"), cot()), ctx)
    assert [(r.id, r.rating.total) for r in kept] == [("Q-high", 10), ("Q-cot", 8)]
    assert ctx.failures == {"llm_timeout": 1, "below_threshold": 1} and ctx.stats.calls == 4
    assert [r.schema.__name__ for r in llm.requests] == ["JudgeOut"] * 4
    assert all(r.params == {"max_tokens": 200, "temperature": 0.0} for r in llm.requests)
    assert kept[0].rating.judge_model == "fake/model"


def test_record_without_question_is_a_clear_error(tmp_path, server):
    with pytest.raises(StageError, match="record x is neither a QA pair nor a CoT example"):
        as_rated(Record(id="x", instruction="do"))
