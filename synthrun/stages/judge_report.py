"""Measure a judge on labelled pairs: ROC-AUC, precision/recall/F1, best-F1 threshold, score per bad kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field

from synthrun.context import StageContext
from synthrun.io import atomic_write_text, write_json
from synthrun.records import Record
from synthrun.scoring.judge_metrics import evaluate
from synthrun.stage import Stage, StageError


def label_of(record: Record) -> int:
    """The record's 0/1 label (``label``: 1/0, true/false, "good"/"bad")."""
    data = record.model_dump()
    if "label" not in data or data["label"] is None:
        where = (record.provenance.source or "input").split("#")[0]
        raise StageError(f"judge_report: record {record.id or '?'} (from {where}) has no 'label' "
                         f"(1 = good pair, 0 = bad pair)")
    value = data["label"]
    if isinstance(value, str):
        value = {"1": 1, "0": 0, "good": 1, "bad": 0, "true": 1, "false": 0}.get(value.strip().lower(), value)
    if value not in (0, 1, True, False):
        raise StageError(f"judge_report: record {record.id or '?'} has label {data['label']!r}; use 1 (good) or 0 (bad)")
    return int(value)


def upstream_costs(ctx: StageContext) -> dict[str, Any]:
    """LLM calls, tokens and time of the stages before this one (from their summary.json)."""
    totals = {"llm_calls": 0, "tokens_in": 0, "tokens_out": 0, "wall_time_s": 0.0}
    mine = ctx.stage_dir.name
    for path in sorted(Path(ctx.run_dir).glob("*/summary.json")):
        if path.parent.name >= mine:
            continue
        m = json.loads(path.read_text()).get("metrics") or {}
        for key in totals:
            totals[key] += m.get(key) or 0
    totals["wall_time_s"] = round(totals["wall_time_s"], 3)
    return totals


def render_report(ev: dict[str, Any]) -> str:
    at, best = ev["at_threshold"], ev["best_f1"]
    lines = [
        "# Judge evaluation", "",
        f"- judge: {ev.get('judge_model') or '?'}; scoring method: {ev.get('method')}",
        f"- rows: {ev['rows']} ({ev['good']} good, {ev['bad']} bad); unrated rows scored 0: {ev.get('unrated', 0)}",
        f"- **ROC-AUC: {ev['roc_auc']:.3f}**",
        f"- at threshold {at['threshold']:g}: precision {at['precision']:.3f}, recall {at['recall']:.3f}, "
        f"F1 {at['f1']:.3f} ({at['kept']} kept)",
        f"- best F1 {best['f1']:.3f} at threshold {best['threshold']:g} (precision {best['precision']:.3f}, "
        f"recall {best['recall']:.3f})",
        f"- cost: {ev['llm_calls']} LLM calls, {ev['tokens_in']} tokens in, {ev['tokens_out']} out, "
        f"{ev['wall_time_s']:g} s", "",
        "## Score per kind", "", "| kind | rows | mean score (0-10) | AUC good vs this kind |", "|---|---:|---:|---:|",
    ]
    for kind, entry in ev["per_kind"].items():
        auc = entry.get("auc_vs_good")
        lines.append(f"| {kind} | {entry['rows']} | {entry['mean_score']:.2f} | {'' if auc is None else f'{auc:.3f}'} |")
    return "\n".join(lines) + "\n"


class JudgeReport(Stage):
    """Compare ``rating.total`` with each record's ``label`` and write ``report.md`` / ``report.json``.

    Records pass through unchanged. A record without a rating counts as score 0 (a judge that
    fails is not rewarded). The metrics (``roc_auc``, precision/recall/F1 at ``threshold``, the
    best-F1 threshold, mean score and AUC per ``kind``, calls, tokens, time and the scoring
    method) also go to ``metrics.json`` under ``evaluation``, and the sweep summary ranks runs by AUC.

    Attributes:
        threshold: The export threshold to report precision/recall/F1 at (0-10).
    """

    input_type: ClassVar[type[Record]] = Record
    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    threshold: float = Field(default=5.0, ge=0, le=10)

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        if not records:
            raise StageError("judge_report: no records to evaluate")
        rows, methods, models, unrated = [], {}, {}, 0
        for record in records:
            label = label_of(record)
            rating = getattr(record, "rating", None)
            if isinstance(rating, dict):
                total, method, model = rating.get("total"), rating.get("method"), rating.get("judge_model")
            elif rating is not None:
                total, method, model = rating.total, getattr(rating, "method", None), rating.judge_model
            else:
                total, method, model = None, None, None
            if total is None:
                unrated += 1
                total = 0.0
            method = str(method or ("none" if rating is None else "sampled"))
            methods[method] = methods.get(method, 0) + 1
            if model:
                models[str(model)] = models.get(str(model), 0) + 1
            rows.append({"label": label, "score": float(total), "kind": getattr(record, "kind", None)})
        labels = {r["label"] for r in rows}
        if len(labels) < 2:
            raise StageError(f"judge_report: all {len(rows)} labelled rows have label {labels.pop()}; "
                             f"ROC-AUC needs good (1) and bad (0) rows")
        ev = evaluate(rows, self.threshold)
        ev.update(upstream_costs(ctx))
        ev["unrated"] = unrated
        ev["methods"] = methods
        ev["method"] = "+".join(sorted(m for m in methods if m != "gate")) or "gate"
        ev["judge_model"] = max(models, key=models.get) if models else ctx.model_name
        write_json(ctx.stage_dir / "report.json", ev)
        atomic_write_text(ctx.stage_dir / "report.md", render_report(ev))
        ctx.summary["evaluation"] = ev
        ctx.log.info("judge %s: ROC-AUC %.3f on %d rows (method %s)", ev["judge_model"], ev["roc_auc"],
                     ev["rows"], ev["method"])
        return records
