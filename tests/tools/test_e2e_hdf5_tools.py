"""End to end on the real embedded model: `synthrun +recipe=hdf5_tools` with a few examples."""

from __future__ import annotations

import json

import pytest

from synthrun.api import run_recipe
from synthrun.io import read_jsonl
from synthrun.records import ToolExample
from synthrun.scoring.tool_gates import ToolGateConfig, check_all
from synthrun.tools.checker import check_path
from synthrun.tools.executors import parse_ref
from synthrun.tools.loading import tools_from_dicts

pytestmark = pytest.mark.slow


N_EXAMPLES = 4


def test_hdf5_tools_recipe_on_embedded_model(tmp_path):
    run_dir = run_recipe(
        "hdf5_tools",
        [f"generate.n_examples={N_EXAMPLES}", "generate.max_steps=3", "generate.text_retries=1", "progress=false"],
        output_root=tmp_path / "out",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed" and metrics["model"].startswith("local/")
    stages = {s["name"]: s for s in metrics["stages"]}
    assert stages["parse"]["rows_out"] == 25
    assert 1 <= stages["generate"]["rows_out"] <= N_EXAMPLES and stages["generate"]["llm_calls"] > 0

    executed = [ToolExample.model_validate(r) for r in read_jsonl(run_dir / "03_execute" / "data.jsonl")]
    assert executed and all(e.metadata["format_ok"] for e in executed), "generated calls are format-valid"

    exported = [ToolExample.model_validate(r) for r in read_jsonl(run_dir / "06_export" / "data.jsonl")]
    threshold = json.loads((run_dir / "05_curate" / "summary.json").read_text())["details"]["threshold"]
    assert threshold and threshold > 0, "the recipe ships a non-zero threshold"
    # Every executed example is either exported or dropped with a named reason. Requests are written from
    # the calls (naming their values) and re-asked when they fail a check, so SmolLM2-135M gets some through.
    dropped = read_jsonl(run_dir / "04_filter" / "dropped.jsonl")
    curated_out = stages["curate"]["rows_in"] - stages["curate"]["rows_out"]
    assert len(exported) + len(dropped) + curated_out == len(executed)
    for row in dropped:
        ex = ToolExample.model_validate(row["record"])
        failed = {k for k, v in check_all(ex, tools_from_dicts(ex.tools), ToolGateConfig()).items() if v}
        assert row["reason"].startswith("check_") and row["reason"].removeprefix("check_") in failed, row
    for ex in exported:
        assert check_path(ex.reasoning_path, tools_from_dicts(ex.tools)) == []
        failed = {k: v for k, v in check_all(ex, tools_from_dicts(ex.tools), ToolGateConfig()).items() if v}
        assert not failed, f"an exported example fails the tool checks: {failed}"
        assert ex.rating is not None and ex.rating.method == "logprob"
        assert ex.rating.total >= threshold
        assert ex.instruction and ex.final_answer
        for step in ex.reasoning_path:
            assert step.ok is True and step.executor == "hdf5" and not step.simulated
            assert step.result is not None
            assert not any(parse_ref(v) for v in step.resolved_args.values()), "real values were sent"
    trl = read_jsonl(run_dir / "06_export" / "dataset" / "train.trl.jsonl")
    assert exported, "at least one example survives the checks and the judge"
    assert len(trl) == len(exported)
    first = trl[0]["messages"]
    assert first[0]["role"] == "user" and first[1]["tool_calls"][0]["function"]["name"] == exported[0].reasoning_path[0].tool
    assert isinstance(first[1]["tool_calls"][0]["function"]["arguments"], dict)
    tool_turn = json.loads(first[2]["content"]) if first[2]["content"].startswith(("{", "[")) else first[2]["content"]
    assert tool_turn == exported[0].reasoning_path[0].result
    for fmt in ("openai", "sharegpt", "reasoning"):
        assert len(read_jsonl(run_dir / "06_export" / "dataset" / f"train.{fmt}.jsonl")) == len(exported)


def test_hdf5_tools_ships_a_threshold_and_the_checks():
    import yaml

    recipe = yaml.safe_load(open("recipes/hdf5_tools.yaml"))
    assert recipe["curate"]["threshold"] > 0 and recipe["curate"]["scoring"] == "probability"
    assert recipe["stages"].index("filter") < recipe["stages"].index("curate")
    assert "best_tool" in recipe["filter"]["checks"], "a wrong tool is caught before the judge"
