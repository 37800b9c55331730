"""``synthrun plan`` against a real run of the qa recipe on the loopback server: within 20%."""

from __future__ import annotations

import json

import pytest

from synthrun import cli
from synthrun.plan import make_plan, render_plan
from synthrun.recipes import compose
from tests.conftest import HDF5_PASSAGES, write_chunk_db
from tests.llm.fake_openai_server import FakeOpenAIServer

LLM_STAGES = ("generate", "enrich", "curate")


def _overrides(db, url: str) -> list[str]:
    return [f"load.db={db}", "generate.n_pairs=4", "curate.threshold=0", "provider=vllm",
            f"provider.api_base={url}", "provider.model=hosted_vllm/fake", "provider.concurrency=4",
            "+provider.price_in=1.0", "+provider.price_out=2.0", "progress=false"]


def _near(planned: float, real: float, share: float = 0.2) -> bool:
    return abs(planned - real) <= share * real


def test_plan_is_within_20_percent_of_a_real_qa_run(tmp_path, monkeypatch, capsys):
    db = write_chunk_db(tmp_path / "chunks.lancedb", HDF5_PASSAGES)
    with FakeOpenAIServer() as server:
        overrides = _overrides(db, server.base_url)
        assert cli.main(["plan", "+recipe=qa", *overrides, "--json"]) == 0
        assert server.requests == [], "planning sent a request"
        planned = json.loads(capsys.readouterr().out)
        monkeypatch.setenv("SYNTHRUN_OUTPUTS", str(tmp_path / "out"))
        assert cli.main(["+recipe=qa", *overrides]) == 0
        sent = len(server.requests)
    (metrics_file,) = [p for p in (tmp_path / "out").rglob("metrics.json") if ".cache" not in p.parts]
    real = json.loads(metrics_file.read_text())
    plan = {s["name"]: s for s in planned["stages"]}
    for stage in real["stages"]:
        p = plan[stage["name"]]
        if stage["name"] in LLM_STAGES:
            assert _near(p["calls"], stage["llm_calls"]), (stage["name"], p["calls"], stage["llm_calls"])
            assert _near(p["prompt_tokens"], stage["tokens_in"]), (stage["name"], p, stage)
            assert _near(p["completion_tokens"], stage["tokens_out"], 0.5), (stage["name"], p, stage)
        else:
            assert p["calls"] == stage["llm_calls"] == 0
    total = planned["total"]
    assert real["llm_calls"] == sent
    assert _near(total["calls"], real["llm_calls"])
    assert _near(total["prompt_tokens"] + total["completion_tokens"], real["tokens_in"] + real["tokens_out"])
    assert _near(total["cost_usd"], real["estimated_cost_usd"])
    assert total["cost_max_usd"] >= real["estimated_cost_usd"]
    assert plan["load"]["basis"] == "exact" and plan["generate"]["basis"] == "exact"
    assert plan["enrich"]["basis"] == plan["curate"]["basis"] == "estimate"


def test_plan_table_budget_verdict_and_rounds(tmp_path, chunk_db):
    cfg = compose("qa", [f"load.db={chunk_db}", "generate.n_pairs=5", "budget.max_calls=30"])
    text = render_plan(make_plan(cfg))
    assert "generate" in text and "total" in text
    assert "budget.max_calls=30 would stop the run in stage 'enrich'" in text
    cfg = compose("qa", [f"load.db={chunk_db}", "target_rows=2"])
    plan = make_plan(cfg)
    by_name = {s.name: s for s in plan.stages}
    assert by_name["generate"].rows_in == 2 and by_name["generate"].basis == "unbounded"
    assert by_name["export"].basis == "estimate" and plan.totals().basis == "unbounded"


@pytest.mark.parametrize("override, message", [
    ("budget.max_usd=-1", "budget.max_usd=-1"),
    ("target_rows=0", "target_rows=0: must be a whole number >= 1"),
])
def test_plan_bad_input_is_one_line(chunk_db, capsys, override, message):
    assert cli.main(["plan", "+recipe=qa", f"load.db={chunk_db}", override]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("synthrun: error:") and message in err[0]
