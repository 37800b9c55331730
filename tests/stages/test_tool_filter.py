"""tool_filter: deterministic checks drop bad tool examples with a named reason."""

from __future__ import annotations

import json

import pytest

from synthrun.stages.tool_execute import ExecuteTools
from synthrun.stages.tool_filter import FilterTools
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import make_ctx


def test_filter_keeps_good_and_drops_bad_with_reasons(tmp_path):
    good = example(GOOD, ex_id="good")
    vague = example(GOOD, instruction="Tell me something about this file.", ex_id="vague")
    ignores = example(GOOD, answer="The call completed successfully.", ex_id="ignores")
    wrong = example([GOOD[0], ("get_by_path", {"parent": "$step1", "path": "/measurements/pressure"}), GOOD[2]],
                    ex_id="wrong")
    dtype = example([*GOOD[:2], ("get_dtype", {"dataset": "$step2"})], extra_tools=("read_attribute",),
                    answer="The temperature values are float32.", ex_id="wrong_tool")
    records = ExecuteTools().run([good, vague, ignores, wrong, dtype], make_ctx(tmp_path, {}, "execute"))
    ctx = make_ctx(tmp_path, {}, "filter")
    kept = FilterTools().run(records, ctx)
    assert [e.id for e in kept] == ["good"]
    assert kept[0].metadata["checks"] == {"schema": True, "grounded": True, "answer_uses_results": True,
                                          "specific_request": True, "best_tool": True}
    assert kept[0].metadata["checks_score"] == 10.0
    dropped = {d["id"]: d for d in map(json.loads, (tmp_path / "filter" / "dropped.jsonl").read_text().splitlines())}
    assert dropped["vague"]["reason"] == "check_grounded" and dropped["vague"]["stage"] == "filter"
    assert dropped["vague"]["detail"].startswith("ungrounded: step 1 open_file") and "vague:" in dropped["vague"]["detail"]
    assert dropped["ignores"]["reason"] == "check_answer_uses_results"
    assert dropped["ignores"]["detail"].startswith("answer: states nothing step 3")
    assert "path=\"/measurements/pressure\"" in dropped["wrong"]["detail"]
    assert dropped["wrong"]["record"]["metadata"]["checks"]["grounded"] is False
    assert dropped["wrong_tool"]["reason"] == "check_best_tool"
    assert dropped["wrong_tool"]["detail"].startswith("tool_not_best_match: step 3 calls get_dtype, but read_attribute")
    assert ctx.failures == {"check_grounded": 2, "check_answer_uses_results": 1, "check_best_tool": 1}
    assert ctx.summary["failed"]["specific_request"] == 1


def test_filter_annotate_only_and_check_selection(tmp_path):
    vague = example(GOOD, instruction="Tell me something about this file.", ex_id="vague")
    records = ExecuteTools().run([vague], make_ctx(tmp_path, {}, "execute"))
    ctx = make_ctx(tmp_path, {}, "filter")
    kept = FilterTools(mode="mark").run(records, ctx)
    assert [e.id for e in kept] == ["vague"] and kept[0].metadata["checks_score"] == 6.0  # 3 of 5 checks pass
    assert kept[0].gate_failed.startswith("check_grounded: ungrounded") and ctx.failures == {"check_grounded": 1}
    kept = FilterTools(checks=["schema", "answer_uses_results"]).run(records, make_ctx(tmp_path, {}, "filter2"))
    assert [e.id for e in kept] == ["vague"]


def test_unknown_check_is_a_config_error():
    with pytest.raises(ValueError, match="unknown check.*nope"):
        FilterTools(checks=["schema", "nope"])
