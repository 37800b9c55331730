"""End to end on the real embedded model: LanceDB table -> QA pairs -> judge -> ChatML file."""

from __future__ import annotations

import json

import pytest

from synthrun.api import run_recipe
from synthrun.context import StageContext
from synthrun.io import read_jsonl
from synthrun.records import Record
from synthrun.stages.filter import Filter
from tests.conftest import write_chunk_db

pytestmark = pytest.mark.slow


def test_qa_recipe_on_embedded_model(tmp_path):
    db = write_chunk_db(tmp_path / "docs.lancedb")
    run_dir = run_recipe(
        "qa",
        [f"load.db={db}", "load.max_chunks=2", "generate.n_pairs=2", "generate.max_tokens=96",
         "enrich.max_tokens=96", "curate.threshold=0", "progress=false"],
        output_root=tmp_path / "out",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["status"] == "completed"
    assert metrics["provider"] == "local" and metrics["model"].startswith("local/")
    by_stage = {s["name"]: s for s in metrics["stages"]}
    assert by_stage["load"]["rows_out"] == 2
    assert by_stage["generate"]["llm_calls"] == 4
    assert by_stage["generate"]["tokens_out"] > 0

    stage_dir = {p.name.split("_", 1)[1]: p for p in run_dir.iterdir() if p.is_dir() and p.name[:2].isdigit()}
    loaded = {c["id"]: c for c in read_jsonl(stage_dir["load"] / "data.jsonl")}
    assert len(loaded) == 2
    pairs = read_jsonl(stage_dir["generate"] / "data.jsonl")
    assert pairs, "the embedded model produced no valid pair"
    for p in pairs:
        assert p["question"].strip() and p["answer"].strip()
        assert p["question"].rstrip().endswith("?"), "the question form is enforced while decoding"
        assert p["provenance"]["chunk_id"] in loaded
        assert p["provenance"]["model"].startswith("local/")
        assert p["provenance"]["run_id"] == metrics["run_id"]
        assert p["provenance"]["source_text"] == loaded[p["provenance"]["chunk_id"]]["text"]

    gated = read_jsonl(stage_dir["filter"] / "data.jsonl")
    dropped = read_jsonl(stage_dir["filter"] / "dropped.jsonl")
    assert len(gated) + len(dropped) == len(read_jsonl(stage_dir["enrich"] / "data.jsonl"))
    assert all(d["reason"] and d["stage"] == "filter" for d in dropped)
    rated = read_jsonl(stage_dir["curate"] / "data.jsonl")
    assert len(rated) == by_stage["curate"]["rows_out"]
    assert len(rated) == len(gated), "threshold 0: every pair that passed the gates is kept"
    for r in rated:
        rt = r["rating"]
        assert rt["method"] == "logprob" and 0 <= rt["total"] <= 10
        assert set(rt["scores"]) == {"supported", "answerable"}
        assert all(0 <= v <= 1 for v in rt["scores"].values())

    files = list((stage_dir["export"]).rglob("*.jsonl"))
    exported = [row for f in files if f.name != "data.jsonl" for row in read_jsonl(f)]
    assert len(exported) == len(rated)
    for row, src in zip(exported, rated, strict=True):
        roles = [m["role"] for m in row["messages"]]
        assert roles[-2:] == ["user", "assistant"]
        assert row["messages"][-2]["content"] == src["question"]
        assert row["messages"][-1]["content"] == src["answer"]
    # the exported pairs all pass the quality gates again (acceptance of issue 8)
    ctx = StageContext(name="recheck", run_id="r", run_dir=tmp_path, stage_dir=tmp_path / "recheck",
                       show_progress=False)
    ctx.stage_dir.mkdir()
    records = [Record.model_validate(r) for r in rated]
    assert len(Filter().run(records, ctx)) == len(records) == len(exported)
