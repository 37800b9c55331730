"""Tune the ``best_tool`` check on half of the tool dev set and measure it on the other half.

The dev set (tests/data/judge/tool_dev.jsonl) has 36 groups (``hdf5-07-*``: one request, one row per
kind). Even groups tune, odd groups are held out. On the tuning half this grid-searches the check's
``match_lexical_weight`` and ``match_margin`` for the best (overall AUC + wrong_tool AUC) of the
checks alone (share of checks passed, 0-10), then prints, all measured in this run:

* per split (tune, held-out, all): ROC-AUC overall and per kind of the checks without and with
  ``best_tool``, and how many rows of each kind the check fails;
* a stress case: the HDF5 rows with all 25 tools of recipes/data/hdf5_tools.json offered instead of
  the needed ones plus a few distractors (the recipes offer ``n_distractors: 3``; ``hdf5_tools`` can
  offer all): how many correct rows the check then fails and how many wrong_tool rows it catches,
  per split, for the check before (whole request only, ``match_task_words: false``, margin 0.04)
  and after (a rival must also fit better on the request's task words; tuned here).

    python benchmarks/tool_match_tuning.py [--model all-MiniLM-L6-v2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synthrun.records import ToolExample  # noqa: E402
from synthrun.scoring.judge_metrics import evaluate  # noqa: E402
from synthrun.scoring.tool_gates import ToolGateConfig, check_all  # noqa: E402
from synthrun.scoring.tool_match import best_match  # noqa: E402
from synthrun.tools.labelled import row_to_example  # noqa: E402
from synthrun.tools.loading import parse_spec  # noqa: E402
from synthrun.tools.replay import example_tools  # noqa: E402
from synthrun.tools.spec import ToolSpec  # noqa: E402

DEV = ROOT / "tests" / "data" / "judge" / "tool_dev.jsonl"
SPEC = ROOT / "recipes" / "data" / "hdf5_tools.json"
WEIGHTS = [0.0, 0.01, 0.02, 0.03, 0.05, 0.08]
MARGINS = [round(-0.02 + 0.005 * i, 3) for i in range(45)]
BASE_CHECKS = ["schema", "grounded", "answer_uses_results", "specific_request"]


def group(ex: ToolExample) -> int:
    return int(ex.id.split("-")[1])


def split_of(ex: ToolExample) -> str:
    return "tune" if group(ex) % 2 == 0 else "held-out"


def score_rows(exs: list[ToolExample], base: list[int], margins: list[float], thr: float | None) -> list[dict[str, Any]]:
    """Checks-alone scores: share of checks passed (with ``best_tool`` when ``thr`` is set)."""
    rows = []
    for ex, ok, m in zip(exs, base, margins, strict=True):
        n, passed = (len(BASE_CHECKS), ok) if thr is None else (len(BASE_CHECKS) + 1, ok + (m <= thr))
        rows.append({"label": int(ex.metadata.get("label", ex.label or 0)), "kind": ex.kind, "score": 10.0 * passed / n})
    return rows


def objective(ev: dict[str, Any]) -> float:
    return float(ev["roc_auc"]) + float(ev["per_kind"]["wrong_tool"]["auc_vs_good"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="all-MiniLM-L6-v2", help="embedding model of the check ('none': lexical only)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    model = None if args.model.lower() == "none" else args.model
    t0 = time.perf_counter()
    exs = [row_to_example(json.loads(line), f"{DEV.name}:{n}") for n, line in
           enumerate(DEV.read_text().splitlines(), 1) if line.strip()]
    tools = [example_tools(ex) for ex in exs]
    cfg = ToolGateConfig()
    base = [sum(v is None for v in check_all(ex, ts, cfg, BASE_CHECKS).values()) for ex, ts in zip(exs, tools, strict=True)]
    tune = {i for i, ex in enumerate(exs) if split_of(ex) == "tune"}
    margins_by_w = {w: [best_match(ex, ts, model, w, cfg.match_task_words).margin
                        for ex, ts in zip(exs, tools, strict=True)] for w in WEIGHTS}
    grid = [(objective(evaluate([r for i, r in enumerate(score_rows(exs, base, margins, thr)) if i in tune], 5.0)), w, thr)
            for w, margins in margins_by_w.items() for thr in MARGINS]
    top = max(g[0] for g in grid)
    weight = next(w for obj, w, _ in grid if obj >= top - 1e-9)  # the smallest weight that reaches it
    plateau = [thr for obj, w, thr in grid if w == weight and obj >= top - 1e-9]
    thr = plateau[len(plateau) // 2]  # the middle of the best thresholds, not its edge
    print(f"# best_tool check tuned on the even groups of {DEV.name} ({len(tune)} rows); model {model}; "
          f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"chosen: match_lexical_weight {weight:g}, match_margin {thr:g} (defaults in ToolGateConfig: "
          f"{cfg.match_lexical_weight:g}, {cfg.match_margin:g})\n")
    margins = margins_by_w[weight]
    kinds = sorted({ex.kind for ex in exs if ex.kind != "correct"})
    print("| split | checks | rows | overall | " + " | ".join(kinds) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(kinds))
    report: dict[str, Any] = {"lexical_weight": weight, "margin": thr, "model": model}
    for split in ("tune", "held-out", "all"):
        idx = [i for i, ex in enumerate(exs) if split in ("all", split_of(ex))]
        for label, t in (("without best_tool", None), ("with best_tool", thr)):
            rows = score_rows(exs, base, margins, t)
            ev = evaluate([rows[i] for i in idx], 5.0)
            report[f"{split} {label}"] = ev
            cells = [f"{ev['per_kind'][k]['auc_vs_good']:.3f}" for k in kinds]
            print(f"| {split} | {label} | {len(idx)} | {ev['roc_auc']:.3f} | " + " | ".join(cells) + " |")
    fails = {k: sum(1 for ex, m in zip(exs, margins, strict=True) if ex.kind == k and m > thr)
             for k in ["correct", *kinds]}
    total = {k: sum(1 for ex in exs if ex.kind == k) for k in fails}
    print("\nrows best_tool fails (all splits): " + ", ".join(f"{k} {fails[k]}/{total[k]}" for k in fails))
    report["fails"] = fails
    report["stress before"] = stress(exs, model, 0.03, 0.04, False, "before (whole request only, weight 0.03, margin 0.04)")
    report["stress after"] = stress(exs, model, weight, thr, cfg.match_task_words,
                                    f"after (task words {cfg.match_task_words}, weight {weight:g}, margin {thr:g})")
    print(f"time {time.perf_counter() - t0:.0f} s; load now {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def stress(exs: list[ToolExample], model: str | None, weight: float, thr: float, task_words: bool,
           title: str) -> dict[str, dict[str, int]]:
    """Correct/wrong_tool HDF5 rows judged against all 25 spec tools instead of the offered few."""
    full: list[ToolSpec] = parse_spec(json.loads(SPEC.read_text()), "auto", SPEC.name).tools
    names = {t.name for t in full}
    out: dict[str, dict[str, int]] = {}
    for ex in exs:
        if ex.kind not in ("correct", "wrong_tool") or not {s.tool for s in ex.reasoning_path} <= names:
            continue
        for split in (split_of(ex), "all"):
            cell = out.setdefault(split, {"correct": 0, "correct_rows": 0, "wrong_tool": 0, "wrong_tool_rows": 0})
            cell[f"{ex.kind}_rows"] += 1
            cell[ex.kind] += best_match(ex, full, model, weight, task_words).margin > thr
    print(f"stress (all {len(full)} HDF5 tools offered), {title}: best_tool fails " + "; ".join(
        f"{split} {c['correct']}/{c['correct_rows']} correct (false fails), "
        f"{c['wrong_tool']}/{c['wrong_tool_rows']} wrong_tool (recall)" for split, c in sorted(out.items())))
    return out


if __name__ == "__main__":
    raise SystemExit(main())
