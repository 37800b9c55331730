"""The writer's checks on what the model wrote (``check_text``), on a real server on 127.0.0.1 and real h5py calls."""

from __future__ import annotations

import json
import re

import pytest

from synthrun.records import ToolStep
from synthrun.scoring.tool_gates import ToolGateConfig, check_all
from synthrun.stages.tool_generate import GenerateToolExamples
from synthrun.stages.tool_parse import ParseTools
from synthrun.stages.tool_writer import request_names, result_values
from synthrun.tools.loading import tools_from_dicts
from tests.tools.fake_llm import fake_llm, make_ctx


@pytest.fixture(scope="module")
def hdf5_records(tmp_path_factory):
    return ParseTools(spec="recipes/data/hdf5_tools.json", write_graph=False).run(
        [], make_ctx(tmp_path_factory.mktemp("p"), {}, "parse"))


def _user(request: dict) -> str:
    return request["messages"][-1]["content"]


def naming_request(request: dict) -> str:
    """A request that names what the prompt's last "Names:" line lists (the calls' literal values)."""
    names = re.findall(r"^Names: (.*)$", _user(request), flags=re.M)[-1]
    return f"What does the data say about {names}?" if names != "(none)" else "What does the data say?"


def quoting_answer(request: dict) -> str:
    values = re.findall(r"^Values of the last result: (.*)$", _user(request), flags=re.M)[-1]
    return f"The result is {re.sub(r'[^A-Za-z0-9 _./,()%:-]', ' ', values)}."


def test_request_names_and_result_values():
    steps = [ToolStep(step=1, tool="open_file", args={"file_path": "climate.h5"}),
             ToolStep(step=2, tool="get_by_path", args={"parent": "$step1", "path": "/measurements/pressure"}),
             ToolStep(step=3, tool="hdf5_batch_read", args={"file_path": "climate.h5", "dataset_paths": ["/a", "$step2"],
                                                             "max_elements": 5, "flag": True})]
    assert request_names(steps) == ["climate.h5", "/measurements/pressure", "/a", "5"], "literals, once, no refs"
    assert result_values([4, 3]) == "[4, 3]"
    assert result_values({"name": "units", "value": "degC", "shape": [2]}) == "name=units, value=degC, shape=2"
    assert result_values(None) == ""


def test_texts_the_filter_would_drop_are_re_asked_and_the_prompts_carry_names_and_values(tmp_path, hdf5_records):
    fields = {"request": naming_request, "answer": quoting_answer}
    with fake_llm(fields) as (server, provider):
        out = GenerateToolExamples(n_examples=3, mode="multi", max_steps=3, oversample=1.0, check_text=True).run(
            hdf5_records, make_ctx(tmp_path, provider, "g"))
        prompts = [_user(r) for r in server.requests]
    # "What does the data say about X?" names everything but no task: best_tool may still drop some
    assert out, "requests naming the calls' values pass"
    assert any("Names: climate.h5" in p or "Names: experiment.h5" in p for p in prompts)
    assert any(re.search(r"^Values of the last result: \S", p, flags=re.M) and "(none)" not in p for p in prompts)
    for ex in out:
        assert all(n in ex.instruction for n in request_names(ex.reasoning_path)), ex.instruction
        assert ex.final_answer.startswith("The result is ")


def test_a_request_failing_the_checks_after_its_retries_drops_the_plan(tmp_path, hdf5_records):
    from synthrun.io import read_jsonl

    vague = {"request": "What can you tell me about the data?"}  # names nothing: specific_request / grounded fail
    with fake_llm(vague) as (server, provider):
        ctx = make_ctx(tmp_path, provider, "g")
        out = GenerateToolExamples(n_examples=2, mode="multi", max_steps=3, oversample=1.0, max_rounds=1,
                                   text_retries=1, check_text=True).run(hdf5_records, ctx)
        asks = sum("The last call answers the user" in json.dumps(r["messages"]) for r in server.requests)
    assert out == [] and asks == 4, "each plan asked twice (one retry), then dropped"
    reasons = {row["reason"] for row in read_jsonl(ctx.stage_dir / "dropped.jsonl")}
    assert reasons and all(r.startswith("instruction_check_") for r in reasons), reasons
    # without check_text the same requests pass generation; the filter's checks drop them later
    with fake_llm(vague) as (_, provider):
        kept = GenerateToolExamples(n_examples=2, mode="multi", max_steps=3, oversample=1.0, max_rounds=1,
                                    text_retries=1).run(hdf5_records, make_ctx(tmp_path / "b", provider, "g"))
    assert len(kept) == 2
    for ex in kept:
        failed = check_all(ex, tools_from_dicts(ex.tools), ToolGateConfig(), ["grounded", "specific_request"])
        assert any(failed.values())


def test_repair_completes_texts_that_leave_out_values_and_says_so(tmp_path, hdf5_records):
    # a request that asks for something but names none of the calls' values; an answer quoting no value
    texts = {"request": "Please look this up in the data for me.", "answer": "I looked it up for you just now."}
    with fake_llm(texts) as (_, provider):
        out = GenerateToolExamples(n_examples=3, mode="multi", max_steps=3, oversample=1.0, max_rounds=1,
                                   text_retries=1, check_text=True, repair=True).run(
            hdf5_records, make_ctx(tmp_path, provider, "g"))
    assert out, "repaired requests pass the request checks"
    for ex in out:
        names = request_names(ex.reasoning_path)
        assert ex.instruction.startswith("Please look this up in the data for me. (") and ex.instruction.endswith(")")
        assert all(n.lower() in ex.instruction.lower() for n in names), (names, ex.instruction)
        if "answer" in ex.metadata["repaired"]:  # the answer stated no value of the last result
            assert ex.final_answer.startswith("I looked it up for you just now. Result: ")
        else:
            assert ex.final_answer == texts["answer"]
        assert ex.metadata["repaired"] in (["request"], ["request", "answer"])
        failed = check_all(ex, tools_from_dicts(ex.tools), ToolGateConfig(allow_failed_steps=True),
                           ["grounded", "specific_request"])  # answer_uses_results needs the execute stage's results
        assert not any(failed.values()), failed
    assert any("answer" in ex.metadata["repaired"] for ex in out), "some last result has values to state"


def test_repair_leaves_a_request_naming_other_files_alone(tmp_path, hdf5_records):
    from synthrun.io import read_jsonl

    copied = {"request": "What is the shape of the /site/heights dataset in survey.h5?"}  # the prompt's example
    with fake_llm(copied) as (_, provider):
        ctx = make_ctx(tmp_path, provider, "g")
        out = GenerateToolExamples(n_examples=2, mode="multi", max_steps=3, oversample=1.0, max_rounds=1,
                                   text_retries=0, check_text=True, repair=True).run(hdf5_records, ctx)
    assert out == [], "appending the right names to a request about another file would contradict it"
    assert {row["reason"] for row in read_jsonl(ctx.stage_dir / "dropped.jsonl")} <= {
        "instruction_check_grounded", "instruction_check_best_tool", "instruction_check_specific_request"}
