"""Curate: LLM-judge ratings of QA and CoT records, shape kept, topic check, threshold filter (fake server)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from synthrun.context import StageContext
from synthrun.io import read_jsonl
from synthrun.records import CoTExample, Provenance, QAPair, Record
from synthrun.stage import StageError
from synthrun.stages.curate import Curate, as_rated
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


def make_ctx(tmp_path: Path, server, **provider) -> StageContext:
    stage_dir = tmp_path / "run" / "03_curate"
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(name="curate", run_id="run1", run_dir=tmp_path / "run", stage_dir=stage_dir,
                        provider=provider_for(server.base_url, **provider), show_progress=False)


def as_runner_gives(*records) -> list[Record]:
    """Curate's input type is Record: the runner hands it plain records with extra fields."""
    return [Record.model_validate(r.model_dump()) for r in records]


def qa(q: str, **extra) -> QAPair:
    return QAPair(id=q, question=q, answer=f"answer to {q}", question_type="factual",
                  provenance=Provenance(chunk_id="c", source_text="the source passage"), **extra)


def cot() -> CoTExample:
    return CoTExample(id="Q-cot", question="Q-cot", reasoning=["first step", "second step"], answer="42")


def test_rates_qa_and_cot_and_keeps_their_shape(tmp_path, server):
    ctx = make_ctx(tmp_path, server)
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

    rejected = read_jsonl(ctx.stage_dir / "rejected.jsonl")
    assert [(r["id"], r["rejected_reason"], r["rating"]["total"]) for r in rejected] == [("Q-low", "rating 2 < 6", 2)]
    assert ctx.failures == {"below_threshold": 1}
    assert ctx.summary == {"threshold": 6, "kept": 3, "rejected": 1}

    texts = {re.search(r"Question: (\S+)", user_text(r)).group(1): user_text(r) for r in server.requests}
    assert "Reasoning steps:\n1. first step\n2. second step" in texts["Q-cot"]
    assert "the source passage" in texts["Q-high"] and "Reasoning steps" not in texts["Q-high"]
    assert all(schema_name(r) == "JudgeOut" and r["temperature"] == 0.0 for r in server.requests)


def test_topic_relevance_drops_off_topic(tmp_path, server):
    ctx = make_ctx(tmp_path, server)
    kept = Curate(threshold=0, topic="HDF5", show_source=False).run(as_runner_gives(qa("Q-high"), qa("Q-offtopic")),
                                                                    ctx)
    assert [(r.id, r.rating.topic_relevant) for r in kept] == [("Q-high", True)]
    rejected = read_jsonl(ctx.stage_dir / "rejected.jsonl")
    assert [(r["id"], r["rejected_reason"]) for r in rejected] == [("Q-offtopic", "off topic")]
    assert ctx.failures == {"off_topic": 1}
    assert all('about the topic "HDF5"' in user_text(r) and "the source passage" not in user_text(r)
               for r in server.requests)
    assert {schema_name(r) for r in server.requests} == {"JudgeTopicOut"}


def test_a_record_naming_the_topic_is_on_topic_whatever_the_judge_says(tmp_path, server):
    ctx = make_ctx(tmp_path, server)
    named = qa("Q-offtopic").model_copy(update={"id": "named", "answer": "It is stored in an hdf5 file."})
    near_miss = qa("Q-offtopic").model_copy(update={"id": "near", "answer": "See the HDF50 archive."})
    kept = Curate(threshold=0, topic="HDF5").run(as_runner_gives(named, near_miss), ctx)
    assert [(r.id, r.rating.topic_relevant) for r in kept] == [("named", True)]
    assert ctx.failures == {"off_topic": 1} and len(server.requests) == 2  # both still rated


def test_failed_rating_is_rejected_as_not_rated(tmp_path, server):
    server.fail_next("400")
    ctx = make_ctx(tmp_path, server, max_retries=0, concurrency=1)
    kept = Curate(threshold=0, keep_rejected=False).run(as_runner_gives(qa("Q-high"), qa("Q-mid")), ctx)
    assert [r.id for r in kept] == ["Q-mid"]
    assert ctx.failures == {"rating_http_4xx": 1}
    assert not (ctx.stage_dir / "rejected.jsonl").exists()


def test_record_without_question_is_a_clear_error(tmp_path, server):
    with pytest.raises(StageError, match="record x is neither a QA pair nor a CoT example"):
        as_rated(Record(id="x", instruction="do"))
