"""tool_evaluate: requirements checked against execution results, scored 0-1 with labels."""

from __future__ import annotations

import json

import pytest

from synthrun.stages.tool_evaluate import EvaluateTools
from synthrun.stages.tool_execute import ExecuteTools
from tests.tools.examples import GOOD, example
from tests.tools.fake_llm import fake_llm, last_user, make_ctx


def status(request):
    text = last_user(request)
    if "units" in text.split("Requirement:")[0]:
        return "satisfied"
    return "partially_satisfied" if "shape" in text.split("Requirement:")[0] else "not_satisfied"


@pytest.fixture
def records(tmp_path):
    full = example(GOOD, instruction="What are the units of the temperature?", ex_id="full")
    part = example(GOOD, instruction="What is the shape of the temperature?", ex_id="part")
    none = example(GOOD, instruction="Who operates the station network?", ex_id="none")
    failed = example([GOOD[0], ("get_by_path", {"parent": "$step1", "path": "/nope"})], ex_id="failed")
    return ExecuteTools().run([full, part, none, failed], make_ctx(tmp_path, {}, "execute"))


def run(tmp_path, records, **kw):
    with fake_llm({"status": status}) as (_, provider):
        ctx = make_ctx(tmp_path, provider, "evaluate")
        return EvaluateTools(**kw).run(records, ctx), ctx


def test_scores_and_labels(tmp_path, records):
    kept, ctx = run(tmp_path, records, min_score=0.5)
    assert [e.id for e in kept] == ["full", "part"]
    ev = {e.id: e.metadata["evaluation"] for e in kept}
    assert ev["full"]["label"] == "fully_satisfied" and ev["full"]["score"] == 1.0
    assert ev["part"]["label"] == "partially_satisfied" and ev["part"]["score"] == 0.5
    assert ev["full"]["requirements"][0]["status"] == "satisfied"
    report = json.loads((tmp_path / "evaluate" / "evaluation_report.json").read_text())
    assert report["labels"] == {"fully_satisfied": 1, "partially_satisfied": 1, "not_satisfied": 1, "execution_failed": 1}
    assert report["mean_score"] == pytest.approx(1.5 / 4, abs=1e-3)


def test_strict_and_report_only(tmp_path, records):
    strict, _ = run(tmp_path, records, strict=True)
    assert [e.id for e in strict] == ["full"]
    everything, ctx = run(tmp_path, records, report_only=True)
    assert len(everything) == 4
    labels = {e.id: e.metadata["evaluation"]["label"] for e in everything}
    assert labels == {"full": "fully_satisfied", "part": "partially_satisfied", "none": "not_satisfied",
                      "failed": "execution_failed"}
    assert ctx.failures == {}


def test_failed_requests_in_memory_fake(tmp_path, records):
    """ctx.llm is any LLMProtocol: an in-memory fake whose requests fail where the test says."""
    from synthrun.io import read_jsonl
    from tests.fixtures import FakeLLM, from_server_responder
    from tests.fixtures import make_ctx as shared_ctx
    from tests.tools.fake_llm import responder_with

    llm = FakeLLM(responder=from_server_responder(responder_with({"status": "satisfied"})))
    llm.fail_next("timeout")  # the first requirements request (example "full") fails
    ctx = shared_ctx(tmp_path, "evaluate", llm=llm)
    kept = EvaluateTools(min_score=0.5).run(records, ctx)
    assert [e.id for e in kept] == ["part", "none"], "three examples ran; 'full' lost its requirements"
    assert llm.descs == ["requirements", "check requirements"], "two batched phases"
    assert all(r.params == {"max_tokens": 128, "temperature": 0.0} for r in llm.requests)
    dropped = {r["id"]: r["reason"] for r in read_jsonl(ctx.stage_dir / "dropped.jsonl")}
    assert dropped == {"full": "not_satisfied", "failed": "execution_failed"}
    assert ctx.failures == {"requirements_timeout": 1, "not_satisfied": 1, "execution_failed": 1}
