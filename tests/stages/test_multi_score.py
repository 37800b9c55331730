"""MultiScore: DEITA complexity/quality/diversity scores, heuristic and LLM, with three strategies."""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from synthrun.embeddings import DEFAULT_MODEL, load_model, resolve_model
from synthrun.records import CoTExample, Record
from synthrun.stages.load_records import LoadRecords
from synthrun.stages.multi_score import MultiScore
from tests.fixtures import make_ctx
from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

os.environ.setdefault("HF_HUB_OFFLINE", "1")
EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "select" / "examples.jsonl"
TERSE = {"py-1-dup", "py-4", "bake-2-dup", "bake-3", "astro-3-para", "astro-4", "fin-4"}  # one-line answers


@pytest.fixture(scope="module")
def minilm():
    return load_model(resolve_model(DEFAULT_MODEL)[0])


def _examples(tmp_path):
    return LoadRecords(path=str(EXAMPLES)).run([], make_ctx(tmp_path, "score"))


def test_top_k_prefers_rich_multi_step_answers(minilm, tmp_path):
    records = _examples(tmp_path)
    ctx = make_ctx(tmp_path, "score")
    out = MultiScore(strategy="top_k", top_k=10, cache_dir=str(tmp_path / "emb")).run(records, ctx)
    kept = {r.id for r in out}
    assert len(out) == 10 and not kept & TERSE, kept & TERSE
    assert {"py-3", "bake-1", "astro-1", "fin-3"} <= kept, "numbered / multi-step answers are kept"
    worst_kept = min(r.multi_score["combined"] for r in out)
    everyone = MultiScore(threshold=0, cache_dir=str(tmp_path / "emb")).run(records, make_ctx(tmp_path, "score"))
    assert max(r.multi_score["combined"] for r in everyone if r.id in TERSE) < worst_kept
    assert ctx.failures == {"not_selected_multi_score": len(records) - 10}
    for r in out:
        s = r.multi_score
        assert set(s) == {"complexity", "quality", "diversity", "combined", "weights", "scorer"}
        assert s["weights"] == {"complexity": 0.4, "quality": 0.4, "diversity": 0.2} and s["scorer"] == "heuristic"
        assert all(0 <= s[p] <= 10 for p in ("complexity", "quality", "diversity"))
        expected = 0.4 * s["complexity"] + 0.4 * s["quality"] + 0.2 * s["diversity"]
        assert s["combined"] == pytest.approx(expected, abs=0.01) and s["combined"] >= worst_kept
    assert [r.id for r in out] == [r.id for r in records if r.id in kept], "input order kept"


def test_diversity_is_low_for_a_near_copy_of_a_better_example(minilm, tmp_path):
    records = _examples(tmp_path)
    out = MultiScore(strategy="threshold", threshold=0, cache_dir=str(tmp_path / "emb")).run(records, make_ctx(tmp_path, "score"))
    div = {r.id: r.multi_score["diversity"] for r in out}
    assert len(out) == len(records)
    assert div["py-1-dup"] < 1.0 < 6.0 < div["py-1"]
    assert div["bake-2-dup"] < 1.0 < 6.0 < div["bake-2"]
    assert div["astro-3-para"] < div["astro-3"]


def test_threshold_and_combined_strategies(minilm, tmp_path):
    records = _examples(tmp_path)
    ctx = make_ctx(tmp_path, "score")
    out = MultiScore(strategy="threshold", threshold=5.0, cache_dir=str(tmp_path / "emb")).run(records, ctx)
    assert out and all(r.multi_score["combined"] >= 5.0 for r in out)
    assert ctx.failures == {"below_multi_score": len(records) - len(out)}
    assert not {r.id for r in out} & TERSE
    both = MultiScore(strategy="combined", threshold=5.0, top_k=3, cache_dir=str(tmp_path / "emb")).run(
        records, make_ctx(tmp_path, "score"))
    best3 = sorted(out, key=lambda r: -r.multi_score["combined"])[:3]
    assert {r.id for r in both} == {r.id for r in best3}


def test_heuristic_rewards_reasoning_steps_and_penalises_refusals(tmp_path):
    q = "A train leaves at 9:40 and the trip takes 2 h 35 min. When does it arrive, and why?"
    bare = CoTExample(id="bare", question=q, reasoning=[], answer="12:15")
    steps = CoTExample(id="steps", question=q, answer="It arrives at 12:15.", reasoning=[
        "Start from 9:40.", "Adding 2 hours gives 11:40.", "Adding 35 minutes gives 12:15.",
        "Therefore the train arrives at 12:15."])
    refusal = CoTExample(id="refusal", question=q, reasoning=[],
                         answer="I'm sorry, but as an AI I cannot help with train timetables.")
    out = MultiScore(weights={"complexity": 0.5, "quality": 0.5, "diversity": 0}, threshold=0).run(
        [bare, steps, refusal], make_ctx(tmp_path, "score"))
    s = {r.id: r.multi_score for r in out}
    assert s["steps"]["complexity"] > s["bare"]["complexity"]
    assert s["steps"]["quality"] > 2 * s["bare"]["quality"]
    assert s["refusal"]["quality"] < s["steps"]["quality"] / 2
    assert all(v["diversity"] is None for v in s.values()), "weight 0: no embedding computed"


def test_parameters_are_checked():
    with pytest.raises(ValidationError, match="needs top_k"):
        MultiScore(strategy="top_k")
    with pytest.raises(ValidationError, match="unknown part"):
        MultiScore(weights={"complexity": 1, "novelty": 1})
    with pytest.raises(ValidationError, match="positive sum"):
        MultiScore(weights={"complexity": 0, "quality": 0, "diversity": 0})


def _judge(request: dict) -> str:
    """Score by the length of the response in the prompt; no JSON at all for one instruction."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    instruction = re.search(r'Instruction:\n"""\n(.*?)\n"""', user, re.S).group(1)
    response = re.search(r'Response:\n"""\n(.*?)\n"""', user, re.S).group(1)
    if "light-year" in instruction:
        return "I would rather not say."
    words = len(response.split())
    return json.dumps({"complexity": min(10, 2 + words // 10), "quality": 9 if words > 20 else 1})


def test_llm_scorer_through_the_real_client(tmp_path):
    records = [r for r in _examples(tmp_path) if r.id in {"py-3", "py-4", "astro-4", "fin-1"}]
    with FakeOpenAIServer(responder=_judge) as server:
        ctx = make_ctx(tmp_path, "score", provider=provider_for(server.base_url, max_retries=1))
        out = MultiScore(scorer="llm", strategy="threshold", threshold=0,
                         weights={"complexity": 0.5, "quality": 0.5, "diversity": 0}).run(records, ctx)
        assert len(server.requests) >= 4
        sent = server.requests[0]
        assert sent["response_format"]["type"] == "json_schema"
        assert "complexity" in json.dumps(sent["response_format"]) and sent["temperature"] == 0.0
    s = {r.id: r.multi_score for r in out}
    assert s["py-3"]["quality"] == 9 and s["py-4"]["quality"] == 1 and s["fin-1"]["quality"] == 9
    assert s["py-3"]["scorer"] == "llm:openai/fake-model"
    assert s["astro-4"]["scorer"] == "heuristic-fallback"
    assert s["astro-4"]["quality"] < 3
    assert any(k.startswith("llm_") for k in ctx.failures)
    assert s["py-3"]["combined"] == pytest.approx(0.5 * s["py-3"]["complexity"] + 4.5)


def test_records_without_text_score_zero_quality(tmp_path):
    out = MultiScore(threshold=0, weights={"quality": 1}).run([Record(id="x")], make_ctx(tmp_path, "score"))
    assert out[0].multi_score["quality"] == 0.0 and np.isfinite(out[0].multi_score["combined"])
