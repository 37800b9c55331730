"""Tool checks: each with passing and failing examples, on paths really executed with h5py."""

from __future__ import annotations

from synthrun.records import ToolExample
from synthrun.scoring.tool_gates import (
    ToolGateConfig,
    answer_uses_results,
    check_all,
    checks_score,
    grounded,
    schema,
    specific_request,
)
from synthrun.stages.tool_execute import ExecuteTools
from synthrun.tools.labelled import row_to_example
from synthrun.tools.replay import example_tools
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import make_ctx

CFG = ToolGateConfig()


def run(tmp_path, ex: ToolExample) -> ToolExample:
    return ExecuteTools().run([ex], make_ctx(tmp_path, {}, "execute"))[0]


def verdict(fn, ex):
    return fn(ex, example_tools(ex), CFG)


def test_schema_passes_a_well_formed_executed_path(tmp_path):
    assert verdict(schema, run(tmp_path, example(GOOD))) is True


def test_schema_names_a_missing_required_argument(tmp_path):
    ex = run(tmp_path, example([*GOOD[:2], ("read_attribute", {"handle": "$step2"})]))
    ok, reason = verdict(schema, ex)
    assert not ok and "step 3 read_attribute: missing_required" in reason


def test_schema_checks_reference_values_after_resolving_them(tmp_path):
    # statically fine (a dataset handle's "dtype" field has no declared type), but it resolves to "float32"
    steps = [*GOOD[:2], ("read_partial_dataset", {"dataset": "$step2", "start": 0, "stop": "$step2.dtype"})]
    ex = example(steps, extra_tools=())
    ex = ex.model_copy(update={"reasoning_path": [s.model_copy(update={"ok": True, "result": r}) for s, r in zip(
        ex.reasoning_path, [{"handle": "hdf5://climate.h5#/"},
                            {"handle": "hdf5://climate.h5#/measurements/temperature", "dtype": "float32"},
                            {"data": []}], strict=True)]})
    ok, reason = verdict(schema, ex)
    assert not ok and "wrong_type after resolving $step2.dtype" in reason


def test_schema_fails_a_step_that_failed_to_run(tmp_path):
    ex = run(tmp_path, example([*GOOD[:2], ("read_attribute", {"handle": "$step2", "name": "nope"})]))
    ok, reason = verdict(schema, ex)
    assert not ok and "step 3 read_attribute failed" in reason


def test_grounded_accepts_values_from_the_request_and_earlier_results(tmp_path):
    assert verdict(grounded, run(tmp_path, example(GOOD))) is True
    # the dataset path comes from an earlier list_keys/visit result, not from the request
    steps = [("open_file", {"file_path": "climate.h5"}), ("visit", {"group": "$step1"}),
             ("get_by_path", {"parent": "$step1", "path": "/metadata/calibration"}), ("get_size", {"dataset": "$step3"})]
    ex = run(tmp_path, example(steps, instruction="How many elements has the first dataset of climate.h5?"))
    assert verdict(grounded, ex) is True


def test_grounded_flags_a_value_the_request_does_not_name(tmp_path):
    steps = [GOOD[0], ("get_by_path", {"parent": "$step1", "path": "/measurements/pressure"}), GOOD[2]]
    ok, reason = verdict(grounded, run(tmp_path, example(steps)))
    assert not ok and "step 2 get_by_path: path=\"/measurements/pressure\"" in reason
    # identifiers with digits must match exactly: run_002 is not run_001
    steps = [("hdf5_aggregate_stats", {"file_path": "experiment.h5", "dataset_path": "/run_002/timestamps"})]
    ex = run(tmp_path, example(steps, instruction="Mean of the timestamps of run_001 in experiment.h5?", extra_tools=()))
    assert verdict(grounded, ex)[0] is False


def test_answer_uses_results_passes_an_answer_stating_the_result(tmp_path):
    assert verdict(answer_uses_results, run(tmp_path, example(GOOD, answer="The units are degC."))) is True


def test_answer_uses_results_flags_ignored_contradicted_and_unused(tmp_path):
    ok, reason = verdict(answer_uses_results, run(tmp_path, example(GOOD, answer="The call completed successfully.")))
    assert not ok and "states nothing step 3 read_attribute returned" in reason
    ok, reason = verdict(answer_uses_results, run(tmp_path, example(GOOD, answer="The units are kelvin.")))
    assert not ok
    shape = [*GOOD[:2], ("get_shape", {"dataset": "$step2"})]
    ok, reason = verdict(answer_uses_results, run(tmp_path, example(shape, answer="The shape is 8 x 7200.")))
    assert not ok and "states 7200" in reason
    extra = [*GOOD, ("get_compression", {"dataset": "$step2"})]
    ok, reason = verdict(answer_uses_results, run(tmp_path, example(extra, extra_tools=("get_compression",))))
    assert not ok and "step 4 get_compression" in reason


def test_specific_request(tmp_path):
    ex = run(tmp_path, example(GOOD))
    assert verdict(specific_request, ex) is True
    named = ex.model_copy(update={"instruction": "What units does the temperature use?"})
    assert verdict(specific_request, named) is True, "names a dataset the calls use"
    for vague in ("What can you do with the data?", "Tell me something about this file.", "Can you help me?"):
        ok, reason = verdict(specific_request, ex.model_copy(update={"instruction": vague}))
        assert not ok and reason.startswith("vague:"), vague


def test_check_all_and_score(tmp_path):
    ex = run(tmp_path, example(GOOD, instruction="Can you help me?"))
    results = check_all(ex, example_tools(ex), CFG)
    assert results["schema"] is None and results["specific_request"].startswith("vague")
    assert results["grounded"].startswith("ungrounded: step 1 open_file")
    assert results["best_tool"] is None and results["answer_uses_results"] is None
    assert checks_score(results) == 6.0  # 3 of 5 checks passed


def test_openai_tools_rows_are_checked_like_project_rows():
    row = {"id": "w", "instruction": "What is the weather in Lisbon?", "label": 1, "kind": "correct",
           "tools": [{"type": "function", "function": {"name": "get.weather", "description": "Weather in a city.",
                                                       "parameters": {"type": "object", "properties": {
                                                           "city": {"type": "string"}}, "required": ["city"]}}}],
           "reasoning_path": [{"tool": "get.weather", "args": {"city": "Lisbon"}, "result": {"temp": 15}}],
           "final_answer": "It is 15 degrees in Lisbon."}
    ex = row_to_example(row, "rows.jsonl:1")
    assert ex.reasoning_path[0].tool == "get_weather" and ex.reasoning_path[0].ok is True
    assert all(v is None for v in check_all(ex, example_tools(ex), CFG).values())
    madrid = row_to_example({**row, "reasoning_path": [{**row["reasoning_path"][0], "args": {"city": "Madrid"}}]}, "x")
    assert check_all(madrid, example_tools(madrid), CFG)["grounded"]
