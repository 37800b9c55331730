"""Recipe-specific report parts: tool execution by tool, the dependency graph, the selection map."""

from __future__ import annotations

import numpy as np

from synthrun.embeddings import Embedder, EmbeddingCache, text_key
from synthrun.io import write_json, write_jsonl
from synthrun.report.kinds import selection_map, tool_execution, tool_graph
from synthrun.report.page import run_charts
from synthrun.tools.graph import ToolGraph
from synthrun.tools.loading import load_spec


def test_tool_execution_counts_calls_per_tool(tmp_path):
    def ex(i, steps, **extra):
        return {"id": f"e{i}", "instruction": "x", "reasoning_path": [
            {"step": j + 1, "tool": tool, "ok": ok, "simulated": sim} for j, (tool, ok, sim) in enumerate(steps)],
            **extra}

    write_jsonl(tmp_path / "data.jsonl", [
        ex(0, [("open_file", True, False), ("get_by_path", True, False), ("read_full_dataset", False, False)]),
        ex(1, [("open_file", True, False), ("list_children", None, False)]),
        ex(2, [("open_file", True, False)]),
    ])
    write_jsonl(tmp_path / "dropped.jsonl", [ex(3, [("open_file", False, True)], dropped_reason="bad path")])
    out = tool_execution(tmp_path)
    assert out["examples"] == 4 and out["ok_examples"] == 1
    tools = dict(out["tools"])
    assert tools["open_file"] == {"ok": 3, "failed": 1, "not_run": 0, "simulated": 1}
    assert tools["read_full_dataset"]["failed"] == 1 and tools["list_children"]["not_run"] == 1
    assert out["tools"][0][0] == "open_file"  # most used first


def test_tool_graph_from_the_parse_stage_file(tmp_path):
    graph = ToolGraph(load_spec("recipes/data/hdf5_tools.json").tools)
    write_json(tmp_path / "graph.json", graph.to_json((2, 3), chain_limit=10))
    g = tool_graph(tmp_path)
    assert len(g["nodes"]) == 25 and ("open_file", "get_by_path") in g["edges"]
    assert g["chains"]["2"] > 0
    data = {"funnel": [], "scores": [], "roc": [], "selection": None, "graph": g,
            "tools": {"stage": "execute", "examples": 1, "ok_examples": 1,
                      "tools": [("open_file", {"ok": 2, "failed": 0, "not_run": 0, "simulated": 0})]}}
    names = [c["name"] for c in run_charts(data)["tools"]]
    assert names == ["tool-success", "tool-graph"]
    assert tool_graph(tmp_path / "nothing") is None


def test_selection_map_reads_cached_vectors_and_rings_selected_rows(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(8, dtype=np.float32)[:3] * 5
    rows, vectors = [], []
    for i in range(60):
        c = i % 3
        rows.append({"id": f"r{i}", "instruction": f"question {i} of topic {c}", "response": "a"})
        v = centres[c] + rng.normal(0, 0.3, 8).astype(np.float32)
        vectors.append(v / np.linalg.norm(v))
    cache_root = tmp_path / "cache" / "embeddings"
    key = Embedder("all-MiniLM-L6-v2").model_key  # the key the stage's default route writes
    cache = EmbeddingCache(cache_root, key)
    cache.put([text_key(r["instruction"]) for r in rows], np.stack(vectors))
    cache.close()
    write_jsonl(tmp_path / "in.jsonl", rows)
    kept = [{**rows[i], "cluster_id": i % 3, "original_index": i} for i in (0, 1, 2, 30, 31)]
    write_jsonl(tmp_path / "kept.jsonl", kept)

    out = selection_map(tmp_path / "in.jsonl", tmp_path / "kept.jsonl", {"model": "all-MiniLM-L6-v2"}, cache_root)
    assert out["input_rows"] == 60 and out["selected"] == 5 and out["clusters"] == 3
    pts = out["points"]
    assert len(pts) == 60 and sum(p[3] for p in pts) == 5
    # every row takes the cluster of its own topic (the one its vector was drawn around)
    assert [p[2] for p in pts] == [i % 3 for i in range(60)]
    # PCA keeps the clusters apart: each cluster's points lie nearer their own mean than another's
    xy = np.array([(p[0], p[1]) for p in pts])
    means = np.stack([xy[np.arange(60) % 3 == c].mean(axis=0) for c in range(3)])
    nearest = np.argmin(((xy[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (nearest == np.arange(60) % 3).all()


def test_selection_map_without_a_cache_is_a_note(tmp_path):
    write_jsonl(tmp_path / "in.jsonl", [{"instruction": "q"}])
    write_jsonl(tmp_path / "kept.jsonl", [{"instruction": "q", "cluster_id": 0, "original_index": 0}])
    out = selection_map(tmp_path / "in.jsonl", tmp_path / "kept.jsonl", {}, tmp_path / "none")
    assert out["points"] == [] and "no embedding cache" in out["note"]
    assert not (tmp_path / "none").exists()  # reading a report never creates a cache
