"""The three tool recipes run end to end against a real OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synthrun.api import run_recipe
from synthrun.io import read_jsonl
from tests.llm.fake_openai_server import FakeOpenAIServer
from tests.tools.fake_llm import responder_with

SPECS = Path(__file__).resolve().parents[1] / "data" / "specs"


def _provider(url: str) -> list[str]:
    return ["provider=vllm", f"provider.api_base={url}", "provider.model=hosted_vllm/fake",
            "provider.concurrency=4", "provider.max_retries=1", "progress=false"]


def _stages(run_dir: Path) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads((run_dir / "metrics.json").read_text())["stages"]}


@pytest.mark.parametrize("recipe, extra, stage_names", [
    ("hdf5_tools", ["curate.threshold=5", "curate.scoring=sampled"],
     ["parse", "generate", "execute", "filter", "curate", "export"]),
    ("tool_chain", [], ["parse", "generate", "execute", "filter", "verify", "export"]),
    ("tool_deps", ["evaluate.min_score=0.5"], ["parse", "generate", "execute", "filter", "curate", "evaluate", "export"]),
])
def test_tool_recipes_run(tmp_path, recipe, extra, stage_names):
    fields = {"verdict": "yes", "status": "satisfied", "clarity": 3, "accuracy": 2, "usefulness": 1, "difficulty": 1}
    with FakeOpenAIServer(responder=responder_with(fields)) as server:
        # the fake model's requests are random words: the filter (tested on its own) would drop them all
        run_dir = run_recipe(recipe, [*_provider(server.base_url), "generate.n_examples=4", "filter.enabled=false",
                                      *extra], output_root=tmp_path / "out")
    stages = _stages(run_dir)
    assert list(stages) == stage_names
    assert stages["parse"]["rows_out"] == 25 and (run_dir / "01_parse" / "graph.json").is_file()
    assert stages["generate"]["rows_out"] == 4
    last = f"{len(stage_names):02d}_export"
    rows = read_jsonl(run_dir / last / "dataset" / "train.trl.jsonl")
    assert rows and len(rows) == stages["export"]["rows_out"]
    for row in rows:
        assert row["messages"][0]["role"] == "user" and row["tools"]
        calls = [m for m in row["messages"] if m.get("tool_calls")]
        assert calls and all(isinstance(c["tool_calls"][0]["function"]["arguments"], dict) for c in calls)
    for record in read_jsonl(run_dir / last / "data.jsonl"):
        assert all(s["ok"] and s["executor"] == "hdf5" for s in record["reasoning_path"])


def test_user_spec_via_tools_spec(tmp_path):
    with FakeOpenAIServer(responder=responder_with({"clarity": 3, "accuracy": 3, "usefulness": 2, "difficulty": 2})) as srv:
        run_dir = run_recipe("hdf5_tools", [*_provider(srv.base_url), f"tools.spec={SPECS / 'petstore_openapi.yaml'}",
                                            "generate.n_examples=3", "generate.n_distractors=1", "filter.enabled=false",
                                            "curate.scoring=sampled"],
                             output_root=tmp_path / "out")
    stages = _stages(run_dir)
    assert stages["parse"]["rows_out"] == 4
    records = read_jsonl(run_dir / "06_export" / "data.jsonl")
    assert records
    for record in records:
        assert all(s["executor"] == "simulated" and s["simulated"] for s in record["reasoning_path"])
        assert record["metadata"]["simulated"] is True


def _calls(row: dict, fmt: str) -> list[tuple[dict, dict]]:
    """(parameters schema, arguments) of every tool call in one exported row."""
    if fmt == "sharegpt":
        schemas = {f["name"]: f["parameters"] for f in json.loads(row["tools"])}
        calls = [json.loads(t["value"]) for t in row["conversations"] if t["from"] == "function_call"]
        return [(schemas[c["name"]], c["arguments"]) for c in calls]
    schemas = {t["function"]["name"]: t["function"]["parameters"] for t in row["tools"]}
    out = []
    for m in row["messages"]:
        for call in m.get("tool_calls") or []:
            args = call["function"]["arguments"]
            out.append((schemas[call["function"]["name"]], json.loads(args) if fmt == "openai" else args))
    return out


def _assert_exported_calls_validate(export_dir: Path) -> int:
    """Every exported call's arguments validate (jsonschema, no extra properties); return how many."""
    from jsonschema import Draft202012Validator

    n = 0
    for fmt in ("trl", "openai", "sharegpt"):
        rows = read_jsonl(export_dir / "dataset" / f"train.{fmt}.jsonl")
        for row in rows:
            assert row["metadata"]["simulated"] is True and row["metadata"]["simulated_steps"]
            for schema, args in _calls(row, fmt):
                errors = list(Draft202012Validator({**schema, "additionalProperties": False}).iter_errors(args))
                assert not errors, (fmt, args, [e.message for e in errors])
                n += 1
    for row in read_jsonl(export_dir / "dataset" / "train.reasoning.jsonl"):
        assert row["metadata"]["simulated"] is True
    return n


UNTYPED = [  # OpenAI tools without return types: chain edges come from names only
    {"type": "function", "function": {"name": "count_numbers", "description": "Count the numbers in a category.",
                                      "parameters": {"type": "object", "properties": {
                                          "category": {"type": "string"}}, "required": ["category"]}}},
    {"type": "function", "function": {"name": "square_root", "description": "Square root of a number.",
                                      "parameters": {"type": "object", "properties": {
                                          "number": {"type": "number"}}, "required": ["number"]}}},
    {"type": "function", "function": {"name": "number_to_words", "description": "Spell out a number.",
                                      "parameters": {"type": "object", "properties": {
                                          "number": {"type": "integer"}}, "required": ["number"]}}},
    {"type": "function", "function": {"name": "sum_numbers", "description": "Add up a list of numbers.",
                                      "parameters": {"type": "object", "properties": {
                                          "numbers": {"type": "array", "items": {"type": "number"}}},
                                          "required": ["numbers"]}}},
]


def test_tool_chain_on_an_untyped_spec_exports_only_valid_arguments(tmp_path):
    spec = tmp_path / "untyped.json"
    spec.write_text(json.dumps(UNTYPED), encoding="utf-8")
    with FakeOpenAIServer(responder=responder_with({"verdict": "yes"})) as server:
        run_dir = run_recipe("tool_chain", [*_provider(server.base_url), f"tools.spec={spec}", "generate.n_examples=6",
                                            "generate.n_distractors=1", "generate.max_steps=3",
                                            "filter.enabled=false"],
                             output_root=tmp_path / "out")
    records = read_jsonl(run_dir / "06_export" / "data.jsonl")
    assert records and any(len(r["reasoning_path"]) >= 2 for r in records), "chains of several calls"
    for record in records:  # nothing is passed on from an untyped result: the model writes every value
        assert all(not str(v).startswith("$step") for s in record["reasoning_path"] for v in s["args"].values())
    assert _assert_exported_calls_validate(run_dir / "06_export") >= 2 * len(records)


@pytest.mark.parametrize("recipe, extra", [("tool_chain", []), ("hdf5_tools", ["curate.threshold=5", "curate.scoring=sampled"])])
def test_tool_recipes_run_on_bfcl_function_docs(tmp_path, recipe, extra):
    from tests.tools.test_bfcl import FUNCTIONS, write_bfcl

    spec = write_bfcl(tmp_path / "trading_bot.json")
    fields = {"verdict": "yes", "clarity": 3, "accuracy": 2, "usefulness": 1, "difficulty": 1}
    with FakeOpenAIServer(responder=responder_with(fields)) as server:
        run_dir = run_recipe(recipe, [*_provider(server.base_url), f"tools.spec={spec}", "generate.n_examples=4",
                                      "generate.n_distractors=1", "filter.enabled=false", *extra], output_root=tmp_path / "out")
    stages = _stages(run_dir)
    assert stages["parse"]["rows_out"] == len(FUNCTIONS) and stages["export"]["rows_out"] > 0
    export_dir = run_dir / f"{len(stages):02d}_export"
    assert _assert_exported_calls_validate(export_dir) > 0


def test_tool_judge_eval_recipe_reports_auc_per_kind(tmp_path):
    import math

    def logprobs(request, content):
        text = json.dumps(request["messages"])
        named = text.split("answered it with the tool")[-1][:40]
        p = 0.3 if "get_dtype" in named or "get_chunks" in named else 0.8  # the two wrong tools of these rows
        return [("yes", math.log(p)), ("no", math.log(1 - p))]

    with FakeOpenAIServer(responder=lambda r: "yes", logprob_responder=logprobs) as server:
        run_dir = run_recipe("tool_judge_eval", [*_provider(server.base_url), "load.limit=14"],
                             output_root=tmp_path / "out")
    report = json.loads((run_dir / "04_report" / "report.json").read_text())
    assert report["rows"] == 14 and report["good"] == 2 and report["methods"]["logprob"] >= 2
    assert report["methods"]["gate"] >= 8, "rows failing a check are rated 0 without a call"
    assert set(report["per_kind"]) == {"correct", "wrong_tool", "wrong_arg_value", "missing_required", "extra_call",
                                       "answer_ignores_result", "vague_request"}
    assert report["per_kind"]["wrong_tool"]["auc_vs_good"] == 1.0, "P(yes) 0.3 for the wrong tools ranks them below"
    assert "ROC-AUC" in (run_dir / "04_report" / "report.md").read_text()
    rated = read_jsonl(run_dir / "03_curate" / "data.jsonl")
    openai_rows = [r for r in rated if r["id"].startswith("hdf5-00")]
    assert openai_rows and all(r["tools"] and "parameters" in r["tools"][0] for r in openai_rows)
