"""A judge-model sweep over two providers on the loopback server: the summary ranks judges by AUC."""

from __future__ import annotations

import csv
import json

from synthrun.api import run_recipe
from tests.llm.fake_openai_server import FakeOpenAIServer
from tests.stages.test_judge import sharp_judge


def two_judges(body, content):
    """``sharp`` reads the prompt; ``blind`` answers the same whatever it is shown."""
    if "sharp" in body["model"]:
        return sharp_judge(body, content)
    return [("Yes", -0.4), ("No", -1.1)]


def test_judge_sweep_ranks_models_by_auc(tmp_path):
    with FakeOpenAIServer(responder=lambda body: "Yes", logprob_responder=two_judges) as server:
        sweep = run_recipe("judge_eval", [
            "provider=vllm", f"provider.api_base={server.base_url}", "provider.model=hosted_vllm/blind",
            "curate.llm.model=hosted_vllm/blind,hosted_vllm/sharp", "gates.enabled=false", "load.limit=60",
            "progress=false", "sweep_name=judges"], output_root=tmp_path / "out", multirun=True)
        models = {b["model"] for b in server.requests}
    assert models == {"blind", "sharp"}
    runs = {json.loads(p.read_text())["evaluation"]["judge_model"]: json.loads(p.read_text())
            for p in sweep.glob("*/metrics.json")}
    sharp, blind = runs["hosted_vllm/sharp"], runs["hosted_vllm/blind"]
    assert blind["auc"] == 0.5  # the same score for every row
    assert sharp["auc"] > 0.7
    assert sharp["evaluation"]["method"] == blind["evaluation"]["method"] == "logprob"
    with open(sweep / "sweep_summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["auc"]) for r in rows] == [sharp["auc"], 0.5]  # best judge first
    assert "sharp" in rows[0]["run"] and "| auc |" in (sweep / "sweep_summary.md").read_text()
