"""The probability judge against a real OpenAI-compatible server on 127.0.0.1 that returns logprobs."""

from __future__ import annotations

import math
import re

import pytest

from synthrun.io import read_jsonl
from synthrun.records import Provenance, QAPair, Record
from synthrun.scoring.gates import overlap
from synthrun.stages.judge import Check, Judge, combine
from tests.fixtures import FakeLLM, make_ctx
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

PASSAGE = "The chunk cache of an open dataset is 1 MiB by default; rdcc_nbytes raises it."


def sharp_judge(body: dict, content: str) -> list[tuple[str, float]]:
    """A judge that reads the prompt: yes when the answer (or question) is grounded in the passage."""
    text = body["messages"][-1]["content"]
    passage = re.search(r'"""\n(.*?)\n"""', text, re.S).group(1)
    answer = re.search(r"^Answer: (.*)$", text, re.M)
    question = re.search(r"^Question: (.*)$", text, re.M).group(1)
    p_yes = 0.9 if overlap(answer.group(1) if answer else question, passage) >= 0.6 else 0.15
    return [("Yes", math.log(p_yes)), ("No", math.log(1 - p_yes))]


def yes_no_content(body: dict) -> str:
    return "Yes"


def pair(pid: str, question: str, answer: str, **extra) -> Record:
    return Record.model_validate(QAPair(id=pid, question=question, answer=answer,
                                        provenance=Provenance(source_text=PASSAGE), **extra).model_dump())


GOOD = pair("good", "How large is the chunk cache by default?", "The chunk cache is 1 MiB by default.")
BAD = pair("bad", "How large is the chunk cache by default?", "Jupiter is the largest planet.")


def test_logprob_path_scores_from_the_distribution_and_names_the_method(tmp_path):
    with FakeOpenAIServer(responder=yes_no_content, logprob_responder=sharp_judge) as server:
        out = Judge(threshold=None).run([GOOD, BAD], make_ctx(tmp_path, "judge", provider=provider_for(server.base_url)))
        bodies = list(server.requests)
    assert all(b["logprobs"] is True and b["top_logprobs"] == 20 and b["max_tokens"] == 1 for b in bodies)
    assert len(bodies) == 4  # two checks per pair, one token each
    good, bad = out
    assert good.rating.method == bad.rating.method == "logprob"
    assert good.rating.scores["supported"] == pytest.approx(0.9)
    assert bad.rating.scores["supported"] == pytest.approx(0.15)
    # answerable reads the question only: the same question, the same score
    assert good.rating.scores["answerable"] == bad.rating.scores["answerable"] == pytest.approx(0.9)
    assert good.rating.total == pytest.approx(10 * (0.9 + 0.9) / 2)
    assert bad.rating.total == pytest.approx(10 * (0.15 + 0.9) / 2)
    assert 0 <= bad.rating.clarity <= 3 and 0 <= bad.rating.accuracy <= 3


def test_provider_without_logprobs_falls_back_to_the_sampled_token(tmp_path):
    with FakeOpenAIServer(responder=lambda body: "No", logprobs=False) as server:
        out = Judge(threshold=None).run([GOOD], make_ctx(tmp_path, "judge", provider=provider_for(server.base_url)))
    assert out[0].rating.method == "sampled"
    assert out[0].rating.total == 0.0 and out[0].rating.scores == {"supported": 0.0, "answerable": 0.0}


def test_threshold_drops_below_it_into_dropped_jsonl(tmp_path):
    with FakeOpenAIServer(responder=yes_no_content, logprob_responder=sharp_judge) as server:
        ctx = make_ctx(tmp_path, "judge", provider=provider_for(server.base_url))
        out = Judge(threshold=6).run([GOOD, BAD], ctx)
    assert [r.id for r in out] == ["good"]
    dropped = read_jsonl(ctx.stage_dir / "dropped.jsonl")
    assert [(d["id"], d["stage"], d["reason"]) for d in dropped] == [("bad", "judge", "below_threshold")]
    assert dropped[0]["record"]["rating"]["total"] < 6 and "5.25 < 6" in dropped[0]["detail"]
    assert ctx.failures == {"below_threshold": 1}


def test_gate_failed_records_are_rated_zero_without_a_call(tmp_path):
    failed = pair("f", "What is this?", "A cache.", gate_failed="vague_question")
    with FakeOpenAIServer(responder=yes_no_content, logprob_responder=sharp_judge) as server:
        out = Judge(threshold=None).run([failed, GOOD], make_ctx(tmp_path, "judge", provider=provider_for(server.base_url)))
        assert len(server.requests) == 2  # only GOOD's two checks
    assert out[0].rating.total == 0 and out[0].rating.method == "gate"
    assert "vague_question" in out[0].rating.reasoning


def test_geval_score_check_and_combinations():
    checks = [Check(name="a", prompt="x"), Check(name="b", prompt="y", weight=3)]
    assert combine({"a": 1.0, "b": 0.0}, checks, "mean") == pytest.approx(0.25)
    assert combine({"a": 1.0, "b": 0.5}, checks, "min") == 0.5
    assert combine({"a": None, "b": 0.5}, checks, "mean") == 0.5
    assert combine({"a": None, "b": None}, checks, "mean") is None


def test_score_check_reads_expected_digit(tmp_path):
    def digits(body, content):
        return [("4", math.log(0.5)), ("2", math.log(0.5))]

    with FakeOpenAIServer(responder=lambda body: "4", logprob_responder=digits) as server:
        judge = Judge(threshold=None, checks=[Check(name="quality", prompt="judge_quality", kind="score")])
        out = judge.run([GOOD], make_ctx(tmp_path, "judge", provider=provider_for(server.base_url)))
    assert out[0].rating.scores == {"quality": pytest.approx(0.5)}  # expected 3 on 1-5
    assert out[0].rating.total == pytest.approx(5.0)


def test_failed_checks_count_as_llm_errors_and_an_unread_pair_is_dropped(tmp_path):
    llm = FakeLLM(lambda request: "Yes")  # in memory: no logprobs, so the sampled token is read
    llm.fail_next("timeout", "timeout")  # both checks of the first pair
    ctx = make_ctx(tmp_path, "judge", llm=llm)
    out = Judge(threshold=None).run([GOOD, BAD], ctx)
    assert [(r.id, r.rating.method, r.rating.total) for r in out] == [("bad", "sampled", 10.0)]
    assert ctx.failures == {"llm_timeout": 2, "not_rated": 1}
    assert [(d["id"], d["reason"]) for d in read_jsonl(ctx.stage_dir / "dropped.jsonl")] == [("good", "not_rated")]
    assert all(r.params == {"max_tokens": 1, "temperature": 0.0, "logprobs": True, "top_logprobs": 20}
               for r in llm.requests)
    assert ctx.summary["methods"] == {"none": 1, "sampled": 1} and ctx.summary["kept"] == 1
