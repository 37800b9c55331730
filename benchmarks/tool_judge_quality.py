"""How well tool-use curation tells correct examples from wrong ones, on the labelled dev set.

Scores every row of tests/data/judge/tool_dev.jsonl four ways, with the embedded model by default:

* ``today``: the sampled-integer rating of ``tool_curate`` (``scoring: sampled``, prompt tool_rate);
* ``checks``: the deterministic checks alone (share of checks passed, 0-10);
* ``prob``: the probability judge alone (P(yes) of right_tool / args_match / answer_follows);
* ``both``: what the shipped recipes do: the checks drop an example (score 0), the judge ranks the rest.

and prints ROC-AUC overall and per kind (good rows against that kind alone), the best-F1 threshold,
calls and time, all measured in this one run. ``--per-kind N`` uses the first N rows of each kind
(a quicker run), ``--skip today`` leaves a method out, ``--split held-out`` keeps the odd groups
only (the ``best_tool`` check's knobs were tuned on the even ones: benchmarks/tool_match_tuning.py).

    python benchmarks/tool_judge_quality.py [--per-kind 12] [--skip today] [--split held-out] [--provider local]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "tests" / "data" / "judge" / "tool_dev.jsonl"
GOALS = {"overall": 0.85, "wrong_tool": 0.90, "wrong_arg_value": 0.80}


def make_ctx(tmp: Path, name: str, provider: dict):
    from synthrun.context import StageContext

    (tmp / name).mkdir(parents=True, exist_ok=True)
    return StageContext(name=name, run_id="bench", run_dir=tmp, stage_dir=tmp / name, provider=provider,
                        show_progress=False, seed=0)


def in_split(row_id: str, split: str) -> bool:
    """``tune``: even groups (``hdf5-06-*``), on which the best_tool check was tuned; ``held-out``: odd ones."""
    if split == "all":
        return True
    parts = row_id.split("-")
    even = len(parts) > 1 and parts[1].isdigit() and int(parts[1]) % 2 == 0
    return even if split == "tune" else not even


def load_rows(path: Path, per_kind: int | None, split: str = "all") -> list:
    from synthrun.tools.labelled import row_to_example

    rows, seen = [], {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        row = json.loads(line)
        if not in_split(str(row.get("id", "")), split):
            continue
        seen[row["kind"]] = seen.get(row["kind"], 0) + 1
        if per_kind is None or seen[row["kind"]] <= per_kind:
            rows.append(row_to_example(row, f"{path}:{n}"))
    return rows


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dev", type=Path, default=DEV)
    ap.add_argument("--per-kind", type=int, default=None)
    ap.add_argument("--split", choices=["all", "tune", "held-out"], default="all",
                    help="rows of the dev set: held-out = the odd groups the best_tool check was not tuned on")
    ap.add_argument("--skip", nargs="*", default=[], choices=["today", "prob"])
    ap.add_argument("--provider", default="local", help="conf/provider/NAME.yaml")
    ap.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    ap.add_argument("--scores", type=Path, default=None,
                    help="also write every row's score per method here (JSON: method -> id -> score)")
    ap.add_argument("--reuse", type=Path, default=None,
                    help="take the judge's scores (today, prob) from a --scores file of an earlier run of the same "
                         "rows and judge instead of calling the model again; the checks are recomputed")
    args = ap.parse_args(argv)

    import yaml

    from synthrun.scoring.judge_metrics import evaluate
    from synthrun.stages.tool_curate import CurateTools
    from synthrun.stages.tool_filter import FilterTools

    provider = yaml.safe_load((ROOT / "conf" / "provider" / f"{args.provider}.yaml").read_text())
    examples = load_rows(args.dev, args.per_kind, args.split)
    labels = {ex.id: int(ex.label) for ex in examples}
    kinds = {ex.id: ex.kind for ex in examples}
    scores: dict[str, dict[str, float]] = {}
    cost: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="tool-judge-bench-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.time()
        marked = FilterTools(mode="mark").run(examples, make_ctx(tmp, "checks", provider))
        scores["checks"] = {ex.id: float(ex.metadata["checks_score"]) for ex in marked}
        passed = {ex.id: not getattr(ex, "gate_failed", None) for ex in marked}
        cost["checks"] = f"0 calls, {time.time() - t0:.1f} s"
        plain = dict(threshold=None, on_bad_step="keep", require_execution=False, rewrite_answer=False)
        reused = json.loads(args.reuse.read_text()) if args.reuse else {}
        for method in ("today", "prob"):
            if method in reused and method not in args.skip:
                scores[method] = {i: float(reused[method][i]) for i in labels}
                cost[method] = f"reused from {args.reuse.name}"
        if "prob" in scores:
            scores["both"] = {i: (scores["prob"].get(i, 0.0) if passed[i] else 0.0) for i in labels}
            cost["both"] = cost["prob"] + " (judge) + checks"
        if "prob" not in args.skip and "prob" not in scores:
            t0 = time.time()
            ctx = make_ctx(tmp, "prob", provider)
            rated = CurateTools(**plain).run(examples, ctx)
            scores["prob"] = {ex.id: ex.rating.total for ex in rated if ex.rating}
            scores["both"] = {i: (scores["prob"].get(i, 0.0) if passed[i] else 0.0) for i in labels}
            cost["prob"] = f"{ctx.stats.calls} forward passes, {time.time() - t0:.1f} s"
            cost["both"] = cost["prob"] + " (judge) + checks"
        if "today" not in args.skip and "today" not in scores:
            t0 = time.time()
            ctx = make_ctx(tmp, "today", provider)
            rated = CurateTools(scoring="sampled", **plain).run(examples, ctx)
            scores["today"] = {ex.id: ex.rating.total for ex in rated if ex.rating}
            cost["today"] = f"{ctx.stats.calls} calls, {time.time() - t0:.1f} s"
    kind_names = sorted({k for k in kinds.values() if k != "correct"})
    header = ["method", "overall", *kind_names, "best-F1 thr", "cost"]
    print(f"# tool judge quality: {len(examples)} rows ({sum(labels.values())} correct, split {args.split}) from "
          f"{args.dev.name}, "
          f"judge {provider.get('model')}; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    report = {}
    for method in ("today", "checks", "prob", "both"):
        if method not in scores:
            continue
        rows = [{"label": labels[i], "score": scores[method].get(i, 0.0), "kind": kinds[i]} for i in labels]
        ev = evaluate(rows, 5.0)
        report[method] = ev
        per = [f"{ev['per_kind'][k].get('auc_vs_good', float('nan')):.3f}" for k in kind_names]
        print(f"| {method} | {ev['roc_auc']:.3f} | " + " | ".join(per) +
              f" | {ev['best_f1']['threshold']:g} (F1 {ev['best_f1']['f1']:.2f}) | {cost[method]} |")
    if "both" in report:
        ev = report["both"]
        for goal, bar in GOALS.items():
            got = ev["roc_auc"] if goal == "overall" else ev["per_kind"][goal]["auc_vs_good"]
            print(f"goal both {goal} >= {bar}: {got:.3f} {'met' if got >= bar else f'MISSED by {bar - got:.3f}'}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.scores:
        args.scores.write_text(json.dumps(scores, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
