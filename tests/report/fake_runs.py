"""Run and sweep folders with synthetic rows, laid out as the runner writes them (for tests and benchmarks).

A QA-shaped run: ``01_load`` chunks -> ``02_generate`` pairs -> ``03_curate`` (rating, threshold,
``rejected.jsonl`` with reasons) -> ``04_export``. Rating totals follow a fixed seeded
distribution, so tests can recount them from the files.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson
import yaml

from synthrun.io import write_json
from synthrun.metrics import RunMetrics, StageMetrics

SCRIPT = "<script>alert(1)</script>"


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"".join(orjson.dumps(r) + b"\n" for r in rows))


def _stage(run_dir: Path, index: int, name: str, rows: list[dict[str, Any]], sm: StageMetrics,
           details: dict[str, Any] | None = None) -> None:
    d = run_dir / f"{index:02d}_{name}"
    _write(d / "data.jsonl", rows)
    write_json(d / "summary.json", {"metrics": sm.model_dump(), "details": details or {}})
    (d / "_SUCCESS").write_text("fake\n")


def write_fake_run(run_dir: str | Path, n: int = 200, threshold: float = 7.0, seed: int = 0, labels: bool = False,
                   hostile_row: bool = True, overrides: list[str] | None = None) -> Path:
    """Write a finished QA run of ``n`` generated pairs; return the folder.

    Args:
        labels: Give every rated pair a ``label`` (positive more likely for high totals), for the ROC part.
        hostile_row: The first pair's question and answer carry ``<script>alert(1)</script>`` and markup.
    """
    run_dir = Path(run_dir)
    rng = random.Random(seed)
    chunks = [{"id": f"c{i}", "text": f"Chunk {i} about HDF5 groups and datasets.", "source": f"doc{i % 7}.md"}
              for i in range(max(1, n // 2))]
    pairs = []
    for i in range(n):
        q, a = f"What does chunk {i // 2} say about groups (v{i})?", f"It says groups hold datasets ({i})."
        if hostile_row and i == 0:
            q = f"Why {SCRIPT} <b>bold</b> <img src=x onerror=alert(2)>?"
            a = f"Because {SCRIPT}"
        pairs.append({"id": f"p{i}", "question": q, "answer": a, "question_type": "factual",
                      "provenance": {"chunk_id": f"c{i // 2}", "source": f"doc{(i // 2) % 7}.md"}})
    kept, rejected = [], []
    for p in pairs:
        parts = [rng.choice([1, 2, 2, 3, 3]), rng.choice([1, 2, 3, 3]), rng.choice([0, 1, 2, 2]), rng.choice([0, 1, 1, 2])]
        total = float(sum(parts))
        rated = {**p, "rating": {"clarity": parts[0], "accuracy": parts[1], "usefulness": parts[2],
                                 "difficulty": parts[3], "total": total, "reasoning": "ok", "judge_model": "fake"}}
        if labels:
            rated["label"] = int(rng.random() < total / 10)
        if total >= threshold:
            kept.append(rated)
        else:
            rejected.append({**rated, "rejected_reason": f"rating {total:g} < {threshold:g}"})
    sms = [
        StageMetrics(name="load", target="synthrun.stages.load_chunks.LoadChunks", rows_out=len(chunks), wall_time_s=0.2),
        StageMetrics(name="generate", target="synthrun.stages.qa_generate.GenerateQA", rows_in=len(chunks),
                     rows_out=n, llm_calls=n, tokens_in=180 * n, tokens_out=60 * n, cost_usd=round(n * 2e-5, 6),
                     wall_time_s=n * 0.01),
        StageMetrics(name="curate", target="synthrun.stages.curate.Curate", rows_in=n, rows_out=len(kept),
                     llm_calls=n, cache_hits=n // 10, tokens_in=300 * n, tokens_out=40 * n,
                     cost_usd=round(n * 3e-5, 6), wall_time_s=n * 0.005,
                     failures={"below_threshold": len(rejected)} if rejected else {}),
        StageMetrics(name="export", target="synthrun.stages.export.Export", rows_in=len(kept), rows_out=len(kept),
                     wall_time_s=0.1),
    ]
    for sm in sms:
        sm.retention = round(sm.rows_out / sm.rows_in, 4) if sm.rows_in else None
    _stage(run_dir, 1, "load", chunks, sms[0])
    _stage(run_dir, 2, "generate", pairs, sms[1])
    _stage(run_dir, 3, "curate", kept, sms[2], {"threshold": threshold, "kept": len(kept), "rejected": len(rejected)})
    _write(run_dir / "03_curate" / "rejected.jsonl", rejected)
    _stage(run_dir, 4, "export", kept, sms[3])
    overrides = list(overrides or [f"curate.threshold={threshold:g}"])
    metrics = RunMetrics(run_id=f"qa/{run_dir.name}", recipe="qa", status="completed", provider="local",
                         model="local/smollm2-135m", overrides=overrides, stages=sms, wall_time_s=1.0)
    metrics.recompute_totals()
    cfg = {"recipe_name": "qa", "stages": ["load", "generate", "curate", "export"],
           "curate": {"_target_": "synthrun.stages.curate.Curate", "threshold": threshold},
           "paths": {"output_root": str(run_dir.parent), "cache_dir": str(run_dir.parent / ".cache")}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg), encoding="utf-8")
    write_json(run_dir / "metrics.json", metrics.model_dump())
    return run_dir


def write_fake_sweep(sweep_dir: str | Path, thresholds: tuple[float, ...] = (6, 7, 8), n: int = 60) -> Path:
    """A sweep folder with one fake run per ``curate.threshold``."""
    sweep_dir = Path(sweep_dir)
    for t in thresholds:
        write_fake_run(sweep_dir / f"curate.threshold={t:g}", n=n, threshold=float(t),
                       overrides=["+recipe=qa", f"curate.threshold={t:g}", f"paths.output_root={sweep_dir}"])
    return sweep_dir
