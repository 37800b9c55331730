"""The parts of a report that only some recipes have: tool execution and graph, selection map."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from synthrun.report.gather import SIDE_FILES, parse, raw_lines, rows

MAP_POINTS = 2000


def has_tool_steps(row: dict[str, Any]) -> bool:
    path = row.get("reasoning_path")
    return isinstance(path, list) and any(isinstance(s, dict) and s.get("ok") is not None for s in path)


def tool_execution(stage_dir: Path) -> dict[str, Any]:
    """Calls per tool in an executed stage (rows plus its dropped rows): ok / failed / not run / simulated."""
    per: dict[str, dict[str, int]] = {}
    examples = ok_examples = 0
    for name in ("data.jsonl", *SIDE_FILES):
        for row in rows(stage_dir / name):
            path = row.get("reasoning_path")
            if not isinstance(path, list):
                continue
            examples += 1
            ok_examples += bool(path) and all(isinstance(s, dict) and s.get("ok") for s in path)
            for step in path:
                if not isinstance(step, dict):
                    continue
                c = per.setdefault(str(step.get("tool") or "?"), {"ok": 0, "failed": 0, "not_run": 0, "simulated": 0})
                c["ok" if step.get("ok") is True else "failed" if step.get("ok") is False else "not_run"] += 1
                c["simulated"] += bool(step.get("simulated"))
    tools = sorted(per.items(), key=lambda kv: (-(kv[1]["ok"] + kv[1]["failed"] + kv[1]["not_run"]), kv[0]))
    return {"examples": examples, "ok_examples": ok_examples, "tools": tools}


def tool_graph(stage_dir: Path) -> dict[str, Any] | None:
    """Nodes and edges of ``graph.json`` written by the parse stage, if any."""
    path = stage_dir / "graph.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    nodes = [str(n.get("id")) for n in data.get("nodes", []) if isinstance(n, dict)]
    edges = [(str(e.get("source")), str(e.get("target"))) for e in data.get("edges", []) if isinstance(e, dict)]
    chains = {k: len(v) for k, v in (data.get("chains") or {}).items() if isinstance(v, list)}
    return {"nodes": nodes, "edges": edges, "chains": chains}


def selection_map(input_path: Path, kept_path: Path, stage_cfg: dict[str, Any], cache_root: Path | None,
                  seed: int = 0) -> dict[str, Any]:
    """A 2-D PCA map of the embedded input rows of a coverage-selection stage, selected points ringed.

    Vectors come from the run's embedding cache (nothing is embedded here); the points are a
    sample of at most :data:`MAP_POINTS` rows. A row not selected takes the cluster of the
    nearest cluster centre (mean of the selected rows of that cluster).
    """
    import numpy as np

    from synthrun.embeddings import DEFAULT_MODEL, Embedder, EmbeddingCache, _slug, text_key
    from synthrun.textfields import prompt_text

    cluster_of: dict[int, int] = {}
    for row in rows(kept_path):
        if isinstance(row.get("original_index"), int) and isinstance(row.get("cluster_id"), int):
            cluster_of[row["original_index"]] = row["cluster_id"]
    rng = random.Random(seed)
    picked: list[tuple[int, bytes]] = []
    n = 0
    for n, line in enumerate(raw_lines(input_path), 1):
        if len(picked) < MAP_POINTS:
            picked.append((n - 1, line))
        else:
            j = rng.randrange(n)
            if j < MAP_POINTS:
                picked[j] = (n - 1, line)
    base = {"input_rows": n, "selected": len(cluster_of), "points": [], "note": ""}
    model_key = Embedder(str(stage_cfg.get("model") or DEFAULT_MODEL)).model_key  # the stage's route's key
    root = Path(stage_cfg["cache_dir"]) if stage_cfg.get("cache_dir") else cache_root
    if root is None or not (root / _slug(model_key) / "index.sqlite").is_file():
        return {**base, "note": "no embedding cache found for this run; the map needs the cached vectors"}
    field = stage_cfg.get("text_field")
    idx, keys = [], []
    for i, line in picked:
        row = parse(line)
        if row is not None:
            idx.append(i)
            keys.append(text_key(prompt_text(row, field)))
    cache = EmbeddingCache(root, model_key)
    try:
        found, vectors = cache.get(keys)
    finally:
        cache.close()
    if vectors is None or found.sum() < 3:
        return {**base, "note": "the embedding cache holds too few vectors of these rows to draw a map"}
    vec = vectors[found]
    idx = [i for i, f in zip(idx, found, strict=True) if f]
    centred = vec - vec.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    sel = np.array([i in cluster_of for i in idx])
    groups = np.array([cluster_of.get(i, -1) for i in idx])
    ids = sorted(set(groups[sel].tolist()))
    if ids and (~sel).any():
        centres = np.stack([vec[groups == c].mean(axis=0) for c in ids])
        groups[~sel] = np.array(ids)[np.argmax(vec[~sel] @ centres.T, axis=1)]
    groups[groups < 0] = 0
    points = [(float(x), float(y), int(g), bool(s)) for (x, y), g, s in zip(xy, groups, sel, strict=True)]
    return {**base, "points": points, "clusters": len(ids),
            "note": f"{len(points)} of {n} input rows shown" if len(points) < n else ""}
