"""tool_generate and tool_generate_chain against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun.stages.tool_generate import GenerateToolExamples
from synthrun.stages.tool_generate_chain import GenerateToolChains
from synthrun.stages.tool_parse import ParseTools
from synthrun.tools.checker import check_path
from synthrun.tools.graph import ToolGraph
from synthrun.tools.loading import load_spec, tools_from_dicts
from tests.tools.fake_llm import fake_llm, make_ctx

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


@pytest.fixture(scope="module")
def hdf5_records(tmp_path_factory):
    return ParseTools(spec="recipes/data/hdf5_tools.json", write_graph=False).run(
        [], make_ctx(tmp_path_factory.mktemp("p"), {}, "parse"))


def _assert_well_formed(ex, n_distractors=3):
    offered = tools_from_dicts(ex.tools)
    names = [t.name for t in offered]
    used = {s.tool for s in ex.reasoning_path}
    assert used <= set(names)
    needed = used if ex.metadata["selection"] == "guided" else set(ex.metadata["planned_chain"])
    assert len(set(names) - needed) == n_distractors, "distractors are offered beside the needed tools"
    assert check_path(ex.reasoning_path, offered) == [], "every generated call passes the format check"
    assert ex.instruction and ex.final_answer
    assert ex.metadata["difficulty"] in ("easy", "medium", "hard")
    assert [s.step for s in ex.reasoning_path] == list(range(1, len(ex.reasoning_path) + 1))
    assert all(s.result is None and s.ok is None for s in ex.reasoning_path), "results are stored by tool_execute"


def test_auto_mode_plans_by_complexity(tmp_path, hdf5_records):
    with fake_llm() as (server, provider):
        ctx = make_ctx(tmp_path, provider, "generate")
        out = GenerateToolExamples(n_examples=6, mode="auto", max_steps=4).run(hdf5_records, ctx)
    assert len(out) == 6 and ctx.summary["examples"] == 6
    graph = ToolGraph([r.tool for r in hdf5_records])
    spec = load_spec("recipes/data/hdf5_tools.json")
    for ex in out:
        _assert_well_formed(ex)
        assert ex.metadata["mode"] == ("single" if len(ex.reasoning_path) == 1 else "multi")
        assert graph.validate_chain([s.tool for s in ex.reasoning_path]).valid
        assert ex.metadata["live_ok"] is True
        assert ex.metadata["environment"]["hdf5"]["file"] in ("climate.h5", "experiment.h5")
        target = ex.metadata["target_tool"]
        path = [s.tool for s in ex.reasoning_path]
        assert path == ex.metadata["planned_chain"] and target in path
        if spec.get(target).complexity == "simple":
            # a simple target gets just the calls it needs, ending with it
            assert path[-1] == target and len(path) == len(graph.prerequisites(target, 4))
    # the args schema sent to the model is typed per tool, with enums of real values
    schemas = [r["response_format"]["json_schema"]["schema"] for r in server.requests if "response_format" in r]
    arg_props = [s["properties"]["args"] for s in schemas if "args" in s.get("properties", {})]
    flat = json.dumps(schemas)
    assert '"climate.h5"' in flat or '"experiment.h5"' in flat
    assert arg_props


def test_single_and_multi_modes(tmp_path, hdf5_records):
    with fake_llm() as (_, provider):
        single = GenerateToolExamples(n_examples=4, mode="single").run(hdf5_records, make_ctx(tmp_path, provider, "g1"))
        multi = GenerateToolExamples(n_examples=4, mode="multi", max_steps=3).run(hdf5_records, make_ctx(tmp_path, provider, "g2"))
    assert len(single) == len(multi) == 4
    assert all(len(ex.reasoning_path) == 1 and ex.metadata["mode"] == "single" for ex in single)
    graph = ToolGraph([r.tool for r in hdf5_records])
    assert all(graph.is_standalone(ex.reasoning_path[0].tool) for ex in single)
    assert all(2 <= len(ex.reasoning_path) <= 3 and ex.metadata["mode"] == "multi" for ex in multi)
    for ex in [*single, *multi]:
        _assert_well_formed(ex)


def test_free_selection_constrains_the_tool_enum(tmp_path, hdf5_records):
    with fake_llm() as (server, provider):
        out = GenerateToolExamples(n_examples=3, mode="multi", selection="free", max_steps=3).run(
            hdf5_records, make_ctx(tmp_path, provider, "g"))
    assert out
    for ex in out:
        _assert_well_formed(ex)
    tool_props = [r["response_format"]["json_schema"]["schema"]["properties"]["tool"]
                  for r in server.requests if "tool" in r["response_format"]["json_schema"]["schema"].get("properties", {})]
    enums = [p.get("enum") or [p["const"]] for p in tool_props]
    assert enums
    handle_tools = {"read_full_dataset", "get_shape", "list_keys", "close_file"}
    assert not handle_tools & set(enums[0]), "a tool needing a handle cannot be the first call"
    assert all(len(e) <= 3 + 4 + 1 for e in enums)  # offered tools (+ finish), never the whole spec


def test_chain_first_and_hybrid(tmp_path, hdf5_records):
    graph = ToolGraph([r.tool for r in hdf5_records])
    with fake_llm() as (_, provider):
        chains = GenerateToolChains(n_examples=4, min_steps=2, max_steps=3).run(hdf5_records, make_ctx(tmp_path, provider, "c"))
        hybrid = GenerateToolChains(n_examples=4, strategy="hybrid", chain_ratio=0.5, query_mode="single").run(
            hdf5_records, make_ctx(tmp_path, provider, "h"))
    assert len(chains) == 4
    for ex in chains:
        _assert_well_formed(ex)
        assert ex.metadata["strategy"] == "chain_first" and ex.metadata["mode"] == "chain"
        assert 2 <= len(ex.reasoning_path) <= 3
        assert graph.validate_chain([s.tool for s in ex.reasoning_path]).valid
    strategies = sorted(ex.metadata["strategy"] for ex in hybrid)
    assert strategies == ["chain_first", "chain_first", "query_first", "query_first"]


def test_generic_spec_uses_the_simulated_executor(tmp_path):
    with fake_llm() as (_, provider):
        out = GenerateToolExamples(n_examples=3, mode="auto", spec=str(SPECS / "openai_tools.json"), n_distractors=1).run(
            [], make_ctx(tmp_path, provider, "g"))
    assert len(out) == 3
    for ex in out:
        _assert_well_formed(ex, n_distractors=1)
    from synthrun.stages.tool_execute import ExecuteTools

    done = ExecuteTools().run(out, make_ctx(tmp_path, {}, "execute"))
    steps = [s for ex in done for s in ex.reasoning_path]
    assert steps and all(s.ok and s.executor == "simulated" and s.simulated for s in steps)
    assert all(ex.metadata["simulated"] is True for ex in done)


def test_a_tool_with_an_empty_description_gets_examples(tmp_path):
    spec = [{"type": "function", "function": {"name": "get_weather", "description": "",
                                              "parameters": {"type": "object", "properties": {
                                                  "city": {"type": "string"}}, "required": ["city"]}}},
            {"type": "function", "function": {"name": "get_time", "description": "Time.",
                                              "parameters": {"type": "object", "properties": {}}}}]
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    with fake_llm() as (_, provider):
        ctx = make_ctx(tmp_path, provider, "g")
        out = GenerateToolExamples(n_examples=6, mode="single", spec=str(path), n_distractors=1).run([], ctx)
    assert {ex.metadata["target_tool"] for ex in out} == {"get_weather", "get_time"}
    assert not any("copied_tool_description" in reason for reason in ctx.failures)


@pytest.mark.parametrize("request_text, description, copied", [
    ("What is the weather in Paris?", "", False),
    ("What is the weather in Paris?", "   ", False),
    ("What time is it in Tokyo right now?", "Time.", False),  # a one-word description inside a request
    ("Time.", "Time.", True),  # the request is the description
    ("Please return the current weather for a given city name now", "Return the current weather for a given city",
     True),
    ("Is it raining in Lyon today?", "Return the current weather for a given city", False),
])
def test_copy_check_handles_short_and_empty_descriptions(request_text, description, copied):
    from synthrun.tools.generation import copies_description

    assert copies_description(request_text, description) is copied


def test_request_written_from_the_executed_calls(tmp_path, hdf5_records):
    def order(server):
        kinds = []
        for r in server.requests:
            text = json.dumps(r["messages"])
            kinds.append("request_after" if "The last call answers the user" in text else
                         "request_first" if "Write the user's request as JSON" in text else "other")
        return kinds

    with fake_llm() as (server, provider):
        out = GenerateToolExamples(n_examples=2, mode="multi", max_steps=3, oversample=1.0).run(
            hdf5_records, make_ctx(tmp_path, provider, "g"))
        after = order(server)
        prompts = [json.dumps(r["messages"]) for r in server.requests if "The last call answers" in json.dumps(r["messages"])]
        server.requests.clear()
        GenerateToolExamples(n_examples=2, mode="multi", max_steps=3, oversample=1.0, request_from="model").run(
            hdf5_records, make_ctx(tmp_path, provider, "g2"))
        first = order(server)
    assert len(out) == 2
    assert "request_first" not in after and after.index("request_after") > after.index("other")
    # the prompt shows the answering call with its real result (an h5py value, not a placeholder)
    last = out[0].reasoning_path[-1]
    assert any(f"{len(out[0].reasoning_path)}. {last.tool}(" in p and " -> " in p for p in prompts)
    assert "request_after" not in first and first[0] == "request_first"


def test_attempts_without_an_example_go_to_dropped_jsonl_under_their_reason(tmp_path, hdf5_records):
    from synthrun.io import read_jsonl

    # every request copies a tool description: each attempt fails after its retries
    with fake_llm({"request": "Please open an HDF5 file and return a handle to it."}) as (_, provider):
        ctx = make_ctx(tmp_path, provider, "generate")
        out = GenerateToolExamples(n_examples=2, mode="single", targets=["open_file"], n_distractors=1,
                                   text_retries=1, max_rounds=1, oversample=1.0).run(hdf5_records, ctx)
    assert out == []
    dropped = read_jsonl(tmp_path / "generate" / "dropped.jsonl")
    assert [d["reason"] for d in dropped] == ["instruction_copied_tool_description"] * 2
    assert all(d["stage"] == "generate" and d["record"]["reasoning_path"] for d in dropped)
    assert ctx.failures == {"instruction_copied_tool_description": 2}
