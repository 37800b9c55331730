"""How well do the judges tell good QA pairs from bad ones? ROC-AUC on the labelled dev set, one run.

Scores every row of tests/data/judge/qa_dev.jsonl with

  (a) today's sampled-integer judge (the ``curate`` stage: four integers decoded as JSON),
  (b) the deterministic gates alone (0 when a gate fails, else 5 + 5 x the soft support score),
  (c) the probability judge alone (``judge`` stage: P(yes) of focused checks, one prefill each),
  (d) gates + probability judge (0 when a gate fails, else the judge's total),

all on the embedded SmolLM2-135M, and prints ROC-AUC overall and per bad kind (good pairs against
that kind), the best-F1 threshold of (d), and the time each took. (a) decodes ~100 tokens per pair,
so by default it runs on a subset (``--sampled-rows``).

    python benchmarks/judge_quality.py [--rows N] [--sampled-rows N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from synthrun.context import StageContext  # noqa: E402
from synthrun.records import Record  # noqa: E402
from synthrun.scoring.gates import GateConfig, QAItem, check, support_score  # noqa: E402
from synthrun.scoring.judge_metrics import best_f1, evaluate, roc_auc  # noqa: E402
from synthrun.stages.filter import answer_similarities  # noqa: E402

DEV = ROOT / "tests" / "data" / "judge" / "qa_dev.jsonl"
LOCAL = {"name": "local", "model": "local/smollm2-135m", "concurrency": 8, "timeout": 600, "max_retries": 1,
         "temperature": 0.0, "max_tokens": 256, "seed": 0}
KINDS = ["statement", "vague", "echo", "truncated", "other_passage", "off_topic", "contradicted", "unanswerable"]
GOALS = {"overall": 0.90, "statement": 0.95, "vague": 0.95, "echo": 0.95, "truncated": 0.95, "other_passage": 0.95,
         "contradicted": 0.75, "unanswerable": 0.70}


def make_ctx(tmp: Path, name: str) -> StageContext:
    stage_dir = tmp / name
    stage_dir.mkdir(parents=True, exist_ok=True)
    return StageContext(name=name, run_id="bench", run_dir=tmp, stage_dir=stage_dir, provider=dict(LOCAL),
                        cache_path=None, show_progress=False)


def gate_scores(rows: list[dict], ctx: StageContext) -> tuple[list[float], list[str | None], list[float]]:
    cfg = GateConfig()
    items = [QAItem(r["question"], r["answer"], r["provenance"]["source_text"]) for r in rows]
    answer_similarities(items, cfg, ctx, "all-MiniLM-L6-v2")
    scores, reasons, support = [], [], []
    for item in items:
        ok, reason = check(item, cfg)
        support.append(support_score(item))
        scores.append(5 + 5 * support[-1] if ok else 0.0)
        reasons.append(reason)
    return scores, reasons, support


def prob_judge_scores(rows: list[dict], ctx: StageContext) -> tuple[list[float], dict]:
    from synthrun.stages.judge import Judge

    judge = Judge(threshold=None)
    out = judge.run([Record.model_validate(r) for r in rows], ctx)
    by_id = {r.id: r.rating.total for r in out if r.rating is not None}  # type: ignore[attr-defined]
    return [float(by_id.get(r["id"], 0.0)) for r in rows], dict(ctx.summary.get("methods", {}))


def sampled_scores(rows: list[dict], ctx: StageContext) -> list[float]:
    from synthrun.stages.curate import Curate, rate_records

    rated = rate_records(Curate(threshold=0), [Record.model_validate(r) for r in rows], ctx)
    return [float(r.rating.total) if r.rating is not None else 0.0 for r in rated]


def table(results: dict[str, dict]) -> str:
    cols = ["overall", *KINDS]
    lines = ["| judge | rows | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
    for name, ev in results.items():
        cells = [f"{ev['roc_auc']:.3f}"]
        for kind in KINDS:
            auc = ev["per_kind"].get(kind, {}).get("auc_vs_good")
            cells.append("" if auc is None else f"{auc:.3f}")
        lines.append(f"| {name} | {ev['rows']} | " + " | ".join(cells) + " |")
    goal = ["goal (d)", ""] + [f">= {GOALS[c]:.2f}" if c in GOALS else "" for c in cols]
    lines.append("| " + " | ".join(goal) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=None, help="use the first N rows of the dev set (default all)")
    ap.add_argument("--sampled-rows", type=int, default=60, help="rows for (a), the sampled-integer judge (0 skips)")
    ap.add_argument("--json", type=Path, default=None, help="also write the metrics here")
    ap.add_argument("--scores", type=Path, default=None,
                    help="keep the raw scores here and reuse them on the next run (phases already scored are skipped)")
    ap.add_argument("--quantize", choices=["none", "int8"], default=None,
                    help="the embedded model's weights (provider.quantize; default: the provider's default)")
    ap.add_argument("--support-weight", type=float, default=0.5,
                    help="(d): share of the score from the gates' support score (the recipes' curate.support_weight)")
    args = ap.parse_args(argv)
    if args.quantize:
        LOCAL["quantize"] = args.quantize
    rows = [json.loads(line) for line in DEV.read_text().splitlines() if line.strip()]
    rows = rows[: args.rows] if args.rows else rows
    print(f"dev set: {len(rows)} rows from {DEV.relative_to(ROOT)}; load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores; quantize {LOCAL.get('quantize', 'default')}", flush=True)
    labels = [int(r["label"]) for r in rows]
    results: dict[str, dict] = {}
    timing: dict[str, float] = {}
    saved = json.loads(args.scores.read_text()) if args.scores and args.scores.is_file() else {}

    def keep(name: str, value) -> None:  # scores survive a crash or a re-run of the report
        saved[name] = value
        if args.scores:
            args.scores.write_text(json.dumps(saved))

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        if "gates" not in saved:
            t0 = time.perf_counter()
            g_scores, reasons, support = gate_scores(rows, make_ctx(tmp, "gates"))
            keep("gates", {"scores": g_scores, "reasons": reasons, "support": support,
                           "seconds": time.perf_counter() - t0})
        gates = saved["gates"]
        timing["(b) gates alone"] = gates["seconds"]
        results["(b) gates alone"] = evaluate([{**r, "score": s} for r, s in zip(rows, gates["scores"], strict=True)], 5)
        print(f"(b) done in {gates['seconds']:.0f} s", flush=True)
        if "judge" not in saved:
            t0 = time.perf_counter()
            ctx = make_ctx(tmp, "judge")
            p_scores, methods = prob_judge_scores(rows, ctx)
            keep("judge", {"scores": p_scores, "methods": methods, "seconds": time.perf_counter() - t0,
                           "passes": ctx.stats.calls, "tokens": ctx.stats.prompt_tokens})
        judge = saved["judge"]
        p_scores = judge["scores"]
        timing["(c) probability judge"] = judge["seconds"]
        results["(c) probability judge"] = evaluate([{**r, "score": s} for r, s in zip(rows, p_scores, strict=True)], 5)
        print(f"(c) done in {judge['seconds']:.0f} s ({judge['passes']} forward passes, {judge['tokens']} prompt "
              f"tokens, methods {judge['methods']})", flush=True)
        w = args.support_weight
        d_scores = [0.0 if reason else (1 - w) * p + w * 10 * sup
                    for reason, p, sup in zip(gates["reasons"], p_scores, gates["support"], strict=True)]
        results[f"(d) gates + probability judge (support weight {w:g})"] = evaluate(
            [{**r, "score": s} for r, s in zip(rows, d_scores, strict=True)], 5)
        timing["(d) gates + probability judge"] = gates["seconds"] + judge["seconds"]
        reasons = gates["reasons"]
        if args.sampled_rows:
            sub = rows[: args.sampled_rows]
            if "sampled" not in saved:
                t0 = time.perf_counter()
                scores = sampled_scores(sub, make_ctx(tmp, "sampled"))
                keep("sampled", {"scores": scores, "seconds": time.perf_counter() - t0})
            timing["(a) sampled-integer judge"] = saved["sampled"]["seconds"]
            results["(a) sampled-integer judge"] = evaluate(
                [{**r, "score": s} for r, s in zip(sub, saved["sampled"]["scores"], strict=True)], 7)
            print(f"(a) done in {timing['(a) sampled-integer judge']:.0f} s", flush=True)
    print()
    print(table(results))
    best = best_f1(labels, d_scores)
    print(f"\n(d) best F1 {best['f1']:.3f} at threshold {best['threshold']:.2f} "
          f"(precision {best['precision']:.3f}, recall {best['recall']:.3f}); "
          f"AUC among gate-passing rows: {_passing_auc(labels, p_scores, reasons)}")
    print("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in timing.items()) + f"; load now {os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "timing": timing, "best_f1_d": best}, indent=2))
    return 0


def _passing_auc(labels: list[int], scores: list[float], reasons: list[str | None]) -> str:
    kept = [(y, s) for y, s, r in zip(labels, scores, reasons, strict=True) if r is None]
    try:
        return f"{roc_auc([y for y, _ in kept], [s for _, s in kept]):.3f} ({len(kept)} rows)"
    except ValueError:
        return "n/a"


if __name__ == "__main__":
    raise SystemExit(main())
