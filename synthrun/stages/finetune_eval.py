"""Evaluate a LoRA fine-tune: eval loss before and after, base vs tuned answers side by side."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from synthrun.context import StageContext
from synthrun.io import atomic_write_text
from synthrun.records import Record
from synthrun.stage import Stage


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|") or "(empty)"


def render_report(name: str, before: float, after: float, n_eval: int, rows: list[dict]) -> str:
    change = (after - before) / before * 100 if before else float("nan")
    lines = [f"# Fine-tune report: {name}", "",
             f"Eval loss (mean per assistant token, {n_eval} held-out examples): "
             f"before {before:.4f}, after {after:.4f} ({change:+.1f} %).", "",
             "| # | question | reference | base model | tuned model |", "|---|---|---|---|---|"]
    for i, row in enumerate(rows, 1):
        lines.append(f"| {i} | {_cell(row['question'])} | {_cell(row['reference'])} | {_cell(row['base'])} "
                     f"| {_cell(row['tuned'])} |")
    return "\n".join(lines) + "\n"


class EvaluateFinetune(Stage):
    """Compare the base model and base + adapter on the records marked ``split: eval``.

    Writes ``<stage_dir>/report.md``: the eval loss (assistant tokens only, as in training) of both
    models, and their greedy answers to the held-out questions next to the reference answers.
    The eval records get ``base_answer`` and ``tuned_answer`` fields.

    Attributes:
        max_questions: Held-out questions answered in the report (all are used for the loss).
        max_new_tokens: Longest greedy answer.
    """

    output_type: ClassVar[type[Record]] = Record
    needs_all_records: ClassVar[bool] = True

    max_questions: int = Field(default=8, ge=0)
    max_new_tokens: int = Field(default=96, gt=0)

    def run(self, records: list[Record], ctx: StageContext) -> list[Record]:
        from synthrun.finetune.base import base_from_manifest, find_artifact, load_base, write_manifest
        from synthrun.finetune.tokens import encode_rows, eval_loss, greedy_answers, prompt_of

        _, manifest = find_artifact(ctx, "adapter")
        rows = [r.model_dump() for r in records if getattr(r, "split", None) == "eval"]
        if not rows:
            ctx.log.warning("evaluate: no held-out examples (split.eval_fraction is 0 or there is one source "
                            "chunk); nothing to compare")
            atomic_write_text(ctx.stage_dir / "report.md", "# Fine-tune report\n\nNo held-out examples: "
                              "raise split.eval_fraction or give data from more than one source chunk.\n")
            ctx.summary.update({"eval_examples": 0, "report": str(ctx.stage_dir / "report.md")})
            return records
        from peft import PeftModel

        base = base_from_manifest(manifest)
        model, tokenizer = load_base(base)
        encoded, _ = encode_rows(tokenizer, rows, int(manifest.get("max_seq_len", 512)))
        pad = tokenizer.pad_token_id
        shown = rows[: self.max_questions]
        prompts = [prompt_of(r["messages"])[0] for r in shown]
        ctx.log.info("evaluating the base model on %d held-out examples", len(encoded))
        before = eval_loss(model, encoded, pad)
        base_answers = greedy_answers(model, tokenizer, prompts, self.max_new_tokens)
        tuned = PeftModel.from_pretrained(model, manifest["adapter"])
        ctx.log.info("evaluating the tuned model")
        after = eval_loss(tuned, encoded, pad)
        tuned_answers = greedy_answers(tuned, tokenizer, prompts, self.max_new_tokens)
        table = []
        for row, prompt, b, t in zip(shown, prompts, base_answers, tuned_answers, strict=True):
            question = next((m["content"] for m in reversed(prompt) if m["role"] == "user"), "")
            table.append({"id": row["id"], "question": question, "reference": prompt_of(row["messages"])[1],
                          "base": b, "tuned": t})
        report = ctx.stage_dir / "report.md"
        atomic_write_text(report, render_report(base.name, before, after, len(encoded), table))
        change = round((after - before) / before * 100, 2) if before else None
        facts = {"eval_loss_before": round(before, 4), "eval_loss_after": round(after, 4),
                 "eval_loss_change_pct": change, "eval_examples": len(encoded), "report": str(report)}
        write_manifest(ctx.stage_dir, evaluation=facts)
        ctx.summary.update(facts)
        ctx.log.info("eval loss %.4f -> %.4f (%s %%); report: %s", before, after, change, report)
        answers = {t["id"]: t for t in table}
        out = []
        for rec in records:
            extra = answers.get(rec.id)
            out.append(Record.model_validate({**rec.model_dump(), "base_answer": extra["base"],
                                              "tuned_answer": extra["tuned"]}) if extra else rec)
        return out
