"""tool_verify: format, execution and an LLM semantic judge (real HTTP server on 127.0.0.1)."""

from __future__ import annotations

from synthrun.io import read_jsonl
from synthrun.stages.tool_verify import VerifyTools
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import fake_llm, last_user, make_ctx


def judge(request):
    return "no" if "weather" in last_user(request) else "yes"


def test_three_layers(tmp_path):
    good = example(GOOD, ex_id="good")
    off_topic = example(GOOD, instruction="What is the weather in Rome?", ex_id="off")
    broken = example([GOOD[0], ("read_full_dataset", {"dataset": "$step1"})], ex_id="broken")
    failing = example([GOOD[0], ("get_by_path", {"parent": "$step1", "path": "/nope"})], ex_id="failing")
    with fake_llm({"verdict": judge}) as (server, provider):
        ctx = make_ctx(tmp_path, provider, "verify")
        kept = VerifyTools().run([good, off_topic, broken, failing], ctx)
    assert [e.id for e in kept] == ["good"]
    ver = kept[0].metadata["verification"]
    assert ver == {**ver, "format": True, "execution": True, "semantic": True, "passed": True}
    assert kept[0].reasoning_path[2].result == "degC", "unexecuted examples are executed first"
    assert len(server.requests) == 2, "the judge only sees examples that passed layers 1 and 2"
    assert ctx.failures == {"semantic_check_failed": 1, "format_check_failed": 1, "execution_check_failed": 1}
    dropped = {r["id"]: r for r in read_jsonl(tmp_path / "verify" / "dropped.jsonl")}
    assert {k: r["reason"] for k, r in dropped.items()} == {
        "off": "semantic_check_failed", "broken": "format_check_failed", "failing": "execution_check_failed"}
    assert "wrong_type" in dropped["broken"]["detail"] and "/nope" in dropped["failing"]["detail"]
    assert all(r["stage"] == "verify" and r["record"]["id"] == k for k, r in dropped.items())


def test_keep_failures_when_asked(tmp_path):
    with fake_llm({"verdict": "no"}) as (_, provider):
        out = VerifyTools(drop_failed=False).run([example(GOOD)], make_ctx(tmp_path, provider, "verify"))
    assert out[0].metadata["verification"]["semantic"] is False
    assert out[0].metadata["verification"]["passed"] is False
