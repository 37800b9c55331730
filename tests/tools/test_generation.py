"""synthrun.tools.generation: plans from the real HDF5 spec and graph, per-call schemas, text checks."""

from __future__ import annotations

import random

import pytest
from pydantic import ValidationError

from synthrun.records import ToolStep
from synthrun.tools.executors import build_engine
from synthrun.tools.generation import (
    THOUGHT_PATTERN,
    AnswerOut,
    Planner,
    RequestOut,
    call_line,
    choice_model,
    clean_text,
    clip,
    copies_description,
    difficulty,
    plausible,
    step_model,
    tool_line,
)
from synthrun.tools.graph import ToolGraph
from tests.tools.examples import hdf5_tools


@pytest.fixture
def planner(tmp_path):
    tools = hdf5_tools().tools
    engine = build_engine(["hdf5", "simulated"], tmp_path / "work")
    yield Planner(tools, engine, ToolGraph(tools), n_distractors=2, max_steps=4, min_steps=2, optional_rate=0.0)
    engine.close()


# ---------------------------------------------------------------------------- text checks


@pytest.mark.parametrize("text, ok", [
    ("What is the shape of the temperature dataset in climate.h5?", True),
    ("Shape?", False),  # too short
    ("12345678901 2 3 4 5", False),  # digits, not words
    ("read the file read the file read the file read the file", False),  # a loop
    ("%%% ### @@@ !!! ??? ***", False),
])
def test_plausible_rejects_degenerate_text(text, ok):
    assert plausible(text) is ok


def test_clean_text_strips_lead_ins_and_quotes_and_clip_cuts_at_a_sentence():
    assert clean_text('  Here is a request: "What is in climate.h5?" ') == "What is in climate.h5?"
    assert clean_text("Final answer:   The units are degC.") == "The units are degC."
    text = "The file has two groups. It has five datasets. The temperature is in degC and more words follow here."
    assert clip(text, 60) == "The file has two groups. It has five datasets."
    assert clip("short", 60) == "short"


def test_copies_description_needs_a_long_shared_run():
    desc = "Read one attribute of a file, group or dataset."
    assert copies_description("Please read one attribute of a file, group or dataset for me.", desc)
    assert not copies_description("What are the units of the temperature readings?", desc)
    assert not copies_description("Anything at all?", "")


def test_tool_and_call_lines_show_signature_and_result():
    tool = hdf5_tools().get("read_attribute")
    assert tool_line(tool) == ("- read_attribute(handle: node_handle, name: attribute_name) -> any: "
                               "Read one attribute of a file, group or dataset.")
    step = ToolStep(step=2, tool="read_attribute", args={"handle": "$step1", "name": "units"})
    assert call_line(2, step, "degC", True) == '2. read_attribute(handle="$step1", name="units") -> "degC"'
    assert call_line(2, step, None, False, "no such attribute").endswith("-> ERROR no such attribute")
    simple = [hdf5_tools().get("get_filename")]
    assert difficulty(1, simple) == "easy" and difficulty(2, simple) == "medium" and difficulty(4, simple) == "hard"


# ---------------------------------------------------------------------------- schemas


def test_step_model_constrains_arguments_to_hints_and_leaves_bound_ones_out():
    tool = hdf5_tools().get("read_attribute")
    free = [p for p in tool.parameters if p.name == "name"]
    model = step_model(tool, free, {"name": ["units", "long_name"]})
    ok = model.model_validate({"thought": "I need to read the units.", "args": {"name": "units"}})
    assert ok.args.model_dump(by_alias=True) == {"name": "units"}
    with pytest.raises(ValidationError):
        model.model_validate({"thought": "I need to read the units.", "args": {"name": "colour"}})
    with pytest.raises(ValidationError):  # the thought follows the sentence pattern
        model.model_validate({"thought": "units!!", "args": {"name": "units"}})
    schema = model.model_json_schema()
    assert "handle" not in str(schema["$defs"]), "the bound handle is not the model's to write"
    no_thought = step_model(tool, free, {}, with_thought=False)
    assert list(no_thought.model_fields) == ["args"]


def test_choice_model_and_text_models_accept_only_their_shapes():
    model = choice_model(["get_shape", "finish"])
    assert model.model_validate({"thought": "I will check the shape.", "tool": "finish"}).tool == "finish"
    with pytest.raises(ValidationError):
        model.model_validate({"thought": "I will check the shape.", "tool": "open_file"})
    assert RequestOut(request="What is the shape of the data?").request
    with pytest.raises(ValidationError):
        RequestOut(request='{"json": 1}')
    with pytest.raises(ValidationError):
        AnswerOut(answer="lowercase start.")
    assert THOUGHT_PATTERN.startswith("(I need to")


# ---------------------------------------------------------------------------- plans and next calls


def test_query_first_single_plan_uses_a_standalone_target(planner):
    rng = random.Random(3)
    plan = planner.plan_query_first(0, "single", "guided", rng, target="open_file")
    assert plan is not None and plan.chain == ["open_file"] and plan.mode == "single"
    assert "open_file" in plan.tools and len(plan.offered) == 3, "the target plus two distractors"
    assert planner.plan_query_first(1, "single", "guided", rng, target="read_attribute") is None, \
        "read_attribute needs a handle from an earlier call"
    plan.trace.close()


def test_query_first_multi_plan_binds_handles_to_earlier_steps_and_next_call_follows_them(planner):
    rng = random.Random(5)
    plan = planner.plan_query_first(0, "auto", "guided", rng, target="read_attribute")
    assert plan is not None and plan.chain[-1] == "read_attribute" and plan.chain[0] == "open_file"
    first = planner.next_call(plan)
    assert first is not None and first.tool.name == "open_file" and not first.bound
    assert first.hints["file_path"] and [p.name for p in first.free] == ["file_path"]
    outcome = plan.trace.run("open_file", {"file_path": first.hints["file_path"][0]})
    assert outcome.ok, outcome.error
    plan.steps.append(ToolStep(step=1, tool="open_file", args={"file_path": first.hints["file_path"][0]}))
    second = planner.next_call(plan)
    assert second is not None and second.tool.name == plan.chain[1]
    assert set(second.bound.values()) == {"$step1"}, "the handle input is bound by the planner"
    assert all(p.name not in second.bound for p in second.free)
    plan.trace.close()


def test_chain_first_plan_is_a_valid_chain_of_the_graph(planner):
    plan = planner.plan_chain_first(0, random.Random(11), 2, 3)
    assert plan is not None and plan.strategy == "chain_first" and 2 <= len(plan.chain) <= 3
    assert planner.graph.validate_chain(plan.chain).valid
    plan.trace.close()


def test_free_selection_offers_only_tools_that_can_run_now(planner):
    plan = planner.plan_query_first(0, "multi", "free", random.Random(2), target="read_attribute")
    assert plan is not None
    options = planner.valid_options(plan)
    needs_handle = {t.name for t in plan.offered
                    if any(p.required and planner.types.is_handle(p.type) for p in t.parameters)}
    assert options and not needs_handle & set(options), "nothing has produced a handle yet"
    plan.trace.close()


def test_request_and_answer_problems(planner):
    plan = planner.plan_query_first(0, "single", "guided", random.Random(1), target="open_file")
    desc = planner.tools["open_file"].description
    assert planner.request_problem(plan, "What groups are in the file climate.h5?") is None
    assert planner.request_problem(plan, f"Please {desc.lower()}") == "copied_tool_description"
    assert planner.request_problem(plan, "ok?") == "implausible"
    assert planner.answer_problem(plan, "The file has two groups.") is None
    assert planner.answer_problem(plan, "?") == "implausible"
    plan.trace.close()
