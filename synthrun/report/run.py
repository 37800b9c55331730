"""Everything the report of one run folder shows, gathered into plain dicts."""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import Any

from synthrun.report.gather import (
    PEEK_ROWS,
    SAMPLE_ROWS,
    SIDE_FILES,
    ReportError,
    bins_of,
    label_value,
    load_config,
    roc_from_summary,
    roc_points,
    rows,
    sample_lines,
    sample_view,
    score_values,
    stage_dirs,
    thresholds,
)
from synthrun.report.kinds import has_tool_steps, selection_map, tool_execution, tool_graph


def load_metrics(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "metrics.json"
    if not path.is_file():
        raise ReportError(f"{run_dir} is not a run folder (no metrics.json) nor a sweep folder (no */metrics.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ReportError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("stages"), list):
        raise ReportError(f"{path}: not a synthrun metrics file (no stages list)")
    return data


def _unwrap(row: dict[str, Any]) -> dict[str, Any]:
    """A side-file row as its record (a dropped.jsonl row is ``id, stage, reason, detail, record``)."""
    record = row.get("record")
    return record if record.__class__ is dict else row


def _peek(stage_dir: Path) -> list[dict[str, Any]]:
    """The first rows of a stage's data and side files (side-file rows as the records they wrap)."""
    out = list(islice(rows(stage_dir / "data.jsonl"), PEEK_ROWS))
    for name in SIDE_FILES:
        out += [_unwrap(r) for r in islice(rows(stage_dir / name), PEEK_ROWS)]
    return out


def _summary(stage_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((stage_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _score_stage(stage_dir: Path, fields: list[str]) -> tuple[dict[str, Counter], Counter]:
    """Stream a stage's rows (kept and dropped): value counts per score field, (label, score) counts."""
    counts: dict[str, Counter] = {f: Counter() for f in fields}
    specs = [(f.split(".", 1) if "." in f else (None, f), counts[f]) for f in fields]
    primary = next((f for f in ("rating.total", "multi_score.combined", "score", "judge_score") if f in fields),
                   fields[0])
    p_group, p_key = primary.split(".", 1) if "." in primary else (None, primary)
    pairs: Counter = Counter()
    number = (int, float)
    for name in ("data.jsonl", *SIDE_FILES):
        for row in rows(stage_dir / name):
            if name != "data.jsonl":
                row = _unwrap(row)
            for (group, key), counter in specs:
                src = row.get(group) if group else row
                if src.__class__ is dict:
                    v = src.get(key)
                    if v.__class__ in number:
                        counter[v] += 1
            if "label" in row:
                src = row.get(p_group) if p_group else row
                v = src.get(p_key) if src.__class__ is dict else None
                if v.__class__ in number:
                    pairs[(row["label"], v)] += 1
    labelled: Counter = Counter()
    for (lab, v), c in pairs.items():
        if (y := label_value(lab)) is not None:
            labelled[(y, round(float(v), 4))] += c
    return {f: _rounded(c) for f, c in counts.items()}, labelled


def _rounded(counter: Counter) -> Counter:
    out: Counter = Counter()
    for v, c in counter.items():
        out[round(float(v), 3)] += c
    return out


def _field_order(field: str) -> tuple[int, str]:
    first = ("rating.total", "multi_score.combined", "score", "judge_score")
    return (first.index(field) if field in first else len(first), field)


def _funnel(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in metrics["stages"]:
        out.append({
            "name": s.get("name", "?"), "enabled": s.get("enabled", True), "target": s.get("target", ""),
            "rows_in": int(s.get("rows_in") or 0), "rows_out": int(s.get("rows_out") or 0),
            "retention": s.get("retention"), "mean_rating": s.get("mean_rating"),
            "failures": sorted((s.get("failures") or {}).items(), key=lambda kv: -kv[1]),
            "llm_failures": sorted((s.get("llm_failures") or {}).items(), key=lambda kv: -kv[1]),
            "llm_calls": int(s.get("llm_calls") or 0), "cache_hits": int(s.get("cache_hits") or 0),
            "tokens_in": int(s.get("tokens_in") or 0), "tokens_out": int(s.get("tokens_out") or 0),
            "cost_usd": float(s.get("cost_usd") or 0.0), "wall_time_s": float(s.get("wall_time_s") or 0.0),
        })
    return out


def gather_run(run_dir: str | Path, sample_rows: int = SAMPLE_ROWS, seed: int = 0,
               light: bool = False) -> dict[str, Any]:
    """Read a run folder into the data of its report.

    Args:
        run_dir: The run folder (holds ``metrics.json`` and ``NN_stage/`` folders).
        sample_rows: Kept / dropped rows shown per file.
        seed: Seed of the reservoir samples.
        light: Only what a sweep compares (metrics, funnel, AUC): no samples, maps or graphs.
    """
    run_dir = Path(run_dir)
    metrics = load_metrics(run_dir)
    cfg = load_config(run_dir)
    data: dict[str, Any] = {
        "kind": "run", "dir": str(run_dir), "name": run_dir.name, "metrics": metrics, "funnel": _funnel(metrics),
        "scores": [], "roc": [], "tools": None, "graph": None, "selection": None, "kept": None, "dropped": [],
        "notes": [],
    }
    targets = {s.get("name"): str(s.get("target", "")) for s in metrics["stages"]}
    rows_in = {s.get("name"): int(s.get("rows_in") or 0) for s in metrics["stages"]}
    dirs = stage_dirs(run_dir)
    seen_fields: set[str] = set()
    prev_dir: Path | None = None
    for name, sdir in dirs:
        summary = _summary(sdir)
        details = summary.get("details") if isinstance(summary.get("details"), dict) else {}
        stage_cfg = cfg.get(name) if isinstance(cfg.get(name), dict) else {}
        peek = _peek(sdir)
        fields = sorted({f for r in peek for f in score_values(r)} - seen_fields, key=_field_order)
        roc = roc_from_summary(details)
        if fields:
            counts, labelled = _score_stage(sdir, fields)
            for f in fields:
                if not counts[f]:
                    continue
                line, bands = thresholds(stage_cfg, f)
                n = sum(counts[f].values())
                data["scores"].append({
                    "stage": name, "field": f, "bins": bins_of(counts[f], f), "n": n,
                    "mean": round(sum(v * c for v, c in counts[f].items()) / n, 3),
                    "threshold": line, "bands": bands, "stage_rows_in": rows_in.get(name, 0),
                })
            if roc is None and labelled:
                roc = roc_points(labelled)
            seen_fields |= set(fields)
        if roc:
            data["roc"].append({"stage": name, **roc})
        if not light:
            if data["graph"] is None:
                data["graph"] = tool_graph(sdir)
            if data["tools"] is None and any(has_tool_steps(r) for r in peek):
                data["tools"] = {"stage": name, **tool_execution(sdir)}
            if targets.get(name, "").endswith("SelectCoverage") and prev_dir is not None:
                cache = cfg.get("paths", {}).get("cache_dir") if isinstance(cfg.get("paths"), dict) else None
                try:
                    data["selection"] = {"stage": name, **selection_map(
                        prev_dir / "data.jsonl", sdir / "data.jsonl", stage_cfg,
                        Path(cache) / "embeddings" if cache else None, seed)}
                except Exception as exc:  # noqa: BLE001 - a map that cannot be drawn is a note, not a failure
                    data["notes"].append(f"selection map of {name} not drawn: {type(exc).__name__}: {exc}")
            for side in SIDE_FILES:
                total, sample = sample_lines(sdir / side, sample_rows, seed)
                if total:
                    data["dropped"].append({"stage": name, "file": f"{sdir.name}/{side}", "total": total,
                                            "rows": [sample_view(r) for r in sample]})
        prev_dir = sdir
    if not light and dirs:
        name, last = next(((n, d) for n, d in reversed(dirs) if (d / "data.jsonl").is_file()), dirs[-1])
        total, sample = sample_lines(last / "data.jsonl", sample_rows, seed)
        data["kept"] = {"stage": name, "file": f"{last.name}/data.jsonl", "total": total,
                        "rows": [sample_view(r) for r in sample]}
    auc = next((r["auc"] for r in data["roc"] if r.get("auc") is not None), None)
    data["auc"] = auc
    return data
