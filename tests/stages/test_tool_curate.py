"""tool_curate: turn-level filtering (truncate or drop at the first bad step) and rating threshold."""

from __future__ import annotations

import json

from synthrun.stages.tool_curate import CurateTools
from synthrun.stages.tool_execute import ExecuteTools
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import fake_llm, last_user, make_ctx


def executed(tmp_path, *examples):
    return ExecuteTools().run(list(examples), make_ctx(tmp_path, {}, "execute"))


def test_truncate_at_first_bad_step(tmp_path):
    bad_third = example([*GOOD[:2], ("read_attribute", {"handle": "$step2", "name": "nope"})], ex_id="t")
    bad_first = example([("open_file", {"file_path": "missing.h5"}), GOOD[1]], ex_id="d")
    good = example(GOOD, ex_id="g")
    records = executed(tmp_path, bad_third, bad_first, good)
    with fake_llm({"clarity": 3, "accuracy": 3, "usefulness": 2, "difficulty": 1}) as (server, provider):
        ctx = make_ctx(tmp_path, provider, "curate")
        kept = CurateTools(on_bad_step="truncate", threshold=5, scoring="sampled", recheck=False).run(records, ctx)
    by_id = {e.id: e for e in kept}
    assert set(by_id) == {"t", "g"}
    t = by_id["t"]
    assert [s.tool for s in t.reasoning_path] == ["open_file", "get_by_path"]
    assert t.metadata["curation"]["action"] == "truncated"
    assert "execution_failed: step 3 read_attribute" in t.metadata["curation"]["reason"]
    assert t.final_answer == "The results show the requested values.", "answer re-written from the kept results"
    assert by_id["g"].metadata["curation"] == {"action": "kept"} and by_id["g"].final_answer == "The units are degC."
    assert by_id["g"].rating.total == 9
    dropped = [json.loads(line) for line in (tmp_path / "curate" / "dropped.jsonl").read_text().splitlines()]
    assert [d["id"] for d in dropped] == ["d"] and "step 1 open_file" in dropped[0]["detail"]
    assert dropped[0]["reason"] == "bad_step_dropped" and dropped[0]["record"]["id"] == "d"
    assert ctx.failures["bad_step_truncated"] == 1 and ctx.failures["bad_step_dropped"] == 1


def test_truncated_example_is_checked_again_and_dropped_when_its_calls_no_longer_fit(tmp_path):
    # the request asks for an attribute; cut before read_attribute, get_by_path no longer fits it
    bad_third = example([*GOOD[:2], ("read_attribute", {"handle": "$step2", "name": "nope"})], ex_id="t")
    records = executed(tmp_path, bad_third, example(GOOD, ex_id="g"))
    with fake_llm({"clarity": 3, "accuracy": 3, "usefulness": 2, "difficulty": 1}) as (server, provider):
        ctx = make_ctx(tmp_path, provider, "curate")
        kept = CurateTools(on_bad_step="truncate", threshold=5, scoring="sampled").run(records, ctx)
    assert [e.id for e in kept] == ["g"]
    (row,) = [json.loads(line) for line in (tmp_path / "curate" / "dropped.jsonl").read_text().splitlines()]
    assert row["id"] == "t" and row["reason"] == "check_best_tool"
    assert row["detail"].startswith("after truncation: tool_not_best_match: step 2 calls get_by_path")


def test_drop_mode_and_threshold(tmp_path):
    bad = example([*GOOD[:2], ("read_attribute", {"handle": "$step2", "name": "nope"})], ex_id="bad")
    low = example(GOOD, instruction="Tell me something vague.", ex_id="low")
    good = example(GOOD, ex_id="good")
    records = executed(tmp_path, bad, low, good)

    def clarity(request):
        return 0 if "vague" in last_user(request) else 3

    with fake_llm({"clarity": clarity, "accuracy": 2, "usefulness": 1, "difficulty": 0}) as (_, provider):
        ctx = make_ctx(tmp_path, provider, "curate")
        kept = CurateTools(on_bad_step="drop", threshold=4, scoring="sampled").run(records, ctx)
    assert [e.id for e in kept] == ["good"]
    assert ctx.failures == {"bad_step_dropped": 1, "below_threshold": 1}
    reasons = (tmp_path / "curate" / "dropped.jsonl").read_text()
    assert "rating 3 below threshold 4" in reasons


def test_unexecuted_examples_are_not_curated_blindly(tmp_path):
    ctx = make_ctx(tmp_path, {}, "curate")
    assert CurateTools(rate=False).run([example(GOOD)], ctx) == []
    assert ctx.failures == {"not_executed": 1}


def test_probability_judge_reads_p_yes_from_http_logprobs(tmp_path):
    import math

    from tests.llm.fake_openai_server import FakeOpenAIServer, provider_for

    good = example(GOOD, ex_id="good")
    wrong = example([*GOOD[:2], ("get_dtype", {"dataset": "$step2"})], ex_id="wrong", answer="It stores float32.")
    records = executed(tmp_path, good, wrong)

    def logprobs(request, content):
        text = last_user(request)
        p = 0.2 if "with the tool get_dtype" in text else 0.9
        return [("yes", math.log(p)), ("no", math.log(1 - p))]

    with FakeOpenAIServer(responder=lambda r: "yes", logprob_responder=logprobs) as server:
        ctx = make_ctx(tmp_path, provider_for(server.base_url, concurrency=2), "curate")
        kept = CurateTools(threshold=8).run(records, ctx)
    assert [e.id for e in kept] == ["good"]
    rating = kept[0].rating
    assert rating.method == "logprob" and rating.total == 9.0
    assert rating.scores == {"right_tool": 0.9, "args_match": 0.9, "answer_follows": 0.9}
    bodies = [r for r in server.requests if "right tool" in last_user(r)]
    assert len(bodies) == 2 and all(b["logprobs"] is True and b["max_tokens"] == 1 for b in bodies)
    dropped = [json.loads(line) for line in (tmp_path / "curate" / "dropped.jsonl").read_text().splitlines()]
    assert dropped[0]["id"] == "wrong" and dropped[0]["record"]["rating"]["scores"]["right_tool"] == 0.2
    assert dropped[0]["reason"] == "below_threshold" and "below threshold 8" in dropped[0]["detail"]


def test_gate_failed_examples_are_rated_zero_without_a_call(tmp_path):
    from synthrun.stages.tool_filter import FilterTools

    vague = example(GOOD, instruction="Tell me something about this file.", ex_id="vague")
    records = FilterTools(mode="mark").run(executed(tmp_path, vague), make_ctx(tmp_path, {}, "filter"))
    ctx = make_ctx(tmp_path, {}, "curate")
    kept = CurateTools(threshold=None).run(records, ctx)
    assert kept[0].rating.total == 0 and kept[0].rating.method == "gate"
    assert ctx.stats.calls == 0
    assert CurateTools(threshold=3).run(records, make_ctx(tmp_path, {}, "curate2")) == []
