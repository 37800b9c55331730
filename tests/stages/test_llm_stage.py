"""LLMStage: the shared loop (per-item prompt/schema/params, fan-out, drops, llm_<error>) on the in-memory fake LLM."""

from __future__ import annotations

import json
from typing import Any, ClassVar

from pydantic import BaseModel

from synthrun.io import read_jsonl
from synthrun.llm.types import LLMProtocol, LLMRequest, LLMResult
from synthrun.prompts import PromptLibrary
from synthrun.records import QAPair, Record
from synthrun.stages.llm_stage import Drop, LLMStage, Outcome
from tests.fixtures import FakeLLM, make_ctx


class Variants(BaseModel):
    questions: list[str]


class Fanout(LLMStage):
    """Asks for question variants of each pair; a pair whose variants all lack "?" is dropped."""

    input_type: ClassVar[type[Record]] = QAPair
    output_type: ClassVar[type[Record]] = QAPair
    answer_schema: ClassVar[type[BaseModel] | None] = Variants
    prompt: str = "variants"

    def to_vars(self, pair: QAPair) -> dict[str, Any]:
        return {"question": pair.question}

    def prompt_for(self, pair: QAPair) -> str:
        return "variants_free" if pair.id == "free" else self.prompt

    def schema_for(self, pair: QAPair) -> type[BaseModel] | None:
        return None if pair.id == "free" else Variants

    def params(self, pair: QAPair | None) -> dict[str, Any]:
        return {**super().params(pair), "seed": len(pair.id) if pair else 0}

    def from_answer(self, pair: QAPair, answer: Any, result: LLMResult) -> Outcome:
        if isinstance(answer, str):
            return pair.model_copy(update={"answer": answer})
        kept = [q for q in answer.questions if q.endswith("?")]
        if not kept:
            return Drop(pair, "no_question", f"{len(answer.questions)} variants, none a question")
        return [pair.model_copy(update={"id": f"{pair.id}-{i}", "question": q}) for i, q in enumerate(kept)]


def respond(request: LLMRequest) -> str:
    question = request.messages[-1]["content"]
    if request.schema is None:
        return f"free text for {question}"
    if "never" in question:
        return json.dumps({"questions": ["no question here"]})
    return json.dumps({"questions": [f"{question} one?", f"{question} two?"]})


def prompts(tmp_path) -> PromptLibrary:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "variants.yaml").write_text("system: Write variants.\nuser: '{{ question }}'\n")
    (folder / "variants_free.yaml").write_text("system: Write freely.\nuser: '{{ question }}'\n")
    return PromptLibrary(extra_dirs=[folder])


def pair(pid: str, question: str) -> QAPair:
    return QAPair(id=pid, question=question, answer="a")


def test_loop_fans_out_drops_and_counts_failures(tmp_path):
    llm = FakeLLM(respond)
    ctx = make_ctx(tmp_path, "variants", llm=llm, prompts=prompts(tmp_path))
    llm.fail_next("", "timeout")  # "" = answer normally; the second request times out
    out = Fanout(temperature=0.1).run([pair("p1", "What"), pair("p2", "Why"), pair("p3", "never"),
                                       pair("free", "Tell")], ctx)
    assert [(r.id, r.question) for r in out] == [("p1-0", "What one?"), ("p1-1", "What two?"), ("free", "Tell")]
    assert out[2].answer == "free text for Tell"
    assert ctx.failures == {"llm_timeout": 1, "no_question": 1}
    assert ctx.summary == {"kept": 3, "dropped": 2}
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(d["id"], d["stage"], d["reason"]) for d in dropped] == [("p2", "variants", "llm_timeout"),
                                                                    ("p3", "variants", "no_question")]
    assert dropped[1]["detail"] == "1 variants, none a question" and dropped[1]["record"]["question"] == "never"
    sent = llm.requests
    assert [r.schema for r in sent] == [Variants, Variants, Variants, None]
    assert sent[3].messages[0]["content"] == "Write freely." and sent[0].messages[0]["content"] == "Write variants."
    assert [r.params for r in sent[:2]] == [{"max_tokens": 512, "temperature": 0.1, "seed": 2}] * 2
    assert llm.descs == ["variants"] and ctx.stats.calls == 4


def test_fake_llm_is_the_typed_protocol_and_reports_schema_failures(tmp_path):
    llm: LLMProtocol = FakeLLM(lambda request: "not json")
    result = llm.complete([{"role": "user", "content": "hi"}], schema=Variants, max_tokens=5)
    assert (result.ok, result.error, result.text) == (False, "schema", "not json")
    assert llm.stats.failures == {"schema": 1}
    ctx = make_ctx(tmp_path, "variants", llm=llm, prompts=prompts(tmp_path))
    assert Fanout().run([pair("p1", "What")], ctx) == [] and ctx.failures == {"llm_schema": 1}
